"""A held canary in the admin: the Promote button, derived like the other
operations, records who and why; the Canary and analysis section of the form
has every analysis field (declared once in rollouts.spec.fields)."""

import pytest
from django.urls import reverse

from rollouts.models import Rollout
from rollouts.spec.fields import FIELDS
from tests.rollouts.admin_support import active_rollout, known_images, make_service

pytestmark = pytest.mark.django_db


def url(slug: str, service) -> str:
    return reverse(f"admin:rollouts_service_{slug}", args=[service.pk])


def test_the_promote_button_records_who_and_why_for_the_driver(operator):
    known_images("1.0", "1.1")
    worker = make_service()
    rollout = active_rollout(worker)
    Rollout.objects.filter(pk=rollout.pk).update(canary_state="holding")

    response = operator.post(
        url("promote", worker), {"change_cause": "1.1 looks fine"}, follow=True
    )

    rollout.refresh_from_db()
    assert rollout.promote_requested_by == operator.user
    assert rollout.promote_cause == "1.1 looks fine"
    assert "will be promoted" in response.content.decode()


def test_promote_is_refused_without_a_held_canary(operator):
    known_images("1.0", "1.1")
    worker = make_service()
    active_rollout(worker)
    response = operator.post(
        url("promote", worker), {"change_cause": "go"}, follow=True
    )
    assert "no held canary to promote" in response.content.decode()


def test_the_form_has_every_analysis_field(operator):
    worker = make_service()
    page = operator.get(reverse("admin:rollouts_service_change", args=[worker.pk]))
    html = page.content.decode()
    assert "Canary and analysis" in html
    for field in FIELDS:
        if field.name.startswith(("canary", "analysis_")):
            assert f'name="{field.name}"' in html, field.name
