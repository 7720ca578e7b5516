"""The `service.drift_seen` event: once per appearance of drift, not once per
sync.

The controller records what runs (rollouts.records.history.record_live) at
every sync and every step of a rollout; this receiver compares it with what we
last applied (rollouts.spec.drift, the same rule as the admin's and `rollout
status`'s drift). A drift seen for the first time opens a DriftSeen row and
queues its deliveries in the same transaction; the same drift seen again is no
news; once it is gone (adopted, re-applied, undone outside) the row is closed,
and the next drift is news again. A different outside change on top of an
open drift is a new appearance.
"""

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from rollouts.models import Service
from rollouts.records.selectors import rollout_active_for
from rollouts.spec.drift import describe_drift, service_drift
from webhooks.models import Delivery, DriftSeen, EventType
from webhooks.outbox import queue
from webhooks.payload import drift_body, drift_slack_body


def fingerprint(differences: list[Any]) -> str:
    return hashlib.sha256(json.dumps(differences, default=str).encode()).hexdigest()


def drift_notice(service: Service) -> list[Delivery]:
    """Open (and tell of) or close the service's DriftSeen after its live
    spec was recorded; the deliveries queued, none when it is no news."""
    found = service_drift(service)
    open_ = DriftSeen.objects.filter(service=service, cleared_at__isnull=True).first()
    if not found:
        if open_ is not None:
            DriftSeen.objects.filter(pk=open_.pk).update(cleared_at=timezone.now())
        return []
    differences = [list(row) for row in found["differences"]]
    print_ = fingerprint(differences)
    if open_ is not None and open_.fingerprint == print_:
        return []
    if rollout_active_for(service=service) is not None:
        return []  # a rollout of ours in flight: its verdict tells
    try:
        with transaction.atomic():
            if open_ is not None:
                DriftSeen.objects.filter(pk=open_.pk).update(cleared_at=timezone.now())
            seen = DriftSeen.objects.create(
                service=service,
                fingerprint=print_,
                differences=differences,
                description=describe_drift(found),
            )
            return queue(
                EventType.DRIFT_SEEN,
                service,
                standard=lambda: drift_body(seen, timezone.now()),
                slack=lambda: drift_slack_body(seen),
                drift=seen,
            )
    except IntegrityError:
        return []  # another process told of it first


@receiver(post_save, sender=Service, dispatch_uid="webhooks.drift")
def _on_service(sender: Any, instance: Service, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if fields is not None and "live_spec" not in fields:
        return
    drift_notice(instance)
