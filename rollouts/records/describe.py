"""How the records the controller stored read to a person: the task table, the
down nodes it names, the failures a rollout saw. Pure functions of stored JSON,
shared by the webui's faces and the controller, so neither reaches into the
other's part for them."""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollouts.models import Rollout, Service

ACTIVE_DESIRED = ("running", "ready")  # a task the engine means to keep

DOWN_SUFFIX = " (down)"


def down_in_tasks(live_tasks: list[dict]) -> list[str]:
    """Hostnames of the down nodes that a service's stored task table names
    (SwarmClient.node_names marks them "node-2 (down)")."""
    return sorted(
        {
            row["node"].removesuffix(DOWN_SUFFIX)
            for group in live_tasks or []
            for row in group.get("tasks") or []
            if (row.get("node") or "").endswith(DOWN_SUFFIX)
        }
    )


def task_rows(services: Iterable["Service"]) -> list[list[str]]:
    """[[task, node, state, image]] for the current task of every slot of each
    service (its `live_tasks`, as rollouts.spec.specs.group_tasks stores them)."""
    rows = []
    for service in services:
        for group in service.live_tasks or []:
            current = (group.get("tasks") or [{}])[0]
            if current.get("desired_state") not in ACTIVE_DESIRED:
                continue
            state = current.get("state") or "-"
            if state != "running" and current.get("error"):
                state += f": {current['error']}"  # the engine's why
            rows.append(
                [
                    f"{service.name}.{group['slot']}",
                    current.get("node") or "-",
                    state,
                    current.get("image") or "-",
                ]
            )
    return rows


def unplaced_in_tasks(live_tasks: list[dict]) -> list[str]:
    """From a service's stored task table: "slot (the engine's reason)" for
    every current task still pending with a reason (the scheduler found no
    node that fits), e.g. `3 (no suitable node (max replicas per node limit
    exceed))`. None while an old task still stops: a new task may be waiting
    for what it holds (a host-mode port, a slot under max replicas per node),
    and that reason ends by itself."""
    found: list[str] = []
    rows = [row for group in live_tasks or [] for row in group.get("tasks") or []]
    if any(
        row.get("desired_state") not in ACTIVE_DESIRED and row.get("state") == "running"
        for row in rows
    ):
        return found
    for group in live_tasks or []:
        current = (group.get("tasks") or [{}])[0]
        if (
            current.get("desired_state") in ACTIVE_DESIRED
            and current.get("state") == "pending"
            and current.get("error")
        ):
            found.append(f"{group['slot']} ({current['error']})")
    return found


def describe_failure(record: dict[str, Any]) -> str:
    """`dockercoins_worker.3 (dockercoins:bugged) failed, exit 1 (task: non-zero
    exit (1))`."""
    text = f"{record['slot']} ({record['image']}) {record['state']}"
    if record.get("exit_code") is not None:
        text += f", exit {record['exit_code']}"
    if record.get("error"):
        text += f" ({record['error']})"
    return text


def describe_failures(records: list[dict[str, Any]]) -> str:
    """Every failed slot once, its latest record first seen; "" when none."""
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_slot.setdefault(record["slot"], []).append(record)
    parts = []
    for rows in by_slot.values():
        text = describe_failure(rows[-1])
        if len(rows) > 1:
            text += f" ({len(rows)} times)"
        parts.append(text)
    return "; ".join(parts)


# Rollout.canary_state while the analysis holds the rollout for a verdict
# (rollouts.control.canary): the canary batch held, or the completion held
# until the stability window's analysis passes.
HELD_STATES = {
    "holding": "holds its canary for analysis",
    "window": "waits for the analysis of its stability window",
}


def held_line(rollout: "Rollout") -> str | None:
    """Why an active rollout is held and who decides, for `rollout status`:
    `#5 holds its canary for analysis: last measurement inconclusive (no
    measurement: Prometheus … unreachable); `rollout promote worker --cause …`
    or `rollout abort worker --cause …` decides`. None when it is not held."""
    doing = HELD_STATES.get(rollout.canary_state)
    if doing is None or rollout.is_final:
        return None
    last = rollout.measurements.order_by("-at", "-id").first()
    if last is None:
        verdict = "measuring, no measurement yet"
    else:
        verdict = f"last measurement {last.phase.lower()} ({last.message})"
        if last.phase in ("Successful", "Failed"):
            verdict += "; measuring again"
    name = rollout.service.short_name
    return (
        f"{rollout.service.name}: rollout #{rollout.pk} is held, it {doing}: "
        f"{verdict}; `rollout promote {name} --cause …` or `rollout abort {name} "
        "--cause …` decides"
    )
