"""Writing down what happened: events, revisions, live state, final verdicts."""

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from rollouts.models import (
    ACTIVE_STATES,
    KnownImage,
    Revision,
    Rollout,
    RolloutEvent,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.spec.specs import (
    desired_from_spec,
    group_tasks,
    meant_spec,
    name_task_ids,
    task_name,
    unheld,
)

if TYPE_CHECKING:  # the types only: records/ never imports the engine at run time
    from rollouts.engine.objects import SwarmService, Task

log = logging.getLogger("rollouts")

LIVE_FIELDS = [
    "swarm_id",
    "live_image",
    "live_mode",
    "live_running",
    "live_desired",
    "live_update_state",
    "live_update_message",
    "live_tasks",
    "live_spec",
    "live_updated_at",
    "applied_spec",
    "synced_at",
    "missing",
]


def event(rollout: Rollout, kind: str, message: str) -> RolloutEvent:
    """Record one step of a rollout; each is also one log line.

    In a transaction of its own when the caller has none: what other apps
    write when an event is saved (webhooks' outbox, on post_save) is then
    committed with it or not at all.
    """
    log.info("%s #%s %s: %s", rollout.service.name, rollout.pk, kind, message)
    with transaction.atomic():
        return RolloutEvent.objects.create(rollout=rollout, kind=kind, message=message)


def revision_create(service: Service, user: User | None, change_cause: str) -> Revision:
    last = service.revisions.order_by("-number").values_list("number", flat=True)
    known = KnownImage.objects.filter(reference=service.image_ref).first()
    return Revision.objects.create(
        service=service,
        number=(last.first() or 0) + 1,
        spec=service.desired_spec(),
        image_id=known.image_id if known else "",
        image_digest=known.digest if known else "",
        change_cause=change_cause[:500],
        created_by=user,
    )


def record_live(
    service: Service,
    svc: "SwarmService",
    tasks: list["Task"],
    nodes: dict[str, str],
    now: datetime,
) -> None:
    """Store what the engine says about `service` now (only the live_* fields, so
    an operator's concurrent edit of the desired fields is never overwritten).
    Specs are stored as meant (rollouts.engine.objects.meant_spec): names, not
    the ids a re-deploy changes."""
    spec = svc.meant_spec
    update = svc.update
    service.swarm_id = svc.id
    service.live_image = svc.image
    service.live_mode = svc.mode
    service.live_running = svc.running_tasks
    service.live_desired = svc.desired_tasks or 0
    service.live_update_state = update.state if update else ""
    # Stored with tasks named by slot, as every face shows it (the status,
    # the admin, the API, the paused-update refusal): never a raw task id.
    labels = {t.id: f"{task_name(svc.name, t, nodes)} ({t.id[:12]})" for t in tasks}
    message = update.message if update else ""
    service.live_update_message = name_task_ids(message, labels, svc.name)
    service.live_tasks = group_tasks(tasks, nodes)
    service.live_spec = spec
    service.live_updated_at = svc.updated_at
    if not service.applied_spec:
        # No record of a write of ours (imported, or from before we kept one):
        # what runs now is the baseline drift is measured from.
        service.applied_spec = spec
    else:
        # One stored before specs were kept as meant: ids of this deploy
        # still resolve to names.
        service.applied_spec = meant_spec(service.applied_spec, svc.network_names)
    service.synced_at = now
    service.missing = False
    service.save(update_fields=LIVE_FIELDS)


def finish(rollout: Rollout, state: str, reason: str) -> None:
    """Give the rollout its final state and the reason, in one transaction.

    After the engine rolled back (automatically, or because we asked), the
    desired fields are set to what the swarm runs again, so that the next change
    (a scale, say) does not quietly re-send the spec that was rolled back.
    """
    with transaction.atomic():
        now = timezone.now()
        # Conditional: an operator's abort may have ended it meanwhile, and the
        # first verdict stands.
        ended = Rollout.objects.filter(pk=rollout.pk, state__in=ACTIVE_STATES).update(
            state=state, reason=reason, finished_at=now, lease_until=None
        )
        if not ended:
            rollout.refresh_from_db()
            return
        rollout.state, rollout.reason = state, reason
        rollout.finished_at, rollout.lease_until = now, None
        event(rollout, "state", f"{state}: {reason}" if reason else state)
        rolled_back = state == RolloutState.ROLLED_BACK or (
            rollout.kind == RolloutKind.ROLLBACK and state == RolloutState.COMPLETED
        )
        if rolled_back:
            _adopt_live(rollout)


def _adopt_live(rollout: Rollout) -> None:
    service = Service.objects.get(pk=rollout.service_id)
    if not service.live_spec:
        return
    # Right after a canary's analysis failed, the live spec recorded is still
    # the held one: its hold is never adopted as the service's policy.
    live = unheld(desired_from_spec(service.live_spec), service.desired_spec())
    remember_applied(service, service.live_spec)
    changed = {f: v for f, v in live.items() if getattr(service, f) != v}
    for field, value in changed.items():
        setattr(service, field, value)
    if changed:
        service.save(update_fields=list(changed))
        event(
            rollout,
            "info",
            f"desired spec set back to what the swarm runs ({service.image_ref})",
        )
    if rollout.kind == RolloutKind.ROLLBACK:
        cause = rollout.change_cause or "engine rollback"
        rollout.revision = revision_create(
            service, rollout.requested_by, f"rolled back: {cause}"
        )
        rollout.save(update_fields=["revision"])


def remember_applied(service: Service, spec: dict) -> None:
    """Record `spec` (an engine Spec) as what we last applied: drift is measured
    from it (rollouts.spec.drift)."""
    if not spec:
        return
    service.applied_spec = spec
    service.applied_spec_at = timezone.now()
    Service.objects.filter(pk=service.pk).update(
        applied_spec=spec, applied_spec_at=service.applied_spec_at
    )
