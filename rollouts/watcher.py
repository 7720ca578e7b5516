"""One look at a rollout in progress: record what changed, decide if it ended.

The engine reports a rolling update through the service's UpdateStatus
(updating, paused, completed, rollback_started, rollback_paused,
rollback_completed). It only counts if it started after our write
(Rollout.applied_at, engine time): an older one belongs to someone else's update.
A change that does not touch the task template (replicas, policies) or a
re-created service produces no UpdateStatus at all; such a rollout is done when
its tasks converge: as many running as desired, all on the current spec.
Swarm never gives up on its own, so a progress deadline ends a rollout that
does not converge.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from rollouts.fields import human_duration
from rollouts.history import event, record_live
from rollouts.models import (
    DeadlineAction,
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.nodes import watch_nodes
from rollouts.specs import (
    parse_engine_time,
    short_image,
    task_fingerprint,
)
from rollouts.swarm import ServiceNotFound, SwarmClient

ACTIVE_DESIRED = ("running", "ready")
FAILED_STATES = ("failed", "rejected")


@dataclass
class Decision:
    state: str
    reason: str
    rollback: bool = False  # take the engine rollback first (deadline action)


@dataclass
class _View:
    """The service as the engine reports it, reduced to what the watcher needs."""

    name: str
    image: str
    tasks: list[dict]
    want: int
    done: int = 0
    converged: bool = False
    update_state: str = ""
    update_message: str = ""
    failures: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    nodes: dict = field(default_factory=dict)
    global_mode: bool = False

    def task_name(self, task: dict) -> str:
        where = task.get("Slot") or self.nodes.get(task.get("NodeID"), "?")
        return f"{self.name}.{where}"


def watch_step(rollout: Rollout, client: SwarmClient) -> Decision | None:
    service = rollout.service
    try:
        svc = client.inspect(service.name)
        tasks = client.tasks(svc["ID"])
        nodes = client.node_names()
        api_nodes = client.nodes()
    except ServiceNotFound:
        Service.objects.filter(pk=service.pk).update(missing=True)
        return Decision(
            RolloutState.FAILED, f"service {service.name} no longer exists in the swarm"
        )
    now = timezone.now()
    view = _view(rollout, svc, tasks, nodes)
    with transaction.atomic():
        record_live(service, svc, tasks, nodes, now)
        _record_tasks(rollout, view)
        _record_progress(rollout, view)
        _record_update_state(rollout, view)
        lost = watch_nodes(
            rollout, api_nodes=api_nodes, svc=svc, tasks=tasks, task_name=view.task_name
        )
        decision = (
            Decision(RolloutState.COMPLETED, lost)
            if lost
            else _decide(rollout, view, now)
        )
        rollout.save(
            update_fields=[
                "seen_tasks",
                "tasks_done",
                "tasks_total",
                "update_state",
                "reason",
            ]
        )
    return decision


def _view(rollout: Rollout, svc: dict, tasks: list[dict], nodes: dict) -> _View:
    spec = svc["Spec"]
    template = spec["TaskTemplate"]
    status = svc.get("ServiceStatus") or {}
    global_mode = "Global" in spec.get("Mode", {})
    replicas = (spec.get("Mode", {}).get("Replicated") or {}).get("Replicas", 1)
    want = status.get("DesiredTasks", len(nodes) if global_mode else replicas)
    view = _View(
        name=spec["Name"],
        image=short_image(template["ContainerSpec"]["Image"]),
        tasks=tasks,
        want=want,
        nodes=nodes,
        global_mode=global_mode,
    )
    fingerprint = task_fingerprint(template)
    current = [t for t in tasks if t.get("DesiredState") in ACTIVE_DESIRED]
    running = [
        t
        for t in current
        if t["Status"]["State"] == "running"
        and task_fingerprint(t["Spec"]) == fingerprint
    ]
    view.done = len(running)
    view.converged = view.done == want == len(current)
    update = svc.get("UpdateStatus") or {}
    started = parse_engine_time(update.get("StartedAt"))
    if started and rollout.applied_at and started >= rollout.applied_at:
        view.update_state = update.get("State", "")
        view.update_message = update.get("Message", "")
    view.stuck = [
        _describe(view, t) for t in current if t["Status"]["State"] != "running"
    ]
    view.failures = _failures(view, tasks, rollout)
    return view


def _describe(view: _View, task: dict) -> str:
    status = task["Status"]
    error = status.get("Err") or ""
    return f"{view.task_name(task)} {status['State']}" + (
        f" ({error})" if error else ""
    )


def _failures(view: _View, tasks: list[dict], rollout: Rollout) -> list[str]:
    """The engine's error text of tasks that failed since our write, distinct."""
    seen, found = set(), []
    for task in sorted(tasks, key=lambda t: t.get("CreatedAt", "")):
        created = parse_engine_time(task.get("CreatedAt"))
        status = task["Status"]
        if rollout.applied_at and created and created < rollout.applied_at:
            continue
        error = status.get("Err") or ""
        if status["State"] in FAILED_STATES and error not in seen:
            seen.add(error)
            image = short_image(task["Spec"]["ContainerSpec"]["Image"])
            found.append(
                f"{view.task_name(task)} ({image}): {error or status['State']}"
            )
    return found


def _record_tasks(rollout: Rollout, view: _View) -> None:
    """One event per task state change; tasks older than our write start silently."""
    seen = dict(rollout.seen_tasks or {})
    now_seen = {}
    for task in sorted(view.tasks, key=lambda t: t.get("CreatedAt", "")):
        status = task["Status"]
        state, previous = status["State"], seen.get(task["ID"])
        now_seen[task["ID"]] = state
        if state == previous:
            continue
        created = parse_engine_time(task.get("CreatedAt"))
        applied_at = rollout.applied_at  # None only before our write
        if previous is None and created and applied_at and created < applied_at:
            continue
        image = short_image(task["Spec"]["ContainerSpec"]["Image"])
        message = (
            f"{view.task_name(task)} {task['ID'][:12]} ({image}): "
            f"{previous or 'new'} -> {state}"
        )
        detail = status.get("Err") or (
            status.get("Message") if state in FAILED_STATES else ""
        )
        if detail:
            message += f": {detail}"
        event(rollout, "task", message)
    rollout.seen_tasks = now_seen


def _record_progress(rollout: Rollout, view: _View) -> None:
    if (rollout.tasks_done, rollout.tasks_total) != (view.done, view.want):
        rollout.tasks_done, rollout.tasks_total = view.done, view.want
        event(
            rollout,
            "progress",
            f"{view.done} of {view.want} tasks running {view.image}",
        )


def _record_update_state(rollout: Rollout, view: _View) -> None:
    if view.update_state and view.update_state != rollout.update_state:
        rollout.update_state = view.update_state
        message = f" ({view.update_message})" if view.update_message else ""
        event(rollout, "state", f"engine: {view.update_state}{message}")
        if (
            view.update_state == "rollback_started"
            and rollout.kind == RolloutKind.APPLY
        ):
            # The only place the engine says why; rollback_completed just says
            # "rollback completed". It names the task by ID: name it as we do.
            reason = view.update_message
            for task in view.tasks:
                name = f"{view.task_name(task)} ({task['ID'][:12]})"
                reason = reason.replace(task["ID"], name)
            rollout.reason = reason


def _decide(rollout: Rollout, view: _View, now: datetime) -> Decision | None:
    state, message = view.update_state, view.update_message
    failures = (
        f"; failed tasks: {', '.join(view.failures[:3])}" if view.failures else ""
    )
    if state == "paused":
        return Decision(
            RolloutState.PAUSED, f"the engine paused the update: {message}{failures}"
        )
    if state == "rollback_paused":
        return Decision(
            RolloutState.PAUSED, f"the engine paused the rollback: {message}{failures}"
        )
    if state == "rollback_completed" and rollout.kind == RolloutKind.APPLY:
        why = rollout.reason or message
        return Decision(
            RolloutState.ROLLED_BACK, f"rolled back by the engine: {why}{failures}"
        )
    if view.converged and state in ("", "completed", "rollback_completed"):
        if rollout.kind == RolloutKind.ROLLBACK:
            done = f"rolled back to the previous spec ({view.image})"
        else:
            done = f"{view.done} of {view.want} tasks running {view.image}"
        return Decision(RolloutState.COMPLETED, done)
    return _deadline(rollout, view, now, failures)


def _deadline(
    rollout: Rollout, view: _View, now: datetime, failures: str
) -> Decision | None:
    service = rollout.service
    started = rollout.started_at or rollout.requested_at
    if (now - started).total_seconds() <= service.progress_deadline:
        return None
    reason = (
        f"progress deadline of {human_duration(service.progress_deadline)} passed "
        f"with {view.done} of {view.want} tasks running {view.image}"
    )
    if view.stuck:
        reason += f"; not running: {', '.join(view.stuck[:5])}"
    reason += failures
    action = service.deadline_action
    if action == DeadlineAction.PAUSE:
        return Decision(
            RolloutState.PAUSED,
            f"{reason}. Left for an operator: the engine has no pause call, so "
            "Swarm keeps trying; the controller stopped watching",
        )
    rolling_back = view.update_state.startswith("rollback")
    if (
        action == DeadlineAction.ROLLBACK
        and rollout.kind == RolloutKind.APPLY
        and not rolling_back
    ):
        return Decision(RolloutState.FAILED, reason, rollback=True)
    return Decision(RolloutState.FAILED, reason)
