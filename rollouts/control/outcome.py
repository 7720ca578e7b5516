"""What a rollout's outcome rests on: failures remembered as seen, stability,
outside writes, and the engine's pauses and rollbacks in plain words.

Pure functions over the engine's tasks (rollouts.engine.objects.Task), specs
and plain values, so the rules are tested without an engine;
rollouts.control.watcher applies them.

- A new task (created after our write) that ends on its own, exit 0 included,
  is a failure of the rollout: Swarm restarts it, and the engine's UpdateStatus
  only counts ends within the monitor window. We keep the first sight of each,
  because the engine drops old tasks (task history limit) and a poller can miss
  a transient state.
- Except a task that ended with its node's engine: when dockerd stops (a
  restart, a reboot), every container on the node ends at once, and the engine
  reports them together when it is back. Such an end says nothing about the
  new spec (the engine's own updater, restarted with it, forgets it too); it is
  told in the events, not counted (`ended_with_its_node`).
- Completed means stable: every new task has been running for the stability
  window (like Kubernetes' minReadySeconds), by the engine's own clock. The
  window starts when the engine says the task started running
  (Task.running_since: the agent's Status.Timestamp, never before the task's
  CreatedAt), not when a look of ours first saw it running, so how often we
  look does not lengthen it. Its age is the engine's SystemTime, read in the
  same look, minus that start: two readings of the engine's clocks, never the
  controller's, so a controller whose clock is off (another host, a container,
  an NTP step) can neither shorten nor lengthen the window. On one node both
  are the same clock. On several, the start is the worker node's clock and
  "now" the manager's: a worker ahead makes the task look younger (a longer
  wait), one behind makes it look older by at most its lead over CreatedAt.
  An update also needs the engine's UpdateStatus "completed", which swarmkit's
  updater sets only once its Monitor period passed after it saw the last new
  task running: for an update our window never ends before the engine's.
- The spec we wrote is the one judged: a later write by anyone else supersedes
  the rollout (moby/moby#32212: nothing in the engine stops two writers).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rollouts.engine.objects import Task
from rollouts.spec.drift import spec_differences
from rollouts.spec.fields import DEFAULT_MONITOR
from rollouts.spec.specs import (  # noqa: F401  (re-exported: control names tasks so)
    name_task_ids,
    parse_engine_time,
    task_name,
)

# Task states in which a task has ended without being asked to (the engine's
# "shutdown" is the orchestrator's own doing: an update or a scale-down).
ENDED_STATES = ("complete", "failed", "rejected", "orphaned")
# States a task passes through before and while it runs.
LIVE_STATES = (
    "new",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
)
# Seconds: the engine's meaning of Monitor 0, declared with the field.


def ended_task(task: Task, name: str) -> dict[str, Any]:
    """The record kept of a task that ended: what was seen when it was seen."""
    return {
        "task": task.id,
        "slot": name,
        "image": task.short_image,
        "state": task.state,
        "exit_code": task.exit_code,
        "error": task.err,
        "at": task.timestamp.isoformat() if task.timestamp else "",
    }


def new_failures(
    tasks: list[Task],
    *,
    applied_at: datetime | None,
    known: list[dict[str, Any]],
    name_of: Callable[[Task], str],
) -> list[dict[str, Any]]:
    """Records for tasks created at or after `applied_at` (engine time) that have
    ended and are not in `known` yet; `name_of(task)` names a task's slot."""
    seen = {record["task"] for record in known}
    found = []
    for task in sorted(tasks, key=lambda t: t.created_key):
        if task.id in seen or task.state not in ENDED_STATES:
            continue
        created = task.created_at
        if applied_at is None or created is None or created < applied_at:
            continue
        found.append(ended_task(task, name_of(task)))
    return found


# Seconds between the ends of tasks that the same stop of their node's engine
# ended (the engine reports them all as it comes back, within a second or two
# here), and how many other services must have lost a task with it: one other
# crash at that moment is a coincidence, every service on the node is not.
ENGINE_STOP_WINDOW = 10.0
ENGINE_STOP_SERVICES = 2


def ended_with_its_node(task: Task, every: list[Task]) -> list[Task]:
    """Tasks of other services that ended on `task`'s node within
    ENGINE_STOP_WINDOW seconds of it, when at least ENGINE_STOP_SERVICES other
    services lost one: the node's engine stopped them all. [] otherwise."""
    at = task.timestamp
    if not task.node_id or at is None:
        return []
    others = [
        t
        for t in every
        if t.service_id != task.service_id
        and t.node_id == task.node_id
        and t.state in ENDED_STATES
        and t.timestamp is not None
        and abs((t.timestamp - at).total_seconds()) <= ENGINE_STOP_WINDOW
    ]
    if len({t.service_id for t in others}) < ENGINE_STOP_SERVICES:
        return []
    return others


def too_many_failures(failed: int, tasks: int, max_ratio: float) -> bool:
    """The engine's rule (swarmkit updater): fail when failed/total > ratio."""
    if failed == 0:
        return False
    return tasks <= 0 or failed / tasks > max_ratio


def stability_window(stable_for: float | None, monitor: float) -> float:
    """Seconds new tasks must stay up: the service's setting, else its update
    monitor window (Monitor 0 means the engine's 5 s)."""
    if stable_for is not None:
        return stable_for
    return monitor or DEFAULT_MONITOR


def running_for(task: Task, now: datetime) -> float | None:
    """Seconds `task` has been running at engine time `now` (negative when the
    engine dates its start after `now`); None when it does not run."""
    since = task.running_since
    return None if since is None else (now - since).total_seconds()


def not_yet_stable(
    running: list[Task],
    *,
    window: float,
    now: datetime,
    name_of: Callable[[Task], str],
) -> list[str]:
    """Names of running tasks that have run less than `window` seconds at engine
    time `now` (Task.running_since: the engine's time for their start)."""
    young = []
    for task in running:
        age = running_for(task, now)
        if age is None or age < window:
            young.append(name_of(task))
    return young


def window_left(running: list[Task], *, window: float, now: datetime) -> float | None:
    """Seconds from engine time `now` until the youngest of `running` has run
    `window` seconds; negative once it has (how long ago its window ended),
    None without tasks. A follower looks again when it runs out."""
    ages = [running_for(task, now) for task in running]
    if not ages:
        return None
    return window - min(0.0 if age is None else age for age in ages)


def stopping(
    tasks: list[Task], *, down: set[str] | frozenset[str] = frozenset()
) -> list[Task]:
    """Tasks told to stop (a scale-down, the old side of an update) that still
    run: a rollout is not over while they do. Not those on a node that is
    `down` (node ids): they were last heard running and can never report that
    they stopped; Swarm has replaced them on the nodes that are up."""
    return [
        t
        for t in tasks
        if not t.should_run and t.state in LIVE_STATES and t.node_id not in down
    ]


def outside_changes(
    applied: dict[str, Any], live: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """[(label, what we wrote, what the engine has now)] for a spec someone else
    wrote after us; [] when we wrote nothing yet (no record) or it is ours."""
    if not applied:
        return []
    return spec_differences(applied, live)


def explain_engine(state: str, message: str, failure_action: str) -> str:
    """The engine's UpdateStatus in plain words (swarmkit's updater: a new task
    that ends, or does not start, within its Monitor window counts as failed;
    past MaxFailureRatio the FailureAction is taken)."""
    if state == "paused":
        return (
            f"the engine paused the update: {message} (new tasks ended or did not "
            "start within the monitor window; with failure action "
            f"{failure_action} the service stays half-updated until an operator "
            "resumes, rolls back or replaces it)"
        )
    if state == "rollback_paused":
        return (
            f"the engine paused the rollback: {message} (the rolled-back tasks "
            "failed too; the service runs a mix of both specs until an operator "
            "replaces it)"
        )
    if state in ("rollback_started", "rollback_completed"):
        return (
            f"rolled back by the engine: {message} (new tasks ended or did not "
            "start within the monitor window, and the failure action is rollback)"
        )
    return message


def recent_ends(live_tasks: list[dict[str, Any]], *, since: datetime) -> list[str]:
    """From Service.live_tasks (grouped `docker service ps` rows): the tasks that
    ended on their own at or after `since`, newest first, e.g.
    `3 (dockercoins:1.1) failed, exit 3 at 16:04:01`. Shown after a rollout
    completed, when Swarm restarts dying tasks silently."""
    found = []
    for group in live_tasks:
        for row in group.get("tasks", []):
            at = parse_engine_time(row.get("since"))
            if row.get("state") not in ENDED_STATES or at is None or at < since:
                continue
            text = f"{group['slot']} ({row['image']}) {row['state']}"
            if row.get("exit_code") is not None:
                text += f", exit {row['exit_code']}"
            found.append((at, f"{text} at {at:%H:%M:%S}"))
    return [text for _, text in sorted(found, reverse=True)]
