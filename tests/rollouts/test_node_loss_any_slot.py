"""Over the adapter's objects: a node lost while other slots still
run the old spec leaves the engine's updater stopped for good; the rollout ends
at once, naming the node, the slots still old and the way out."""

from rollouts.engine import nodes
from rollouts.engine.objects import SwarmService, Task, nodes_from_engine
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


def test_all_slots_new_is_the_warning_case_not_this_one():
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", OLD, "running", desired="shutdown"),
        task("t3", "n1", NEW, "running"),
    ]
    assert stuck(tasks) is None
