"""The Service list and change pages show the live state the controller recorded."""

import re

import pytest
from django.urls import reverse

from rollouts.models import Service
from tests.rollouts.admin_support import (
    BUGGED_ERROR,
    active_rollout,
    known_images,
    make_service,
    make_staff,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rollouts_service_changelist")


def change_url(service: Service) -> str:
    return reverse("admin:rollouts_service_change", args=[service.pk])


def task_table_names(html: str) -> list[str]:
    """Name cells of the task table, "\\_ " kept for the earlier attempts."""
    table = html.split('class="rollouts-tasks"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r'<td class="rollouts-name">(.*?)</td>', table, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


def test_the_list_shows_every_engine_update_state_distinctly(admin_client):
    tones = {
        "updating": ("updating", "rollouts-info"),
        "paused": ("paused", "rollouts-warn"),
        "completed": ("completed", "rollouts-ok"),
        "rollback_started": ("rolling back", "rollouts-warn"),
        "rollback_paused": ("rollback paused", "rollouts-bad"),
        "rollback_completed": ("rolled back (failed)", "rollouts-bad"),
    }
    for state in tones:
        make_service(state, live_update_state=state)

    html = admin_client.get(CHANGELIST).content.decode()

    for text, tone in tones.values():
        assert re.search(
            rf'class="rollouts-badge {tone}"[^>]*>{re.escape(text)}<', html
        )
    # A rollback that completed is a failed update: never shown in green.
    assert 'rollouts-ok" title="rollback_completed' not in html


def test_the_list_shows_images_tasks_progress_and_the_active_rollout(admin_client):
    service = make_service(
        tag="1.1", live_running=7, live_desired=10, live_update_state="updating"
    )
    rollout = active_rollout(service, tasks_done=4, tasks_total=10)

    html = admin_client.get(CHANGELIST).content.decode()

    assert "dockercoins:<wbr>1.1" in html  # desired
    assert '<span class="rollouts-drift">dockercoins:<wbr>1.0</span>' in html  # live
    assert ">7/10<" in html
    assert "4 of 10" in html
    assert f">#{rollout.pk}</a>" in html
    assert ">watching<" in html


def test_the_change_page_shows_failed_attempts_under_their_slot(admin_client):
    service = make_service()

    response = admin_client.get(change_url(service))

    assert response.status_code == 200
    names = task_table_names(response.content.decode())
    slot3 = names.index("dockercoins_worker.3")
    assert names[slot3 + 1 : slot3 + 4] == [r"\_ dockercoins_worker.3"] * 3
    assert names[slot3 + 4] == "dockercoins_worker.4"
    assert names[slot3 + 5] == r"\_ dockercoins_worker.4"
    assert names[-1] == "dockercoins_worker.10"  # slots in number order
    assert len(names) == 10 + 3 + 1 + 3 + 1


def test_the_change_page_shows_live_state_errors_revisions_and_rollouts(
    admin_client, admin_user
):
    service = make_service()
    revision = service.revisions.create(
        number=1,
        spec=service.desired_spec(),
        change_cause="scale to 10",
        created_by=admin_user,
    )
    rollout = service.rollouts.create(
        kind="apply",
        state="rolled_back",
        revision=revision,
        reason="the engine rolled back: update paused due to failure",
    )
    rollout.events.create(kind="task", message="task 3 failed: non-zero exit (1)")

    html = admin_client.get(change_url(service)).content.decode()

    assert "rolled back (failed)" in html
    assert BUGGED_ERROR in html
    assert "dockercoins:bugged" in html
    assert "Failed" in html and "ago" in html  # current state + since
    assert "scale to 10" in html and "admin" in html
    assert "the engine rolled back" in html
    assert "task 3 failed: non-zero exit (1)" in html
    assert 'data-active="0"' in html  # nothing running: slow polling


def test_the_change_page_offers_known_tags_and_human_durations(admin_client):
    known_images("1.0", "1.1", "bugged")
    service = make_service(update_delay=5, update_monitor=20, progress_deadline=600)

    html = admin_client.get(change_url(service)).content.decode()

    assert '<option value="bugged">' in html
    assert 'name="update_delay" value="5s"' in html
    assert 'name="update_monitor" value="20s"' in html
    assert 'name="progress_deadline" value="10m"' in html
    assert "Save and queue rollout" in html
    for title in ("Apply now", "Roll back", "Undo to revision", "Scale"):
        assert title in html


def test_the_live_panel_endpoint_answers_fragments(admin_client):
    service = make_service(live_running=4)
    active_rollout(service)
    url = reverse("admin:rollouts_service_live", args=[service.pk])

    data = admin_client.get(url).json()

    assert data["active"] is True
    assert "rollouts-tasks" in data["live"] and ">4/10<" in data["live"]
    assert "Recent rollouts" in data["history"]


def test_the_live_panel_endpoint_is_staff_only(client, django_user_model):
    service = make_service()
    url = reverse("admin:rollouts_service_live", args=[service.pk])
    assert client.get(url).status_code == 302  # to the login page
    user = django_user_model.objects.create_user("visitor", password="x")
    client.force_login(user)
    assert client.get(url).status_code == 302


def test_unknown_service_id_redirects_with_a_message(admin_client):
    response = admin_client.get(
        reverse("admin:rollouts_service_change", args=[999]), follow=True
    )
    assert "doesn’t exist" in response.content.decode()


class TestStaffWithoutThePermission:
    @pytest.fixture
    def viewer(self, client, django_user_model):
        client.force_login(make_staff(django_user_model, "viewer", can_apply=False))
        return client

    def test_they_see_read_only_pages(self, viewer):
        service = make_service()
        listing = viewer.get(CHANGELIST)
        page = viewer.get(change_url(service))

        assert listing.status_code == page.status_code == 200
        html = page.content.decode()
        assert "Save and queue rollout" not in html
        assert 'name="tag"' not in html  # no inputs, only values
        assert "change_cause" not in html
        assert r"\_" in html  # the live panel is still there
        assert 'name="action"' not in listing.content.decode()  # no actions

    def test_they_cannot_change_a_service(self, viewer):
        service = make_service()
        response = viewer.post(change_url(service), {"tag": "1.1"})
        assert response.status_code == 403
        service.refresh_from_db()
        assert service.tag == "1.0"
        assert not service.rollouts.exists()

    @pytest.mark.parametrize("slug", ["apply", "rollback", "undo", "scale"])
    def test_they_cannot_run_actions(self, viewer, slug):
        service = make_service()
        url = reverse(f"admin:rollouts_service_{slug}", args=[service.pk])
        assert viewer.get(url).status_code == 403
        response = viewer.post(url, {"change_cause": "x", "replicas": 2})
        assert response.status_code == 403
        assert not service.rollouts.exists()

    def test_they_cannot_run_list_actions(self, viewer):
        service = make_service()
        response = viewer.post(
            CHANGELIST, {"action": "apply_now", "_selected_action": [service.pk]}
        )
        assert not service.rollouts.exists()
        assert response.status_code in (200, 302)


def test_nobody_adds_or_deletes_services_in_the_admin(admin_client):
    service = make_service()
    assert admin_client.get(reverse("admin:rollouts_service_add")).status_code == 403
    delete = reverse("admin:rollouts_service_delete", args=[service.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Service.objects.filter(pk=service.pk).exists()


def test_staff_with_the_permission_can_use_the_pages(client, django_user_model):
    client.force_login(make_staff(django_user_model, "operator", can_apply=True))
    service = make_service()
    html = client.get(change_url(service)).content.decode()
    assert "Save and queue rollout" in html
