"""`service.drift_seen`: told once per appearance of drift, not at every sync
that records what runs (issue 15, §2: the events list)."""

import json

import pytest

from rollouts.models import Service
from tests.rollouts.admin_support import active_rollout
from webhooks.models import Delivery, DriftSeen, EventType

pytestmark = pytest.mark.django_db


def spec(replicas: int = 10, image: str = "dockercoins:1.0") -> dict:
    return {
        "Name": "dockercoins_worker",
        "TaskTemplate": {"ContainerSpec": {"Image": image}},
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause"},
    }


def sync(service: Service, live: dict) -> None:
    """What the controller's sync does with the live spec (record_live)."""
    service.live_spec = live
    service.save(update_fields=["live_spec", "synced_at"])


@pytest.fixture
def applied(worker, subscription) -> Service:
    Service.objects.filter(pk=worker.pk).update(applied_spec=spec(), live_spec=spec())
    worker.refresh_from_db()
    return worker


def drift_deliveries() -> list[dict]:
    return [
        json.loads(d.body)
        for d in Delivery.objects.filter(event_type=EventType.DRIFT_SEEN).order_by("id")
    ]


def test_drift_is_told_once_however_many_syncs_see_it(applied):
    for _ in range(5):
        sync(applied, spec(replicas=4))

    [told] = drift_deliveries()
    assert told["type"] == "service.drift_seen"
    assert told["data"]["service"]["name"] == "dockercoins_worker"
    assert told["data"]["drift"] == [
        {"field": "replicas", "applied": "10", "live": "4"}
    ]
    assert told["data"]["links"]["admin"].endswith(
        f"/admin/rollouts/service/{applied.pk}/change/"
    )


def test_drift_that_went_away_and_came_back_is_told_again(applied):
    sync(applied, spec(replicas=4))
    sync(applied, spec())  # put back (re-applied, or undone outside)
    sync(applied, spec())
    sync(applied, spec(replicas=4))

    assert len(drift_deliveries()) == 2
    assert DriftSeen.objects.filter(cleared_at__isnull=True).count() == 1


def test_another_outside_change_on_top_is_news(applied):
    sync(applied, spec(replicas=4))
    sync(applied, spec(replicas=4, image="dockercoins:1.1"))

    assert [len(d["data"]["drift"]) for d in drift_deliveries()] == [1, 2]


def test_no_drift_is_told_while_our_own_rollout_writes(applied):
    active_rollout(applied)
    sync(applied, spec(replicas=4))

    assert drift_deliveries() == []


def test_a_subscription_may_leave_drift_out(applied, subscription):
    subscription.events = [EventType.COMPLETED]
    subscription.save()
    sync(applied, spec(replicas=4))

    assert drift_deliveries() == []
    assert DriftSeen.objects.count() == 1
