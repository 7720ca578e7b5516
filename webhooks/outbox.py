"""Deliveries queued with the rollout event they tell of, in its transaction.

rollouts.history.event records every step of a rollout as a RolloutEvent row
(inside a transaction); this receiver adds one Delivery per subscription that
wants it, in that same transaction: if the event is rolled back, so are its
deliveries, and an event is never without them.
"""

import uuid
from collections.abc import Callable
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from rollouts.models import RolloutEvent, RolloutState, Service
from webhooks.models import Delivery, EventType, Subscription
from webhooks.payload import render, slack_body, standard_body

NODE_EVENT = "node"  # rollouts.engine.nodes.NODE_EVENT
# rollouts.control.canary's wording: the hold an operator must decide, and
# the promotion (by the analysis or by `rollout promote`).
HOLDING, PROMOTED = "holding", "promoted at "

_FINAL = {
    RolloutState.COMPLETED: EventType.COMPLETED,
    RolloutState.FAILED: EventType.FAILED,
    RolloutState.ROLLED_BACK: EventType.ROLLED_BACK,
    RolloutState.SUPERSEDED: EventType.SUPERSEDED,
    RolloutState.ABORTED: EventType.ABORTED,
    RolloutState.CANCELLED: EventType.ABORTED,
    RolloutState.PAUSED: EventType.FAILED,
}


def event_type_of(event: RolloutEvent) -> str | None:
    """The webhook event a RolloutEvent is, or None (progress, task, info...).

    State events are told apart by the rollout's state when recorded
    (rollouts.history.finish sets the final state first) and by how
    rollouts.services and rollouts.driver word them.
    """
    if event.kind == NODE_EVENT:
        return EventType.NODE_LOST
    if event.kind == "analysis" and event.message.startswith(HOLDING):
        # Every inconclusive measurement says "holding" again: only the first
        # is news to a subscriber.
        earlier = event.rollout.events.filter(
            kind="analysis", message__startswith=HOLDING, pk__lt=event.pk
        )
        return None if earlier.exists() else EventType.HELD
    if event.kind != "state":
        return None
    state = event.rollout.state
    if state == RolloutState.QUEUED and event.message.startswith("queued by "):
        return EventType.QUEUED
    if event.message.startswith("applying (claimed"):
        return EventType.STARTED
    if event.message.startswith(PROMOTED):
        return EventType.PROMOTED
    final = _FINAL.get(RolloutState(state)) if state in _FINAL else None
    if final is None or not event.message.startswith(state):
        return None
    if event.rollout.reason.startswith("progress deadline"):
        return EventType.DEADLINE_PASSED
    return final


def queue_deliveries(event: RolloutEvent) -> list[Delivery]:
    event_type = event_type_of(event)
    if event_type is None:
        return []
    now = timezone.now()
    return queue(
        event_type,
        event.rollout.service,
        standard=lambda: standard_body(event_type, event, now),
        slack=lambda: slack_body(event_type, event),
        source=event,
        rollout=event.rollout,
    )


def queue(
    event_type: str,
    service: Service,
    *,
    standard: Callable[[], dict[str, Any]],
    slack: Callable[[], dict[str, Any]],
    **about: Any,
) -> list[Delivery]:
    """One Delivery of `event_type` per active subscription that wants it for
    `service`, its body rendered once for each kind; `about` names what it
    tells of (Delivery.source and .rollout, or .drift)."""
    wanting = [
        s
        for s in Subscription.objects.filter(active=True)
        if s.wants(event_type, service)
    ]
    bodies: dict[bool, str] = {}
    made = []
    for subscription in wanting:
        if subscription.slack not in bodies:
            made_body = slack() if subscription.slack else standard()
            bodies[subscription.slack] = render(made_body)
        made.append(
            Delivery.objects.create(
                subscription=subscription,
                event_type=event_type,
                message_id=f"msg_{uuid.uuid4().hex}",
                body=bodies[subscription.slack],
                next_attempt_at=timezone.now(),
                **about,
            )
        )
    return made


@receiver(post_save, sender=RolloutEvent, dispatch_uid="webhooks.outbox")
def _on_event(
    sender: Any, instance: RolloutEvent, created: bool, **kwargs: Any
) -> None:
    if created:
        queue_deliveries(instance)
