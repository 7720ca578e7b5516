"""The swarm's nodes as a rollout sees them: which are down, what they took.

Typed data in (rollouts.engine.objects: Node, Task, SwarmService, as the
adapter parsed them), plain data out, except `watch_nodes`, the watcher's one
hook, which also writes the rollout's events.

The engine rule this module exists for: when a node is lost in the middle of a
rolling update, Swarm reschedules the node's tasks on the other nodes (with the
service's current spec), and the updater carries on, except in one position:
when the lost node holds the new task the updater is waiting for. swarmkit's
updater waits for that task to report "running" with no timeout
(manager/orchestrator/update/updater.go, updateTask), and a task on a node
that is gone never reports again, so the service's UpdateStatus stays
"updating" for good (seen on the lab, docs/lab.md and docs/faults.md;
moby/moby#34024). Every other position is not stuck:
- an old task the updater told to stop there: it waits for it to stop, for its
  node to go down, or one minute (restart.Supervisor.DelayStart);
- an old task it had not reached yet: the orchestrator replaces it with a task
  of the current spec elsewhere, and the updater skips the slot when it gets
  there ("already shut down when reached by updater") and goes on.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from rollouts.engine.objects import (
    Node,
    SwarmService,
    Task,
)

if TYPE_CHECKING:
    from rollouts.models import Rollout

# Task states that still hold a container on their node (not yet terminal).
HELD_STATES = ("assigned", "accepted", "preparing", "ready", "starting", "running")
NODE_EVENT = "node"


def down_nodes(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.down]


def describe_down(nodes: list[Node]) -> str:
    """ "node-2 (10.213.0.12, manager) is down" or "" when every node is up."""
    down = down_nodes(nodes)
    if not down:
        return ""
    verb = "is" if len(down) == 1 else "are"
    return f"{', '.join(n.describe() for n in down)} {verb} down"


def tasks_taken(node: Node, tasks: list[Task]) -> list[Task]:
    """The tasks that were on `node` when it went away: placed there and, as
    last reported, still holding a container (the engine cannot hear more)."""
    return [t for t in tasks if t.node_id == node.id and t.state in HELD_STATES]


def loss_messages(
    nodes: list[Node], tasks: list[Task], task_name: Callable[[Task], str]
) -> dict[str, str]:
    """{hostname: event message} for every node that is down."""
    messages = {}
    for node in down_nodes(nodes):
        taken = tasks_taken(node, tasks)
        if taken:
            names = ", ".join(
                f"{task_name(t)} {t.id[:12]} ({t.short_image})" for t in taken
            )
            what = f"it took {len(taken)} task(s) with it: {names}"
        else:
            what = "it ran no task of this service"
        messages[node.hostname] = f"node {node.describe()} went down; {what}"
    return messages


def waited_on_lost_node(
    svc: SwarmService, tasks: list[Task], down: dict[str, Node]
) -> list[Task]:
    """The tasks the engine's updater may be waiting for in vain: a new task
    (the service's current spec) placed on a node that is down before it ever
    reported "running" (its last state, as the manager heard it, is earlier).
    Old tasks on the lost node are not among them (module docstring)."""
    return [
        t
        for node in down.values()
        for t in tasks_taken(node, tasks)
        if t.fingerprint == svc.fingerprint and not t.running
    ]


def stuck_on_lost_node(
    *,
    update_state: str,
    svc: SwarmService,
    tasks: list[Task],
    nodes: list[Node],
    task_name: Callable[[Task], str],
) -> str | None:
    """The reason to end a rollout whose update is done but for the engine's
    updater, waiting on a lost node; None when that is not the case.

    True when the engine says "updating", a node that is down holds the new
    task the updater waits for (`waited_on_lost_node`), and every task the
    service wants runs the current spec on a node that is up.
    """
    down = {n.id: n for n in down_nodes(nodes)}
    if update_state != "updating" or not down:
        return None
    waited = waited_on_lost_node(svc, tasks, down)
    if not waited:
        return None
    want = (
        (svc.desired_tasks or 0) - len(down)
        if svc.is_global
        else (svc.replicas if svc.replicas is not None else 1)
    )
    live = [t for t in tasks if t.should_run and t.node_id not in down]
    new = [t for t in live if t.running and t.fingerprint == svc.fingerprint]
    if want <= 0 or len(new) != want or len(live) != want:
        return None
    hosts = sorted({down[t.node_id].hostname for t in waited})
    image = svc.short_image
    names = ", ".join(sorted(task_name(t) for t in waited))
    return (
        f"completed with a warning: all {want} tasks run {image} on nodes that "
        f"are up, but node {', '.join(hosts)} is down and the engine's updater "
        f"stays 'updating' waiting for {names} (Swarm never ends such an "
        "update by itself; the next update of this service replaces it)"
    )


def updater_stuck_on_lost_node(
    *,
    update_state: str,
    svc: SwarmService,
    tasks: list[Task],
    nodes: list[Node],
    task_name: Callable[[Task], str],
) -> str | None:
    """The reason to end a rollout whose engine updater stopped for good on a
    lost node while other slots still run the old spec; None otherwise.

    The updater replaces one batch at a time and waits for each new task to
    report "running"; when that task was placed on a node that went down, it
    waits forever and the remaining slots are never updated (moby/moby#34024).
    True when the engine says "updating", a down node holds such a task
    (`waited_on_lost_node`), and tasks on nodes that are up still run the old
    spec. A lost node that only held old tasks is not this case: the engine
    goes on (module docstring), and so does the rollout.
    """
    down = {n.id: n for n in down_nodes(nodes)}
    if update_state != "updating" or not down:
        return None
    waited = waited_on_lost_node(svc, tasks, down)
    old = [
        t
        for t in tasks
        if t.should_run
        and t.node_id not in down
        and t.running
        and t.fingerprint != svc.fingerprint
    ]
    if not waited or not old:
        return None
    hosts = ", ".join(sorted({down[t.node_id].hostname for t in waited}))
    names = ", ".join(sorted(task_name(t) for t in waited))
    slots = ", ".join(sorted(f"{task_name(t)} ({t.short_image})" for t in old))
    return (
        f"the engine's update is stuck: node {hosts} is down and its updater "
        f"waits for {names} there, which can never report (Swarm never ends "
        f"such an update by itself); {len(old)} slot(s) still run the old spec: "
        f"{slots}"
    )


def watch_nodes(
    rollout: "Rollout",
    *,
    nodes: list[Node],
    svc: SwarmService,
    tasks: list[Task],
    task_name: Callable[[Task], str],
) -> str | None:
    """The watcher's hook, once per look at a rollout: record one "node"
    event per node that went down (naming the tasks it took), once per
    rollout, and return `stuck_on_lost_node`'s reason (None: carry on)."""
    from rollouts.records.history import event  # the watcher's own recorder

    reported = set(
        rollout.events.filter(kind=NODE_EVENT).values_list("message", flat=True)
    )
    for hostname, message in loss_messages(nodes, tasks, task_name).items():
        if not any(m.startswith(f"node {hostname} ") for m in reported):
            event(rollout, NODE_EVENT, message)
    return stuck_on_lost_node(
        update_state=rollout.update_state,
        svc=svc,
        tasks=tasks,
        nodes=nodes,
        task_name=task_name,
    )
