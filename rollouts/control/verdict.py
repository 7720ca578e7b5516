"""The verdict on a rollout from one look at the service: the rules of
rollouts.control.outcome applied to what rollouts.control.watcher observed.

Order matters: an outside write supersedes whatever else is seen; the
engine's own pause or rollback comes next; then our own count of failed new
tasks (once the engine's update is over, since within its monitor window the
engine acts first); then completion, which needs convergence, no task still
stopping, something running, the stability window and the revision's image
identity; else the progress deadline.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollouts.control import outcome
from rollouts.engine.objects import Task
from rollouts.models import Rollout, RolloutKind, RolloutState
from rollouts.records.describe import describe_failures
from rollouts.records.history import event
from rollouts.spec.choices import DeadlineAction
from rollouts.spec.fields import human_duration


@dataclass
class Decision:
    state: str
    reason: str
    rollback: bool = False  # take the engine rollback first
    cause: str = ""  # why the rollback is taken, for its follow-up rollout


@dataclass
class View:
    """The service as the engine reports it, reduced to what the watcher needs."""

    name: str
    image: str
    tasks: list[Task]
    want: int
    spec: dict[str, Any] = field(default_factory=dict[str, Any])  # as meant
    engine_now: datetime | None = None
    updated_at: datetime | None = None
    done: int = 0
    converged: bool = False
    update_state: str = ""
    update_message: str = ""
    stuck: list[str] = field(default_factory=list)
    # The scheduler could not place these: "name pending (the engine's why)".
    unplaced: list[str] = field(default_factory=list)
    stopping: list[str] = field(default_factory=list)
    young: list[str] = field(default_factory=list)
    nodes: dict[str, Any] = field(default_factory=dict[str, Any])
    global_mode: bool = False
    constraints: list[str] = field(default_factory=list)
    image_moved: str = ""  # the tag now names another image than the revision's
    wrong_build: str = ""  # tasks run another build than the revision names
    running: list[Task] = field(default_factory=list)  # on the current spec
    # Seconds until the new tasks' stability window ends (negative: since it
    # ended), engine time; None when no new task runs (outcome.window_left).
    window_left: float | None = None

    def task_name(self, task: Task) -> str:
        return outcome.task_name(self.name, task, self.nodes)


def window(rollout: Rollout) -> float:
    service = rollout.service
    return outcome.stability_window(service.stable_for, service.update_monitor)


# While the engine's verdict on an update is due (every new task has run its
# window, the UpdateStatus still says updating), look this often (seconds), for
# at most VERDICT_DUE_FOR seconds past the window's end: swarmkit's updater
# completes one Monitor period after it saw the last task running, which is
# within a moment of the engine's Status.Timestamp our window starts from.
VERDICT_DUE_LOOK = 0.1
VERDICT_DUE_FOR = 2.0


def look_again_in(view: View) -> float | None:
    """Seconds after which the next look can change the verdict, for a follower
    that would otherwise wait its usual interval; None: no better guess. The
    end of the stability window is known in advance (the engine dated each
    task's start), and the engine's own verdict follows it closely."""
    left = view.window_left
    if left is None:
        return None
    if view.young:
        return max(left, 0.0)
    if (
        view.converged
        and view.update_state in ("updating", "rollback_started")
        and -left < VERDICT_DUE_FOR
    ):
        return VERDICT_DUE_LOOK
    return None


def task_labels(rollout: Rollout, view: View) -> dict[str, str]:
    names = dict(rollout.task_names or {})
    for task in view.tasks:
        names[task.id] = view.task_name(task)
    return {tid: f"{name} ({tid[:12]})" for tid, name in names.items()}


def _failed_slots(rollout: Rollout) -> str:
    text = describe_failures(rollout.failures or [])
    return f"; failed: {text}" if text else ""


def decide(
    rollout: Rollout,
    view: View,
    now: datetime,
    stuck_on_lost_node: str | None = None,
    updater_stuck: str | None = None,
) -> Decision | None:
    """The verdict of one look, or None to look again. `stuck_on_lost_node`
    (rollouts.engine.nodes) is the reason to give when every task runs the new
    spec and only the engine's updater still waits for a task of a lost node;
    `updater_stuck`, the reason to fail at once when that updater stopped for
    good on a lost node with other slots still on the old spec."""
    superseded = _superseded(rollout, view)
    if superseded:
        return Decision(RolloutState.SUPERSEDED, superseded)
    state = view.update_state
    message = outcome.name_task_ids(view.update_message, task_labels(rollout, view))
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
        return _complete(rollout, view)
    if stuck_on_lost_node:
        # The engine stays "updating" for good (rollouts.engine.nodes): judge the
        # tasks as for any completion (stability, identity), with its reason.
        done = _complete(rollout, view)
        if done is not None and done.state == RolloutState.COMPLETED:
            return Decision(RolloutState.COMPLETED, stuck_on_lost_node)
        return done
    if updater_stuck:
        # No progress is possible until someone writes the service again:
        # waiting for the deadline would only hide it.
        short = service.short_name
        return Decision(
            RolloutState.FAILED,
            f"{updater_stuck}{failures}. Way out: `rollout undo {short}` puts the "
            f"previous revision back, or `rollout apply {short}` with a change "
            "starts a new update; either replaces the stuck one",
        )
    return _deadline(rollout, view, now, failures)


def _superseded(rollout: Rollout, view: View) -> str:
    if view.update_state.startswith("rollback"):
        return ""  # the engine's own rollback of our update rewrote the spec
    changes = outcome.outside_changes(rollout.applied_spec, view.spec)
    if not changes:
        return ""
    what = "; ".join(f"{label} {ours} -> {theirs}" for label, ours, theirs in changes)
    when = view.updated_at
    at = f" at {when:%H:%M:%S} UTC (engine time)" if when else ""
    return (
        f"superseded by a change made outside{at}: {what}. The swarm no longer "
        "runs the spec this rollout wrote; `rollout plan` shows the drift"
    )


def _too_many_failures(rollout: Rollout, view: View, failures: str) -> Decision | None:
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


def _complete(rollout: Rollout, view: View) -> Decision | None:
    asked_none = not view.global_mode and rollout.service.replicas == 0
    if view.want == 0 and not asked_none:
        return _nothing_runs(rollout, view)
    if view.young:
        _note_once(
            rollout,
            f"all {view.want} tasks running; waiting until they have been up "
            f"{human_duration(window(rollout))} (stability window)",
        )
        return None
    if view.image_moved:
        return Decision(
            RolloutState.SUPERSEDED,
            f"superseded: {view.image_moved}; the tasks may not run the image "
            "this rollout wrote",
        )
    if view.wrong_build:
        spec = rollout.revision.spec if rollout.revision else {}
        return Decision(
            RolloutState.FAILED,
            f"{view.wrong_build}: the engine did not re-create them; `rollout "
            f"apply {rollout.service.short_name} --image-tag {spec.get('tag')}` "
            "forces it",
        )
    if rollout.kind == RolloutKind.ROLLBACK:
        done = f"rolled back to the previous spec ({view.image})"
    elif asked_none:
        done = "scaled to 0: no task runs, as asked"
    else:
        done = f"{view.done} of {view.want} tasks running {view.image}"
    return Decision(RolloutState.COMPLETED, done)


def _nothing_runs(rollout: Rollout, view: View) -> Decision | None:
    """Zero tasks wanted is never success; the engine's count settles within a
    moment of the write, so wait the stability window before saying so."""
    applied = rollout.applied_at
    now = view.engine_now
    if applied and now and (now - applied).total_seconds() < window(rollout):
        return None
    constraints = view.constraints
    where = f" (placement constraints: {', '.join(constraints)})" if constraints else ""
    if view.global_mode:
        what = f"a global service on 0 eligible nodes of {len(view.nodes)}{where}"
    else:
        what = f"0 runnable tasks{where}"
    return Decision(RolloutState.FAILED, f"nothing runs: {what}")


def _note_once(rollout: Rollout, message: str) -> None:
    if not rollout.events.filter(kind="info", message=message).exists():
        event(rollout, "info", message)


def _deadline(
    rollout: Rollout, view: View, now: datetime, failures: str
) -> Decision | None:
    service = rollout.service
    started = rollout.started_at or rollout.requested_at
    if (now - started).total_seconds() <= service.progress_deadline:
        return None
    reason = (
        f"progress deadline of {human_duration(service.progress_deadline)} passed "
        f"with {view.done} of {view.want} tasks running {view.image}"
    )
    if view.unplaced:
        # The scheduler's own reason first: it says what would cure it.
        reason += (
            f"; the scheduler cannot place {len(view.unplaced)} task(s): "
            f"{'; '.join(view.unplaced[:5])}"
        )
    elif view.stuck:
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
