"""The sender's work: claim a due delivery, send it, record it, back off.

Safe with several senders: a delivery is claimed with a conditional update
(healthchecks' way) under its subscription's row lock (so two senders never
hold two deliveries of one subscription at once), and a claim lapses after
the attempt's deadline and a margin, so a sender that died mid-send is
replaced; the receiver may then see the same webhook-id twice and drops the
repeat (Standard Webhooks).

A slow receiver holds only its own subscription: `Dispatcher` sends on a few
threads, at most one delivery in flight per subscription, and each attempt
ends at WEBHOOK_TIMEOUT whatever the receiver does (webhooks.sender). The
threads only talk HTTP; every database read and write stays on the caller's
thread.
"""

import logging
import time
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from webhooks import sender
from webhooks.models import Attempt, Delivery, DeliveryState, Subscription
from webhooks.signing import headers

log = logging.getLogger("webhooks")

CLAIM_MARGIN = 30.0  # seconds a claim outlives the attempt's deadline

Post = Callable[[str, bytes, dict[str, str], float], sender.Answer]


@dataclass(frozen=True)
class Outcome:
    """One attempt as the log keeps it."""

    status_code: int | None
    answer: str
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (1-based);
    WEBHOOK_BACKOFF's last step repeats."""
    steps = settings.WEBHOOK_BACKOFF
    return float(steps[min(attempts, len(steps)) - 1])


def claim_due(busy: Collection[int] = ()) -> Delivery | None:
    """A pending delivery whose time came, claimed for this sender; None when
    there is none. Skips subscriptions in `busy` (this sender's in flight) and
    those with a claimed delivery (another sender's in flight): one delivery
    per subscription at a time."""
    now = timezone.now()
    in_flight = Delivery.objects.filter(claimed_until__gt=now).values("subscription_id")
    # One rollout's events reach a receiver in the order they happened: a
    # delivery waits while an earlier one of the same rollout to the same
    # subscription is still pending (retried); other rollouts go on.
    earlier = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        rollout_id=OuterRef("rollout_id"),
        state=DeliveryState.PENDING,
        id__lt=OuterRef("id"),
    )
    due = (
        Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .exclude(subscription_id__in=list(busy))
        .exclude(subscription_id__in=in_flight)
        .exclude(Q(rollout__isnull=False) & Exists(earlier))
        .order_by("next_attempt_at", "id")
        .select_related("subscription")
        .first()
    )
    if due is None:
        return None
    claim = settings.WEBHOOK_TIMEOUT + CLAIM_MARGIN
    with transaction.atomic():
        # Two senders may each have picked a different delivery of the same
        # subscription: the subscription's row lock orders their claims, and
        # the second sees the first's claim and leaves its own pick.
        lock_subscription(due.subscription_id)
        other = Delivery.objects.filter(
            subscription_id=due.subscription_id, claimed_until__gt=now
        ).exclude(pk=due.pk)
        if other.exists():
            return None
        taken = Delivery.objects.filter(
            pk=due.pk, claimed_until=due.claimed_until
        ).update(claimed_until=now + timedelta(seconds=claim))
    return due if taken else None


def lock_subscription(subscription_id: int) -> None:
    """Lock one subscription's row until the transaction ends (PostgreSQL's
    SELECT ... FOR UPDATE; SQLite serialises writers by itself)."""
    Subscription.objects.select_for_update().filter(pk=subscription_id).exists()


def attempt(delivery: Delivery, post: Post = sender.post) -> Outcome:
    """POST `delivery` once, signed now. No database access: it runs on the
    dispatcher's threads (the subscription was loaded with the claim)."""
    subscription = delivery.subscription
    body = delivery.body.encode()
    started = time.monotonic()
    try:
        # A secret saved before it was checked raises ValueError here: a
        # failed attempt in the log, never a crash of the loop.
        signed = headers(
            subscription.secret, delivery.message_id, int(time.time()), body
        )
        answer = post(subscription.url, body, signed, settings.WEBHOOK_TIMEOUT)
    except (sender.SendError, ValueError) as error:
        kind = type(error).__name__
        return Outcome(None, "", f"{kind}: {error}"[:300], _since(started))
    return Outcome(answer.status_code, answer.text[:500], "", _since(started))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def record(delivery: Delivery, outcome: Outcome) -> Attempt:
    """Log the attempt and schedule what is next: delivered, a retry after
    the backoff, or given up past WEBHOOK_RETRY_FOR."""
    logged = Attempt.objects.create(
        delivery=delivery,
        status_code=outcome.status_code,
        answer=outcome.answer,
        error=outcome.error,
        seconds=outcome.seconds,
    )
    now = timezone.now()
    delivery.attempts += 1
    delivery.claimed_until = None
    if outcome.ok:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, now
    else:
        retry_at = now + timedelta(seconds=backoff(delivery.attempts))
        limit = delivery.created_at + timedelta(seconds=settings.WEBHOOK_RETRY_FOR)
        if retry_at > limit:
            delivery.state = DeliveryState.GAVE_UP
        delivery.next_attempt_at = retry_at
        log.warning(
            "webhooks: %s %s to %s failed (%s, %.1f s); %s",
            delivery.event_type,
            delivery.message_id,
            delivery.subscription.name,
            outcome.error or f"HTTP {outcome.status_code}",
            outcome.seconds,
            "given up"
            if delivery.state == DeliveryState.GAVE_UP
            else f"retry at {retry_at:%H:%M:%S}",
        )
    delivery.save(
        update_fields=[
            "attempts",
            "claimed_until",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    return logged


def send_one(delivery: Delivery, post: Post = sender.post) -> Attempt:
    """Send `delivery` once on this thread and record it."""
    return record(delivery, attempt(delivery, post))


def handle_one(post: Post = sender.post) -> bool:
    """Send one due delivery on this thread; False when none is due."""
    delivery = claim_due()
    if delivery is None:
        return False
    send_one(delivery, post)
    return True


class Dispatcher:
    """Sends due deliveries on `workers` threads, one per subscription at a
    time, so a receiver that hangs delays only its own deliveries."""

    def __init__(self, workers: int, post: Post = sender.post) -> None:
        self.workers, self.post = workers, post
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="webhook")
        # subscription id -> (delivery, its attempt running on the pool)
        self.in_flight: dict[int, tuple[Delivery, Future[Outcome]]] = {}

    def step(self) -> bool:
        """Record the attempts that ended, start due ones while a thread is
        free; False when nothing ended or started (the caller may wait)."""
        ended = self.reap()
        started = 0
        while len(self.in_flight) < self.workers:
            delivery = claim_due(busy=self.in_flight)
            if delivery is None:
                break
            future = self.pool.submit(attempt, delivery, self.post)
            self.in_flight[delivery.subscription_id] = (delivery, future)
            started += 1
        return bool(ended or started)

    def reap(self) -> int:
        done = [k for k, (_, f) in self.in_flight.items() if f.done()]
        for key in done:
            delivery, future = self.in_flight.pop(key)
            record(delivery, future.result())
        return len(done)

    def wait(self, seconds: float) -> None:
        """Until an attempt ends, or `seconds` pass."""
        futures = [f for _, f in self.in_flight.values()]
        if futures:
            wait(futures, timeout=seconds, return_when=FIRST_COMPLETED)
        else:
            time.sleep(seconds)

    def drain(self) -> None:
        """Send everything due now and wait for each attempt (`--once`)."""
        while self.step() or self.in_flight:
            if self.in_flight:
                self.wait(1.0)

    def close(self) -> None:
        """Wait for the attempts in flight (each ends by its deadline) and
        record them, so a stop leaves no claim behind."""
        for _, future in self.in_flight.values():
            future.exception()  # blocks until it ended
        self.reap()
        self.pool.shutdown()
