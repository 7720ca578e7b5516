"""The swarm's nodes as a rollout sees them: which are down, what they took.

Plain data in (Engine API node and task dicts, as `GET /nodes` and `GET /tasks`
return them), plain data out, except `watch_nodes`, the watcher's one hook,
which also writes the rollout's events.

The engine rule this module exists for: when a node is lost in the middle of a
rolling update, Swarm reschedules the node's tasks on the other nodes, every
task then runs the new spec, and still the service's UpdateStatus stays
"updating" for good: the updater waits for the task it had started on the lost
node (seen on the lab, ../shared/multinode.md; moby/moby#34024 describes the
updater's wait on tasks of unavailable nodes).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollouts.records.describe import ACTIVE_DESIRED
from rollouts.spec.specs import short_image, task_fingerprint

if TYPE_CHECKING:
    from rollouts.models import Rollout

# Node states (Status.State) of a node that answers no more.
DOWN_STATES = ("down", "unknown", "disconnected")
# Task states that still hold a container on their node (not yet terminal).
HELD_STATES = ("assigned", "accepted", "preparing", "ready", "starting", "running")
NODE_EVENT = "node"


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    address: str
    role: str
    state: str
    availability: str
    leader: bool = False

    @property
    def down(self) -> bool:
        return self.state in DOWN_STATES

    def describe(self) -> str:
        """ "node-2 (10.213.0.12, manager)"."""
        return f"{self.hostname} ({self.address}, {self.role})"


def parse_nodes(api_nodes: list[dict]) -> list[Node]:
    """Engine API node dicts -> Nodes, sorted by hostname."""
    nodes = []
    for raw in api_nodes:
        status = raw.get("Status") or {}
        spec = raw.get("Spec") or {}
        manager = raw.get("ManagerStatus") or {}
        nodes.append(
            Node(
                id=raw["ID"],
                hostname=(raw.get("Description") or {}).get("Hostname", raw["ID"][:12]),
                address=status.get("Addr", ""),
                role=spec.get("Role", ""),
                state=status.get("State", ""),
                availability=spec.get("Availability", ""),
                leader=bool(manager.get("Leader")),
            )
        )
    return sorted(nodes, key=lambda n: n.hostname)


def down_nodes(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.down]


def describe_down(nodes: list[Node]) -> str:
    """ "node-2 (10.213.0.12, manager) is down" or "" when every node is up."""
    down = down_nodes(nodes)
    if not down:
        return ""
    verb = "is" if len(down) == 1 else "are"
    return f"{', '.join(n.describe() for n in down)} {verb} down"


def tasks_taken(node: Node, tasks: list[dict]) -> list[dict]:
    """The tasks that were on `node` when it went away: placed there and, as
    last reported, still holding a container (the engine cannot hear more)."""
    return [
        t
        for t in tasks
        if t.get("NodeID") == node.id
        and (t.get("Status") or {}).get("State") in HELD_STATES
    ]


def loss_messages(
    nodes: list[Node], tasks: list[dict], task_name: Callable[[dict], str]
) -> dict[str, str]:
    """{hostname: event message} for every node that is down."""
    messages = {}
    for node in down_nodes(nodes):
        taken = tasks_taken(node, tasks)
        if taken:
            names = ", ".join(
                f"{task_name(t)} {t['ID'][:12]} "
                f"({short_image(t['Spec']['ContainerSpec']['Image'])})"
                for t in taken
            )
            what = f"it took {len(taken)} task(s) with it: {names}"
        else:
            what = "it ran no task of this service"
        messages[node.hostname] = f"node {node.describe()} went down; {what}"
    return messages


def stuck_on_lost_node(
    *,
    update_state: str,
    svc: dict,
    tasks: list[dict],
    nodes: list[Node],
    task_name: Callable[[dict], str],
) -> str | None:
    """The reason to end a rollout whose update is done but for the engine's
    updater, waiting on a lost node; None when that is not the case.

    True when the engine says "updating", a node is down, and every task the
    service wants runs the current spec on a node that is up.
    """
    down = {n.id: n for n in down_nodes(nodes)}
    if update_state != "updating" or not down:
        return None
    template = svc["Spec"]["TaskTemplate"]
    fingerprint = task_fingerprint(template)
    status = svc.get("ServiceStatus") or {}
    replicated = (svc["Spec"].get("Mode") or {}).get("Replicated")
    want = (
        replicated.get("Replicas", 1)
        if replicated
        else status.get("DesiredTasks", 0) - len(down)
    )
    live = [
        t
        for t in tasks
        if t.get("DesiredState") in ACTIVE_DESIRED and t.get("NodeID") not in down
    ]
    new = [
        t
        for t in live
        if (t.get("Status") or {}).get("State") == "running"
        and task_fingerprint(t["Spec"]) == fingerprint
    ]
    if want <= 0 or len(new) != want or len(live) != want:
        return None
    lost = [t for node in down.values() for t in tasks_taken(node, tasks)]
    hosts = sorted({down[t["NodeID"]].hostname for t in lost}) or sorted(
        n.hostname for n in down.values()
    )
    image = short_image(template["ContainerSpec"]["Image"])
    waited = ", ".join(task_name(t) for t in lost) or "a task it had there"
    return (
        f"completed with a warning: all {want} tasks run {image} on nodes that "
        f"are up, but node {', '.join(hosts)} is down and the engine's updater "
        f"stays 'updating' waiting for {waited} (Swarm never ends such an "
        "update by itself; the next update of this service replaces it)"
    )


def watch_nodes(
    rollout: "Rollout",
    *,
    api_nodes: list[dict],
    svc: dict,
    tasks: list[dict],
    task_name: Callable[[dict], str],
) -> str | None:
    """The watcher's hook, once per look at a rollout: record one "node"
    event per node that went down (naming the tasks it took), once per
    rollout, and return `stuck_on_lost_node`'s reason (None: carry on)."""
    from rollouts.records.history import event  # the watcher's own recorder

    nodes = parse_nodes(api_nodes)
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
