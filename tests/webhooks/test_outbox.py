"""An event a subscription wants becomes one delivery, in the transaction that
records it: never lost, never made twice (issue 15, §2)."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from rollouts.models import RolloutState
from rollouts.records import requests as services
from rollouts.records.history import event, finish
from tests.rollouts.admin_support import make_service
from webhooks.models import Delivery, EventType, Subscription

pytestmark = pytest.mark.django_db


def change(worker, tag="1.1"):
    return services.service_change(
        service=worker, user=None, change_cause="CI build 42", tag=tag
    )


def test_a_queued_rollout_makes_one_delivery_with_service_state_and_links(
    subscription, worker
):
    rollout = change(worker)

    delivery = Delivery.objects.get()
    body = json.loads(delivery.body)
    assert delivery.event_type == body["type"] == "rollout.queued"
    assert delivery.message_id.startswith("msg_")
    data = body["data"]
    assert data["service"]["name"] == "dockercoins_worker"
    assert data["rollout"] == {
        "id": rollout.pk,
        "kind": "apply",
        "state": "queued",
        "reason": "",
        "revision": 1,
        "change_cause": "CI build 42",
        "requested_by": None,
    }
    assert data["links"]["api"].endswith(f"/api/rollouts/rollouts/{rollout.pk}/")
    assert data["links"]["admin"].endswith(f"/rollouts/rollout/{rollout.pk}/change/")


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        (RolloutState.COMPLETED, "10 of 10 tasks running", EventType.COMPLETED),
        (RolloutState.ROLLED_BACK, "the engine rolled back", EventType.ROLLED_BACK),
        (RolloutState.FAILED, "nothing runs", EventType.FAILED),
        (RolloutState.SUPERSEDED, "an outside change", EventType.SUPERSEDED),
        (
            RolloutState.FAILED,
            "progress deadline of 10m passed",
            EventType.DEADLINE_PASSED,
        ),
    ],
)
def test_each_end_is_its_own_event(subscription, worker, state, reason, expected):
    rollout = change(worker)
    finish(rollout, state, reason)
    finish(rollout, state, reason)  # a second verdict changes nothing

    types = list(Delivery.objects.order_by("id").values_list("event_type", flat=True))
    assert types == [EventType.QUEUED, expected]
    body = json.loads(Delivery.objects.order_by("id").last().body)
    assert body["data"]["rollout"]["state"] == state
    assert body["data"]["rollout"]["reason"] == reason


def test_started_aborted_and_node_lost_are_events(subscription, worker):
    rollout = change(worker)
    event(rollout, "state", "applying (claimed by controller-1)")
    event(rollout, "node", "node node-1 lost: 2 tasks moved")
    event(rollout, "info", "not an event anyone subscribes to")
    services.rollout_abort(service=worker, user=None, cause="wrong tag")

    types = list(Delivery.objects.order_by("id").values_list("event_type", flat=True))
    assert types == [
        EventType.QUEUED,
        EventType.STARTED,
        EventType.NODE_LOST,
        EventType.ABORTED,
    ]


def test_a_subscription_gets_only_the_events_services_and_stacks_it_chose(worker):
    rng = make_service("rng")
    shop = make_service("web", name="shop_web", stack="shop")
    Subscription.objects.create(
        name="ends", url="http://127.0.0.1:9/", events=[EventType.COMPLETED]
    )
    only_rng = Subscription.objects.create(name="rng", url="http://127.0.0.1:9/")
    only_rng.services.set([rng])
    Subscription.objects.create(name="shop", url="http://127.0.0.1:9/", stacks="shop")
    Subscription.objects.create(name="off", url="http://127.0.0.1:9/", active=False)

    for service in (worker, rng, shop):
        finish(
            services.service_change(
                service=service, user=None, change_cause="x", replicas=3
            ),
            RolloutState.COMPLETED,
            "done",
        )

    got = {
        s.name: sorted(
            f"{d.rollout.service.short_name} {d.event_type}" for d in s.deliveries.all()
        )
        for s in Subscription.objects.all()
    }
    assert got == {
        "ends": [
            "rng rollout.completed",
            "web rollout.completed",
            "worker rollout.completed",
        ],
        "rng": ["rng rollout.completed", "rng rollout.queued"],
        "shop": ["web rollout.completed", "web rollout.queued"],
        "off": [],
    }


def test_an_event_rolled_back_takes_its_deliveries_with_it(subscription, worker):
    with pytest.raises(RuntimeError), transaction.atomic():
        change(worker)
        assert Delivery.objects.count() == 1
        raise RuntimeError("the transaction fails after the event")
    assert not Delivery.objects.exists()


def test_a_slack_subscription_gets_one_line_of_text(subscription, worker):
    subscription.slack = True
    subscription.save()
    rollout = change(worker)

    body = json.loads(Delivery.objects.get().body)
    assert list(body) == ["text"]
    assert body["text"].startswith(f"*dockercoins_worker* rollout #{rollout.pk} queued")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.test/hook", "http:// or https://"),
        ("https://user:pass@example.test/hook", "no credentials"),
        ("https://token@example.test/hook", "no credentials"),
        ("https:///hook", "names a host"),
        ("https://example.test:99999/", "not a URL"),
        ("https://example.test/#x", "fragment"),
    ],
)
def test_a_bad_target_is_refused_when_saved(url, words):
    with pytest.raises(ValidationError, match=words):
        Subscription(name="x", url=url).full_clean()


def test_a_canary_hold_is_one_event_and_its_promotion_another(subscription, worker):
    rollout = change(worker)
    event(rollout, "state", "applying (claimed by controller-1)")
    event(rollout, "analysis", "inconclusive: 3 samples, 5 wanted")
    for _ in range(3):  # every inconclusive measurement says it again
        event(rollout, "analysis", "holding: the analysis is inconclusive (…)")
    event(rollout, "state", "promoted at 06:58:01: promoted by alice")

    types = list(Delivery.objects.order_by("id").values_list("event_type", flat=True))
    assert types == [
        EventType.QUEUED,
        EventType.STARTED,
        EventType.HELD,
        EventType.PROMOTED,
    ]
