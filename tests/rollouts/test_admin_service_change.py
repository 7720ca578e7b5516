"""Saving the Service form queues a rollout through the service layer, or
explains, field by field, why it cannot."""

from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.urls import reverse

from rollouts.models import Revision, Rollout, Service
from tests.rollouts.admin_support import (
    active_rollout,
    form_data,
    known_images,
    make_service,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def service() -> Service:
    known_images("1.0", "1.1", "bugged")
    return make_service(live_update_state="completed")


def change_url(service: Service) -> str:
    return reverse("admin:rollouts_service_change", args=[service.pk])


def test_saving_queues_a_rollout_attributed_to_the_operator(operator, service):
    data = form_data(
        service,
        tag="1.1",
        update_parallelism=2,
        update_delay="5s",
        change_cause="worker 1.1: sleeps 0.01 s",
    )

    response = operator.post(change_url(service), data, follow=True)

    rollout = Rollout.objects.get(service=service)
    revision = Revision.objects.get(service=service)
    assert (rollout.kind, rollout.state) == ("apply", "queued")
    assert rollout.requested_by == operator.user
    assert rollout.revision == revision
    assert revision.created_by == operator.user
    assert revision.change_cause == "worker 1.1: sleeps 0.01 s"
    assert revision.spec["tag"] == "1.1"
    assert revision.spec["update_delay"] == 5
    service.refresh_from_db()
    assert (service.tag, service.update_parallelism) == ("1.1", 2)
    messages = [str(m) for m in response.context["messages"]]
    assert f"Rollout #{rollout.pk} queued for dockercoins_worker; " in messages[0]
    assert "the controller applies it" in messages[0]
    assert response.redirect_chain[-1][0] == change_url(service)


def test_the_seed_auto_rollback_policy_is_accepted(operator, service):
    data = form_data(
        service,
        tag="bugged",
        update_parallelism=2,
        update_delay="5s",
        update_failure_action="rollback",
        update_max_failure_ratio="0.2",
        update_monitor="20s",
        change_cause="seed step 7",
    )
    operator.post(change_url(service), data)
    revision = Revision.objects.get(service=service)
    assert revision.spec["update_failure_action"] == "rollback"
    assert revision.spec["update_monitor"] == 20
    assert revision.spec["update_max_failure_ratio"] == 0.2


def test_a_mode_change_with_the_checkbox_is_queued_as_a_recreation(operator, service):
    data = form_data(service, mode="global", replicas="", recreate_confirmed="on")
    operator.post(change_url(service), data)
    rollout = Rollout.objects.get(service=service)
    assert rollout.recreate_confirmed
    service.refresh_from_db()
    assert (service.mode, service.replicas) == ("global", None)


BAD_INPUTS = {
    "ratio above 1": ({"update_max_failure_ratio": "1.5"}, "update_max_failure_ratio"),
    "negative delay": ({"update_delay": "-5"}, "update_delay"),
    "negative rollback delay": ({"rollback_delay": "-1s"}, "rollback_delay"),
    "monitor shorter than delay with rollback": (
        {
            "update_failure_action": "rollback",
            "update_delay": "30s",
            "update_monitor": "5s",
        },
        "update_monitor",
    ),
    "replicas on a global service": (
        {"mode": "global", "replicas": "3", "recreate_confirmed": "on"},
        "replicas",
    ),
    "mode change without the checkbox": (
        {"mode": "global", "replicas": ""},
        "recreate_confirmed",
    ),
    "unknown image tag": ({"tag": "2.0"}, "tag"),
    "invalid tag": ({"tag": "no way"}, "tag"),
    "unreadable duration": ({"update_delay": "five seconds"}, "update_delay"),
    "absurd duration": ({"update_monitor": "1000h"}, "update_monitor"),
    "no change cause": ({"tag": "1.1", "change_cause": ""}, "change_cause"),
    # Issue 9: ASCII digits in the documented grammar only, finite values only.
    "Arabic-Indic replicas": ({"replicas": "\u0663"}, "replicas"),
    "superscript replicas": ({"replicas": "\u00b2"}, "replicas"),
    "fractional replicas": ({"replicas": "2.5"}, "replicas"),
    "Arabic-Indic duration": ({"update_delay": "\u0665s"}, "update_delay"),
    "exponent duration": ({"update_delay": "1e3"}, "update_delay"),
    "nan duration": ({"update_monitor": "nan"}, "update_monitor"),
    "infinite duration": ({"progress_deadline": "inf"}, "progress_deadline"),
    "nan ratio": ({"update_max_failure_ratio": "nan"}, "update_max_failure_ratio"),
    "exponent parallelism": ({"update_parallelism": "1e2"}, "update_parallelism"),
    # Issue 14: a canary must leave old tasks to hold and compare with.
    "canary of every replica": ({"tag": "1.1", "canary": "10"}, "canary"),
    "canary above the replicas": ({"canary": "11"}, "canary"),
    "negative canary": ({"canary": "-1"}, "canary"),
}


@pytest.mark.parametrize("changes,field", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_a_form_error_and_changes_nothing(
    operator, service, changes, field
):
    before = service.desired_spec()

    response = operator.post(change_url(service), form_data(service, **changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert "errornote" in response.content.decode()
    service.refresh_from_db()
    assert service.desired_spec() == before
    assert not Revision.objects.exists()
    assert not Rollout.objects.exists()


def test_a_service_with_an_active_rollout_refuses_a_change(operator, service):
    running = active_rollout(service)

    response = operator.post(change_url(service), form_data(service, tag="1.1"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert f"already has rollout #{running.pk} (watching)" in errors[0]
    assert Rollout.objects.count() == 1
    service.refresh_from_db()
    assert service.tag == "1.0"


def test_a_service_gone_from_the_swarm_refuses_a_change(operator, service):
    Service.objects.filter(pk=service.pk).update(missing=True)
    response = operator.post(change_url(service), form_data(service, tag="1.1"))
    assert "no longer exists" in str(response.context["adminform"].form.errors)
    assert not Rollout.objects.exists()


def test_saving_without_a_change_says_so(operator, service):
    response = operator.post(change_url(service), form_data(service))
    assert "Nothing changed" in str(response.context["adminform"].form.errors)
    assert not Rollout.objects.exists()


def test_the_requests_refusal_is_shown_on_the_form_and_nothing_is_logged(
    operator, service
):
    # The service function is the one gate: whatever it refuses (here another
    # operator's rollout, queued meanwhile) is shown on the form itself.
    def refuse(**kwargs):
        raise ValidationError({"__all__": ["dockercoins_worker already has rollout"]})

    with mock.patch("rollouts.records.requests.service_change", side_effect=refuse):
        response = operator.post(change_url(service), form_data(service, tag="1.1"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert list(errors) == ["dockercoins_worker already has rollout"]
    assert not LogEntry.objects.exists()  # nothing was changed, so nothing logged
    service.refresh_from_db()
    assert service.tag == "1.0"


def test_it_asks_no_recreate_confirmation_when_what_runs_already_has_the_mode(
    operator,
):
    # Desired global, live replicated (e.g. after `make down && make up`), the
    # operator asks replicated: nothing is re-created, so nothing is confirmed;
    # the form and the command follow the one rule (requests.mode_changes).
    known_images("1.0")
    service = make_service(
        mode="global", replicas=None, live_mode="replicated", live_update_state=""
    )

    response = operator.post(
        change_url(service), form_data(service, mode="replicated", replicas="3")
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rollout = Rollout.objects.get(service=service)
    assert not rollout.recreate_confirmed
    service.refresh_from_db()
    assert (service.mode, service.replicas) == ("replicated", 3)
