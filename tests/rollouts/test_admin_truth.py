"""Issue 7 in the admin: abort a rollout in flight, see drift, adopt it, and an
operator's own rollback is not shown as a failure."""

import pytest
from django.urls import reverse

from rollouts.models import Rollout, RolloutKind, RolloutState, Service
from tests.rollouts.admin_support import (
    active_rollout,
    known_images,
    make_service,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rollouts_service_changelist")


def live_spec(image: str, replicas: int) -> dict:
    return {
        "Name": "dockercoins_worker",
        "TaskTemplate": {"ContainerSpec": {"Image": image}},
        "Mode": {"Replicated": {"Replicas": replicas}},
    }


@pytest.fixture
def drifted_worker() -> Service:
    known_images("1.0", "1.1")
    return make_service(
        live_update_state="completed",
        applied_spec=live_spec("dockercoins:1.0", 4),
        live_spec=live_spec("dockercoins:1.0", 10),
    )


def url(slug: str, service: Service) -> str:
    return reverse(f"admin:rollouts_service_{slug}", args=[service.pk])


def test_the_abort_button_ends_the_rollout_with_who_and_why(operator, drifted_worker):
    rollout = active_rollout(drifted_worker)

    response = operator.post(
        url("abort", drifted_worker),
        {"change_cause": "tasks die every 45 s"},
        follow=True,
    )

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ABORTED
    assert rollout.aborted_by == operator.user
    assert rollout.reason.startswith("aborted by operator: tasks die every 45 s.")
    assert "aborted by operator" in response.content.decode()
    # Undo is possible at once: nothing is active any more.
    page = operator.get(url("undo", drifted_worker))
    assert page.status_code == 200


def test_the_list_and_the_change_page_show_drift_from_what_we_applied(
    operator, drifted_worker
):
    listing = operator.get(CHANGELIST).content.decode()
    assert "changed outside" in listing
    assert "replicas 4 -&gt; 10" in listing

    page = operator.get(
        reverse("admin:rollouts_service_change", args=[drifted_worker.pk])
    )
    assert '<div class="rollouts-drift-line">replicas: 4 -&gt; 10</div>' in (
        page.content.decode()
    )


def test_adopting_drift_makes_what_runs_the_desired_spec(operator, drifted_worker):
    operator.post(url("adopt", drifted_worker), {"change_cause": "10 on purpose"})

    drifted_worker.refresh_from_db()
    assert drifted_worker.replicas == 10
    assert drifted_worker.revisions.get().change_cause == "10 on purpose"
    assert "changed outside" not in operator.get(CHANGELIST).content.decode()


def test_an_operators_own_rollback_is_not_a_red_failure(operator, drifted_worker):
    Service.objects.filter(pk=drifted_worker.pk).update(
        live_update_state="rollback_completed"
    )
    Rollout.objects.create(
        service=drifted_worker, kind=RolloutKind.ROLLBACK, state=RolloutState.COMPLETED
    )

    listing = operator.get(CHANGELIST).content.decode()

    assert "rolled back (failed)" not in listing
    assert 'rollouts-ok" title="An operator asked' in listing


def test_the_api_shows_drift_with_applied_and_live_values(operator, drifted_worker):
    data = operator.get(
        reverse("rollouts:service-detail", args=[drifted_worker.pk])
    ).json()

    assert data["live"]["drift"]["differences"] == [
        {"field": "replicas", "applied": "4", "live": "10"}
    ]


def test_a_rollouts_page_names_its_failed_tasks_as_seen(operator, drifted_worker):
    rollout = Rollout.objects.create(
        service=drifted_worker,
        kind=RolloutKind.APPLY,
        state=RolloutState.FAILED,
        failures=[
            {
                "task": "t1",
                "slot": "dockercoins_worker.3",
                "image": "dockercoins:1.1",
                "state": "complete",
                "exit_code": 0,
                "error": "",
                "at": "",
            }
        ],
    )

    page = operator.get(reverse("admin:rollouts_rollout_change", args=[rollout.pk]))

    assert "dockercoins_worker.3 (dockercoins:1.1) complete, exit 0" in (
        page.content.decode()
    )
