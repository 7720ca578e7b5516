"""Revisions, rollouts, events and known images: read-only history in the admin."""

import pytest
from django.urls import reverse

from rollouts.models import Rollout
from tests.rollouts.admin_support import (
    known_images,
    make_service,
    make_staff,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(admin_user):
    worker, rng = make_service(), make_service("rng")
    revision = worker.revisions.create(
        number=2,
        spec=worker.desired_spec(),
        change_cause="bugged worker",
        created_by=admin_user,
    )
    failed = Rollout.objects.create(
        service=worker,
        revision=revision,
        kind="apply",
        state="rolled_back",
        reason="rolled back by the engine",
        requested_by=admin_user,
    )
    failed.events.create(kind="task", message="task 3 failed: non-zero exit (1)")
    Rollout.objects.create(service=rng, kind="apply", state="completed")
    known_images("1.0")
    return worker, rng, failed


def test_the_rollouts_list_filters_by_state_and_service(admin_client, history):
    worker, rng, failed = history
    url = reverse("admin:rollouts_rollout_changelist")

    def results(**params) -> str:
        html = admin_client.get(url, params).content.decode()
        return html.split('id="result_list"')[1].split("</table>")[0]

    everything = results()
    by_state = results(state__exact="rolled_back")
    by_service = results(service__id__exact=rng.pk)

    assert "dockercoins_rng" in everything and "dockercoins_worker" in everything
    assert "rolled back" in by_state and "dockercoins_rng" not in by_state
    assert "dockercoins_rng" in by_service and "dockercoins_worker" not in by_service


def test_a_rollout_page_shows_reason_events_and_tasks(admin_client, history):
    _, _, failed = history
    page = admin_client.get(
        reverse("admin:rollouts_rollout_change", args=[failed.pk])
    ).content.decode()
    assert "rolled back by the engine" in page
    assert "task 3 failed: non-zero exit (1)" in page
    assert r"\_" in page and "dockercoins:bugged" in page
    assert 'name="_save"' not in page  # read-only


@pytest.mark.parametrize("model", ["revision", "rollout", "rolloutevent", "knownimage"])
def test_history_is_read_only_even_for_superusers(admin_client, history, model):
    listing = admin_client.get(reverse(f"admin:rollouts_{model}_changelist"))
    assert listing.status_code == 200
    assert admin_client.get(reverse(f"admin:rollouts_{model}_add")).status_code == 403


def test_staff_without_the_permission_can_read_the_history(
    client, django_user_model, history
):
    client.force_login(make_staff(django_user_model, "viewer", can_apply=False))
    index = client.get(reverse("admin:index")).content.decode()
    assert "Rollouts" in index
    for model in ("service", "revision", "rollout", "rolloutevent", "knownimage"):
        response = client.get(reverse(f"admin:rollouts_{model}_changelist"))
        assert response.status_code == 200, model
