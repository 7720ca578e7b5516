"""The read-only REST API: services, revisions, rollouts; staff only."""

import pytest
from django.urls import reverse

from rollouts.models import Rollout
from tests.rollouts.admin_support import (
    active_rollout,
    make_service,
    make_staff,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded_worker():
    return make_service()


@pytest.fixture
def api(client, django_user_model):
    client.force_login(make_staff(django_user_model, "viewer", can_apply=False))
    return client


def test_services_list_shows_desired_live_and_the_active_rollout(api, recorded_worker):
    rollout = active_rollout(recorded_worker, tasks_done=2, tasks_total=10)
    make_service("rng", replicas=None, mode="global", live_tasks=[])

    data = api.get(reverse("rollouts:service-list")).json()

    assert [s["name"] for s in data] == ["dockercoins_rng", "dockercoins_worker"]
    first = data[1]
    assert first["desired"]["tag"] == "1.0"
    assert first["desired"]["update_monitor"] == 5.0
    assert first["live"]["update_state"] == "rollback_completed"
    assert first["live"]["running"] == 10
    assert first["active_rollout"]["id"] == rollout.pk
    assert first["active_rollout"]["progress"] == {"done": 2, "total": 10}
    assert data[0]["active_rollout"] is None
    assert "tasks" not in first


@pytest.mark.parametrize("key", ["pk", "dockercoins_worker", "worker"])
def test_service_detail_has_the_task_table(api, recorded_worker, key):
    key = str(recorded_worker.pk) if key == "pk" else key
    data = api.get(reverse("rollouts:service-detail", args=[key])).json()

    slot3 = next(g for g in data["tasks"] if g["slot"] == "3")
    states = [t["state"] for t in slot3["tasks"]]
    assert states == ["running", "failed", "failed", "failed"]
    assert slot3["tasks"][1]["image"] == "dockercoins:bugged"
    assert slot3["tasks"][1]["error"] == "task: non-zero exit (1)"


def test_service_revisions_newest_first(api, recorded_worker, admin_user):
    spec = recorded_worker.desired_spec()
    recorded_worker.revisions.create(number=1, spec=spec, change_cause="first")
    recorded_worker.revisions.create(
        number=2,
        spec={**spec, "tag": "1.1"},
        change_cause="1.1",
        created_by=admin_user,
    )
    data = api.get(reverse("rollouts:service-revisions", args=["worker"])).json()
    assert [r["number"] for r in data] == [2, 1]
    assert data[0]["created_by"] == "admin" and data[0]["spec"]["tag"] == "1.1"


def test_rollouts_list_filters_by_service_and_state(api, recorded_worker):
    rng = make_service("rng")
    done = Rollout.objects.create(
        service=recorded_worker, kind="apply", state="completed"
    )
    Rollout.objects.create(service=recorded_worker, kind="apply", state="rolled_back")
    Rollout.objects.create(service=rng, kind="rollback", state="completed")
    url = reverse("rollouts:rollout-list")

    assert len(api.get(url).json()) == 3
    both = api.get(url, {"service": "worker", "state": "completed"}).json()
    assert [r["id"] for r in both] == [done.pk]
    assert both[0]["service"] == {
        "id": recorded_worker.pk,
        "name": "dockercoins_worker",
    }
    assert len(api.get(url, {"state": "rolled_back"}).json()) == 1


@pytest.mark.parametrize(
    "params,field",
    [
        ({"state": "exploded"}, "state"),
        ({"service": "nope"}, "service"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"limit": "\u0663"}, "limit"),  # ٣, an Arabic-Indic three
        ({"limit": "\u00b2"}, "limit"),  # ², which str.isdigit() accepts
        ({"service": "\u2460"}, "service"),  # ①, likewise
    ],
)
def test_a_bad_filter_is_a_400_with_the_reason(api, recorded_worker, params, field):
    response = api.get(reverse("rollouts:rollout-list"), params)
    assert response.status_code == 400
    assert field in response.json()


def test_rollout_detail_has_state_reason_progress_events_and_tasks(
    api, recorded_worker
):
    revision = recorded_worker.revisions.create(
        number=3, spec={}, change_cause="bugged"
    )
    rollout = Rollout.objects.create(
        service=recorded_worker,
        kind="apply",
        state="rolled_back",
        revision=revision,
        reason="the engine rolled back: update paused due to failure",
        update_state="rollback_completed",
        tasks_done=4,
        tasks_total=10,
    )
    rollout.events.create(kind="state", message="updating")
    rollout.events.create(kind="task", message="task 3 failed")

    data = api.get(reverse("rollouts:rollout-detail", args=[rollout.pk])).json()

    assert data["state"] == "rolled_back"
    assert data["update_state"] == "rollback_completed"
    assert data["reason"].startswith("the engine rolled back")
    assert data["progress"] == {"done": 4, "total": 10}
    assert data["revision"] == 3
    assert [e["message"] for e in data["events"]] == ["updating", "task 3 failed"]
    assert len(data["tasks"]) == 10


@pytest.mark.parametrize(
    "name,key",
    [
        ("rollouts:rollout-detail", "999"),
        ("rollouts:rollout-detail", "abc"),
        ("rollouts:service-detail", "999"),
        ("rollouts:service-detail", "nope"),
        ("rollouts:service-revisions", "nope"),
        ("rollouts:rollout-detail", "\u00b2"),
        ("rollouts:service-detail", "\u00b2"),
        ("rollouts:service-revisions", "\u00b2"),
        ("rollouts:service-detail", "9" * 5000),
    ],
)
def test_unknown_ids_are_a_json_404(api, recorded_worker, name, key):
    response = api.get(reverse(name, args=[key]))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


URLS = [
    ("rollouts:service-list", []),
    ("rollouts:service-detail", ["worker"]),
    ("rollouts:service-revisions", ["worker"]),
    ("rollouts:rollout-list", []),
]


@pytest.mark.parametrize("name,args", URLS)
def test_the_api_is_staff_only(client, django_user_model, recorded_worker, name, args):
    url = reverse(name, args=args)
    assert client.get(url).status_code in (401, 403)
    client.force_login(django_user_model.objects.create_user("visitor"))
    assert client.get(url).status_code == 403


def test_the_api_is_read_only(api, recorded_worker):
    url = reverse("rollouts:service-detail", args=["worker"])
    assert api.post(url, {"tag": "bugged"}).status_code == 405
    assert api.delete(url).status_code == 405
