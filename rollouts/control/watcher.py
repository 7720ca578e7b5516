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

from django.db import transaction
from django.utils import timezone

from rollouts.control import identity, outcome
from rollouts.control.verdict import (
    Decision,
    View,
    decide,
    look_again_in,
    task_labels,
    window,
)
from rollouts.engine.client import ServiceNotFound, SwarmClient
from rollouts.engine.nodes import updater_stuck_on_lost_node, watch_nodes
from rollouts.engine.objects import SwarmService, Task
from rollouts.models import (
    Rollout,
    RolloutKind,
    RolloutState,
    Service,
)
from rollouts.records.describe import describe_failure
from rollouts.records.history import event, record_live
from rollouts.spec.specs import meant_spec

__all__ = ["Decision", "watch_step"]

FAILED_STATES = ("failed", "rejected")


def watch_step(rollout: Rollout, client: SwarmClient) -> Decision | None:
    service = rollout.service
    try:
        svc = client.inspect(service.name)
        # Every service's tasks: a task's end is judged with its node's others.
        every = client.tasks()
        tasks = [t for t in every if t.service_id == svc.id]
        swarm_nodes = client.nodes()
        nodes = client.node_names(swarm_nodes)
        engine_now = client.engine_time()
    except ServiceNotFound:
        Service.objects.filter(pk=service.pk).update(missing=True)
        return Decision(
            RolloutState.FAILED, f"service {service.name} no longer exists in the swarm"
        )
    now = timezone.now()
    if rollout.applied_spec:
        # A record from before specs were stored as meant names networks by
        # id; those of this deploy still resolve.
        rollout.applied_spec = meant_spec(rollout.applied_spec, svc.network_names)
    down = {n.id for n in swarm_nodes if n.down}
    view = _view(rollout, svc, tasks, nodes, engine_now, down)
    if view.converged and not view.young and rollout.revision is not None:
        view.image_moved = _image_moved(rollout, client)
        if not view.image_moved:
            view.wrong_build = _wrong_build(rollout, view, client)
    with transaction.atomic():
        record_live(service, svc, tasks, nodes, now)
        _record_tasks(rollout, view, every)
        _record_progress(rollout, view)
        _record_update_state(rollout, view)
        _record_unplaced(rollout, view)
        lost = watch_nodes(
            rollout, nodes=swarm_nodes, svc=svc, tasks=tasks, task_name=view.task_name
        )
        stuck = updater_stuck_on_lost_node(
            update_state=rollout.update_state,
            svc=svc,
            tasks=tasks,
            nodes=swarm_nodes,
            task_name=view.task_name,
        )
        decision = decide(
            rollout, view, now, stuck_on_lost_node=lost, updater_stuck=stuck
        )
        rollout.look_again_in = None if decision else look_again_in(view)
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
    if found.image_id != revision.image_id:
        return (
            f"{reference} now names image {found.image_id[7:19]}, not "
            f"{revision.image_id[7:19]} recorded in revision {revision.number}"
        )
    return ""


def _wrong_build(rollout: Rollout, view: View, client: SwarmClient) -> str:
    """Identity again, of the containers: a tag rebuilt before the write names
    the revision's image, but tasks the engine did not re-create run the old
    build (rollouts.control.identity)."""
    revision = rollout.revision
    if revision is None or not revision.image_id:
        return ""
    stale = identity.other_builds(client, view.running, revision.image_id)
    if not stale:
        return ""
    spec = revision.spec
    return (
        f"{len(stale)} of {view.want} tasks run image "
        f"{', '.join(sorted(set(stale)))}, not {revision.image_id[7:19]} that "
        f"{spec['image']}:{spec['tag']} names in revision {revision.number}"
    )


def _view(
    rollout: Rollout,
    svc: SwarmService,
    tasks: list[Task],
    nodes: dict[str, str],
    engine_now: datetime | None,
    down: set[str] | None = None,
) -> View:
    want = svc.desired_tasks
    if want is None:
        want = len(nodes) if svc.is_global else (svc.replicas or 0)
    view = View(
        name=svc.name,
        image=svc.short_image,
        tasks=tasks,
        want=want,
        spec=svc.meant_spec,
        engine_now=engine_now,
        updated_at=svc.updated_at,
        nodes=nodes,
        global_mode=svc.is_global,
        constraints=svc.constraints,
    )
    current = [t for t in tasks if t.should_run]
    running = [t for t in current if t.running and t.fingerprint == svc.fingerprint]
    view.done = len(running)
    view.running = running
    view.stopping = [
        view.task_name(t) for t in outcome.stopping(tasks, down=down or set())
    ]
    view.converged = view.done == want == len(current) and not view.stopping
    update, applied = svc.update, rollout.applied_at
    if update and update.started_at and applied and update.started_at >= applied:
        view.update_state = update.state
        view.update_message = update.message
    view.stuck = [_describe(view, t) for t in current if not t.running]
    # While an old task still stops, a new one may wait for what it holds (a
    # host-mode port, its slot under max replicas per node, its reservation):
    # the scheduler's reason then ends by itself, so it is not named yet.
    view.unplaced = (
        [] if view.stopping else [_describe(view, t) for t in current if t.unplaced]
    )
    new_running = [
        t
        for t in running
        if rollout.applied_at
        and (t.created_at or rollout.applied_at) >= rollout.applied_at
    ]
    if engine_now is not None:
        view.young = outcome.not_yet_stable(
            new_running,
            window=window(rollout),
            now=engine_now,
            name_of=view.task_name,
        )
        view.window_left = outcome.window_left(
            new_running, window=window(rollout), now=engine_now
        )
    return view


def _describe(view: View, task: Task) -> str:
    return f"{view.task_name(task)} {task.state}" + (
        f" ({task.err})" if task.err else ""
    )


def _record_tasks(rollout: Rollout, view: View, every: list[Task]) -> None:
    """One event per task state change; tasks older than our write start silently.
    New tasks that ended are remembered in rollout.failures as first seen,
    except those that ended with their node's engine (`every`: all services'
    tasks; rollouts.control.outcome.ended_with_its_node)."""
    seen = dict(rollout.seen_tasks or {})
    names = dict(rollout.task_names or {})
    now_seen = {}
    for task in sorted(view.tasks, key=lambda t: t.created_key):
        names[task.id] = view.task_name(task)
        state, previous = task.state, seen.get(task.id)
        now_seen[task.id] = state
        if state == previous:
            continue
        created = task.created_at
        applied_at = rollout.applied_at  # None only before our write
        if previous is None and created and applied_at and created < applied_at:
            continue
        message = (
            f"{view.task_name(task)} {task.id[:12]} ({task.short_image}): "
            f"{previous or 'new'} -> {state}"
        )
        exit_code = task.exit_code
        detail = task.err or (task.message if state in FAILED_STATES else "")
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
    found = [r for r in found if not _ended_with_its_node(rollout, view, r, every)]
    if found:
        rollout.failures = [*(rollout.failures or []), *found]
        for record in found:
            event(rollout, "error", f"failed: {describe_failure(record)}")


def _ended_with_its_node(
    rollout: Rollout, view: View, record: dict, every: list[Task]
) -> bool:
    """True (and said once in the events) when the task of `record` ended
    because its node's engine stopped, not because of the new spec."""
    task = next((t for t in view.tasks if t.id == record["task"]), None)
    others = outcome.ended_with_its_node(task, every) if task else []
    if not others:
        return False
    node = view.nodes.get(task.node_id, task.node_id[:12]) if task else "?"
    services = len({t.service_id for t in others})
    message = (
        f"{record['slot']} {record['task'][:12]} ({record['image']}) ended with "
        f"every task on {node}: {len(others)} task(s) of {services} other "
        "service(s) ended at the same moment, so the node's engine stopped them "
        "(a restart); not counted as a failure of the new spec"
    )
    if not rollout.events.filter(kind="info", message=message).exists():
        event(rollout, "info", message)
    return True


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


UNPLACED_EVENT = "unplaced"


def _record_unplaced(rollout: Rollout, view: View) -> None:
    """Name the tasks the scheduler cannot place, with the engine's reason
    (resources, constraints, max replicas per node, platform), as soon as
    they are seen: one event each time the set changes, so an operator knows
    at once why a count stays short instead of learning it at the deadline."""
    if not view.unplaced:
        return
    message = (
        f"{len(view.unplaced)} task(s) cannot be placed on any node: "
        f"{'; '.join(view.unplaced[:5])}. Swarm keeps trying: a node that "
        "fits (joined, labeled, freed) places them; else the progress deadline "
        "ends the rollout"
    )
    last = rollout.events.filter(kind=UNPLACED_EVENT).order_by("-pk").first()
    if last is None or last.message != message:
        event(rollout, UNPLACED_EVENT, message)
