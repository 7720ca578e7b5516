"""A receiver that hangs, or answers a byte a second, never holds the sender:
each attempt ends at WEBHOOK_TIMEOUT in all (not per read), is logged as timed
out and retried, and the other subscriptions get their events meanwhile
(issue 15, §2: "a receiver that is slow or hangs never stalls the controller")."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from deploy.polling import wait_until
from rollouts.models import RolloutState
from rollouts.records import requests as services
from rollouts.records.history import finish
from webhooks import sender
from webhooks.delivery import Dispatcher
from webhooks.models import Delivery, DeliveryState, Subscription

pytestmark = pytest.mark.django_db(transaction=True)


class SlowReceiver:
    """A loopback server that accepts and then hangs (`dribble` False) or
    sends an HTTP answer one byte a second (`dribble` True), never finishing."""

    def __init__(self, *, dribble: bool) -> None:
        self.dribble = dribble
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stopped = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._hold, args=(client,), daemon=True).start()

    def _hold(self, client: socket.socket) -> None:
        with client:
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            for byte in answer * 100:
                if self.stopped.wait(1.0):
                    return
                if self.dribble:
                    try:
                        client.sendall(bytes([byte]))
                    except OSError:
                        return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture(params=["hangs", "dribbles"])
def slow(request, db) -> Iterator[tuple[SlowReceiver, Subscription]]:
    found = SlowReceiver(dribble=request.param == "dribbles")
    subscription = Subscription.objects.create(name="slow", url=found.url)
    yield found, subscription
    found.stop()


def release(worker) -> None:
    rollout = services.service_change(
        service=worker, user=None, change_cause="CI build 42", tag="1.1"
    )
    finish(rollout, RolloutState.COMPLETED, "10 of 10 tasks running")


def test_one_attempt_ends_at_the_deadline_whatever_the_receiver_does(slow):
    receiver, _ = slow
    started = time.monotonic()

    with pytest.raises(sender.Timeout, match="within 1.5 s"):
        sender.post(receiver.url, b"{}", {}, timeout=1.5)

    assert 1.4 < time.monotonic() - started < 2.5


def test_a_slow_receiver_delays_only_its_own_deliveries(
    slow, receiver, worker, settings, caplog
):
    settings.WEBHOOK_TIMEOUT = 2.0
    settings.WEBHOOK_BACKOFF = (0.5,)
    _, slow_subscription = slow
    release(worker)  # two events, for each subscription
    dispatcher = Dispatcher(workers=4)
    started = time.monotonic()

    def step_until(condition):
        def stepped():
            dispatcher.step()
            return condition()

        return wait_until(stepped, timeout=15, interval=0.05, message="deliveries")

    try:
        step_until(lambda: len(receiver.received) == 2)
        prompt = time.monotonic() - started
        in_flight = Delivery.objects.filter(
            subscription=slow_subscription, claimed_until__isnull=False
        )
        assert in_flight.count() == 1  # one at a time per subscription
        first = Delivery.objects.filter(subscription=slow_subscription).earliest("id")
        step_until(lambda: first.attempt_log.count() >= 2)
    finally:
        dispatcher.close()

    print(
        f"other subscription served in {prompt:.2f} s; the slow one cut after "
        f"{first.attempt_log.first().seconds:.2f} s"
    )
    assert prompt < 1.0, f"the other subscription waited {prompt:.1f} s"
    assert [r["type"] for r in receiver.received] == [
        "rollout.queued",
        "rollout.completed",
    ]
    timed_out = first.attempt_log.first()
    assert timed_out.error.startswith("Timeout: timed out")
    assert 1.9 < timed_out.seconds < 3.0
    first.refresh_from_db()
    assert first.state == DeliveryState.PENDING  # retried, and again later
    assert "timed out: no whole answer within 2 s" in caplog.text
