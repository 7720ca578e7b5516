"""Every write path of the rollouts app: the admin, the API and `manage.py rollout`
all call these functions, so a change is validated, recorded and applied alike.

These requests (service_change, _rollback, _undo, _scale, _adopt, _reapply,
rollout_abort) only touch the
database and queue a Rollout: none of them is ever given a Docker client, so the
webui, which has no socket, can serve them. The controller (or `rollout apply`)
then claims the rollout, writes to the swarm and watches it to the end with
`rollouts.control.driver.drive`.

A service has at most one active rollout: a new request is refused while one is
queued or running, rather than queued behind it, because what the operator
wants next usually depends on how the running one ends.
"""

import logging
from typing import Any

from django.contrib.auth.models import User as AuthUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from rollouts.models import (
    ACTIVE_STATES,
    Mode,
    Revision,
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.records.history import event, remember_applied, revision_create
from rollouts.records.selectors import (
    revision_current,
    revision_undo_target,
    rollout_active_for,
)
from rollouts.spec import drift
from rollouts.spec.fields import SPEC_FIELDS
from rollouts.spec.guards import normalize_monitors
from rollouts.spec.specs import desired_from_spec, short_image, spec_diff, unheld
from rollouts.spec.validation import parse_values, validate_desired

# settings.AUTH_USER_MODEL is Django's own; None: the command line without --user.
User = AuthUser | None

log = logging.getLogger("rollouts")


# --- requests ----------------------------------------------------------------------


def busy_refusal(service: Service, active: Rollout) -> str:
    """The one text of the one-active-rollout rule, wherever it is refused."""
    return (
        f"{service.name} already has rollout #{active.pk} ({active.state}); "
        "wait until it finishes, then try again"
    )


def refuse_if_busy(service: Service) -> None:
    """ValidationError (non-field) while `service` has a rollout queued or
    running. Every request checks it; a face may ask it early, before it shows
    a form, so that the operator does not fill one in for nothing."""
    active = rollout_active_for(service=service)
    if active is not None:
        raise ValidationError({NON_FIELD_ERRORS: busy_refusal(service, active)})


# The engine's UpdateStatus states of an update stopped half-way for an
# operator (failure_action pause).
PAUSED_STATES = ("paused", "rollback_paused")
# The code of the paused-update refusal: each face offers its own way to
# resume on purpose (the admin's box, `--resume`, the API's "resume": true).
PAUSED = "paused_update"


def paused_update(service: Service) -> str | None:
    """Why `service` is stopped half-way in a failed update, or None.

    From what the controller recorded: the engine's UpdateStatus at the last
    sync, or, when no sync came since, our own last rollout having ended
    paused (the webui cannot ask the engine: it holds what was recorded)."""
    if service.live_update_state in PAUSED_STATES:
        return service.live_update_message or service.live_update_state
    last = service.rollouts.filter(finished_at__isnull=False).order_by("-pk").first()
    if last is None or last.state != RolloutState.PAUSED:
        return None
    if service.synced_at and last.finished_at and service.synced_at > last.finished_at:
        return None  # the engine was read since: it is no longer paused
    return last.reason or "paused"


def refuse_resuming_a_paused_update(
    service: Service, spec: dict[str, Any], resume_confirmed: bool
) -> None:
    """The one rule, for the admin, the API and the command alike: the engine
    resumes a paused failed update at the next write to the service with the
    paused spec (a scale re-sends the bugged image and shuts down more healthy
    tasks), so a write that keeps its image is refused unless the operator
    chose to resume. A new image ends the paused update instead, and rolling
    back or undoing are the other ways out.

    ValidationError keyed `resume_confirmed`, code PAUSED, naming the paused
    update and the ways out."""
    why = paused_update(service)
    if resume_confirmed or why is None:
        return
    live = short_image(service.live_image)
    if f"{spec['image']}:{spec['tag']}" != live:
        return  # a replacement: the new image ends the paused update
    raise ValidationError(
        {
            "resume_confirmed": ValidationError(
                f"{service.name} runs a paused failed update of {live} ({why}); "
                "this change would resume it. Roll back, undo or change the image "
                "to end it, or resume it on purpose",
                code=PAUSED,
            )
        }
    )


def _need_cause(change_cause: str) -> None:
    if not (change_cause or "").strip():
        raise ValidationError({"change_cause": "say why (recorded with the change)"})


def mode_changes(service: Service, mode: str) -> bool:
    """Whether applying `mode` removes and re-creates the service. What runs
    decides, not what we asked earlier (after `make down && make up` the two
    differ): desired global, live replicated and `mode` replicated is no change.
    The only copy of this rule; the admin and the command show its refusal."""
    return mode != (service.live_mode or service.mode)


@transaction.atomic
def service_change(
    *,
    service: Service,
    user: User,
    change_cause: str,
    recreate_confirmed: bool = False,
    resume_confirmed: bool = False,
    follow_live: bool = True,
    carry: list[str] | None = None,
    **desired: Any,
) -> Rollout:
    """Save new desired fields as revision N+1 and queue a rollout applying it.

    With `follow_live` (the default) only the fields the operator changed are
    carried (`carry` names them; without it, those that differ from the
    desired spec); the other swarm fields take what runs
    (rollouts.spec.drift.follow_live), so an outside change is never silently
    reverted. Undo, re-apply and the admin's "apply now" pass
    False: they re-apply a whole spec on purpose.

    Raises ValidationError keyed by field (nothing is saved) on bad input, on a
    mode change without `recreate_confirmed`, on a change that would resume a
    paused failed update without `resume_confirmed`, and while
    another rollout of the service is active.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    _need_cause(change_cause)
    desired = parse_values(desired)
    desired = normalize_monitors(desired)  # 0 means the engine's 5 s
    if follow_live and desired:
        desired = drift.follow_live(
            service.desired_spec(), service.live_spec, desired, carry
        )
    validate_desired(service=service, desired=desired)
    refuse_resuming_a_paused_update(
        service, {**service.desired_spec(), **desired}, resume_confirmed
    )
    mode = desired.get("mode", service.mode)
    if mode_changes(service, mode) and not recreate_confirmed:
        live = service.live_mode or service.mode
        # Keyed by the missing consent: the admin shows it at its checkbox, the
        # command names --confirm-recreate.
        raise ValidationError(
            {
                "recreate_confirmed": f"changing {service.name} from {live} to "
                f"{mode} removes and re-creates the service: confirm it"
            }
        )
    refuse_if_busy(service)
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
    refuse_if_busy(service)
    return _queue(service, user, kind=RolloutKind.ROLLBACK, change_cause=change_cause)


@transaction.atomic
def service_undo(
    *,
    service: Service,
    user: User,
    to_revision: int | None = None,
    change_cause: str = "",
    recreate_confirmed: bool = False,
    resume_confirmed: bool = False,
) -> Rollout:
    """Queue a rollout of an earlier revision's spec, as a new revision.

    Without `to_revision`: the revision before the current one (the newest that
    was applied successfully), like `kubectl rollout undo`. Works from our own
    history, so also after the engine dropped its PreviousSpec.
    """
    revisions = service.revisions.order_by("-number")
    if to_revision is None:
        target = revision_undo_target(service=service)
        if target is None:
            # Not keyed `to_revision`: no revision was asked for, so no face
            # may name a field or flag the operator did not give.
            raise ValidationError(
                {NON_FIELD_ERRORS: f"{service.name} has no earlier revision to undo to"}
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
    current = revision_current(service=service)
    runs = desired_from_spec(service.live_spec) if service.live_spec else None
    if (
        current is not None
        and not spec_diff(current.spec, target.spec)
        and (runs is None or not spec_diff(runs, target.spec))
    ):
        raise ValidationError(
            {
                "to_revision": f"{service.name} already runs revision "
                f"{target.number}'s spec ({target.spec['image']}:"
                f"{target.spec['tag']}): an undo to it would change nothing"
            }
        )
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or f"undo to revision {target.number}",
        recreate_confirmed=recreate_confirmed,
        resume_confirmed=resume_confirmed,
        follow_live=False,
        **{f: v for f, v in target.spec.items() if f in SPEC_FIELDS},
    )


@transaction.atomic
def service_scale(
    *,
    service: Service,
    user: User,
    replicas: int,
    change_cause: str = "",
    resume_confirmed: bool = False,
) -> Rollout:
    if service.mode == Mode.GLOBAL:
        raise ValidationError(
            {"replicas": f"{service.name} is global: it runs one task per node"}
        )
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or f"scale to {replicas}",
        resume_confirmed=resume_confirmed,
        carry=["replicas"],
        replicas=replicas,
    )


@transaction.atomic
def rollout_abort(*, service: Service, user: User, cause: str) -> Rollout:
    """End the service's active rollout now, recording who and why.

    Database only: the driver sees the final state at its next step and stops;
    the engine's own update, if one runs, is not stopped (the engine has no
    pause call): undo or roll back, which the abort makes possible at once.
    A held canary is the exception: its driver (or any controller) rolls it
    back, since its hold must never outlive the rollout.
    Raises ValidationError without a cause or an active rollout.
    """
    _need_cause(cause)
    active = rollout_active_for(service=service)
    if active is None:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"{service.name} has no rollout in flight to abort"}
        )
    who = getattr(user, "username", None) or "the command line"
    if active.canary_state == "holding":
        # The hold never outlives its rollout (rollouts.control.canary).
        then = (
            "The held canary is rolled back: its driver asks the engine for the "
            "spec before it"
        )
    else:
        then = (
            "The engine's update, if any, was not stopped: undo or roll back to "
            "put the previous spec back"
        )
    reason = f"aborted by {who}: {cause.strip()}. {then}"
    ended = Rollout.objects.filter(pk=active.pk, state__in=ACTIVE_STATES).update(
        state=RolloutState.ABORTED,
        reason=reason,
        finished_at=timezone.now(),
        lease_until=None,
        aborted_by=user,
    )
    active.refresh_from_db()
    if ended:
        event(active, "state", f"aborted: {reason}")
    return active


@transaction.atomic
def rollout_promote(*, service: Service, user: User, cause: str) -> Rollout:
    """Promote the service's held canary: the rest of the update goes ahead
    whatever the analysis says, recording who and why.

    Database only: the rollout's driver writes the normal update policy at its
    next step (rollouts.control.canary). Raises ValidationError without a cause
    or without a held rollout.
    """
    _need_cause(cause)
    active = rollout_active_for(service=service)
    # "window": the analysis of the stability window holds the completion.
    if active is None or active.canary_state not in ("holding", "window"):
        raise ValidationError(
            {NON_FIELD_ERRORS: f"{service.name} has no held canary to promote"}
        )
    who = getattr(user, "username", None) or "the command line"
    Rollout.objects.filter(pk=active.pk).update(
        promote_requested_by=user,
        promote_requested_at=timezone.now(),
        promote_cause=cause.strip()[:500],
    )
    active.refresh_from_db()
    event(active, "info", f"promotion asked by {who}: {cause.strip()}")
    return active


@transaction.atomic
def service_adopt(*, service: Service, user: User, change_cause: str = "") -> Revision:
    """Take what runs as the new desired spec and last-applied spec (a revision,
    no rollout): the operator's way to accept drift."""
    service = Service.objects.select_for_update().get(pk=service.pk)
    if not service.live_spec:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"{service.name}: nothing observed yet to adopt"}
        )
    refuse_if_busy(service)
    live = unheld(desired_from_spec(service.live_spec), service.desired_spec())
    for field, value in live.items():
        setattr(service, field, value)
    service.save()
    remember_applied(service, service.live_spec)
    return revision_create(
        service, user, change_cause or "adopted what runs in the swarm"
    )


def service_reapply(
    *,
    service: Service,
    user: User,
    change_cause: str = "",
    resume_confirmed: bool = False,
) -> Rollout:
    """Re-apply our last revision's spec over an outside change (explicitly)."""
    current = revision_current(service=service) or service.revisions.first()
    spec = current.spec if current else service.desired_spec()
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or "re-apply ours over the drift",
        resume_confirmed=resume_confirmed,
        follow_live=False,
        **{f: v for f, v in spec.items() if f in SPEC_FIELDS},
    )
