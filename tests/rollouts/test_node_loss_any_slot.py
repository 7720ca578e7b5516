"""Over the adapter's objects: a node lost while other slots still
run the old spec leaves the engine's updater stopped for good; the rollout ends
at once, naming the node, the slots still old and the way out."""

import pytest

from rollouts.control import driver
from rollouts.engine import nodes
from rollouts.engine.objects import SwarmService, Task, nodes_from_engine
from rollouts.models import RolloutState
from rollouts.records import requests
from tests.rollouts.fake_engine import NODE
from tests.rollouts.test_nodes import CLUSTER, NEW, OLD, raw_task, service


def task(task_id, node_id, image, state, desired="running") -> Task:
    return Task.from_engine(raw_task(task_id, node_id, image, state, desired))


def name(t: Task) -> str:
    return f"dc_worker.{t.slot}"


def stuck(tasks: list[Task], svc: SwarmService | None = None) -> str | None:
    return nodes.updater_stuck_on_lost_node(
        update_state="updating",
        svc=svc or service(),
        tasks=tasks,
        nodes=nodes_from_engine(CLUSTER),
        task_name=name,
    )


def test_it_names_the_node_the_waited_task_and_the_slots_still_old():
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", NEW, "starting"),  # the updater's task, node lost
        task("t3", "n1", OLD, "running"),
    ]
    reason = stuck(tasks)
    assert reason == (
        "the engine's update is stuck: node node-2 is down and its updater waits "
        "for dc_worker.2 there, which can never report (Swarm never ends such an "
        "update by itself); 1 slot(s) still run the old spec: dc_worker.3 (dc:1.0)"
    )


def test_an_old_task_the_updater_has_not_reached_yet_is_not_stuck():
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", OLD, "running"),  # untouched: the updater gets there
        task("t3", "n1", OLD, "running"),
    ]
    assert stuck(tasks) is None


def test_a_lost_node_that_held_only_an_old_slot_is_not_stuck():
    # Node-2 held slot 2, not reached yet: the orchestrator put a new task in
    # its place on node-1, the updater skips the slot when it gets there and
    # goes on to slot 3 (swarmkit's updater.go). Failing now would be a lie.
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", OLD, "running", desired="shutdown"),
        task("u2", "n1", NEW, "running"),
        task("t3", "n1", OLD, "running"),
    ]
    assert stuck(tasks) is None


def test_an_old_task_told_to_stop_on_a_lost_node_is_not_stuck():
    # The updater stopped slot 2's old task on node-2 and placed the new one on
    # node-0: it waits for the old one to stop, its node to go down, or a
    # minute at most (restart.Supervisor.DelayStart), then goes on.
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", OLD, "running", desired="shutdown"),
        task("u2", "n0", NEW, "starting"),
        task("t3", "n1", OLD, "running"),
    ]
    assert stuck(tasks) is None


def test_all_slots_new_is_the_warning_case_not_this_one():
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", OLD, "running", desired="shutdown"),
        task("t3", "n1", NEW, "running"),
    ]
    assert stuck(tasks) is None


@pytest.mark.django_db
def test_a_rollout_whose_updater_waits_on_a_lost_node_fails_at_once(worker, engine):
    rollout = requests.service_change(
        service=worker, user=None, change_cause="1.1", tag="1.1"
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    engine.tick()
    svc = engine.service("dockercoins_worker")
    engine.set_update(svc, "updating", "update in progress")
    slot2 = next(t for t in engine.task_list if t["Slot"] == 2)
    engine.set_state(slot2, "shutdown")
    engine.add_task(svc, 2, "starting")["NodeID"] = "node2"  # then node-2 died
    lost = {"ID": "node2", "Description": {"Hostname": "node-2"}}
    engine.nodes = lambda: [NODE, {**lost, "Status": {"State": "down"}}]

    assert driver.rollout_watch_step(rollout=rollout, client=engine.client())

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.FAILED
    assert rollout.reason.startswith(
        "the engine's update is stuck: node node-2 is down and its updater waits "
        "for dockercoins_worker.2 there"
    )
    assert "1 slot(s) still run the old spec: dockercoins_worker.1 " in rollout.reason
    assert "Way out: `rollout undo worker` puts the previous revision back" in (
        rollout.reason
    )


@pytest.mark.django_db
def test_a_node_lost_with_old_slots_only_completes_with_the_engine(worker, engine):
    # Seen on the lab: node-2 held slot 2's old task, not reached yet. Swarm
    # put a new task in its place on node-0 and completed its update; the old
    # task was last heard "running" and, its node gone, never says it stopped.
    rollout = requests.service_change(
        service=worker, user=None, change_cause="1.1", tag="1.1"
    )
    assert driver.rollout_claim(rollout=rollout, owner="controller-a")
    driver.rollout_apply(rollout=rollout, client=engine.client())
    engine.tick()
    svc = engine.service("dockercoins_worker")
    slot2 = next(t for t in engine.task_list if t["Slot"] == 2)
    slot2["NodeID"] = "node2"
    slot2["DesiredState"] = "shutdown"  # the orchestrator's, Status still running
    engine.replace_tasks(svc, "running")  # every slot on 1.1 on node-0
    engine.set_update(svc, "completed", "update completed")
    lost = {"ID": "node2", "Description": {"Hostname": "node-2"}}
    engine.nodes = lambda: [NODE, {**lost, "Status": {"State": "down"}}]
    engine.tick(60)  # past the stability window

    assert driver.rollout_watch_step(rollout=rollout, client=engine.client())

    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED, rollout.reason
    assert "stuck" not in rollout.reason
    messages = list(rollout.events.values_list("message", flat=True))
    assert any(m.startswith("node node-2 ") and "went down" in m for m in messages)
