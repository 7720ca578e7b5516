"""One unit of the sender's work: claim a due delivery, send it, record it.

Safe with several senders: a delivery is claimed with a conditional update
(healthchecks' way), and a claim lapses after CLAIM seconds, so a sender that
died mid-send is replaced; the receiver may then see the same webhook-id twice
and drops the repeat (Standard Webhooks).
"""

import time
from collections.abc import Callable
from datetime import timedelta

import requests
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from webhooks import sender
from webhooks.models import Attempt, Delivery, DeliveryState, Subscription
from webhooks.signing import headers

# Seconds before retry n (1-based); the last repeats until WEBHOOK_RETRY_FOR.
BACKOFF = (5, 10, 30, 60, 120, 300, 600, 1800, 3600)
CLAIM = 60.0  # seconds a sender holds a delivery it is sending

Post = Callable[[Subscription, str, dict[str, str], float], sender.Answer]


def backoff(attempts: int) -> float:
    return float(BACKOFF[min(attempts, len(BACKOFF)) - 1])


def claim_due() -> Delivery | None:
    """A pending delivery whose time came, claimed for this sender; None when
    there is none (or another sender took it first: ask again)."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at", "id")
        .select_related("subscription")
        .first()
    )
    if due is None:
        return None
    taken = Delivery.objects.filter(pk=due.pk, claimed_until=due.claimed_until).update(
        claimed_until=now + timedelta(seconds=CLAIM)
    )
    return due if taken else None


def send_one(delivery: Delivery, post: Post = sender.post) -> Attempt:
    """Send `delivery` once, record the attempt, and schedule what is next."""
    subscription = delivery.subscription
    timestamp = int(time.time())
    signed = headers(
        subscription.secret, delivery.message_id, timestamp, delivery.body.encode()
    )
    started = time.monotonic()
    attempt = Attempt(delivery=delivery)
    try:
        answer = post(subscription, delivery.body, signed, settings.WEBHOOK_TIMEOUT)
        attempt.status_code = answer.status_code
        attempt.answer = answer.text[:500]
    except (requests.RequestException, ValueError) as error:
        attempt.error = f"{type(error).__name__}: {error}"[:300]
    attempt.seconds = round(time.monotonic() - started, 3)
    attempt.save()
    _after(
        delivery,
        ok=attempt.status_code is not None and 200 <= attempt.status_code < 300,
    )
    return attempt


def _after(delivery: Delivery, *, ok: bool) -> None:
    now = timezone.now()
    delivery.attempts += 1
    delivery.claimed_until = None
    if ok:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, now
    else:
        retry_at = now + timedelta(seconds=backoff(delivery.attempts))
        limit = delivery.created_at + timedelta(seconds=settings.WEBHOOK_RETRY_FOR)
        if retry_at > limit:
            delivery.state = DeliveryState.GAVE_UP
        delivery.next_attempt_at = retry_at
    delivery.save(
        update_fields=[
            "attempts",
            "claimed_until",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )


def handle_one(post: Post = sender.post) -> bool:
    """Send one due delivery; False when none is due (the loop sleeps)."""
    delivery = claim_due()
    if delivery is None:
        return False
    send_one(delivery, post)
    return True
