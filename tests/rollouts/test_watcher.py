"""Applying a rollout and watching it to its end, against a fake engine whose
state each test moves along by hand."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rollouts.control import driver
from rollouts.engine.client import SwarmUnreachable
from rollouts.models import Rollout, RolloutState, Service
from rollouts.records import requests

pytestmark = pytest.mark.django_db


def applied(worker: Service, engine, **desired) -> Rollout:
    rollout = requests.service_change(
        service=worker,
        user=None,
        change_cause="test",
        recreate_confirmed="mode" in desired,
        **desired,
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    assert rollout.state == RolloutState.WATCHING, rollout.reason
    engine.tick()
    return rollout


def step(rollout: Rollout, engine) -> bool:
    return driver.rollout_watch_step(rollout=rollout, client=engine.client())


def messages(rollout: Rollout, kind: str | None = None) -> list[str]:
    events = rollout.events.order_by("pk")
    if kind:
        events = events.filter(kind=kind)
    return list(events.values_list("message", flat=True))


def test_a_rolling_update_completes_when_the_engine_says_so(worker, engine):
    rollout = applied(worker, engine, tag="1.1")
    svc = engine.service("dockercoins_worker")
    assert rollout.applied_at is not None
    engine.set_update(svc, "updating", "update in progress")
    engine.replace_tasks(svc, "starting")

    assert not step(rollout, engine)
    for task in engine.task_list:
        if task["Status"]["State"] == "starting":
            task["Status"]["State"] = "running"
    assert not step(rollout, engine)  # all running, but the engine still monitors
    engine.set_update(svc, "completed", "update completed")
    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert rollout.reason == "2 of 2 tasks running dockercoins:1.1"
    assert (rollout.tasks_done, rollout.tasks_total) == (2, 2)
    assert "engine: updating (update in progress)" in messages(rollout)
    assert messages(rollout, "progress") == [
        "0 of 2 tasks running dockercoins:1.1",
        "2 of 2 tasks running dockercoins:1.1",
    ]
    tasks = messages(rollout, "task")
    assert any("dockercoins_worker.1" in m and "new -> starting" in m for m in tasks)
    assert any("(dockercoins:1.0): running -> shutdown" in m for m in tasks)
    assert any("starting -> running" in m for m in tasks)
    worker.refresh_from_db()
    assert worker.live_image == "dockercoins:1.1"
    assert worker.live_update_state == "completed"


def test_an_update_status_older_than_our_write_is_someone_elses(worker, engine):
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "paused", "an old update", started=engine.now)
    engine.tick()
    rollout = applied(worker, engine, replicas=3)  # no UpdateStatus of its own
    engine.add_task(svc, 3, "running")

    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert not any("paused" in m for m in messages(rollout))


def test_scaling_completes_when_the_tasks_converge(worker, engine):
    rollout = applied(worker, engine, replicas=3)
    svc = engine.service("dockercoins_worker")
    task = engine.add_task(svc, 3, "pending")

    assert not step(rollout, engine)
    task["Status"]["State"] = "running"
    assert step(rollout, engine)
    rollout.refresh_from_db()
    assert rollout.reason == "3 of 3 tasks running dockercoins:1.0"


def test_the_engines_automatic_rollback_is_a_failure_with_the_engines_reason(
    worker, engine
):
    rollout = applied(
        worker,
        engine,
        tag="bugged",
        update_failure_action="rollback",
        update_max_failure_ratio=0.2,
        update_monitor=20.0,
    )
    svc = engine.service("dockercoins_worker")
    started = engine.now
    engine.set_update(svc, "updating", started=started)
    failed = engine.add_task(svc, 1, "failed", err="task: non-zero exit (1)")
    assert not step(rollout, engine)
    engine.set_update(
        svc,
        "rollback_started",
        "update rolled back due to failure or early termination of task "
        + failed["ID"],
        started=started,
    )
    assert not step(rollout, engine)
    svc["Spec"] = svc.pop("PreviousSpec")
    engine.set_update(svc, "rollback_completed", "rollback completed", started=started)

    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rollout.reason.startswith(
        "rolled back by the engine: update rolled back due to failure or early "
        f"termination of task dockercoins_worker.1 ({failed['ID'][:12]}) (new tasks"
    )
    assert rollout.reason.endswith(
        "; failed: dockercoins_worker.1 (dockercoins:bugged) failed "
        "(task: non-zero exit (1))"
    )
    assert any(
        "new -> failed: task: non-zero exit (1)" in m for m in messages(rollout, "task")
    )
    # The swarm runs 1.0 again, and so does the desired spec: the next scale must
    # not quietly re-send the bugged image.
    worker.refresh_from_db()
    assert (worker.tag, worker.update_failure_action) == ("1.0", "pause")
    assert worker.revisions.count() == 2


@pytest.mark.parametrize(
    "engine_state, words",
    [
        ("paused", "the engine paused the update: update paused due to failure"),
        ("rollback_paused", "the engine paused the rollback: update paused due to"),
    ],
)
def test_a_paused_update_is_reported_with_the_engines_message(
    worker, engine, engine_state, words
):
    rollout = applied(worker, engine, tag="bugged")
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, engine_state, "update paused due to failure of task x")

    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.PAUSED
    assert rollout.reason.startswith(words)


def _stuck(worker, engine, action: str) -> Rollout:
    Service.objects.filter(pk=worker.pk).update(deadline_action=action)
    worker.refresh_from_db()
    rollout = applied(worker, engine, replicas=3)
    engine.add_task(
        engine.service("dockercoins_worker"),
        3,
        "pending",
        err="no suitable node (scheduling constraints not satisfied on 1 node)",
    )
    assert not step(rollout, engine)
    Rollout.objects.filter(pk=rollout.pk).update(
        started_at=timezone.now() - timedelta(seconds=601)
    )
    return rollout


def test_a_rollout_past_its_deadline_fails_naming_the_stuck_tasks(worker, engine):
    rollout = _stuck(worker, engine, "report")

    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason == (
        "progress deadline of 10m passed with 2 of 3 tasks running dockercoins:1.0; "
        "the scheduler cannot place 1 task(s): dockercoins_worker.3 pending (no "
        "suitable node (scheduling constraints not satisfied on 1 node))"
    )


def test_the_deadline_can_leave_the_rollout_paused_for_an_operator(worker, engine):
    rollout = _stuck(worker, engine, "pause")
    assert step(rollout, engine)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.PAUSED
    assert "the engine has no pause call" in rollout.reason


def test_the_deadline_can_roll_the_service_back(worker, engine):
    rollout = _stuck(worker, engine, "rollback")
    writes = len(engine.writes)

    assert step(rollout, engine)

    rollout.refresh_from_db()
    follow_up = Rollout.objects.get(kind="rollback")
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason.endswith(f"; rolling back (rollout #{follow_up.pk})")
    assert engine.writes[writes]["params"]["rollback"] == "previous"
    assert (follow_up.state, follow_up.lease_owner) == ("watching", "controller-a")

    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "rollback_completed", "rollback completed")
    engine.task_list = [t for t in engine.task_list if t["Slot"] != 3]
    assert step(follow_up, engine)

    follow_up.refresh_from_db()
    assert follow_up.state == RolloutState.COMPLETED
    assert follow_up.revision.number == 3
    assert follow_up.revision.change_cause.startswith("rolled back: progress deadline")
    worker.refresh_from_db()
    assert worker.replicas == 2


def test_a_requested_engine_rollback_completes_as_a_new_revision(worker, engine):
    to_11 = applied(worker, engine, tag="1.1")
    Rollout.objects.filter(pk=to_11.pk).update(state=RolloutState.COMPLETED)
    rollout = requests.service_rollback(service=worker, user=None, change_cause="slow")
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "rollback_started", "manually requested rollback")
    assert not step(rollout, engine)
    engine.set_update(svc, "rollback_completed", "rollback completed")

    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert rollout.revision.spec["tag"] == "1.0"
    assert rollout.revision.change_cause == "rolled back: slow"


def test_a_service_removed_behind_our_back_fails_the_rollout(worker, engine):
    rollout = applied(worker, engine, replicas=3)
    del engine.svcs[engine.service("dockercoins_worker")["ID"]]

    assert step(rollout, engine)

    rollout.refresh_from_db()
    assert rollout.reason == "service dockercoins_worker no longer exists in the swarm"
    worker.refresh_from_db()
    assert worker.missing


def test_a_mode_change_recreates_the_service_and_converges(worker, engine):
    def engine_starts_one_task(engine, service):
        if "Global" in service["Spec"]["Mode"]:
            engine.add_task(service, None, "running")

    engine.on_write = engine_starts_one_task
    rollout = applied(worker, engine, mode="global", replicas=None)

    assert [w["op"] for w in engine.writes] == ["remove", "create"]
    assert step(rollout, engine)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert any(
        "re-created dockercoins_worker as global" in m for m in messages(rollout)
    )
    worker.refresh_from_db()
    assert worker.live_mode == "global"
    assert worker.live_tasks[0]["slot"] == "node-0"


def test_an_image_the_engine_lacks_fails_before_anything_is_sent(worker, engine):
    rollout = requests.service_change(
        service=worker, user=None, change_cause="x", tag="1.1"
    )
    engine.image_list = [
        i for i in engine.image_list if "dockercoins:1.1" not in i["RepoTags"]
    ]

    driver.rollout_apply(rollout=rollout, client=engine.client())

    assert rollout.state == RolloutState.FAILED
    assert (
        rollout.reason == "image dockercoins:1.1 is not on the engine: nothing was sent"
    )
    assert engine.writes == []


def test_an_unreachable_engine_puts_the_rollout_back_in_the_queue(worker, engine):
    rollout = requests.service_change(
        service=worker, user=None, change_cause="x", tag="1.1"
    )
    engine.down = True

    with pytest.raises(SwarmUnreachable):
        driver.rollout_apply(rollout=rollout, client=engine.client())

    rollout.refresh_from_db()
    assert (rollout.state, rollout.lease_owner) == (RolloutState.QUEUED, "")
    assert "unreachable" in messages(rollout, "error")[0]
