"""What a delivery says: which event, of which rollout, and how to find it."""

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from rollouts.models import Rollout, RolloutEvent, Service
from webhooks.models import DriftSeen, EventType


def links(rollout: Rollout) -> dict[str, str]:
    base = settings.WEBHOOK_PUBLIC_URL.rstrip("/")
    return {
        "api": base + reverse("rollouts:rollout-detail", args=[rollout.pk]),
        "admin": base + reverse("admin:rollouts_rollout_change", args=[rollout.pk]),
    }


def service_links(service: Service) -> dict[str, str]:
    base = settings.WEBHOOK_PUBLIC_URL.rstrip("/")
    return {
        "api": base + reverse("rollouts:service-detail", args=[service.pk]),
        "admin": base + reverse("admin:rollouts_service_change", args=[service.pk]),
    }


def _service(service: Service) -> dict[str, Any]:
    return {"id": service.pk, "name": service.name, "stack": service.stack}


def drift_body(drift: DriftSeen, at: datetime) -> dict[str, Any]:
    """Standard Webhooks' body of a `service.drift_seen` event: no rollout;
    `drift` lists each field as we applied it and as it runs."""
    return {
        "type": EventType.DRIFT_SEEN.value,
        "timestamp": at.isoformat(),
        "data": {
            "service": _service(drift.service),
            "rollout": None,
            "drift": [
                {"field": field, "applied": ours, "live": live}
                for field, ours, live in drift.differences
            ],
            "event": f"changed outside: {drift.description}",
            "links": service_links(drift.service),
        },
    }


def drift_slack_body(drift: DriftSeen) -> dict[str, str]:
    admin = service_links(drift.service)["admin"]
    return {
        "text": f"*{drift.service.name}* changed outside (drift): "
        f"{drift.description} (<{admin}|admin>)"
    }


def standard_body(event_type: str, event: RolloutEvent, at: datetime) -> dict[str, Any]:
    """Standard Webhooks' {"type", "timestamp", "data"}."""
    rollout = event.rollout
    service = rollout.service
    return {
        "type": event_type,
        "timestamp": at.isoformat(),
        "data": {
            "service": _service(service),
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
