"""The sender: signed POSTs to a real receiver on loopback, retried with
backoff and the same webhook-id, never a redirect followed, a hanging
receiver cut off at WEBHOOK_TIMEOUT, every attempt in the log (issue 15, §2)."""

import socket
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from rollouts.models import RolloutState
from rollouts.records import requests as services
from rollouts.records.history import finish
from webhooks.delivery import handle_one
from webhooks.models import Delivery, DeliveryState, Subscription

pytestmark = pytest.mark.django_db(transaction=True)


def release(worker) -> None:
    """A rollout queued, then completed: two deliveries."""
    rollout = services.service_change(
        service=worker, user=None, change_cause="CI build 42", tag="1.1"
    )
    finish(rollout, RolloutState.COMPLETED, "10 of 10 tasks running")


def make_due() -> None:
    Delivery.objects.update(next_attempt_at=timezone.now())


def test_the_receiver_gets_each_event_once_signed_and_in_order(receiver, worker):
    release(worker)

    call_command("webhooks", "deliver", "--once")

    assert [r["type"] for r in receiver.received] == [
        "rollout.queued",
        "rollout.completed",
    ]
    assert receiver.received[1]["data"]["rollout"]["state"] == "completed"
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}
    attempt = Delivery.objects.first().attempt_log.get()
    assert (attempt.status_code, attempt.answer) == (200, "ok")
    assert not handle_one()  # nothing is sent twice


def test_a_receiver_that_is_down_gets_every_event_later_with_the_same_id(
    receiver, worker, settings
):
    settings.WEBHOOK_BACKOFF = (5, 10)
    receiver.status = 503
    release(worker)
    call_command("webhooks", "deliver", "--once")
    first_ids = [h["webhook-id"] for h in receiver.headers]
    assert len(first_ids) == 1  # the rollout's next event waits for this one

    delivery = Delivery.objects.order_by("id").first()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 4 < wait <= 5
    assert not handle_one()  # not due yet

    receiver.status = 200
    make_due()
    call_command("webhooks", "deliver", "--once")

    assert [h["webhook-id"] for h in receiver.headers[1:2]] == first_ids
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}
    assert [a.status_code for a in delivery.attempt_log.all()] == [503, 200]


def test_a_receiver_that_is_not_listening_is_retried(subscription, worker):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subscription.url = f"http://127.0.0.1:{port}/hook"
    subscription.save()
    release(worker)

    assert handle_one()

    delivery = Delivery.objects.filter(attempts=1).get()
    assert delivery.state == DeliveryState.PENDING
    assert "ConnectionRefusedError" in delivery.attempt_log.get().error


def test_a_redirect_is_never_followed(receiver, worker):
    receiver.status = 302
    receiver.location = "http://127.0.0.1:9/elsewhere"
    release(worker)

    call_command("webhooks", "deliver", "--once")

    # To the subscription's URL only; the rollout's next event waits its turn.
    assert len(receiver.received) == 1
    assert list(Delivery.objects.order_by("id").values_list("attempts", flat=True)) == [
        1,
        0,
    ]
    assert set(Delivery.objects.values_list("state", flat=True)) == {"pending"}


def test_a_receiver_that_hangs_is_cut_off_at_the_timeout(
    subscription, worker, settings
):
    settings.WEBHOOK_TIMEOUT = 0.5
    with socket.socket() as hanging:  # accepts, never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen()
        subscription.url = f"http://127.0.0.1:{hanging.getsockname()[1]}/"
        subscription.save()
        release(worker)
        started = time.monotonic()

        assert handle_one()

        assert time.monotonic() - started < 3
    attempt = Delivery.objects.get(attempts=1).attempt_log.get()
    assert "Timeout" in attempt.error


def test_it_gives_up_after_the_retry_period(receiver, worker, settings):
    settings.WEBHOOK_RETRY_FOR = 60
    receiver.status = 500
    release(worker)
    Delivery.objects.update(created_at=timezone.now() - timedelta(seconds=58))

    call_command("webhooks", "deliver", "--once")

    assert set(Delivery.objects.values_list("state", flat=True)) == {"gave_up"}
    assert not handle_one()


def test_a_subscription_saved_with_a_bad_secret_is_a_failed_attempt_not_a_crash(
    receiver, subscription, worker
):
    other = Subscription.objects.create(name="other", url=receiver.url)
    Subscription.objects.filter(pk=other.pk).update(secret="notasecret")
    release(worker)

    call_command("webhooks", "deliver", "--once")

    broken = Delivery.objects.filter(subscription=other)
    assert set(broken.values_list("state", flat=True)) == {"pending"}
    first = broken.order_by("id").first()
    assert "ValueError: a secret is whsec_" in first.attempt_log.get().error
    fine = Delivery.objects.filter(subscription=subscription)
    assert set(fine.values_list("state", flat=True)) == {"delivered"}
    assert len(receiver.received) == 2  # the good subscription's, verified


def test_two_senders_never_hold_two_deliveries_of_one_subscription(
    subscription, worker, monkeypatch
):
    # Sender A picked the first delivery; sender B claimed the second one of
    # the same subscription just before A took the subscription's lock.
    from webhooks import delivery as module

    release(worker)
    first, second = Delivery.objects.order_by("id")
    lock = module.lock_subscription

    def other_sender_claims_first(subscription_id: int) -> None:
        Delivery.objects.filter(pk=second.pk).update(
            claimed_until=timezone.now() + timedelta(minutes=1)
        )
        lock(subscription_id)

    monkeypatch.setattr(module, "lock_subscription", other_sender_claims_first)

    assert module.claim_due() is None
    first.refresh_from_db()
    assert first.claimed_until is None


def test_a_rollouts_later_event_waits_for_its_retried_earlier_one(
    receiver, worker, settings
):
    # Reported by the new-user trial: `completed` arrived before `queued`.
    settings.WEBHOOK_BACKOFF = (5, 10)
    release(worker)
    queued, completed = Delivery.objects.order_by("id")
    receiver.status = 503
    call_command("webhooks", "deliver", "--once")  # queued fails, is retried
    receiver.status = 200
    Delivery.objects.filter(pk=completed.pk).update(next_attempt_at=timezone.now())

    assert not handle_one()  # completed waits for queued

    make_due()
    call_command("webhooks", "deliver", "--once")
    assert [r["type"] for r in receiver.received] == [
        "rollout.queued",  # answered 503
        "rollout.queued",
        "rollout.completed",
    ]
