"""Importing the stack, and the requests operators make: change, scale, roll
back, undo. Each is validated, recorded as a revision, and queued."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts.engine.sync import service_sync
from rollouts.models import KnownImage, Revision, Rollout, RolloutState, Service
from rollouts.records import requests
from rollouts.records.selectors import service_get

pytestmark = pytest.mark.django_db


def test_sync_imports_the_stacks_services_with_the_live_spec_as_desired(engine):
    engine.service("dockercoins_worker")["Spec"]["UpdateConfig"] = {
        "Parallelism": 2,
        "Delay": 5_000_000_000,
        "FailureAction": "rollback",
        "Monitor": 20_000_000_000,
        "MaxFailureRatio": 0.2,
        "Order": "stop-first",
    }

    rows = service_sync(client=engine.client())

    assert [r.name for r in rows] == ["dockercoins_rng", "dockercoins_worker"]
    worker = Service.objects.get(name="dockercoins_worker")
    assert (worker.short_name, worker.stack) == ("worker", "dockercoins")
    assert (worker.image, worker.tag, worker.replicas) == ("dockercoins", "1.0", 2)
    assert (worker.update_parallelism, worker.update_delay) == (2, 5.0)
    assert (worker.update_monitor, worker.update_max_failure_ratio) == (20.0, 0.2)
    assert worker.update_failure_action == "rollback"
    assert worker.rollback_failure_action == "pause"  # no RollbackConfig: defaults
    assert (worker.live_running, worker.live_desired) == (2, 2)
    assert [g["slot"] for g in worker.live_tasks] == ["1", "2"]
    revision = worker.revisions.get()
    assert revision.number == 1
    assert "imported" in revision.change_cause
    assert revision.image_id.startswith("sha256:")
    assert set(KnownImage.objects.values_list("reference", flat=True)) == {
        "dockercoins:1.0",
        "dockercoins:1.1",
        "dockercoins:bugged",
    }


def test_sync_refreshes_live_state_but_never_the_desired_fields(engine, worker):
    worker.tag = "1.1"
    worker.save()
    spec = engine.service("dockercoins_worker")["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = 5

    service_sync(client=engine.client())

    worker.refresh_from_db()
    assert (worker.tag, worker.replicas) == ("1.1", 2)
    assert worker.live_desired == 5
    assert worker.revisions.count() == 1


def test_sync_marks_vanished_services_and_forgets_deleted_images(engine, worker):
    del engine.svcs[engine.service("dockercoins_worker")["ID"]]
    engine.image_list = engine.image_list[:1]

    service_sync(client=engine.client())

    worker.refresh_from_db()
    assert worker.missing
    assert list(KnownImage.objects.values_list("reference", flat=True)) == [
        "dockercoins:1.0"
    ]


def test_sync_keeps_the_image_inventory_in_the_same_few_queries_for_any_size(
    engine, worker
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as done:
            service_sync(client=engine.client())
        return len(done)

    few = queries()
    for n in range(50):
        engine.add_image(f"elsewhere:{n}")
    engine.image_list[0]["Id"] = "sha256:" + "e" * 64  # a tag rebuilt meanwhile
    moved = engine.image_list[0]["RepoTags"][0]
    service_sync(client=engine.client())

    assert queries() == few
    assert KnownImage.objects.count() == 3 + 50
    assert KnownImage.objects.get(reference=moved).image_id == "sha256:" + "e" * 64


def test_a_service_is_found_by_full_or_short_name(worker):
    assert service_get(name="dockercoins_worker") == worker
    assert service_get(name="worker") == worker
    with pytest.raises(
        Service.DoesNotExist, match="no service 'wrker'.*known: rng, worker"
    ):
        service_get(name="wrker")


def test_a_change_is_a_new_revision_and_a_queued_rollout(worker, admin_user):
    rollout = requests.service_change(
        service=worker,
        user=admin_user,
        change_cause="worker 1.1: sleeps 0.01 s",
        tag="1.1",
        update_parallelism=2,
        update_delay=5.0,
    )

    worker.refresh_from_db()
    assert (worker.tag, worker.update_parallelism, worker.update_delay) == ("1.1", 2, 5)
    revision = rollout.revision
    assert revision.number == 2
    assert revision.spec["tag"] == "1.1"
    assert revision.created_by == admin_user
    assert revision.change_cause == "worker 1.1: sleeps 0.01 s"
    assert (
        revision.image_id
        == KnownImage.objects.get(reference="dockercoins:1.1").image_id
    )
    assert (rollout.kind, rollout.state) == ("apply", RolloutState.QUEUED)
    assert rollout.requested_by == admin_user
    assert "queued by admin" in rollout.events.get().message


def test_a_refused_change_saves_nothing(worker):
    with pytest.raises(ValidationError) as raised:
        requests.service_change(
            service=worker, user=None, change_cause="typo", tag="9.9"
        )

    assert "tag" in raised.value.message_dict
    worker.refresh_from_db()
    assert worker.tag == "1.0"
    assert worker.revisions.count() == 1
    assert not Rollout.objects.exists()


def test_a_change_needs_a_cause(worker):
    with pytest.raises(ValidationError) as raised:
        requests.service_change(service=worker, user=None, change_cause=" ", tag="1.1")
    assert list(raised.value.message_dict) == ["change_cause"]


def test_a_mode_change_needs_confirmation(worker):
    with pytest.raises(ValidationError) as raised:
        requests.service_change(
            service=worker, user=None, change_cause="x", mode="global", replicas=None
        )
    assert "re-creates" in raised.value.message_dict["recreate_confirmed"][0]

    rollout = requests.service_change(
        service=worker,
        user=None,
        change_cause="x",
        recreate_confirmed=True,
        mode="global",
        replicas=None,
    )
    assert rollout.recreate_confirmed


def test_a_second_request_is_refused_while_a_rollout_is_active(worker):
    first = requests.service_change(
        service=worker, user=None, change_cause="one", replicas=3
    )
    for request in (
        lambda: requests.service_change(
            service=worker, user=None, change_cause="two", replicas=4
        ),
        lambda: requests.service_rollback(service=worker, user=None, change_cause="x"),
        lambda: requests.service_scale(service=worker, user=None, replicas=5),
    ):
        with pytest.raises(ValidationError, match=f"already has rollout #{first.pk}"):
            request()
    worker.refresh_from_db()
    assert worker.replicas == 3
    assert Rollout.objects.count() == 1


def test_scale_is_a_change_of_replicas(worker):
    rollout = requests.service_scale(service=worker, user=None, replicas=10)
    assert rollout.revision.spec["replicas"] == 10
    assert rollout.revision.change_cause == "scale to 10"


def test_a_global_service_cannot_be_scaled(worker):
    Service.objects.filter(pk=worker.pk).update(mode="global", replicas=None)
    worker.refresh_from_db()
    with pytest.raises(ValidationError, match="one task per node"):
        requests.service_scale(service=worker, user=None, replicas=3)


def test_rollback_queues_the_engine_rollback(worker, admin_user):
    rollout = requests.service_rollback(
        service=worker, user=admin_user, change_cause="1.1 is slower"
    )
    assert (rollout.kind, rollout.revision, rollout.change_cause) == (
        "rollback",
        None,
        "1.1 is slower",
    )


def _finish(rollout: Rollout, state: str) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(state=state)


def test_undo_goes_back_to_the_revision_before_the_current_one(worker):
    to_11 = requests.service_change(
        service=worker, user=None, change_cause="1.1", tag="1.1"
    )
    _finish(to_11, RolloutState.COMPLETED)
    bugged = requests.service_change(
        service=worker, user=None, change_cause="bugged", tag="bugged"
    )
    _finish(bugged, RolloutState.ROLLED_BACK)

    # Revision 3 (bugged) was rolled back: the swarm runs revision 2 (1.1), so
    # undo means revision 1 (1.0), not the bugged one.
    undo = requests.service_undo(service=worker, user=None)

    assert undo.revision.number == 4
    assert undo.revision.spec["tag"] == "1.0"
    assert undo.revision.change_cause == "undo to revision 1"


def test_undo_to_a_given_revision(worker):
    _finish(
        requests.service_change(service=worker, user=None, change_cause="a", tag="1.1"),
        RolloutState.COMPLETED,
    )
    undo = requests.service_undo(service=worker, user=None, to_revision=2)
    assert undo.revision.spec["tag"] == "1.1"


def test_undo_explains_what_cannot_be_undone(worker):
    with pytest.raises(ValidationError, match="no earlier revision"):
        requests.service_undo(service=worker, user=None)
    with pytest.raises(ValidationError, match=r"no revision 7 \(revisions: 1\)"):
        requests.service_undo(service=worker, user=None, to_revision=7)
    assert Revision.objects.filter(service=worker).count() == 1


def test_a_monitor_of_0_is_taken_with_the_engines_meaning_5s(worker):
    rollout = requests.service_change(
        service=worker, user=None, change_cause="0s", update_monitor=0.0
    )
    assert rollout.revision.spec["update_monitor"] == 5.0


def test_after_an_abort_undo_goes_back_to_what_last_completed(worker):
    to_11 = requests.service_change(
        service=worker, user=None, change_cause="1.1", tag="1.1"
    )
    _finish(to_11, RolloutState.COMPLETED)
    requests.service_change(service=worker, user=None, change_cause="b", tag="bugged")

    aborted = requests.rollout_abort(service=worker, user=None, cause="too slow")

    assert aborted.state == RolloutState.ABORTED
    assert aborted.reason.startswith("aborted by the command line: too slow.")
    undo = requests.service_undo(service=worker, user=None)
    assert undo.revision.spec["tag"] == "1.1"


def test_a_change_carries_only_the_fields_the_operator_changed(worker):
    live = dict(worker.live_spec)
    live["Mode"] = {"Replicated": {"Replicas": 10}}
    Service.objects.filter(pk=worker.pk).update(live_spec=live)
    worker.refresh_from_db()
    desired = {**worker.desired_spec(), "tag": "1.1"}  # a form posts every field

    rollout = requests.service_change(
        service=worker, user=None, change_cause="tag only", **desired
    )

    assert rollout.revision.spec["tag"] == "1.1"
    assert rollout.revision.spec["replicas"] == 10  # what runs, not our older 2


def test_a_change_that_would_resume_a_paused_failed_update_is_refused(worker):
    Service.objects.filter(pk=worker.pk).update(
        live_update_state="paused",
        live_update_message="update paused due to failure",
        live_image="dockercoins:1.0",
    )
    worker.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        requests.service_scale(service=worker, user=None, replicas=6)
    assert "runs a paused failed update of dockercoins:1.0" in str(refused.value)

    requests.service_scale(service=worker, user=None, replicas=6, resume_confirmed=True)


def test_a_mode_change_message_names_the_real_from_and_to(worker):
    # After `make down && make up`: we asked for global, the stack runs replicated.
    Service.objects.filter(pk=worker.pk).update(mode="global", replicas=None)
    worker.refresh_from_db()

    # Asking for what runs is no mode change at all...
    requests.service_change(
        service=worker, user=None, change_cause="back", mode="replicated", replicas=2
    )
    Rollout.objects.all().delete()
    # ...and a real one names what runs as its "from".
    with pytest.raises(ValidationError) as refused:
        requests.service_change(
            service=worker, user=None, change_cause="g", mode="global", replicas=None
        )
    assert "from replicated to global" in str(refused.value)
