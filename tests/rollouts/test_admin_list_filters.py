"""Every rollouts list page filters by its declared filters only: any other
lookup in the query string is a 400, never a 500."""

import pytest
from django.urls import reverse
from django.utils import timezone

from rollouts.models import KnownImage, Rollout, RolloutEvent
from tests.rollouts.admin_support import make_service

pytestmark = pytest.mark.django_db

# list page -> (a lookup the database cannot run or should never see, a
# lookup its own filters make)
PAGES = {
    "service": ("live_tasks__contains=x", "missing__exact=1"),
    "revision": ("spec__contains=x", "service__id__exact=1"),
    "rollout": ("seen_tasks__contains=x", "state__exact=queued"),
    "rolloutevent": ("message__regex=(", "kind__exact=state"),
    "knownimage": ("reference__regex=[", ""),
}


@pytest.fixture
def rows() -> None:
    service = make_service()
    service.revisions.create(number=1, spec={}, change_cause="x")
    rollout = Rollout.objects.create(service=service, kind="apply")
    RolloutEvent.objects.create(rollout=rollout, kind="state", message="queued")
    KnownImage.objects.create(
        reference="dockercoins:1.0", image_id="sha256:1", seen_at=timezone.now()
    )


@pytest.mark.parametrize("page", PAGES)
def test_an_undeclared_lookup_is_a_400_on_every_list_page(admin_client, rows, page):
    url = reverse(f"admin:rollouts_{page}_changelist")
    hostile, declared = PAGES[page]

    assert admin_client.get(f"{url}?{hostile}").status_code == 400
    assert admin_client.get(f"{url}?{declared}").status_code == 200


@pytest.mark.parametrize(
    "query", ["missing__exact=maybe", "stack__exact=%C2%B2", "p=%C2%B2"]
)
def test_a_bad_value_for_a_declared_filter_is_the_admins_own_error(
    admin_client, rows, query
):
    url = reverse("admin:rollouts_service_changelist")
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code in (200, 302)


def test_a_bad_related_id_or_date_is_not_a_500(admin_client, rows):
    rollouts = reverse("admin:rollouts_rollout_changelist")
    for query in ("service__id__exact=%C2%B2", "requested_at__year=99999999"):
        assert admin_client.get(f"{rollouts}?{query}").status_code in (200, 302)
