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

On top of the engine's word (rules in rollouts.control.outcome): the spec judged is the
one we wrote, so a later outside write supersedes the rollout; a new task that
ends at any point is remembered and counted against the failure ratio; nothing
completes until new tasks stayed up the stability window, while tasks told to
stop still run, or while no task runs at all. This module observes and
records; rollouts.control.verdict decides.
"""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from rollouts.control import outcome
from rollouts.control.verdict import Decision, View, decide, task_labels, window
from rollouts.engine.client import ServiceNotFound, SwarmClient
from rollouts.engine.nodes import watch_nodes
from rollouts.models import (
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.records.describe import describe_failure
from rollouts.records.history import event, record_live
from rollouts.spec.specs import (
    parse_engine_time,
    short_image,
    task_fingerprint,
)

__all__ = ["Decision", "watch_step"]

ACTIVE_DESIRED = ("running", "ready")
FAILED_STATES = ("failed", "rejected")


def watch_step(rollout: Rollout, client: SwarmClient) -> Decision | None:
    service = rollout.service
    try:
        svc = client.inspect(service.name)
        tasks = client.tasks(svc["ID"])
        nodes = client.node_names()
        api_nodes = client.nodes()
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
        lost = watch_nodes(
            rollout, api_nodes=api_nodes, svc=svc, tasks=tasks, task_name=view.task_name
        )
        decision = decide(rollout, view, now, stuck_on_lost_node=lost)
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
    if revision is None:  # a rollback: the engine's previous spec, no image of ours
        return ""
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
    rollout: Rollout,
    svc: dict[str, Any],
    tasks: list[dict[str, Any]],
    nodes: dict[str, str],
    engine_now: datetime | None,
) -> View:
    spec = svc["Spec"]
    template = spec["TaskTemplate"]
    status = svc.get("ServiceStatus") or {}
    global_mode = "Global" in spec.get("Mode", {})
    replicas = (spec.get("Mode", {}).get("Replicated") or {}).get("Replicas", 1)
    want = status.get("DesiredTasks", len(nodes) if global_mode else replicas)
    view = View(
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
            window=window(rollout),
            now=engine_now,
            name_of=view.task_name,
        )
    return view


def _describe(view: View, task: dict) -> str:
    status = task["Status"]
    error = status.get("Err") or ""
    return f"{view.task_name(task)} {status['State']}" + (
        f" ({error})" if error else ""
    )


def _record_tasks(rollout: Rollout, view: View) -> None:
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
        applied_at = rollout.applied_at  # None only before our write
        if previous is None and created and applied_at and created < applied_at:
            continue
        image = short_image(task["Spec"]["ContainerSpec"]["Image"])
        message = (
            f"{view.task_name(task)} {task['ID'][:12]} ({image}): "
            f"{previous or 'new'} -> {state}"
        )
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        detail = status.get("Err") or (
            status.get("Message") if state in FAILED_STATES else ""
        )
        if detail:
            message += f": {detail}"  # the engine's text has the exit code
        elif state in outcome.ENDED_STATES and exit_code is not None:
            message += f", exit {exit_code}"  # exit 0: the engine says nothing
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
            event(rollout, "error", f"failed: {describe_failure(record)}")


def _record_progress(rollout: Rollout, view: View) -> None:
    if (rollout.tasks_done, rollout.tasks_total) != (view.done, view.want):
        rollout.tasks_done, rollout.tasks_total = view.done, view.want
        event(
            rollout,
            "progress",
            f"{view.done} of {view.want} tasks running {view.image}",
        )


def _record_update_state(rollout: Rollout, view: View) -> None:
    if view.update_state and view.update_state != rollout.update_state:
        rollout.update_state = view.update_state
        message = outcome.name_task_ids(view.update_message, task_labels(rollout, view))
        message = f" ({message})" if message else ""
        event(rollout, "state", f"engine: {view.update_state}{message}")
        if (
            view.update_state == "rollback_started"
            and rollout.kind == RolloutKind.APPLY
        ):
            # The only place the engine says why; rollback_completed just says
            # "rollback completed".
            rollout.reason = outcome.name_task_ids(
                view.update_message, task_labels(rollout, view)
            )
