"""Driving rollouts: claiming them, holding leases, writing to the swarm, and
stepping the watcher. `drive` is the one step both the controller loop and
`rollout apply --wait` take; requests (rollouts.records.requests) only queue, and only
this module (with rollouts.engine.sync) is ever handed a Docker client.

Applying is claimed with a conditional UPDATE (`filter(state=QUEUED).update()`
== 1), and whoever drives a rollout holds a lease on it (lease_owner,
lease_until) renewed at every step: two controllers, or a controller and
`rollout apply`, never drive the same rollout, and a restarted controller takes
over a rollout it was watching once the lease runs out.
"""

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from rollouts.control import canary, identity, watcher
from rollouts.control.rollback import held_refusal, rollback_refusal
from rollouts.engine.client import (
    OutOfSequence,
    ServiceNotFound,
    SwarmClient,
    SwarmError,
    SwarmUnreachable,
)
from rollouts.engine.contact import reachable, unreachable
from rollouts.engine.objects import SwarmService, Task
from rollouts.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    RUNNING_STATES,
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.records.history import event, finish, remember_applied
from rollouts.records.selectors import revision_undo_target
from rollouts.spec.choices import DeadlineAction
from rollouts.spec.specs import (
    apply_desired,
    desired_from_spec,
    is_held,
    spec_diff,
    with_policy_of,
)

log = logging.getLogger("rollouts")

LEASE = timedelta(seconds=30)
# Writing can take minutes: a re-creation waits for the old tasks to stop.
WRITE_LEASE = timedelta(minutes=5)
# The service's version moves during a rollout and other tools write too.
WRITE_ATTEMPTS = 5


def default_owner(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


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
    """Running rollouts `owner` holds, or may take over because their lease ran
    out; and ended ones whose canary hold is still to be released (an abort
    ends a rollout in the database only, maybe while no controller ran)."""
    lapsed = Q(lease_until__lt=timezone.now()) | Q(lease_until=None)
    held = Q(state__in=FINAL_STATES, canary_state=canary.HOLDING)
    return (
        Rollout.objects.filter(Q(state__in=RUNNING_STATES) | held)
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


# --- the one drive step ---------------------------------------------------------


def drive(*, rollout: Rollout, owner: str, client: SwarmClient) -> bool:
    """One step of one rollout by `owner`: claim it if queued (or take it over
    if its driver's lease ran out), then write it to the swarm if it was not
    written yet, or look at the swarm once if it is being watched.

    A rollout that ended while its canary was held has its hold released
    (rollout_release_hold), whoever ended it.

    Returns False when someone else drives it (nothing was done). Raises
    SwarmUnreachable when no engine answers (the rollout is left for later).
    A look leaves its guess of when to look again in rollout.look_again_in.
    """
    rollout.look_again_in = None  # a guess holds for one look only
    rollout.refresh_from_db()
    if rollout.state == RolloutState.QUEUED:
        if not rollout_claim(rollout=rollout, owner=owner):
            return False
    elif rollout.state not in RUNNING_STATES or not rollout_take_over(
        rollout=rollout, owner=owner
    ):
        if rollout.is_final:
            return rollout_release_hold(rollout=rollout, owner=owner, client=client)
        return False
    if rollout.state == RolloutState.APPLYING:
        # Claimed just now, or its driver stopped between claiming and writing:
        # write again (the same spec, so a second write changes nothing).
        rollout_apply(rollout=rollout, client=client)
    else:
        rollout_watch_step(rollout=rollout, client=client)
    if rollout.is_final:
        rollout_release_hold(rollout=rollout, owner=owner, client=client)
    return True


# --- applying and watching ------------------------------------------------------------


def rollout_apply(*, rollout: Rollout, client: SwarmClient) -> Rollout:
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
    Rollout.objects.filter(pk=rollout.pk, state=RolloutState.APPLYING).update(
        lease_until=timezone.now() + WRITE_LEASE
    )
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
    # The spec as the engine holds it right after our write is what
    # the rollout is judged against (an outside write later supersedes it).
    written = _read_back(rollout, client)
    with transaction.atomic():
        if not Rollout.objects.filter(
            pk=rollout.pk, state=RolloutState.APPLYING
        ).exists():
            rollout.refresh_from_db()  # aborted while we wrote
            return rollout
        rollout.state = RolloutState.WATCHING
        rollout.applied_at = applied_at
        rollout.applied_spec = written
        rollout.lease_until = timezone.now() + LEASE
        rollout.save(
            update_fields=[
                "state",
                "applied_at",
                "applied_spec",
                "seen_tasks",
                "lease_until",
            ]
        )
        remember_applied(rollout.service, written)
        event(rollout, "state", "watching")
    return rollout


def _read_back(rollout: Rollout, client: SwarmClient) -> dict[str, Any]:
    try:
        return client.inspect(rollout.service.name).meant_spec
    except SwarmError:
        return {}  # judged without an identity check rather than not at all


def _write(rollout: Rollout, client: SwarmClient) -> datetime:
    """Send the rollout to the engine; returns the engine time just before.

    The tasks as they were before the write become the watcher's baseline, so
    that the old tasks being shut down are recorded too.
    """
    service = rollout.service
    if rollout.kind == RolloutKind.ROLLBACK:
        live = client.inspect(service.name)
        refusal = rollback_refusal(service, live)
        if refusal:
            raise SwarmError(f"{refusal}: nothing was sent")
        rollout.seen_tasks = _task_states(client.tasks(live.id))
        applied_at = client.engine_time()
        write_rollback(client, service.name)
        event(rollout, "info", "asked the engine to roll back to the previous spec")
        return applied_at
    if rollout.revision is None:  # an apply always has one; deleted since?
        raise SwarmError(f"rollout #{rollout.pk} has no revision: nothing was sent")
    desired = rollout.revision.spec
    reference = f"{desired['image']}:{desired['tag']}"
    found = client.image(reference)
    if found is None:
        raise SwarmError(f"image {reference} is not on the engine: nothing was sent")
    image = rollout.revision.image_digest or reference
    live = client.inspect(service.name)
    tasks = client.tasks(live.id)
    rollout.seen_tasks = _task_states(tasks)
    changes = spec_diff(desired_from_spec(live.spec), desired)
    summary = "; ".join(f"{label} {old} -> {new}" for label, old, new in changes)
    force = identity.rebuilt(client, live, tasks, found)
    if force:
        summary = f"{summary}; {force}" if summary else force
    applied_at = client.engine_time()
    mode = live.mode
    if mode != desired["mode"]:
        if not rollout.recreate_confirmed:
            raise SwarmError(
                f"changing {service.name} from {mode} to {desired['mode']} re-creates "
                "the service and was not confirmed: nothing was sent"
            )
        new = client.recreate(live, apply_desired(live.spec, desired, image))
        event(
            rollout,
            "info",
            f"re-created {service.name} as {desired['mode']} (service "
            f"{live.id[:12]} removed, {new.id[:12]} created): {summary}",
        )
    else:
        old_tag = str(desired_from_spec(live.spec).get("tag") or "")
        step = canary.plan(service, desired, old_tag)
        written = (
            canary.held(desired, service.canary) if step == canary.HOLDING else desired
        )

        def change(spec: dict[str, Any]) -> dict[str, Any]:
            new = apply_desired(spec, written, image)
            return identity.forced(new) if force else new

        write_update(client, service.name, change)
        event(rollout, "info", f"updated: {summary or 'no change to the swarm spec'}")
        if step:
            rollout.canary_state, rollout.baseline_version = step, old_tag
            Rollout.objects.filter(pk=rollout.pk).update(
                canary_state=step, baseline_version=old_tag
            )
            held = {
                canary.HOLDING: f"{service.canary} canary task(s) first, the rest "
                "held while",
                canary.BATCHES: "between batches (a failure rolls back before the "
                "next one) the",
                canary.DRY_RUN: "dry run: the update runs through while",
                canary.WINDOW: "the rollout completes only once, during the "
                "stability window, the",
            }[step]
            event(
                rollout,
                "analysis",
                f"{held} {service.analysis_template} analysis compares "
                f"{desired['tag']} with {old_tag} every "
                f"{service.analysis_interval:g}s",
            )
    return applied_at


def _task_states(tasks: list[Task]) -> dict[str, str]:
    return {task.id: task.state for task in tasks}


def write_update(
    client: SwarmClient, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> SwarmService:
    """Write `change(live spec)` to service `name`; returns the service as read
    before the write that went through. Each attempt reads the service again,
    since "update out of sequence" means its version moved meanwhile."""
    return _retry(client, name, lambda svc: client.update(svc, change(svc.spec)))


def write_rollback(client: SwarmClient, name: str) -> SwarmService:
    """Ask the engine to roll `name` back to its previous spec (retried alike)."""
    return _retry(client, name, client.rollback)


def _retry(
    client: SwarmClient, name: str, write: Callable[[SwarmService], None]
) -> SwarmService:
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        service = client.inspect(name)
        try:
            write(service)
            return service
        except OutOfSequence:
            if attempt == WRITE_ATTEMPTS:
                raise
        log.info("%s: update out of sequence, re-reading (%d)", name, attempt)
        time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def rollout_watch_step(*, rollout: Rollout, client: SwarmClient) -> bool:
    """Observe the swarm once and record what changed; True once the rollout is
    final. The caller must hold the rollout's lease (rollout_take_over)."""
    rollout.refresh_from_db()
    if rollout.is_final:
        return True
    if rollout.state != RolloutState.WATCHING:
        return False
    try:
        decision = watcher.watch_step(rollout, client)
    except SwarmUnreachable as exc:
        unreachable(rollout, str(exc))  # say so, with the time
        raise
    reachable(rollout)
    if rollout.canary_state == canary.PROMOTED and rollout.update_state.startswith(
        "rollback"
    ):
        _undo_after_promotion(rollout, client)
        return True
    if decision is None:
        return _canary_step(rollout, client)
    if (
        decision.state == RolloutState.COMPLETED
        and not decision.rollback
        and rollout.canary_state == canary.WINDOW
    ):
        # The stability window's analysis has not passed yet: "done" waits,
        # until the progress deadline (the engine's update is over, so the
        # verdict's own deadline is never reached).
        if _canary_step(rollout, client):
            return True
        if rollout.canary_state != canary.WINDOW:
            return False  # passed: completed at the next look
        late = canary.window_overdue(rollout, timezone.now())
        if not late:
            return False
        if rollout.service.deadline_action == DeadlineAction.ROLLBACK:
            _deadline_rollback(rollout, late, client)
        elif rollout.service.deadline_action == DeadlineAction.PAUSE:
            finish(rollout, RolloutState.PAUSED, late)
        else:
            finish(rollout, RolloutState.FAILED, late)
        return True
    if not decision.rollback:
        finish(rollout, decision.state, decision.reason)
        return True
    _deadline_rollback(rollout, decision.reason, client, decision.cause)
    return True


def _canary_step(rollout: Rollout, client: SwarmClient) -> bool:
    """The canary step's look (rollouts.control.canary), and its action carried
    out: promotion (our write, recorded as the applied spec) or the engine's
    rollback; True once the rollout is final."""
    action, why = canary.step(rollout, client, timezone.now())
    if action == canary.PROMOTE and rollout.canary_state == canary.WINDOW:
        canary.window_passed(rollout, why)  # nothing held: nothing to write
    elif action == canary.PROMOTE:
        write_update(client, rollout.service.name, canary.normal_policy(rollout))
        canary.promoted(rollout, _read_back(rollout, client), why)
    elif action == canary.ROLL_BACK:
        _deadline_rollback(
            rollout,
            why,
            client,
            f"analysis of rollout #{rollout.pk} failed",
            state=RolloutState.ROLLED_BACK,
        )
        return True
    return False


def _deadline_rollback(
    rollout: Rollout,
    reason: str,
    client: SwarmClient,
    cause: str = "",
    *,
    state: str = RolloutState.FAILED,
) -> None:
    try:
        refusal = held_refusal(rollout.service, client.inspect(rollout.service.name))
        if refusal:  # a promoted canary: its hold must not come back
            finish(
                rollout, RolloutState.FAILED, f"{reason}; not rolled back: {refusal}"
            )
            return
        applied_at = client.engine_time()
        write_rollback(client, rollout.service.name)
    except SwarmError as exc:
        finish(rollout, RolloutState.FAILED, f"{reason}; the rollback failed: {exc}")
        return
    with transaction.atomic():
        follow_up = _follow_rollback(
            rollout,
            applied_at,
            cause or f"progress deadline of rollout #{rollout.pk} passed",
        )
        finish(rollout, state, f"{reason}; rolling back (rollout #{follow_up.pk})")


def _undo_after_promotion(rollout: Rollout, client: SwarmClient) -> None:
    """New tasks failed after a promotion and the engine started its rollback.
    That rollback goes to the engine's one previous spec, which the promotion
    overwrote with the canary's hold: the new version, held for a day
    (swarmkit keeps one PreviousSpec per service). So the rollback is taken
    over by a write of ours: the revision before this rollout (what
    `rollout undo` puts back, with its own update policy), followed as a
    rollback of its own. The rollout ends rolled back once that write is
    sent; without a revision to put back it ends failed and says so."""
    service = rollout.service
    why = (
        f"new tasks failed after the promotion ({rollout.update_state}); the "
        "engine's own rollback goes to the canary's held spec (it keeps one "
        "previous spec, and the promotion wrote over it)"
    )
    target = revision_undo_target(service=service)
    if target is None or target == rollout.revision:
        finish(rollout, RolloutState.FAILED, f"{why}; no earlier revision to put back")
        return
    desired = target.spec
    reference = f"{desired['image']}:{desired['tag']}"
    image = target.image_digest or reference
    try:
        applied_at = client.engine_time()
        write_update(
            client, service.name, lambda spec: apply_desired(spec, desired, image)
        )
    except SwarmError as exc:
        failed = f"{why}; putting back {reference} failed: {exc}"
        finish(rollout, RolloutState.FAILED, failed)
        return
    with transaction.atomic():
        follow_up = _follow_rollback(
            rollout,
            applied_at,
            f"rollout #{rollout.pk} failed after its promotion: revision "
            f"{target.number} ({reference}) put back",
        )
        finish(
            rollout,
            RolloutState.ROLLED_BACK,
            f"{why}; revision {target.number} ({reference}) written instead "
            f"(rollout #{follow_up.pk})",
        )


def _follow_rollback(rollout: Rollout, applied_at: datetime, cause: str) -> Rollout:
    """The engine's rollback we asked for after `rollout`, as a rollout of its
    own (watched by the same driver)."""
    now = timezone.now()
    follow_up = Rollout.objects.create(
        service=rollout.service,
        kind=RolloutKind.ROLLBACK,
        state=RolloutState.WATCHING,
        change_cause=cause,
        started_at=now,
        applied_at=applied_at,
        lease_owner=rollout.lease_owner,
        lease_until=now + LEASE,
    )
    event(follow_up, "state", f"watching the engine rollback after #{rollout.pk}")
    return follow_up


# --- the end of a canary's hold ---------------------------------------------------


def rollout_release_hold(*, rollout: Rollout, owner: str, client: SwarmClient) -> bool:
    """Take the canary's hold off a rollout that ended while held, so that
    the live update policy is the declared one again (rollouts.control.canary:
    release_plan): the engine's rollback of the canary, followed as a rollout
    of its own, or the declared parallelism and delay written over what runs
    and recorded as ours (never drift). Once per rollout: claimed with its
    lease, then marked released.

    Returns whether this driver released it (False: not held, or another
    driver has it). Raises SwarmUnreachable (the release is tried again).
    """
    if not rollout.is_final or rollout.canary_state != canary.HOLDING:
        return False
    now = timezone.now()
    lapsed = Q(lease_until__lt=now) | Q(lease_until=None)
    claimed = (
        Rollout.objects.filter(
            pk=rollout.pk, state__in=FINAL_STATES, canary_state=canary.HOLDING
        )
        .filter(Q(lease_owner=owner) | lapsed)
        .update(lease_owner=owner, lease_until=now + WRITE_LEASE)
    )
    if not claimed:
        return False
    rollout.refresh_from_db()
    service = rollout.service
    try:
        said = _release(rollout, client)
    except ServiceNotFound:
        said = f"the hold went with the service: {service.name} no longer exists"
    except SwarmError as exc:
        # Tried again once the lease runs out; the rollout says why meanwhile.
        Rollout.objects.filter(pk=rollout.pk).update(lease_until=now + LEASE)
        log.warning("%s #%s: releasing the hold failed: %s", service, rollout.pk, exc)
        if isinstance(exc, SwarmUnreachable):
            raise
        return True
    canary.released(rollout, said)
    return True


# seconds: how long a hold with no rollout of ours is left alone when its
# service declares no progress deadline
ORPHAN_AFTER = 600.0


def release_orphaned_holds(*, client: SwarmClient, stack: str | None = None) -> int:
    """Take a canary's hold off services that no rollout of ours will end: the
    database was wiped or restored while a canary was held, so the hold (known
    by its value, CANARY_HOLD) runs with no rollout to promote or release it,
    and after a day the engine would go on with the rest of the update,
    unjudged. The declared parallelism and delay are written over what runs
    (the policy before the hold, rollouts.engine.sync) and recorded as ours.
    Services with an active rollout, or an ended one whose release is due
    (rollout_release_hold), are left to it; so is a hold younger than the
    service's progress deadline (by the engine's clock), which may be the
    rollout of a command line with a database of its own (the test tiers
    drive a stack that runs its own controller): its driver ends it by then.
    Returns how many were released. Raises SwarmUnreachable."""
    services = Service.objects.filter(missing=False)
    if stack:
        services = services.filter(stack=stack)
    released = 0
    engine_now: datetime | None = None
    for service in services:
        if not is_held(service.live_spec):
            continue
        pending = service.rollouts.filter(
            Q(state__in=ACTIVE_STATES)
            | Q(state__in=FINAL_STATES, canary_state=canary.HOLDING)
        )
        if pending.exists():
            continue
        engine_now = engine_now or client.engine_time()
        deadline = timedelta(seconds=service.progress_deadline or ORPHAN_AFTER)
        held_since = service.live_updated_at
        if held_since is not None and engine_now - held_since < deadline:
            continue
        try:
            write_update(client, service.name, canary.declared_policy(service))
            written = client.inspect(service.name).spec
        except SwarmUnreachable:
            raise
        except SwarmError as exc:
            log.warning("%s: releasing an orphaned hold failed: %s", service, exc)
            continue
        ours = with_policy_of(service.applied_spec or written, written)
        remember_applied(service, ours)
        log.warning(
            "%s: a canary's hold with no rollout of ours released: %s written",
            service,
            canary.declared_words(service),
        )
        released += 1
    return released


def _release(rollout: Rollout, client: SwarmClient) -> str:
    """Carry out canary.release_plan; what was done, in words ("" if nothing)."""
    service = rollout.service
    later = (
        Rollout.objects.filter(service=service, pk__gt=rollout.pk)
        .exclude(state=RolloutState.QUEUED)
        .order_by("pk")
        .first()
    )
    if later is not None:
        # Its write (or the rollback we asked for) is what runs now: ours to
        # undo no longer, and a second engine rollback would swap back.
        return ""
    live = client.inspect(service.name)
    plan = canary.release_plan(rollout, live)
    if plan == canary.NOTHING_HELD:
        return ""
    if plan == canary.ROLL_BACK_CANARY:
        applied_at = client.engine_time()
        write_rollback(client, service.name)
        with transaction.atomic():
            follow_up = _follow_rollback(
                rollout,
                applied_at,
                f"the canary of rollout #{rollout.pk} ended {rollout.state}",
            )
        return (
            f"hold released: the canary ended {rollout.state}, so the engine rolls "
            f"back to the spec before it ({service.image}:{rollout.baseline_version},"
            f" {canary.declared_words(service)}; rollout #{follow_up.pk})"
        )
    write_update(client, service.name, canary.declared_policy(service))
    written = _read_back(rollout, client)
    # Our write changed the update policy only: what we last applied takes it,
    # so that drift shows what others wrote and never our release.
    service.refresh_from_db()
    if written and service.applied_spec:
        remember_applied(service, with_policy_of(service.applied_spec, written))
    return (
        f"hold released: {canary.declared_words(service)} written over what runs "
        "(the write that ended the rollout kept the hold)"
    )
