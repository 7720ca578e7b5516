"""Pieces of `manage.py rollout`: field flags, tables, one-line errors, and
driving rollouts in-process (`apply --wait`)."""

import argparse
import time

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError

from rollouts.models import RUNNING_STATES, Rollout, RolloutState
from rollouts.services import (
    default_owner,
    rollout_apply,
    rollout_claim,
    rollout_release,
    rollout_take_over,
    rollout_watch_step,
)
from rollouts.specs import human_duration, parse_duration

# desired field -> command-line flag
DESIRED_FLAGS = {
    "image": "image",
    "tag": "image-tag",
    "mode": "mode",
    "replicas": "replicas",
    **{
        f"{prefix}_{key}": f"{prefix}-{key.replace('_', '-')}"
        for prefix in ("update", "rollback")
        for key in (
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        )
    },
    "progress_deadline": "progress-deadline",
    "deadline_action": "deadline-action",
    "stable_for": "stable-for",
}
OTHER_FLAGS = {
    "change_cause": "cause",
    "to_revision": "to-revision",
    "recreate_confirmed": "confirm-recreate",
}


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_METAVARS = {
    "image": "REPOSITORY",
    "tag": "TAG",
    "mode": "replicated|global",
    "replicas": "N",
    "failure_action": "pause|continue|rollback",
    "order": "stop-first|start-first",
    "deadline_action": "report|pause|rollback",
}


def add_desired_flags(parser) -> None:
    group = parser.add_argument_group(
        "desired fields (saved as a new revision; durations like 5s, 500ms, 1m30s)"
    )
    for field, flag in DESIRED_FLAGS.items():
        kind, metavar = (
            str,
            _METAVARS.get(field) or _METAVARS.get(field.split("_", 1)[-1], "VALUE"),
        )
        if field.endswith(("parallelism", "replicas")):
            kind, metavar = int, "N"
        elif field.endswith("ratio"):
            kind, metavar = float, "0..1"
        elif field.endswith(("delay", "monitor", "deadline")) or field == "stable_for":
            kind, metavar = _duration, "DURATION"
        if field == "rollback_failure_action":
            metavar = "pause|continue"
        group.add_argument(
            f"--{flag}", dest=f"set_{field}", type=kind, default=None, metavar=metavar
        )


def desired_from_options(options: dict) -> dict:
    return {
        field: options[f"set_{field}"]
        for field in DESIRED_FLAGS
        if options.get(f"set_{field}") is not None
    }


def describe_flags(desired: dict) -> str:
    """The flags that would set `desired`, for a default change cause."""
    parts = []
    for field, value in desired.items():
        if value is None:
            continue
        if field.endswith(("delay", "monitor", "deadline")) or field == "stable_for":
            value = human_duration(value)
        parts.append(f"--{DESIRED_FLAGS[field]} {value}")
    return " ".join(parts)


def one_line(error: ValidationError) -> str:
    """A ValidationError as one line, naming the command-line flags at fault."""
    if not hasattr(error, "error_dict"):
        return "; ".join(error.messages)
    parts = []
    for field, messages in error.message_dict.items():
        text = "; ".join(messages)
        if field == NON_FIELD_ERRORS:
            parts.append(text)
        else:
            flag = DESIRED_FLAGS.get(field) or OTHER_FLAGS.get(field) or field
            parts.append(f"--{flag}: {text}")
    return "; ".join(parts)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)
    ]
    lines = [
        "  ".join(
            str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


class RolloutRunner:
    """Applies rollouts from the command line and, with --wait, follows them.

    It drives a rollout itself when it can claim it (or take over a lapsed
    lease) and otherwise follows what its driver, the controller, records.
    """

    def __init__(self, command, rollouts: list[Rollout], client) -> None:
        self.command = command
        self.rollouts = rollouts
        self.client = client
        self.owner = default_owner("cli")
        self.printed: dict[int, int] = {}

    def say(self, line: str) -> None:
        self.command.stdout.write(line)

    def start(self) -> None:
        for rollout in self.rollouts:
            self._drive(rollout)
            self._print_events(rollout)

    def _drive(self, rollout: Rollout) -> None:
        rollout.refresh_from_db()
        if rollout.state == RolloutState.QUEUED:
            if rollout_claim(rollout=rollout, owner=self.owner):
                rollout_apply(rollout=rollout, client=self.client)
        elif rollout.state in RUNNING_STATES and rollout_take_over(
            rollout=rollout, owner=self.owner
        ):
            if rollout.state == RolloutState.APPLYING:
                rollout_apply(rollout=rollout, client=self.client)
            else:
                rollout_watch_step(rollout=rollout, client=self.client)

    def release(self) -> None:
        for rollout in self.rollouts:
            rollout_release(rollout=rollout, owner=self.owner)
            rollout.refresh_from_db()

    def wait(self) -> None:
        """Follow every rollout to its end; CommandError unless all completed."""
        followed = list(self.rollouts)
        try:
            while not self.command.stop:
                pending = [r for r in followed if not r.is_final]
                for rollout in pending:
                    self._drive(rollout)
                    self._print_events(rollout)
                    followed += self._follow_ups(rollout, followed)
                if all(r.is_final for r in followed):
                    break
                time.sleep(1)
        except KeyboardInterrupt:
            self.command.stop = True
        if self.command.stop:
            self.release()
            raise CommandError(
                "interrupted: the rollout goes on; a running controller takes it over"
            )
        failed = [r for r in self.rollouts if r.state != RolloutState.COMPLETED]
        if failed:
            raise CommandError(self.summary(failed))
        for rollout in self.rollouts:
            took = (rollout.finished_at - rollout.started_at).total_seconds()
            self.say(f"{rollout.service.name}: completed in {took:.1f}s")

    def _follow_ups(self, rollout: Rollout, followed: list[Rollout]) -> list[Rollout]:
        """An engine rollback started by a deadline is a rollout of its own."""
        if not rollout.is_final:
            return []
        known = {r.pk for r in followed}
        found = rollout.service.rollouts.filter(
            state__in=RUNNING_STATES, requested_at__gte=rollout.requested_at
        ).exclude(pk__in=known)
        return list(found)

    def _print_events(self, rollout: Rollout) -> None:
        last = self.printed.get(rollout.pk, 0)
        for event in rollout.events.filter(pk__gt=last).order_by("pk"):
            self.say(
                f"{event.at:%H:%M:%S} {rollout.service.short_name}: {event.message}"
            )
            self.printed[rollout.pk] = event.pk

    @staticmethod
    def summary(rollouts: list[Rollout]) -> str:
        return "; ".join(
            f"{r.service.name}: rollout #{r.pk} {r.state.replace('_', ' ')}: {r.reason}"
            for r in rollouts
        )
