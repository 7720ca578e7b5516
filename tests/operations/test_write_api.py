"""The write API goes through the same service functions as the admin and
`manage.py rollout`: same validation, refusals and records (issue 15, §1)."""

from datetime import timedelta

import pytest

from rollouts.models import Rollout, RolloutState
from tests.rollouts.admin_support import active_rollout

pytestmark = pytest.mark.django_db


def test_it_queues_a_change_of_only_the_fields_sent(pipeline, worker):
    response = pipeline.post(
        "worker/rollouts/", {"tag": "1.1", "change_cause": "CI build 42"}
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["state"] == "queued" and body["revision"] == 1
    assert body["requested_by"] == "ci" and body["change_cause"] == "CI build 42"
    assert body["links"]["api"].endswith(f"/api/rollouts/rollouts/{body['id']}/")
    assert body["links"]["admin"].endswith(f"/rollouts/rollout/{body['id']}/change/")
    assert response["Location"] == f"/api/rollouts/rollouts/{body['id']}/"
    worker.refresh_from_db()
    assert (worker.tag, worker.replicas) == ("1.1", 10)
    revision = worker.revisions.get()
    assert revision.created_by.username == "ci"
    assert revision.change_cause == "CI build 42"
    event = Rollout.objects.get().events.get()
    assert event.message == "queued by ci: CI build 42"


def test_durations_take_dockers_notation_as_the_command_line_does(pipeline, worker):
    response = pipeline.post(
        "worker/rollouts/",
        {"update_delay": "5s", "update_parallelism": 2, "change_cause": "workshop"},
    )
    assert response.status_code == 202, response.json()
    worker.refresh_from_db()
    assert (worker.update_delay, worker.update_parallelism) == (5.0, 2)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"tag": "nope"}, "tag", "not on the swarm's engine"),
        ({"replicas": "٣"}, "replicas", "not a whole number"),
        ({"update_delay": "-5s"}, "update_delay", "never negative"),
        ({"update_max_failure_ratio": 2}, "update_max_failure_ratio", ""),
        ({"update_failure_action": "explode"}, "update_failure_action", ""),
        ({"colour": "red"}, "__all__", "unknown fields: ['colour']"),
        ({"tag": "1.1", "change_cause": ""}, "change_cause", ""),
        ({"tag": "1.1", "canary": 10}, "canary", "must be fewer than the 10 replica"),
        ({"canary": 12}, "canary", "0 turns the canary step off"),
        ({"canary": -1}, "canary", "must be a whole number from 0"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_queues_nothing(
    pipeline, worker, body, field, words
):
    body = {"change_cause": "try", **body}
    response = pipeline.post("worker/rollouts/", body)

    assert response.status_code == 400, response.json()
    reasons = response.json()["field_errors"][field]
    assert words in " ".join(reasons)
    assert words in response.json()["detail"]
    assert not Rollout.objects.exists()


@pytest.mark.parametrize(
    "raw", ["[1, 2]", "not json", '"a string"', '{"change_cause": "x"} trailing']
)
def test_a_body_that_is_not_a_json_object_is_a_400(client, pipeline, worker, raw):
    response = client.post(
        "/api/rollouts/services/worker/rollouts/",
        raw,
        content_type="application/json",
        **pipeline.headers,
    )
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_form_body_is_a_415(client, pipeline, worker):
    response = client.post(
        "/api/rollouts/services/worker/scale/", {"replicas": 3}, **pipeline.headers
    )
    assert response.status_code == 415


def test_an_unknown_service_is_a_404(pipeline, worker):
    response = pipeline.post("nothing/scale/", {"replicas": 3})
    assert response.status_code == 404
    assert "no service 'nothing'" in response.json()["detail"]


def test_one_active_rollout_per_service_a_second_is_a_409(pipeline, worker):
    active = active_rollout(worker)

    response = pipeline.post("worker/scale/", {"replicas": 3})

    assert response.status_code == 409
    assert response.json()["active_rollout"] == active.pk
    assert f"already has rollout #{active.pk}" in response.json()["detail"]
    assert Rollout.objects.count() == 1


def test_a_paused_failed_update_is_not_resumed_behind_the_operators_back(
    pipeline, worker
):
    worker.tag = "bugged"
    worker.live_image = "dockercoins:bugged"
    worker.live_update_state = "paused"
    worker.save()

    refused = pipeline.post("worker/scale/", {"replicas": 3})
    assert refused.status_code == 409
    assert refused.json()["paused_update"] is True
    assert (
        "runs a paused failed update of dockercoins:bugged"
        in (refused.json()["detail"])
    )
    assert refused.json()["detail"].endswith(
        'resume it on purpose (send "resume": true)'
    )
    assert refused.json()["resume_with"] == {"resume": True}
    assert not Rollout.objects.exists()

    resumed = pipeline.post("worker/scale/", {"replicas": 3, "resume": True})
    assert resumed.status_code == 202, resumed.json()


def test_a_paused_update_is_refused_before_the_controller_synced_again(
    pipeline, worker
):
    """The rollout ended paused; the webui holds no newer engine state."""
    worker.tag = "bugged"
    worker.live_image = "dockercoins:bugged"
    worker.live_update_state = "updating"  # as last synced, mid-update
    worker.save()
    active_rollout(
        worker,
        state="paused",
        reason="the engine paused the update",
        finished_at=worker.synced_at + timedelta(seconds=5),
    )

    refused = pipeline.post(
        "worker/rollouts/", {"update_parallelism": 2, "change_cause": "faster"}
    )

    assert refused.status_code == 409, refused.json()
    assert "the engine paused the update" in refused.json()["detail"]


def test_a_mode_change_needs_confirm_recreate(pipeline, worker):
    body = {"mode": "global", "replicas": None, "change_cause": "one per node"}
    refused = pipeline.post("worker/rollouts/", body)
    assert refused.status_code == 400
    assert "confirm" in refused.json()["field_errors"]["confirm_recreate"][0]

    confirmed = pipeline.post("worker/rollouts/", {**body, "confirm_recreate": True})
    assert confirmed.status_code == 202, confirmed.json()


def test_scale_undo_rollback_and_reapply_queue_rollouts(pipeline, worker):
    assert pipeline.post("worker/rollouts/", {"tag": "1.1", "change_cause": "up"})
    Rollout.objects.update(state=RolloutState.COMPLETED)
    assert pipeline.post("worker/rollouts/", {"tag": "bugged", "change_cause": "b"})
    Rollout.objects.update(state=RolloutState.COMPLETED)

    undo = pipeline.post("worker/undo/", {"to_revision": 1})
    assert undo.status_code == 202, undo.json()
    assert undo.json()["change_cause"] == "undo to revision 1"
    Rollout.objects.update(state=RolloutState.COMPLETED)

    rollback = pipeline.post("worker/rollback/", {"change_cause": "bad release"})
    assert rollback.status_code == 202 and rollback.json()["kind"] == "rollback"
    Rollout.objects.update(state=RolloutState.COMPLETED)

    reapply = pipeline.post("worker/reapply/")
    assert reapply.status_code == 202
    assert reapply.json()["change_cause"] == "re-apply ours over the drift"
    Rollout.objects.update(state=RolloutState.COMPLETED)

    scale = pipeline.post("worker/scale/", {"replicas": 4})
    assert scale.status_code == 202
    assert Rollout.objects.count() == 6


def test_undo_to_the_revision_that_runs_is_a_400_not_a_completed_no_op(
    pipeline, worker
):
    # Reported by the new-user trial: an undo that changed nothing "completed".
    assert pipeline.post("worker/rollouts/", {"tag": "1.1", "change_cause": "up"})
    Rollout.objects.update(state=RolloutState.COMPLETED)

    response = pipeline.post("worker/undo/", {"to_revision": 1})

    assert response.status_code == 400
    assert "would change nothing" in response.json()["field_errors"]["to_revision"][0]
    assert Rollout.objects.count() == 1


def test_undo_to_a_revision_that_does_not_exist_is_a_400(pipeline, worker):
    response = pipeline.post("worker/undo/", {"to_revision": 7})
    assert response.status_code == 400
    assert "has no revision 7" in response.json()["field_errors"]["to_revision"][0]


def test_rollback_needs_a_cause(pipeline, worker):
    response = pipeline.post("worker/rollback/", {})
    assert response.status_code == 400
    assert "change_cause" in response.json()["field_errors"]


def test_abort_ends_the_rollout_in_flight_recording_who_and_why(pipeline, worker):
    active = active_rollout(worker)

    response = pipeline.post("worker/abort/", {"change_cause": "wrong tag"})

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "aborted"
    assert "aborted by ci: wrong tag" in response.json()["reason"]
    active.refresh_from_db()
    assert active.aborted_by.username == "ci"


def test_abort_without_a_rollout_in_flight_is_a_400(pipeline, worker):
    response = pipeline.post("worker/abort/", {"change_cause": "why not"})
    assert response.status_code == 400
    assert "no rollout in flight" in response.json()["detail"]


def test_promote_lets_a_held_canary_go_on_recording_who_and_why(pipeline, worker):
    held = active_rollout(worker, canary_state="holding")

    response = pipeline.post("worker/promote/", {"change_cause": "looks fine"})

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == held.pk
    held.refresh_from_db()
    assert held.promote_requested_by.username == "ci"
    assert held.promote_cause == "looks fine"
    assert held.events.filter(message="promotion asked by ci: looks fine").exists()


def test_promote_without_a_held_canary_is_a_400(pipeline, worker):
    active_rollout(worker)  # in flight, but no canary held

    response = pipeline.post("worker/promote/", {"change_cause": "go"})

    assert response.status_code == 400
    assert "no held canary to promote" in response.json()["detail"]


def test_a_held_canary_is_aborted_like_any_rollout(pipeline, worker):
    active_rollout(worker, canary_state="holding")

    response = pipeline.post("worker/abort/", {"change_cause": "not this one"})

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "aborted"


def test_adopt_takes_what_runs_as_a_revision(pipeline, worker):
    worker.live_spec = {
        "Name": "dockercoins_worker",
        "TaskTemplate": {"ContainerSpec": {"Image": "dockercoins:1.1"}},
        "Mode": {"Replicated": {"Replicas": 4}},
    }
    worker.save()

    response = pipeline.post("worker/adopt/", {"change_cause": "hotfix by hand"})

    assert response.status_code == 201, response.json()
    assert response.json()["spec"]["tag"] == "1.1"
    assert response.json()["created_by"] == "ci"
    assert not Rollout.objects.exists()
