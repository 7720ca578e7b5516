"""What a delivery says: which event, of which rollout, and how to find it."""

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from rollouts.models import Rollout, RolloutEvent
from webhooks.models import EventType


def links(rollout: Rollout) -> dict[str, str]:
    base = settings.WEBHOOK_PUBLIC_URL.rstrip("/")
    return {
        "api": base + reverse("rollouts:rollout-detail", args=[rollout.pk]),
        "admin": base + reverse("admin:rollouts_rollout_change", args=[rollout.pk]),
    }


def standard_body(event_type: str, event: RolloutEvent, at: datetime) -> dict[str, Any]:
    """Standard Webhooks' {"type", "timestamp", "data"}."""
    rollout = event.rollout
    service = rollout.service
    return {
        "type": event_type,
        "timestamp": at.isoformat(),
        "data": {
            "service": {"id": service.pk, "name": service.name, "stack": service.stack},
            "rollout": {
                "id": rollout.pk,
                "kind": rollout.kind,
                "state": rollout.state,
                "reason": rollout.reason,
                "revision": rollout.revision.number if rollout.revision else None,
                "change_cause": rollout.change_cause,
                "requested_by": str(rollout.requested_by or "") or None,
            },
            "event": event.message,
            "links": links(rollout),
        },
    }


def slack_body(event_type: str, event: RolloutEvent) -> dict[str, str]:
    """A Slack/Mattermost incoming-webhook body: one line of mrkdwn."""
    rollout = event.rollout
    label = EventType(event_type).label
    return {
        "text": f"*{rollout.service.name}* rollout #{rollout.pk} {label}: "
        f"{event.message} (<{links(rollout)['admin']}|admin>)"
    }


def render(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)
