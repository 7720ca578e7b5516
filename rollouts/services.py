"""Every write path of the rollouts app: the admin, the API and `manage.py rollout`
all call these functions, so a change is validated, recorded and applied alike.

Requests (service_change, _rollback, _undo, _scale) only touch the database and
queue a Rollout; the controller (or `rollout apply`) claims it, writes to the
swarm (rollout_apply) and watches it to the end (rollout_watch_step).

Concurrency: a service has at most one active rollout (a new request is refused
while one is queued or running, rather than queued behind it, because what the
operator wants next usually depends on how the running one ends). Applying is
claimed with conditional UPDATEs, and whoever drives a rollout holds a lease on
it, so two controllers (or a controller and `rollout apply`) never drive the
same rollout and a restarted controller takes over when the lease runs out.
"""

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from rollouts import watcher
from rollouts.history import event, finish, record_live, revision_create
from rollouts.models import (
    RUNNING_STATES,
    KnownImage,
    Mode,
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.selectors import revision_current, rollout_active_for
from rollouts.specs import apply_desired, desired_from_spec, spec_diff, spec_mode
from rollouts.swarm import (
    ServiceNotFound,
    SwarmClient,
    SwarmError,
    SwarmUnreachable,
)
from rollouts.validation import validate_desired

log = logging.getLogger("rollouts")

LEASE = timedelta(seconds=30)


def default_owner(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


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
    tasks = {svc["ID"]: client.tasks(svc["ID"]) for svc in live}
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
    return mode != service.mode or bool(service.live_mode and service.live_mode != mode)


@transaction.atomic
def service_change(
    *,
    service: Service,
    user,
    change_cause: str,
    recreate_confirmed: bool = False,
    **desired,
) -> Rollout:
    """Save new desired fields as revision N+1 and queue a rollout applying it.

    Raises ValidationError keyed by field (nothing is saved) on bad input, on a
    mode change without `recreate_confirmed`, and while another rollout of the
    service is active.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    _need_cause(change_cause)
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
    service.save(update_fields=list(desired) or None)
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


def service_scale(
    *, service: Service, user, replicas: int, change_cause: str = ""
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


# --- claiming and leases -------------------------------------------------------------


def rollout_claim(*, rollout: Rollout, owner: str) -> bool:
    """Take a queued rollout for applying; False when someone else has it, or
    another rollout of the same service is being applied or watched."""
    now = timezone.now()
    busy = Rollout.objects.filter(service=OuterRef("service"), state__in=RUNNING_STATES)
    claimed = (
        Rollout.objects.filter(pk=rollout.pk, state=RolloutState.QUEUED)
        .filter(~Exists(busy))
        .update(
            state=RolloutState.APPLYING,
            lease_owner=owner,
            lease_until=now + LEASE,
            started_at=now,
        )
    )
    rollout.refresh_from_db()
    if claimed:
        event(rollout, "state", f"applying (claimed by {owner})")
    return claimed == 1


def rollout_claim_next(*, owner: str) -> Rollout | None:
    """Claim the oldest queued rollout that may run now; None when there is none."""
    queued = Rollout.objects.filter(state=RolloutState.QUEUED).order_by("requested_at")
    for rollout in queued.select_related("service")[:50]:
        if rollout_claim(rollout=rollout, owner=owner):
            return rollout
    return None


def rollouts_to_drive(*, owner: str) -> QuerySet[Rollout]:
    """Running rollouts `owner` holds, or may take over because their lease ran out."""
    lapsed = Q(lease_until__lt=timezone.now()) | Q(lease_until=None)
    return (
        Rollout.objects.filter(state__in=RUNNING_STATES)
        .filter(Q(lease_owner=owner) | lapsed)
        .select_related("service", "revision")
        .order_by("requested_at")
    )


def rollout_take_over(*, rollout: Rollout, owner: str) -> bool:
    """Renew `owner`'s lease on a running rollout, or take it over once the
    previous owner's lease ran out. False: someone else drives it."""
    now = timezone.now()
    previous = rollout.lease_owner
    lapsed = Q(lease_until__lt=now) | Q(lease_until=None)
    renewed = (
        Rollout.objects.filter(pk=rollout.pk, state__in=RUNNING_STATES)
        .filter(Q(lease_owner=owner) | lapsed)
        .update(lease_owner=owner, lease_until=now + LEASE)
    )
    rollout.refresh_from_db()
    if renewed and previous != owner:
        event(rollout, "info", f"taken over by {owner} (lease of {previous} ran out)")
    return renewed == 1


def rollout_release(*, rollout: Rollout, owner: str) -> None:
    """Let another driver take the rollout over now (`apply` without --wait)."""
    Rollout.objects.filter(pk=rollout.pk, lease_owner=owner).update(
        lease_until=timezone.now()
    )


# --- applying and watching ------------------------------------------------------------


def rollout_apply(*, rollout: Rollout, client: SwarmClient | None = None) -> Rollout:
    """Write the rollout to the swarm; it is then WATCHING (or FAILED, with why).

    A queued rollout is claimed first (ValidationError if that fails). When the
    engine cannot be reached, the rollout goes back to the queue and
    SwarmUnreachable is raised for the caller to back off.
    """
    if rollout.state == RolloutState.QUEUED and not rollout_claim(
        rollout=rollout, owner=default_owner("apply")
    ):
        raise ValidationError(
            {
                NON_FIELD_ERRORS: f"rollout #{rollout.pk} is {rollout.state}"
                + (f" by {rollout.lease_owner}" if rollout.lease_owner else "")
            }
        )
    if rollout.state != RolloutState.APPLYING:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: f"rollout #{rollout.pk} is {rollout.state}, "
                "not applying"
            }
        )
    client = client or SwarmClient()
    try:
        applied_at = _write(rollout, client)
    except SwarmUnreachable as exc:
        Rollout.objects.filter(pk=rollout.pk, state=RolloutState.APPLYING).update(
            state=RolloutState.QUEUED, lease_owner="", lease_until=None
        )
        rollout.refresh_from_db()
        event(rollout, "error", f"{exc}; back in the queue")
        raise
    except SwarmError as exc:
        if isinstance(exc, ServiceNotFound):
            Service.objects.filter(pk=rollout.service_id).update(missing=True)
        finish(rollout, RolloutState.FAILED, str(exc))
        return rollout
    with transaction.atomic():
        rollout.state = RolloutState.WATCHING
        rollout.applied_at = applied_at
        rollout.save(update_fields=["state", "applied_at"])
        event(rollout, "state", "watching")
    return rollout


def _write(rollout: Rollout, client: SwarmClient):
    """Send the rollout to the engine; returns the engine time just before."""
    service = rollout.service
    if rollout.kind == RolloutKind.ROLLBACK:
        applied_at = client.engine_time()
        client.rollback(service.name)
        event(rollout, "info", "asked the engine to roll back to the previous spec")
        return applied_at
    desired = rollout.revision.spec
    reference = f"{desired['image']}:{desired['tag']}"
    if client.image(reference) is None:
        raise SwarmError(f"image {reference} is not on the engine: nothing was sent")
    image = rollout.revision.image_digest or reference
    live = client.inspect(service.name)
    changes = spec_diff(desired_from_spec(live["Spec"]), desired)
    summary = "; ".join(f"{label} {old} -> {new}" for label, old, new in changes)
    applied_at = client.engine_time()
    mode = spec_mode(live["Spec"])[0]
    if mode != desired["mode"]:
        if not rollout.recreate_confirmed:
            raise SwarmError(
                f"changing {service.name} from {mode} to {desired['mode']} re-creates "
                "the service and was not confirmed: nothing was sent"
            )
        new = client.recreate(
            service.name, lambda spec: apply_desired(spec, desired, image)
        )
        event(
            rollout,
            "info",
            f"re-created {service.name} as {desired['mode']} (service "
            f"{live['ID'][:12]} removed, {new['ID'][:12]} created): {summary}",
        )
    else:
        client.update(service.name, lambda spec: apply_desired(spec, desired, image))
        event(rollout, "info", f"updated: {summary or 'no change to the swarm spec'}")
    return applied_at


def rollout_watch_step(*, rollout: Rollout, client: SwarmClient | None = None) -> bool:
    """Observe the swarm once and record what changed; True once the rollout is
    final. The caller must hold the rollout's lease (rollout_take_over)."""
    rollout.refresh_from_db()
    if rollout.is_final:
        return True
    if rollout.state != RolloutState.WATCHING:
        return False
    client = client or SwarmClient()
    decision = watcher.watch_step(rollout, client)
    if decision is None:
        return False
    if not decision.rollback:
        finish(rollout, decision.state, decision.reason)
        return True
    _deadline_rollback(rollout, decision.reason, client)
    return True


def _deadline_rollback(rollout: Rollout, reason: str, client: SwarmClient) -> None:
    try:
        applied_at = client.engine_time()
        client.rollback(rollout.service.name)
    except SwarmError as exc:
        finish(rollout, RolloutState.FAILED, f"{reason}; the rollback failed: {exc}")
        return
    now = timezone.now()
    with transaction.atomic():
        follow_up = Rollout.objects.create(
            service=rollout.service,
            kind=RolloutKind.ROLLBACK,
            state=RolloutState.WATCHING,
            change_cause=f"progress deadline of rollout #{rollout.pk} passed",
            started_at=now,
            applied_at=applied_at,
            lease_owner=rollout.lease_owner,
            lease_until=now + LEASE,
        )
        event(follow_up, "state", f"watching the engine rollback after #{rollout.pk}")
        finish(
            rollout,
            RolloutState.FAILED,
            f"{reason}; rolling back (rollout #{follow_up.pk})",
        )
