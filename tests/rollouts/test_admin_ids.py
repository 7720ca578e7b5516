"""Ids in the rollouts admin are read by the one strict id parser of every face
(ASCII digits, as the API reads them): a bad id is a message or a "doesn't
exist", never a 500, and a full-width "１" is never taken as service 1."""

import pytest
from django.urls import reverse

from rollouts.admin.operations import OPERATIONS
from rollouts.models import Rollout
from tests.rollouts.admin_support import known_images, make_service

pytestmark = pytest.mark.django_db

BAD_IDS = ["", "abc", "1.0", "9" * 30, "1\x00", "１", "٣", " 1", "-1", "+1"]
CHANGELIST = "/admin/rollouts/service/"


@pytest.fixture
def service():
    known_images("1.0", "1.1")
    return make_service(pk=1, live_update_state="completed")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("action", [op.action for op in OPERATIONS.values()])
def test_it_refuses_a_bad_selected_id_in_every_list_action(
    admin_client, service, action, bad_id
):
    response = admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": bad_id, "index": "0"},
        follow=True,
    )

    assert response.status_code == 200
    assert any("is not an id" in text for text in messages_of(response))
    assert not Rollout.objects.exists()


@pytest.mark.parametrize("bad_id", ["%EF%BC%91", "abc", "1.0", "9" * 30])
@pytest.mark.parametrize("page", ["change", *OPERATIONS])
def test_it_never_reads_a_bad_id_in_a_page_url_as_a_service(
    admin_client, service, page, bad_id
):
    url = f"{CHANGELIST}{bad_id}/{page}/"

    response = admin_client.get(url, follow=True)

    assert response.status_code == 200
    assert "doesn’t exist" in " ".join(messages_of(response))
    assert response.redirect_chain[-1][0] == reverse("admin:index")


def test_it_still_reads_an_ascii_id(admin_client, service):
    response = admin_client.get(f"{CHANGELIST}1/change/")
    assert response.status_code == 200
    assert response.context["original"] == service


@pytest.mark.parametrize("bad_id", ["abc", "%EF%BC%91", "9" * 30, "1.0"])
def test_it_refuses_a_bad_id_in_a_list_filter(admin_client, service, bad_id):
    response = admin_client.get(f"/admin/rollouts/rollout/?service__id__exact={bad_id}")
    assert response.status_code == 302  # the list's own "?e=1" (a bad value)
    assert response["Location"].endswith("?e=1")
