"""Apply now, roll back, undo and scale from the admin, through the services."""

import pytest
from django.urls import reverse

from rollouts.models import Rollout, Service
from tests.rollouts.admin_support import (
    active_rollout,
    known_images,
    make_service,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rollouts_service_changelist")


@pytest.fixture
def seeded_worker() -> Service:
    known_images("1.0", "1.1", "bugged")
    return make_service(live_update_state="completed")


def url(slug: str, service: Service) -> str:
    return reverse(f"admin:rollouts_service_{slug}", args=[service.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_apply_now_requeues_the_desired_spec(operator, seeded_worker):
    page = operator.get(url("apply", seeded_worker))
    assert page.status_code == 200 and "Apply now" in page.content.decode()

    response = operator.post(
        url("apply", seeded_worker),
        {"change_cause": "re-apply after pause"},
        follow=True,
    )

    rollout = Rollout.objects.get(service=seeded_worker)
    assert (rollout.kind, rollout.state) == ("apply", "queued")
    assert rollout.requested_by == operator.user
    assert rollout.revision.spec == seeded_worker.desired_spec()
    assert rollout.revision.change_cause == "re-apply after pause"
    assert f"Rollout #{rollout.pk} queued" in messages_of(response)[0]


def test_apply_now_asks_before_recreating_a_service(operator, seeded_worker):
    Service.objects.filter(pk=seeded_worker.pk).update(mode="global", replicas=None)

    response = operator.post(
        url("apply", seeded_worker), {"change_cause": "make it global"}
    )

    assert "recreate_confirmed" in response.context["form"].errors
    assert not Rollout.objects.exists()


def test_roll_back_queues_an_engine_rollback(operator, seeded_worker):
    response = operator.post(
        url("rollback", seeded_worker), {"change_cause": "1.1 is slow"}, follow=True
    )
    rollout = Rollout.objects.get(service=seeded_worker)
    assert (rollout.kind, rollout.state) == ("rollback", "queued")
    assert rollout.requested_by == operator.user
    assert "queued" in messages_of(response)[0]


def test_undo_puts_an_earlier_revision_back(operator, seeded_worker):
    spec = seeded_worker.desired_spec()
    seeded_worker.revisions.create(number=1, spec=spec, change_cause="initial")
    seeded_worker.revisions.create(
        number=2, spec={**spec, "tag": "1.1"}, change_cause="1.1"
    )
    Service.objects.filter(pk=seeded_worker.pk).update(tag="1.1")

    page = operator.get(url("undo", seeded_worker) + "?revision=1").content.decode()
    assert '<option value="1" selected>' in page

    operator.post(
        url("undo", seeded_worker), {"to_revision": "1", "change_cause": "back to 1.0"}
    )

    rollout = Rollout.objects.get(service=seeded_worker)
    assert (rollout.kind, rollout.state) == ("apply", "queued")
    assert rollout.requested_by == operator.user
    seeded_worker.refresh_from_db()
    assert seeded_worker.tag == "1.0"


def test_undo_to_an_unknown_revision_is_a_form_error(operator, seeded_worker):
    seeded_worker.revisions.create(
        number=1, spec=seeded_worker.desired_spec(), change_cause="x"
    )
    response = operator.post(
        url("undo", seeded_worker), {"to_revision": "7", "change_cause": "x"}
    )
    assert "to_revision" in response.context["form"].errors
    assert not Rollout.objects.exists()


def test_scale_queues_the_new_replica_count(operator, seeded_worker):
    page = operator.get(url("scale", seeded_worker)).content.decode()
    assert 'name="replicas" value="10"' in page

    operator.post(
        url("scale", seeded_worker), {"replicas": "2", "change_cause": "step 2"}
    )

    rollout = Rollout.objects.get(service=seeded_worker)
    assert rollout.state == "queued" and rollout.requested_by == operator.user
    seeded_worker.refresh_from_db()
    assert seeded_worker.replicas == 2


@pytest.mark.parametrize(
    "data,field",
    [
        ({"replicas": "-1", "change_cause": "x"}, "replicas"),
        ({"replicas": "two", "change_cause": "x"}, "replicas"),
        ({"replicas": "2", "change_cause": ""}, "change_cause"),
    ],
)
def test_scale_refuses_bad_input(operator, seeded_worker, data, field):
    response = operator.post(url("scale", seeded_worker), data)
    assert field in response.context["form"].errors
    assert not Rollout.objects.exists()


def test_scale_refuses_a_global_service(operator, seeded_worker):
    Service.objects.filter(pk=seeded_worker.pk).update(
        mode="global", replicas=None, live_mode="global"
    )
    response = operator.post(
        url("scale", seeded_worker), {"replicas": "3", "change_cause": "x"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not Rollout.objects.exists()


def test_a_paused_failed_update_is_resumed_only_when_the_box_is_ticked(
    operator, seeded_worker
):
    Service.objects.filter(pk=seeded_worker.pk).update(
        live_update_state="paused", live_image="dockercoins:1.0"
    )
    data = {"replicas": "2", "change_cause": "more"}

    refused = operator.post(url("scale", seeded_worker), data)

    [error] = refused.context["form"].errors["resume_confirmed"]
    assert "runs a paused failed update of dockercoins:1.0" in error
    assert not Rollout.objects.exists()
    operator.post(url("scale", seeded_worker), {**data, "resume_confirmed": "on"})
    assert Rollout.objects.get(service=seeded_worker).state == "queued"


@pytest.mark.parametrize("slug", ["apply", "rollback", "undo", "scale"])
def test_actions_refuse_a_service_with_an_active_rollout(operator, seeded_worker, slug):
    running = active_rollout(seeded_worker, state="applying")
    data = {"change_cause": "x", "replicas": "2", "to_revision": "1"}

    response = operator.post(url(slug, seeded_worker), data, follow=True)

    assert f"already has rollout #{running.pk} (applying)" in messages_of(response)[0]
    assert Rollout.objects.count() == 1


def test_a_list_action_on_one_service_opens_its_page(operator, seeded_worker):
    response = operator.post(
        CHANGELIST, {"action": "scale", "_selected_action": [seeded_worker.pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == url("scale", seeded_worker)


def test_a_list_action_applies_several_services_after_one_form(operator, seeded_worker):
    rng = make_service("rng", replicas=1)
    busy = make_service("hasher", replicas=1)
    running = active_rollout(busy)
    chosen = [seeded_worker.pk, rng.pk, busy.pk]

    confirm = operator.post(
        CHANGELIST, {"action": "apply_now", "_selected_action": chosen}
    )
    assert confirm.status_code == 200
    assert "dockercoins_rng" in confirm.content.decode()
    assert not Rollout.objects.exclude(pk=running.pk).exists()

    done = operator.post(
        CHANGELIST,
        {
            "action": "apply_now",
            "_selected_action": chosen,
            "post": "yes",
            "change_cause": "apply all",
        },
        follow=True,
    )

    queued = Rollout.objects.filter(state="queued").exclude(pk=running.pk)
    assert {r.service_id for r in queued} == {seeded_worker.pk, rng.pk}
    texts = " ".join(messages_of(done))
    assert "already has rollout" in texts and "dockercoins_hasher" in texts


def test_undo_from_the_list_takes_one_service_at_a_time(operator, seeded_worker):
    rng = make_service("rng", replicas=1)
    response = operator.post(
        CHANGELIST,
        {"action": "undo_to_revision", "_selected_action": [seeded_worker.pk, rng.pk]},
        follow=True,
    )
    assert "one service at a time" in messages_of(response)[0]
    assert not Rollout.objects.exists()


def test_a_refusal_shows_the_service_name_as_the_swarm_spells_it(
    operator, seeded_worker
):
    # Django's admin capitalises each message (capfirst): "Dockercoins_worker"
    # is not a service anybody can find; dockercoins/templates overrides that.
    active_rollout(seeded_worker, state="applying")

    page = operator.get(url("scale", seeded_worker), follow=True).content.decode()

    assert "dockercoins_worker already has rollout" in page
    assert "Dockercoins_worker" not in page
