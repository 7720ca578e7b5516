"""Every write path of the rollouts app: the admin, the API and `manage.py rollout`
all call these functions, so a change is validated, recorded and applied alike.

Requests (service_change, _rollback, _undo, _scale) only touch the database and
queue a Rollout; the controller (or `rollout apply`) claims it, writes to the
swarm and watches it to the end with the functions of rollouts.driving,
re-exported here (rollout_claim_next, rollout_apply, rollout_watch_step, ...).

A service has at most one active rollout: a new request is refused while one is
queued or running, rather than queued behind it, because what the operator
wants next usually depends on how the running one ends.
"""

import logging

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from rollouts import drift
from rollouts.driving import (
    default_owner,
    rollout_apply,
    rollout_claim,
    rollout_claim_next,
    rollout_release,
    rollout_take_over,
    rollout_watch_step,
    rollouts_to_drive,
)
from rollouts.guards import normalize_monitors, refuse_resuming_a_paused_update
from rollouts.history import event, record_live, remember_applied, revision_create
from rollouts.models import (
    ACTIVE_STATES,
    SPEC_FIELDS,
    KnownImage,
    Mode,
    Revision,
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.selectors import revision_current, rollout_active_for
from rollouts.specs import desired_from_spec
from rollouts.swarm import SwarmClient
from rollouts.validation import validate_desired

log = logging.getLogger("rollouts")


# --- the swarm -> the database ---------------------------------------------------


def service_sync(
    *, stack: str | None = None, client: SwarmClient | None = None
) -> list[Service]:
    """Import or refresh one Service row per swarm service of `stack`.

    New rows take their desired fields from the live spec (revision 1); every
    row gets its live state refreshed; rows whose service vanished are marked
    missing. The engine's image inventory (KnownImage) is refreshed too.
    """
    stack = stack or settings.STACK_NAME
    client = client or SwarmClient()
    live = client.list_services(stack)
    tasks: dict[str, list] = {svc["ID"]: [] for svc in live}
    for task in client.tasks():
        tasks.get(task.get("ServiceID"), []).append(task)
    nodes = client.node_names()
    images = client.images()
    now = timezone.now()
    with transaction.atomic():
        _record_images(images, now)
        rows = [_import(svc, stack, tasks[svc["ID"]], nodes, now) for svc in live]
        names = [row.name for row in rows]
        gone = Service.objects.filter(stack=stack, missing=False).exclude(
            name__in=names
        )
        for row in gone:
            log.info("%s: no longer in the swarm", row.name)
        gone.update(missing=True)
    return rows


def _record_images(images: list[dict], now) -> None:
    for image in images:
        KnownImage.objects.update_or_create(
            reference=image["reference"],
            defaults={
                "image_id": image["image_id"],
                "digest": image["digest"],
                "seen_at": now,
            },
        )
    refs = [image["reference"] for image in images]
    KnownImage.objects.exclude(reference__in=refs).delete()


def _import(svc: dict, stack: str, tasks: list, nodes: dict, now) -> Service:
    name = svc["Spec"]["Name"]
    service = Service.objects.filter(name=name).first()
    if service is None:
        prefix = f"{stack}_"
        short = name[len(prefix) :] if name.startswith(prefix) else name
        service = Service(name=name, stack=stack, short_name=short)
        for field, value in desired_from_spec(svc["Spec"]).items():
            setattr(service, field, value)
        service.save()
        revision_create(service, None, "imported from the swarm by `rollout sync`")
        log.info("%s: imported (%s:%s)", name, service.image, service.tag)
    record_live(service, svc, tasks, nodes, now)
    return service


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
    # What runs decides whether the mode changes, not what we asked earlier
    # (after `make down && make up` the two differ).
    return mode != (service.live_mode or service.mode)


@transaction.atomic
def service_change(
    *,
    service: Service,
    user,
    change_cause: str,
    recreate_confirmed: bool = False,
    resume_confirmed: bool = False,
    follow_live: bool = True,
    carry: list[str] | None = None,
    **desired,
) -> Rollout:
    """Save new desired fields as revision N+1 and queue a rollout applying it.

    With `follow_live` (the default) only the fields the operator changed are
    carried; the other swarm fields take what runs (rollouts.drift.follow_live),
    so an outside change is never silently reverted. Undo and "apply now" pass
    False: they re-apply a whole spec on purpose.

    Raises ValidationError keyed by field (nothing is saved) on bad input, on a
    mode change without `recreate_confirmed`, on a change that would resume a
    paused failed update without `resume_confirmed`, and while another rollout
    of the service is active.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    _need_cause(change_cause)
    desired = normalize_monitors(desired)  # truth hook: 0 means the engine's 5 s
    if follow_live and desired:
        # truth hook: carry only what the operator changed.
        desired = drift.follow_live(
            service.desired_spec(), service.live_spec, desired, carry
        )
    validate_desired(service=service, desired=desired)
    refuse_resuming_a_paused_update(  # truth hook (issue 7 §6)
        service, {**service.desired_spec(), **desired}, resume_confirmed
    )
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


def _queue(service: Service, user, **fields) -> Rollout:
    rollout = Rollout.objects.create(service=service, requested_by=user, **fields)
    who = getattr(user, "username", None) or "the command line"
    event(rollout, "state", f"queued by {who}: {fields['change_cause']}")
    return rollout


@transaction.atomic
def service_rollback(*, service: Service, user, change_cause: str) -> Rollout:
    """Queue the engine's own rollback to the spec before the last update."""
    service = Service.objects.select_for_update().get(pk=service.pk)
    _need_cause(change_cause)
    if service.missing:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"service {service.name} no longer exists in the swarm"}
        )
    _refuse_if_busy(service)
    return _queue(service, user, kind=RolloutKind.ROLLBACK, change_cause=change_cause)


def service_undo(
    *,
    service: Service,
    user,
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
        latest = revisions.first()
        if (
            current is not None
            and latest is not None
            and latest != current
            and not latest.rollouts.filter(state=RolloutState.ROLLED_BACK).exists()
        ):
            # The latest change never completed (aborted, failed, paused,
            # superseded): undo it, back to what last completed.
            older = revisions.filter(number=current.number)
        else:
            older = (
                revisions.filter(number__lt=current.number)
                if current
                else revisions[1:]
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
    spec = {f: v for f, v in target.spec.items() if f in SPEC_FIELDS}
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or f"undo to revision {target.number}",
        recreate_confirmed=recreate_confirmed,
        follow_live=False,
        **spec,
    )


def service_scale(
    *,
    service: Service,
    user,
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
def rollout_abort(*, service: Service, user, cause: str) -> Rollout:
    """End the service's active rollout now, recording who and why.

    Database only: the driver sees the final state at its next step and stops;
    the engine's own update, if one runs, is not stopped (the engine has no
    pause call): undo or roll back, which the abort makes possible at once.
    Raises ValidationError without a cause or an active rollout.
    """
    _need_cause(cause)
    active = rollout_active_for(service=service)
    if active is None:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"{service.name} has no rollout in flight to abort"}
        )
    who = getattr(user, "username", None) or "the command line"
    reason = (
        f"aborted by {who}: {cause.strip()}. The engine's update, if any, was not "
        "stopped: undo or roll back to put the previous spec back"
    )
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
def service_adopt(*, service: Service, user, change_cause: str = "") -> Revision:
    """Take what runs as the new desired spec and last-applied spec (a revision,
    no rollout): the operator's way to accept drift."""
    service = Service.objects.select_for_update().get(pk=service.pk)
    if not service.live_spec:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"{service.name}: nothing observed yet to adopt"}
        )
    _refuse_if_busy(service)
    for field, value in desired_from_spec(service.live_spec).items():
        setattr(service, field, value)
    service.save()
    remember_applied(service, service.live_spec)
    return revision_create(
        service, user, change_cause or "adopted what runs in the swarm"
    )


def service_reapply(*, service: Service, user, change_cause: str = "") -> Rollout:
    """Re-apply our last revision's spec over an outside change (explicitly)."""
    current = revision_current(service=service) or service.revisions.first()
    spec = current.spec if current else service.desired_spec()
    return service_change(
        service=service,
        user=user,
        change_cause=change_cause or "re-apply ours over the drift",
        follow_live=False,
        **{f: v for f, v in spec.items() if f in SPEC_FIELDS},
    )


__all__ = [
    "rollout_abort",
    "service_adopt",
    "service_reapply",
    "default_owner",
    "rollout_apply",
    "rollout_claim",
    "rollout_claim_next",
    "rollout_release",
    "rollout_take_over",
    "rollout_watch_step",
    "rollouts_to_drive",
    "service_change",
    "service_rollback",
    "service_scale",
    "service_sync",
    "service_undo",
]
