"""The swarm's nodes as a rollout sees them: which are down, what they took.

Typed data in (rollouts.engine.objects: Node, Task, SwarmService, as the
adapter parsed them), plain data out, except `watch_nodes`, the watcher's one
hook, which also writes the rollout's events.

The engine rule this module exists for: when a node is lost in the middle of a
rolling update, Swarm reschedules the node's tasks on the other nodes, every
task then runs the new spec, and still the service's UpdateStatus stays
"updating" for good: the updater waits for the task it had started on the lost
node (seen on the lab, docs/lab.md; moby/moby#34024 describes the
updater's wait on tasks of unavailable nodes).
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

    True when the engine says "updating", a node is down, and every task the
    service wants runs the current spec on a node that is up.
    """
    down = {n.id: n for n in down_nodes(nodes)}
    if update_state != "updating" or not down:
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
    lost = [t for node in down.values() for t in tasks_taken(node, tasks)]
    hosts = sorted({down[t.node_id].hostname for t in lost}) or sorted(
        n.hostname for n in down.values()
    )
    image = svc.short_image
    waited = ", ".join(task_name(t) for t in lost) or "a task it had there"
    return (
        f"completed with a warning: all {want} tasks run {image} on nodes that "
        f"are up, but node {', '.join(hosts)} is down and the engine's updater "
        f"stays 'updating' waiting for {waited} (Swarm never ends such an "
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

    The updater replaces one batch at a time and waits for each task it
    touched; when that task is on a node that went down (a new task placed
    there, or an old one told to stop that can no longer say it stopped), it
    waits forever and the remaining slots are never updated (moby/moby#34024).
    True when the engine says "updating", a down node holds such a touched
    task, and tasks on nodes that are up still run the old spec.
    """
    down = {n.id: n for n in down_nodes(nodes)}
    if update_state != "updating" or not down:
        return None
    touched = [
        t
        for node in down.values()
        for t in tasks_taken(node, tasks)
        if t.fingerprint == svc.fingerprint or not t.should_run
    ]
    old = [
        t
        for t in tasks
        if t.should_run
        and t.node_id not in down
        and t.running
        and t.fingerprint != svc.fingerprint
    ]
    if not touched or not old:
        return None
    hosts = ", ".join(sorted({down[t.node_id].hostname for t in touched}))
    waited = ", ".join(sorted(task_name(t) for t in touched))
    slots = ", ".join(sorted(f"{task_name(t)} ({t.short_image})" for t in old))
    return (
        f"the engine's update is stuck: node {hosts} is down and its updater "
        f"waits for {waited} there, which can never report (Swarm never ends "
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
