"""When each rollout of the stack's mining roles started, was promoted and
ended: the marks the dashboard's hash-rate chart draws (mining.api.views).

A read of the database only, so the webui can serve it: the promotion is the
canary's own "promoted at ..." state event (rollouts.control.canary.promoted),
read here by its wording as webhooks.outbox does, never by importing the
controller's code.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Prefetch, Q

from rollouts.models import Rollout, RolloutEvent, RolloutKind

# The roles whose rollouts change the hash rate.
MINING_ROLES = ("worker", "rng", "hasher")
# rollouts.control.canary.promoted's wording.
PROMOTED_PREFIX = "promoted at "


@dataclass(frozen=True)
class RolloutMarks:
    """One rollout on the chart. Times are Unix seconds; `promoted` and
    `finished` are None until they happen. `version` is the tag it rolls out
    ("" for the engine's rollback, which goes back to the previous spec) and
    `baseline_version` the tag it replaces, when known."""

    id: int
    service: str
    kind: str
    state: str
    version: str
    baseline_version: str
    started: float
    promoted: float | None
    finished: float | None


def rollout_marks(
    *, since: datetime, stack: str | None = None, roles: tuple[str, ...] = MINING_ROLES
) -> list[RolloutMarks]:
    """The rollouts of `roles` in `stack` that ran at some moment after
    `since`, oldest first: still running, or finished after it. A rollout that
    never started (queued, or cancelled while queued) has nothing to mark."""
    promotions = RolloutEvent.objects.filter(
        kind="state", message__startswith=PROMOTED_PREFIX
    ).order_by("at", "id")
    rollouts = (
        Rollout.objects.filter(
            service__stack=stack or settings.STACK_NAME,
            service__short_name__in=roles,
            started_at__isnull=False,
        )
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since))
        .select_related("service", "revision")
        .prefetch_related(Prefetch("events", promotions, to_attr="promotions"))
        .order_by("started_at", "id")
    )
    return [_marks(rollout) for rollout in rollouts]


def _marks(rollout: Rollout) -> RolloutMarks:
    promotions = getattr(rollout, "promotions", [])
    version = ""
    if rollout.kind == RolloutKind.APPLY and rollout.revision is not None:
        version = str(rollout.revision.spec.get("tag") or "")
    return RolloutMarks(
        id=rollout.pk,
        service=rollout.service.short_name,
        kind=rollout.kind,
        state=rollout.state,
        version=version,
        baseline_version=rollout.baseline_version,
        started=(rollout.started_at or rollout.requested_at).timestamp(),
        promoted=promotions[0].at.timestamp() if promotions else None,
        finished=rollout.finished_at.timestamp() if rollout.finished_at else None,
    )
