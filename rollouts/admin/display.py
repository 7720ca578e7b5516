"""How live swarm state looks in the admin: badges, progress, the task table."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from rollouts.models import RolloutKind, RolloutState, Service
from rollouts.spec.specs import short_image

# The engine's UpdateStatus.State values, in the words an operator needs. Tone
# picks the colour: rollback_completed is a *failed* update even though the
# engine calls it completed, so it is red, never green.
UPDATE_STATES: dict[str, tuple[str, str, str]] = {
    "updating": ("updating", "info", "The engine is replacing tasks"),
    "paused": (
        "paused",
        "warn",
        "The update stopped, usually because new tasks failed; an operator "
        "must apply, roll back or undo",
    ),
    "completed": ("completed", "ok", "Every task runs the new spec"),
    "rollback_started": (
        "rolling back",
        "warn",
        "The update failed; the engine is restoring the previous spec",
    ),
    "rollback_paused": (
        "rollback paused",
        "bad",
        "The update failed and its rollback stopped half-way",
    ),
    "rollback_completed": (
        "rolled back (failed)",
        "bad",
        "The update failed; the engine restored the previous spec",
    ),
}

ROLLOUT_TONES: dict[str, str] = {
    RolloutState.QUEUED: "idle",
    RolloutState.APPLYING: "info",
    RolloutState.WATCHING: "info",
    RolloutState.COMPLETED: "ok",
    RolloutState.ROLLED_BACK: "bad",
    RolloutState.PAUSED: "warn",
    RolloutState.FAILED: "bad",
    RolloutState.CANCELLED: "idle",
    RolloutState.SUPERSEDED: "warn",
    RolloutState.ABORTED: "warn",
}


def badge(text: str, tone: str, title: str = "") -> SafeString:
    return format_html(
        '<span class="rollouts-badge rollouts-{}" title="{}">{}</span>',
        tone,
        title,
        text,
    )


def operator_rollback(service: Service) -> bool:
    """The engine's last rollback was asked for by an operator (a completed
    rollback rollout not started by a failed one): not a failure."""
    latest = service.rollouts.order_by("-pk").first()
    if latest is None or latest.kind != RolloutKind.ROLLBACK:
        return False
    before = service.rollouts.filter(pk__lt=latest.pk).order_by("-pk").first()
    return before is None or before.state not in (
        RolloutState.FAILED,
        RolloutState.ROLLED_BACK,
    )


def update_state_badge(
    state: str, message: str = "", *, own_rollback: bool = False
) -> SafeString:
    if state == "rollback_completed" and own_rollback:
        return badge(
            "rolled back",
            "ok",
            "An operator asked the engine to restore the previous spec; it did",
        )
    if not state:
        return badge(
            "no update", "idle", "No update has run since the service was created"
        )
    text, tone, meaning = UPDATE_STATES.get(state, (state, "idle", ""))
    title = f"{state}: {meaning}" + (f" — {message}" if message else "")
    return badge(text, tone, title)


def rollout_badge(state: str) -> SafeString:
    label = RolloutState(state).label.lower() if state in RolloutState.values else state
    return badge(label, ROLLOUT_TONES.get(state, "idle"))


def tasks_badge(service: Service) -> SafeString:
    tone = "ok" if service.live_running >= service.live_desired else "warn"
    if service.live_desired and not service.live_running:
        tone = "bad"
    return badge(f"{service.live_running}/{service.live_desired}", tone)


def ago(moment: datetime | None) -> str:
    """ "12 seconds ago", "3 minutes ago": docker's wording, at its precision."""
    if moment is None:
        return "never"
    seconds = int((timezone.now() - moment).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} second{'s' if seconds != 1 else ''} ago"
    return f"{timesince(moment, depth=1)} ago"


@dataclass
class TaskRow:
    """One line of `docker service ps`; `earlier` lines are a slot's past attempts."""

    name: str
    earlier: bool
    task_id: str
    image: str
    node: str
    desired_state: str
    state: str
    since: datetime | None
    since_text: str
    error: str

    @property
    def since_ago(self) -> str:
        return ago(self.since) if self.since else self.since_text


def _parse_since(text: str) -> datetime | None:
    try:
        return parse_datetime(text) if text else None
    except ValueError:  # well-formed but impossible: show the raw text instead
        return None


def task_rows(service: Service) -> list[TaskRow]:
    """live_tasks flattened for a table: each slot's current task, then the
    earlier attempts (newest first) marked to be shown under it with `\\_`."""
    rows = []
    # The controller stores the slots in `docker service ps` order already.
    groups = [g for g in service.live_tasks or [] if isinstance(g, dict)]
    for group in groups:
        name = f"{service.name}.{group.get('slot', '?')}"
        for index, task in enumerate(group.get("tasks") or []):
            since_text = str(task.get("since") or "")
            rows.append(
                TaskRow(
                    name=name,
                    earlier=index > 0,
                    task_id=str(task.get("id") or "")[:12],
                    image=short_image(str(task.get("image") or "")),
                    node=str(task.get("node") or ""),
                    desired_state=str(task.get("desired_state") or ""),
                    state=str(task.get("state") or ""),
                    since=_parse_since(since_text),
                    since_text=since_text,
                    error=str(task.get("error") or ""),
                )
            )
    return rows
