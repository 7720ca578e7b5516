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

On top of the engine's word (rules in rollouts.outcome): the spec judged is the
one we wrote, so a later outside write supersedes the rollout; a new task that
ends at any point is remembered and counted against the failure ratio; nothing
completes until new tasks stayed up the stability window, while tasks told to
stop still run, or while no task runs at all.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from rollouts import outcome
from rollouts.history import event, record_live
from rollouts.models import (
    DeadlineAction,
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.specs import (
    human_duration,
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
    rollback: bool = False  # take the engine rollback first
    cause: str = ""  # why the rollback is taken, for its follow-up rollout


@dataclass
class _View:
    """The service as the engine reports it, reduced to what the watcher needs."""

    name: str
    image: str
    tasks: list[dict]
    want: int
    spec: dict = field(default_factory=dict)
    engine_now: datetime | None = None
    updated_at: str = ""
    done: int = 0
    converged: bool = False
    update_state: str = ""
    update_message: str = ""
    stuck: list[str] = field(default_factory=list)
    stopping: list[str] = field(default_factory=list)
    young: list[str] = field(default_factory=list)
    nodes: dict = field(default_factory=dict)
    global_mode: bool = False
    image_moved: str = ""  # the tag now names another image than the revision's

    def task_name(self, task: dict) -> str:
        return outcome.task_name(self.name, task, self.nodes)


def watch_step(rollout: Rollout, client: SwarmClient) -> Decision | None:
    service = rollout.service
    try:
        svc = client.inspect(service.name)
        tasks = client.tasks(svc["ID"])
        nodes = client.node_names()
        engine_now = client.engine_time()
    except ServiceNotFound:
        Service.objects.filter(pk=service.pk).update(missing=True)
        return Decision(
            RolloutState.FAILED, f"service {service.name} no longer exists in the swarm"
        )
    now = timezone.now()
    view = _view(rollout, svc, tasks, nodes, engine_now)
    if view.converged and not view.young and rollout.revision is not None:
        view.image_moved = _image_moved(rollout, client)
    with transaction.atomic():
        record_live(service, svc, tasks, nodes, now)
        _record_tasks(rollout, view)
        _record_progress(rollout, view)
        _record_update_state(rollout, view)
        decision = _decide(rollout, view, now)
        rollout.save(
            update_fields=[
                "seen_tasks",
                "task_names",
                "failures",
                "tasks_done",
                "tasks_total",
                "update_state",
                "reason",
            ]
        )
    return decision


def _image_moved(rollout: Rollout, client: SwarmClient) -> str:
    """Identity, not the tag string: the revision recorded which image its tag
    named; a retag since means the tasks may run something else."""
    revision = rollout.revision
    spec = revision.spec
    reference = f"{spec['image']}:{spec['tag']}"
    if not revision.image_id:
        return ""
    found = client.image(reference)
    if found is None:
        return f"image {reference} is no longer on the engine"
    if found["image_id"] != revision.image_id:
        return (
            f"{reference} now names image {found['image_id'][7:19]}, not "
            f"{revision.image_id[7:19]} recorded in revision {revision.number}"
        )
    return ""


def _view(
    rollout: Rollout, svc: dict, tasks: list[dict], nodes: dict, engine_now
) -> _View:
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
        spec=spec,
        engine_now=engine_now,
        updated_at=svc.get("UpdatedAt", ""),
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
    view.stopping = [
        view.task_name(t)
        for t in outcome.stopping(tasks, active_desired=ACTIVE_DESIRED)
    ]
    view.converged = view.done == want == len(current) and not view.stopping
    update = svc.get("UpdateStatus") or {}
    started = parse_engine_time(update.get("StartedAt"))
    if started and rollout.applied_at and started >= rollout.applied_at:
        view.update_state = update.get("State", "")
        view.update_message = update.get("Message", "")
    view.stuck = [
        _describe(view, t) for t in current if t["Status"]["State"] != "running"
    ]
    new_running = [
        t
        for t in running
        if rollout.applied_at
        and (parse_engine_time(t.get("CreatedAt")) or rollout.applied_at)
        >= rollout.applied_at
    ]
    if engine_now is not None:
        view.young = outcome.not_yet_stable(
            new_running,
            window=_window(rollout),
            now=engine_now,
            name_of=view.task_name,
        )
    return view


def _window(rollout: Rollout) -> float:
    service = rollout.service
    return outcome.stability_window(service.stable_for, service.update_monitor)


def _describe(view: _View, task: dict) -> str:
    status = task["Status"]
    error = status.get("Err") or ""
    return f"{view.task_name(task)} {status['State']}" + (
        f" ({error})" if error else ""
    )


def _record_tasks(rollout: Rollout, view: _View) -> None:
    """One event per task state change; tasks older than our write start silently.
    New tasks that ended are remembered in rollout.failures as first seen."""
    seen = dict(rollout.seen_tasks or {})
    names = dict(rollout.task_names or {})
    now_seen = {}
    for task in sorted(view.tasks, key=lambda t: t.get("CreatedAt", "")):
        status = task["Status"]
        names[task["ID"]] = view.task_name(task)
        state, previous = status["State"], seen.get(task["ID"])
        now_seen[task["ID"]] = state
        if state == previous:
            continue
        created = parse_engine_time(task.get("CreatedAt"))
        if previous is None and created and created < rollout.applied_at:
            continue
        image = short_image(task["Spec"]["ContainerSpec"]["Image"])
        message = (
            f"{view.task_name(task)} {task['ID'][:12]} ({image}): "
            f"{previous or 'new'} -> {state}"
        )
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        if state in outcome.ENDED_STATES and exit_code is not None:
            message += f", exit {exit_code}"
        detail = status.get("Err") or (
            status.get("Message") if state in FAILED_STATES else ""
        )
        if detail:
            message += f": {detail}"
        event(rollout, "task", message)
    rollout.seen_tasks = now_seen
    rollout.task_names = names
    found = outcome.new_failures(
        view.tasks,
        applied_at=rollout.applied_at,
        known=rollout.failures or [],
        name_of=view.task_name,
    )
    if found:
        rollout.failures = [*(rollout.failures or []), *found]
        for record in found:
            event(rollout, "error", f"failed: {outcome.describe_failure(record)}")


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
        message = outcome.name_task_ids(view.update_message, _names(rollout, view))
        message = f" ({message})" if message else ""
        event(rollout, "state", f"engine: {view.update_state}{message}")
        if (
            view.update_state == "rollback_started"
            and rollout.kind == RolloutKind.APPLY
        ):
            # The only place the engine says why; rollback_completed just says
            # "rollback completed".
            rollout.reason = outcome.name_task_ids(
                view.update_message, _names(rollout, view)
            )


def _names(rollout: Rollout, view: _View) -> dict[str, str]:
    names = dict(rollout.task_names or {})
    for task in view.tasks:
        names[task["ID"]] = view.task_name(task)
    return {tid: f"{name} ({tid[:12]})" for tid, name in names.items()}


def _failed_slots(rollout: Rollout) -> str:
    text = outcome.describe_failures(rollout.failures or [])
    return f"; failed: {text}" if text else ""


def _decide(rollout: Rollout, view: _View, now) -> Decision | None:
    superseded = _superseded(rollout, view)
    if superseded:
        return Decision(RolloutState.SUPERSEDED, superseded)
    state = view.update_state
    message = outcome.name_task_ids(view.update_message, _names(rollout, view))
    failures = _failed_slots(rollout)
    service = rollout.service
    plain = outcome.explain_engine(state, message, service.update_failure_action)
    if state in ("paused", "rollback_paused"):
        return Decision(RolloutState.PAUSED, f"{plain}{failures}")
    if state == "rollback_completed" and rollout.kind == RolloutKind.APPLY:
        why = outcome.explain_engine(
            state, rollout.reason or message, service.update_failure_action
        )
        return Decision(RolloutState.ROLLED_BACK, f"{why}{failures}")
    too_many = _too_many_failures(rollout, view, failures)
    if too_many is not None:
        return too_many
    if view.converged and state in ("", "completed", "rollback_completed"):
        return _complete(rollout, view, now)
    return _deadline(rollout, view, now, failures)


def _superseded(rollout: Rollout, view: _View) -> str:
    if view.update_state.startswith("rollback"):
        return ""  # the engine's own rollback of our update rewrote the spec
    changes = outcome.outside_changes(rollout.applied_spec, view.spec)
    if not changes:
        return ""
    what = "; ".join(f"{label} {ours} -> {theirs}" for label, ours, theirs in changes)
    when = parse_engine_time(view.updated_at)
    at = f" at {when:%H:%M:%S} UTC (engine time)" if when else ""
    return (
        f"superseded by a change made outside{at}: {what}. The swarm no longer "
        "runs the spec this rollout wrote; `rollout plan` shows the drift"
    )


def _too_many_failures(rollout: Rollout, view: _View, failures: str) -> Decision | None:
    service = rollout.service
    ratio = (
        service.rollback_max_failure_ratio
        if rollout.kind == RolloutKind.ROLLBACK
        else service.update_max_failure_ratio
    )
    failed = {record["slot"] for record in rollout.failures or []}
    if not outcome.too_many_failures(len(failed), max(view.want, 1), ratio):
        return None
    if view.update_state not in ("", "completed"):
        # The engine is still updating or rolling back: within its monitor
        # window it acts on failures itself; its verdict comes first.
        return None
    reason = (
        f"{len(failed)} of {view.want} new tasks ended during the rollout "
        f"(max failure ratio {ratio:g}){failures}"
    )
    if (
        rollout.kind == RolloutKind.APPLY
        and service.update_failure_action == "rollback"
    ):
        return Decision(
            RolloutState.FAILED,
            reason,
            rollback=True,
            cause=f"new tasks of rollout #{rollout.pk} failed",
        )
    return Decision(RolloutState.FAILED, reason)


def _complete(rollout: Rollout, view: _View, now) -> Decision | None:
    asked_none = not view.global_mode and rollout.service.replicas == 0
    if view.want == 0 and not asked_none:
        return _nothing_runs(rollout, view)
    if view.young:
        _note_once(
            rollout,
            f"all {view.want} tasks running; waiting until they have been up "
            f"{human_duration(_window(rollout))} (stability window)",
        )
        return None
    if view.image_moved:
        return Decision(
            RolloutState.SUPERSEDED,
            f"superseded: {view.image_moved}; the tasks may not run the image "
            "this rollout wrote",
        )
    if rollout.kind == RolloutKind.ROLLBACK:
        done = f"rolled back to the previous spec ({view.image})"
    elif asked_none:
        done = "scaled to 0: no task runs, as asked"
    else:
        done = f"{view.done} of {view.want} tasks running {view.image}"
    return Decision(RolloutState.COMPLETED, done)


def _nothing_runs(rollout: Rollout, view: _View) -> Decision | None:
    """Zero tasks wanted is never success; the engine's count settles within a
    moment of the write, so wait the stability window before saying so."""
    applied = rollout.applied_at
    now = view.engine_now
    if applied and now and (now - applied).total_seconds() < _window(rollout):
        return None
    constraints = (view.spec["TaskTemplate"].get("Placement") or {}).get(
        "Constraints"
    ) or []
    where = f" (placement constraints: {', '.join(constraints)})" if constraints else ""
    if view.global_mode:
        what = f"a global service on 0 eligible nodes of {len(view.nodes)}{where}"
    else:
        what = f"0 runnable tasks{where}"
    return Decision(RolloutState.FAILED, f"nothing runs: {what}")


def _note_once(rollout: Rollout, message: str) -> None:
    if not rollout.events.filter(kind="info", message=message).exists():
        event(rollout, "info", message)


def _deadline(rollout: Rollout, view: _View, now, failures: str) -> Decision | None:
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
