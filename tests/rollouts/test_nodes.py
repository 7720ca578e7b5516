"""Node loss as a rollout sees it (rollouts.engine.nodes, over the engine's
answers as the adapter parses them): the engine keeps an update "updating"
forever after losing a node mid-update, and the rollout must end, naming the
node and the tasks it took."""

from dataclasses import replace

from rollouts.engine import nodes
from rollouts.engine.objects import (
    SwarmService,
    Task,
    nodes_from_engine,
)
from rollouts.records import describe

NEW = "dc:1.1"
OLD = "dc:1.0"


def node(node_id: str, hostname: str, state: str = "ready") -> dict:
    return {
        "ID": node_id,
        "Description": {"Hostname": hostname},
        "Status": {"State": state, "Addr": f"10.213.0.{10 + int(node_id[-1])}"},
        "Spec": {"Role": "manager", "Availability": "active"},
    }


def task(task_id: str, node_id: str, image: str, state: str, desired: str = "running"):
    return Task.from_engine(raw_task(task_id, node_id, image, state, desired))


def raw_task(task_id, node_id, image, state, desired) -> dict:
    return {
        "ID": task_id,
        "NodeID": node_id,
        "Slot": int(task_id[-1]),
        "DesiredState": desired,
        "Status": {"State": state},
        "Spec": {"ContainerSpec": {"Image": image}},
    }


def service(replicas: int = 3) -> SwarmService:
    raw = {
        "ID": "svc1",
        "Spec": {
            "Name": "dc_worker",
            "TaskTemplate": {"ContainerSpec": {"Image": NEW}},
            "Mode": {"Replicated": {"Replicas": replicas}},
        },
        "ServiceStatus": {"DesiredTasks": replicas},
    }
    return SwarmService.from_engine(raw)


CLUSTER = [node("n0", "node-0"), node("n1", "node-1"), node("n2", "node-2", "down")]


def name(t: Task) -> str:
    return f"dc_worker.{t.slot}"


def test_it_names_the_node_that_went_down_and_the_tasks_it_took():
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n2", OLD, "running", desired="shutdown"),
        task("t3", "n2", NEW, "shutdown", desired="shutdown"),
    ]
    messages = nodes.loss_messages(nodes_from_engine(CLUSTER), tasks, name)
    assert list(messages) == ["node-2"]
    assert messages["node-2"] == (
        "node node-2 (10.213.0.12, manager) went down; "
        "it took 1 task(s) with it: dc_worker.2 t2 (dc:1.0)"
    )


def in_slot(slot: int, t: Task) -> Task:
    return replace(t, slot=slot)


def warning(tasks: list[Task]) -> str | None:
    return nodes.stuck_on_lost_node(
        update_state="updating",
        svc=service(),
        tasks=tasks,
        nodes=nodes_from_engine(CLUSTER),
        task_name=name,
    )


def test_it_ends_an_update_stuck_only_on_a_lost_node():
    # Slot 3, the last: the updater stopped its old task on node-2 and placed
    # the new one there too; node-2 went down before it ran, and the
    # orchestrator replaced it on node-0. The updater waits for t5 for good.
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n1", NEW, "running"),
        in_slot(3, task("t4", "n2", OLD, "running", desired="shutdown")),
        in_slot(3, task("t5", "n2", NEW, "assigned", desired="shutdown")),
        in_slot(3, task("t6", "n0", NEW, "running")),
    ]
    reason = warning(tasks)
    assert reason.startswith("completed with a warning: all 3 tasks run dc:1.1")
    assert "node node-2 is down" in reason
    assert "waiting for dc_worker.3" in reason


def test_a_lost_node_that_held_only_old_tasks_leaves_the_verdict_to_the_engine():
    # The updater had not reached slot 3 when node-2 went down: the
    # orchestrator replaced its old task with a new one, and the updater skips
    # the slot and completes by itself (rollouts/engine/nodes.py).
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n1", NEW, "running"),
        in_slot(3, task("t4", "n2", OLD, "running", desired="shutdown")),
        in_slot(3, task("t6", "n0", NEW, "running")),
    ]
    assert warning(tasks) is None


def test_it_keeps_waiting_while_a_task_still_runs_the_old_spec():
    tasks = [
        task("t1", "n0", NEW, "running"),
        task("t2", "n1", OLD, "running"),
        task("t3", "n0", NEW, "running"),
    ]
    assert (
        nodes.stuck_on_lost_node(
            update_state="updating",
            svc=service(),
            tasks=tasks,
            nodes=nodes_from_engine(CLUSTER),
            task_name=name,
        )
        is None
    )


def test_it_leaves_a_healthy_update_to_the_engine():
    tasks = [task(f"t{i}", "n0", NEW, "running") for i in (1, 2, 3)]
    up = [node("n0", "node-0"), node("n1", "node-1")]
    assert (
        nodes.stuck_on_lost_node(
            update_state="updating",
            svc=service(),
            tasks=tasks,
            nodes=nodes_from_engine(up),
            task_name=name,
        )
        is None
    )


def test_the_task_table_marks_the_nodes_that_are_down():
    live_tasks = [
        {"slot": "1", "tasks": [{"node": "node-0", "desired_state": "running"}]},
        {
            "slot": "2",
            "tasks": [{"node": "node-2 (down)", "desired_state": "shutdown"}],
        },
    ]
    assert describe.down_in_tasks(live_tasks) == ["node-2"]
    assert nodes.describe_down(nodes_from_engine(CLUSTER)) == (
        "node-2 (10.213.0.12, manager) is down"
    )
