"""Every write path of the rollouts app: the admin, the API and `manage.py rollout`
all call these functions, so a change is validated, recorded and applied alike.

These requests (service_change, _rollback, _undo, _scale) only touch the
database and queue a Rollout: none of them is ever given a Docker client, so the
webui, which has no socket, can serve them. The controller (or `rollout apply`)
then claims the rollout, writes to the swarm and watches it to the end with
`rollouts.driver.drive`.

A service has at most one active rollout: a new request is refused while one is
queued or running, rather than queued behind it, because what the operator
wants next usually depends on how the running one ends.
"""

import logging
from typing import Any

from django.contrib.auth.models import User as AuthUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from rollouts.history import event, revision_create
from rollouts.models import (
    Mode,
    Rollout,
    RolloutKind,
    Service,
)
from rollouts.selectors import revision_current, rollout_active_for
from rollouts.validation import parse_values, validate_desired

# settings.AUTH_USER_MODEL is Django's own; None: the command line without --user.
User = AuthUser | None

log = logging.getLogger("rollouts")


# --- requests ----------------------------------------------------------------------


def _refuse_if_busy(service: Service) -> None:
    active = rollout_active_for(service=service)
    if active is not None:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: f"{service.name} already has rollout #{active.pk} "
                f"({active.state}); wait until it finishes, then try again"
            }
        )


def _need_cause(change_cause: str) -> None:
    if not (change_cause or "").strip():
        raise ValidationError({"change_cause": "say why (recorded with the change)"})


def _mode_changes(service: Service, mode: str) -> bool:
    return mode != service.mode or bool(service.live_mode and service.live_mode != mode)


@transaction.atomic
def service_change(
    *,
    service: Service,
    user: User,
    change_cause: str,
    recreate_confirmed: bool = False,
    **desired: Any,
) -> Rollout:
    """Save new desired fields as revision N+1 and queue a rollout applying it.

    Raises ValidationError keyed by field (nothing is saved) on bad input, on a
    mode change without `recreate_confirmed`, and while another rollout of the
    service is active.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    _need_cause(change_cause)
    desired = parse_values(desired)
    validate_desired(service=service, desired=desired)
    mode = desired.get("mode", service.mode)
    if _mode_changes(service, mode) and not recreate_confirmed:
        live = service.live_mode or service.mode
        raise ValidationError(
            {
                "mode": f"changing {service.name} from {live} to {mode} removes and "
                "re-creates the service: confirm it (--confirm-recreate, or the "
                "checkbox in the admin)"
            }
        )
    _refuse_if_busy(service)
    for field, value in desired.items():
        setattr(service, field, value)
    if desired:
        service.save(update_fields=list(desired))
    revision = revision_create(service, user, change_cause)
    return _queue(
        service,
        user,
        kind=RolloutKind.APPLY,
        revision=revision,
        change_cause=change_cause,
        recreate_confirmed=recreate_confirmed,
    )


def _queue(service: Service, user: User, **fields: Any) -> Rollout:
    rollout = Rollout.objects.create(service=service, requested_by=user, **fields)
    who = getattr(user, "username", None) or "the command line"
    event(rollout, "state", f"queued by {who}: {fields['change_cause']}")
    return rollout


@transaction.atomic
def service_rollback(*, service: Service, user: User, change_cause: str) -> Rollout:
    """Queue the engine's own rollback to the spec before the last update."""
    service = Service.objects.select_for_update().get(pk=service.pk)
    _need_cause(change_cause)
    if service.missing:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"service {service.name} no longer exists in the swarm"}
        )
    _refuse_if_busy(service)
    return _queue(service, user, kind=RolloutKind.ROLLBACK, change_cause=change_cause)


@transaction.atomic
def service_undo(
    *,
    service: Service,
    user: User,
    to_revision: int | None = None,
    change_cause: str = "",
    recreate_confirmed: bool = False,
) -> Rollout:
    """Queue a rollout of an earlier revision's spec, as a new revision.

    Without `to_revision`: the revision before the current one (the newest that
    was applied successfully), like `kubectl rollout undo`. Works from our own
    history, so also after the engine dropped its PreviousSpec.
    """
    revisions = service.revisions.order_by("-number")
    if to_revision is None:
        current = revision_current(service=service)
        older = (
            revisions.filter(number__lt=current.number) if current else revisions[1:]
        )
        target = older.first()
        if target is None:
            raise ValidationError(
                {"to_revision": f"{service.name} has no earlier revision to undo to"}
            )
    else:
        target = revisions.filter(number=to_revision).first()
        if target is None:
            numbers = ", ".join(
                str(n) for n in revisions.values_list("number", flat=True)
            )
            raise ValidationError(
                {
                    "to_revision": f"{service.name} has no revision {to_revision} "
                    f"(revisions: {numbers or 'none'})"
                }
            )
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or f"undo to revision {target.number}",
        recreate_confirmed=recreate_confirmed,
        **target.spec,
    )


@transaction.atomic
def service_scale(
    *, service: Service, user: User, replicas: int, change_cause: str = ""
) -> Rollout:
    if service.mode == Mode.GLOBAL:
        raise ValidationError(
            {"replicas": f"{service.name} is global: it runs one task per node"}
        )
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or f"scale to {replicas}",
        replicas=replicas,
    )
