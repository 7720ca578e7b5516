"""A rollout's outcome is the truth about what the swarm runs, on a
fake engine moved by hand: outside writes, late and clean exits, stability,
vacuous success. The same behaviours on a real swarm: test_swarm_truth.py."""

import pytest

from rollouts.control import driver
from rollouts.models import Rollout, RolloutKind, RolloutState, Service
from rollouts.records import requests

pytestmark = pytest.mark.django_db


def applied(worker: Service, engine, stable_for: float | None = 0, **desired):
    Service.objects.filter(pk=worker.pk).update(stable_for=stable_for)
    worker.refresh_from_db()
    rollout = requests.service_change(
        service=worker, user=None, change_cause="test", **desired
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    assert rollout.state == RolloutState.WATCHING, rollout.reason
    engine.tick()
    return rollout


def step(rollout: Rollout, engine) -> bool:
    return driver.rollout_watch_step(rollout=rollout, client=engine.client())


def final(rollout: Rollout) -> Rollout:
    rollout.refresh_from_db()
    return rollout


def updated(engine) -> dict:
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "updating")
    engine.replace_tasks(svc, "running")
    return svc


def running_tasks(engine, svc: dict) -> list[dict]:
    return [
        t
        for t in engine.task_list
        if t["ServiceID"] == svc["ID"] and t["DesiredState"] == "running"
    ]


def test_an_outside_write_during_a_rollout_supersedes_it_naming_the_change(
    worker, engine
):
    rollout = applied(worker, engine, tag="1.1")
    updated(engine)
    assert not step(rollout, engine)

    engine.outside_update("dockercoins_worker", Image="dockercoins:1.0")
    svc = engine.service("dockercoins_worker")
    engine.replace_tasks(svc, "running")
    engine.set_update(svc, "completed")

    assert step(rollout, engine)
    rollout = final(rollout)
    assert rollout.state == RolloutState.SUPERSEDED
    assert "superseded by a change made outside" in rollout.reason
    assert "image dockercoins:1.1 -> dockercoins:1.0" in rollout.reason


def test_a_new_task_that_exits_0_is_a_failure_named_with_slot_image_and_exit_code(
    worker, engine
):
    rollout = applied(worker, engine, tag="1.1")
    svc = updated(engine)
    first = running_tasks(engine, svc)[0]
    assert not step(rollout, engine)

    engine.set_state(first, "complete", exit_code=0)
    engine.add_task(svc, first["Slot"], "running")
    assert not step(rollout, engine)  # the engine is still updating: its call
    engine.set_update(svc, "completed")

    assert step(rollout, engine)
    rollout = final(rollout)
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason == (
        "1 of 2 new tasks ended during the rollout (max failure ratio 0); failed: "
        f"dockercoins_worker.{first['Slot']} (dockercoins:1.1) complete, exit 0"
    )


def test_new_tasks_ended_by_their_nodes_engine_stopping_are_not_failures(
    worker, engine
):
    # dockerd restarted: every container of the node ended at once, and the
    # engine reports them together as it comes back; Swarm starts new ones.
    rollout = applied(worker, engine, tag="1.1")
    svc = updated(engine)
    assert not step(rollout, engine)
    rng = engine.service("dockercoins_rng")
    other = engine.service("other_worker")
    neighbours = [engine.add_task(s, 1, "running") for s in (rng, other)]
    for task in [*running_tasks(engine, svc), *neighbours]:
        engine.set_state(task, "failed", exit_code=143)
    for slot in (1, 2):
        engine.add_task(svc, slot, "running")
    engine.set_update(svc, "completed")

    assert step(rollout, engine)
    rollout = final(rollout)
    assert rollout.state == RolloutState.COMPLETED, rollout.reason
    assert not rollout.failures
    notes = [m for m in rollout.events.values_list("message", flat=True)]
    assert any(
        "ended with every task on node-0: 2 task(s) of 2 other service(s)" in m
        for m in notes
    ), notes


def test_a_new_task_that_fails_alone_on_its_node_still_counts(worker, engine):
    rollout = applied(worker, engine, tag="1.1")
    svc = updated(engine)
    first = running_tasks(engine, svc)[0]
    assert not step(rollout, engine)
    rng = engine.add_task(engine.service("dockercoins_rng"), 1, "running")
    engine.set_state(rng, "failed", exit_code=1)  # one other service: chance
    engine.set_state(first, "failed", exit_code=143)
    engine.add_task(svc, first["Slot"], "running")
    engine.set_update(svc, "completed")

    assert step(rollout, engine)
    assert final(rollout).state == RolloutState.FAILED


def test_a_failure_is_remembered_after_the_engine_forgets_the_task(worker, engine):
    rollout = applied(worker, engine, tag="1.1")
    svc = updated(engine)
    first = running_tasks(engine, svc)[0]
    engine.set_state(first, "failed", exit_code=3)
    assert not step(rollout, engine)

    engine.task_list.remove(first)  # task history limit
    engine.add_task(svc, first["Slot"], "running")
    engine.set_update(svc, "completed")

    assert step(rollout, engine)
    assert "failed, exit 3" in final(rollout).reason


def test_with_failure_action_rollback_late_failures_roll_the_service_back(
    worker, engine
):
    rollout = applied(
        worker,
        engine,
        tag="1.1",
        update_failure_action="rollback",
        update_max_failure_ratio=0.5,
    )
    svc = updated(engine)
    running = running_tasks(engine, svc)
    engine.set_update(svc, "completed")
    for task in running:
        engine.set_state(task, "failed", exit_code=3)
        engine.add_task(svc, task["Slot"], "running")

    assert step(rollout, engine)

    rollout = final(rollout)
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason.startswith("2 of 2 new tasks ended during the rollout")
    assert rollout.reason.endswith(f"rolling back (rollout #{rollout.pk + 1})")
    follow_up = Rollout.objects.get(pk=rollout.pk + 1)
    assert follow_up.kind == RolloutKind.ROLLBACK
    assert follow_up.change_cause == f"new tasks of rollout #{rollout.pk} failed"
    assert engine.writes[-1]["params"]["rollback"] == "previous"


def test_a_rollout_completes_only_after_its_tasks_stayed_up_the_window(worker, engine):
    rollout = applied(worker, engine, stable_for=30, tag="1.1")
    svc = updated(engine)
    engine.set_update(svc, "completed")
    assert not step(rollout, engine)
    engine.tick(29)
    assert not step(rollout, engine)
    assert rollout.events.filter(message__contains="stability window").count() == 1

    engine.tick(2)
    assert step(rollout, engine)
    assert final(rollout).state == RolloutState.COMPLETED


def test_the_default_stability_window_is_the_update_monitor(worker, engine):
    rollout = applied(worker, engine, stable_for=None, tag="1.1", update_monitor=20.0)
    svc = updated(engine)
    engine.set_update(svc, "completed")
    engine.tick(19)
    assert not step(rollout, engine)
    engine.tick(2)
    assert step(rollout, engine)


def test_a_scale_down_is_not_complete_while_the_extra_tasks_still_run(worker, engine):
    rollout = applied(worker, engine, replicas=1)
    extra = [t for t in engine.task_list if t["Slot"] == 2][0]
    extra["DesiredState"] = "shutdown"  # told to stop, still running

    assert not step(rollout, engine)
    engine.set_state(extra, "shutdown")
    assert step(rollout, engine)
    assert final(rollout).reason == "1 of 1 tasks running dockercoins:1.0"


def test_a_global_service_on_no_eligible_node_is_not_a_success(worker, engine):
    rollout = applied(worker, engine, stable_for=10, tag="1.1")
    svc = engine.service("dockercoins_worker")
    svc["Spec"]["Mode"] = {"Replicated": {"Replicas": 0}}  # as counted: 0 wanted
    rollout.applied_spec = {}  # not an outside write in this test
    Rollout.objects.filter(pk=rollout.pk).update(applied_spec={})
    for task in engine.task_list:
        task["DesiredState"] = "shutdown"
        task["Status"]["State"] = "shutdown"
    Service.objects.filter(pk=worker.pk).update(replicas=2)

    assert not step(rollout, engine)  # the engine's count may still settle
    engine.tick(10)
    assert step(rollout, engine)
    rollout = final(rollout)
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason == "nothing runs: 0 runnable tasks"


def test_a_retagged_image_is_not_the_revisions_image(worker, engine):
    rollout = applied(worker, engine, tag="1.1")
    assert rollout.revision.image_id
    svc = updated(engine)
    engine.set_update(svc, "completed")
    image = next(i for i in engine.image_list if "dockercoins:1.1" in i["RepoTags"])
    image["Id"] = "sha256:" + "f" * 64

    assert step(rollout, engine)
    rollout = final(rollout)
    assert rollout.state == RolloutState.SUPERSEDED
    assert "dockercoins:1.1 now names image ffffffffffff" in rollout.reason


def test_an_engine_that_goes_away_and_comes_back_is_in_the_events(worker, engine):
    from rollouts.engine.client import SwarmUnreachable

    rollout = applied(worker, engine, replicas=3)
    engine.down = True
    with pytest.raises(SwarmUnreachable):
        step(rollout, engine)
    engine.down = False
    step(rollout, engine)

    messages = list(rollout.events.values_list("message", flat=True))
    assert any("unreachable" in m and "UTC; retrying" in m for m in messages)
    assert any(m.startswith("the engine answered again at ") for m in messages)


def test_an_engine_rollback_names_every_failed_slot_not_one_per_error_text(
    worker, engine
):
    rollout = applied(
        worker,
        engine,
        tag="bugged",
        update_failure_action="rollback",
        update_max_failure_ratio=0.25,
    )
    svc = updated(engine)
    first, second = running_tasks(engine, svc)
    engine.set_state(first, "failed", exit_code=1)
    engine.set_state(second, "failed", exit_code=1)
    for task in (first, second):
        task["Status"]["Err"] = "task: non-zero exit (1)"
    assert not step(rollout, engine)
    engine.set_update(
        svc, "rollback_started", f"update rolled back due to {first['ID']}"
    )
    assert not step(rollout, engine)
    engine.set_update(svc, "rollback_completed", "rollback completed")

    assert step(rollout, engine)
    reason = final(rollout).reason
    assert f"dockercoins_worker.{first['Slot']} (dockercoins:bugged) failed" in reason
    assert f"dockercoins_worker.{second['Slot']} (dockercoins:bugged) failed" in reason
    assert first["ID"] not in reason


def test_a_task_event_keeps_the_engines_error_text_and_names_a_clean_exit(
    worker, engine
):
    rollout = applied(worker, engine, tag="1.1")
    svc = updated(engine)
    first, second = running_tasks(engine, svc)
    assert not step(rollout, engine)
    engine.set_state(first, "failed", exit_code=1)
    first["Status"]["Err"] = "task: non-zero exit (1)"
    engine.set_state(second, "complete", exit_code=0)
    step(rollout, engine)

    tasks = list(rollout.events.filter(kind="task").values_list("message", flat=True))
    assert any(m.endswith("running -> failed: task: non-zero exit (1)") for m in tasks)
    assert any(m.endswith("running -> complete, exit 0") for m in tasks)
