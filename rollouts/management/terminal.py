"""What `manage.py rollout` reads and prints: the desired-field flags (derived
from rollouts.spec.fields), one-line errors, tables, and following rollouts in
process (`apply --wait`) with the driver's one drive step."""

import argparse
import re
import time
from collections.abc import Callable
from typing import Any, NoReturn

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from rollouts.control import database
from rollouts.control.driver import default_owner, drive, rollout_release
from rollouts.engine.client import SwarmClient
from rollouts.models import RUNNING_STATES, Rollout, RolloutState
from rollouts.spec.fields import (
    DURATION,
    FIELDS,
    ParseError,
    SpecField,
    human_duration,
)

DESIRED_FLAGS = {field.name: field.flag for field in FIELDS}
OTHER_FLAGS = {
    "change_cause": "cause",
    "to_revision": "to-revision",
}
# The consents a request asks for (rollouts.records.requests): their refusal is
# no fault of a flag the user typed, so it names the flag as the way on.
CONSENT_FLAGS = {
    "recreate_confirmed": "confirm-recreate",
    "resume_confirmed": "resume",
}
# How long `apply --wait` waits for a database that stopped answering before
# it gives up (the rollout goes on: the controller watches it meanwhile).
DATABASE_PATIENCE = 300.0  # seconds
DATABASE_BACKOFF = 5.0  # seconds, at most, between tries
# Seconds between two looks of `apply --wait` (rollouts followed in process),
# unless the last look said when the next can change the verdict
# (Rollout.look_again_in): then that, no shorter than LOOK_AT_LEAST.
LOOK_EVERY = 1.0
LOOK_AT_LEAST = 0.05
# argparse reads "-5s" as an unknown option and only "-5" as a number; every
# value starting with "-" and a digit is a value here (validation explains why
# a negative duration or count is refused).
_NEGATIVE_VALUE = re.compile(r"^-[0-9.]")


class OneLineParser(CommandParser):
    """Usage errors as one line (`rollout apply: error: ...`), exit status 2,
    instead of argparse's usage block above the message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}")


def one_line_parser(parser: CommandParser) -> CommandParser:
    """The command's own parser, switched to OneLineParser (its subparsers
    inherit the class)."""
    parser.__class__ = OneLineParser
    parser._negative_number_matcher = _NEGATIVE_VALUE
    return parser


def flag_type(field: SpecField) -> Callable[[str], Any]:
    """The field's own strict parser, as argparse wants it."""

    def parse(text: str) -> Any:
        try:
            return field.parse(text)
        except ParseError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = field.kind  # argparse names it in "invalid <name> value"
    return parse


def add_desired_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "desired fields (saved as a new revision; durations like 5s, 500ms, 1m30s)"
    )
    for field in FIELDS:
        group.add_argument(
            f"--{field.flag}",
            dest=f"set_{field.name}",
            type=flag_type(field),
            default=None,
            metavar=field.metavar,
            help=_flag_help(field),
        )


def _flag_help(field: SpecField) -> str:
    """The field's help with its bounds, as argparse's %-format wants it."""
    text = field.help
    if field.maximum is not None:
        shown = human_duration if field.kind == DURATION else (lambda v: f"{v:g}")
        text += f" Range {shown(field.minimum)} to {shown(field.maximum)}."
    return text.replace("%", "%%")


def desired_from_options(options: dict[str, Any]) -> dict[str, Any]:
    return {
        field.name: options[f"set_{field.name}"]
        for field in FIELDS
        if options.get(f"set_{field.name}") is not None
    }


def describe_flags(desired: dict[str, Any]) -> str:
    """The flags that would set `desired`, for a default change cause."""
    by_name = {field.name: field for field in FIELDS}
    return " ".join(
        by_name[name].flag_text(value)
        for name, value in desired.items()
        if value is not None
    )


def one_line(error: ValidationError, arguments: dict[str, str] | None = None) -> str:
    """A ValidationError as one line, naming what the user typed: the flag at
    fault (`--update-delay: ...`), or the positional argument a subcommand
    takes a field as (`arguments`, field name -> its name in the usage line:
    {"replicas": "REPLICAS"} for `scale`), never a flag nobody typed. A missing
    consent is the message and then the flag that gives it (`... confirm it
    (--confirm-recreate)`)."""
    if not hasattr(error, "error_dict"):
        return "; ".join(error.messages)
    arguments = arguments or {}
    parts = []
    for field, messages in error.message_dict.items():
        text = "; ".join(messages)
        if field == NON_FIELD_ERRORS:
            parts.append(text)
        elif field in arguments:
            parts.append(f"{arguments[field]}: {text}")
        elif field in CONSENT_FLAGS:
            parts.append(f"{text} (--{CONSENT_FLAGS[field]})")
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

    Each round it takes the driver's one drive step for every rollout it
    follows: it drives a rollout when it can claim it (or take over a lapsed
    lease), and otherwise follows what its driver, the controller, records.
    """

    def __init__(
        self, command: BaseCommand, rollouts: list[Rollout], client: SwarmClient
    ) -> None:
        self.command = command
        self.rollouts = rollouts
        self.client = client
        self.owner = default_owner("cli")
        self.printed: dict[int, int] = {}
        self.stop = False

    def say(self, line: str) -> None:
        self.command.stdout.write(line)

    def start(self) -> None:
        for rollout in self.rollouts:
            drive(rollout=rollout, owner=self.owner, client=self.client)
            rollout.refresh_from_db()
            self._print_events(rollout)

    def release(self) -> None:
        for rollout in self.rollouts:
            rollout_release(rollout=rollout, owner=self.owner)
            rollout.refresh_from_db()

    def wait(self) -> None:
        """Follow every rollout to its end; CommandError unless all completed.

        A database that stops answering is waited for (up to DATABASE_PATIENCE)
        with a new connection each try: the outcome is the rollout's own.
        """
        followed = list(self.rollouts)
        outage = database.Outage(cap=DATABASE_BACKOFF)
        try:
            while not self.stop:
                try:
                    self._round(followed)
                except DatabaseError as error:
                    self._database_failed(error, outage)
                    continue
                lasted = outage.ended()
                if lasted is not None:
                    self.say(f"{_now()} the database answers again ({lasted:.0f}s)")
                if all(r.is_final for r in followed):
                    break
                time.sleep(next_look(followed))
        except KeyboardInterrupt:
            self.stop = True
        if self.stop:
            self.release()
            raise CommandError(
                "interrupted: the rollout goes on; a running controller takes it over"
            )
        failed = [r for r in self.rollouts if r.state != RolloutState.COMPLETED]
        if failed:
            raise CommandError(self.summary(failed))
        for rollout in self.rollouts:
            took = _took(rollout)
            self.say(f"{rollout.service.name}: completed in {took:.1f}s")

    def _round(self, followed: list[Rollout]) -> None:
        for rollout in [r for r in followed if not r.is_final]:
            drive(rollout=rollout, owner=self.owner, client=self.client)
            rollout.refresh_from_db()
            self._print_events(rollout)
            followed += self._follow_ups(rollout, followed)

    def _database_failed(self, error: DatabaseError, outage: database.Outage) -> None:
        """Drop the connection and wait before the next try; raise when the
        schema is missing or the database stayed away too long."""
        database.drop_broken_connections()
        if not database.is_outage(error):
            raise error
        first = outage.since is None
        delay = outage.failed()
        if outage.lasted > DATABASE_PATIENCE:
            raise CommandError(
                f"{database.describe(error)} for {outage.lasted:.0f}s: the rollout "
                "goes on, a running controller watches it; `rollout status` shows it"
            )
        if first:
            self.say(f"{_now()} {database.describe(error)}; retrying")
        time.sleep(delay)

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


def next_look(followed: list[Rollout]) -> float:
    """Seconds until the next round: LOOK_EVERY, or sooner when a rollout's last
    look expects its verdict sooner (its stability window ends, the engine's
    completion is due)."""
    hints = [
        r.look_again_in
        for r in followed
        if not r.is_final and r.look_again_in is not None
    ]
    return min([LOOK_EVERY, *(max(h, LOOK_AT_LEAST) for h in hints)])


def _now() -> str:
    return f"{timezone.now():%H:%M:%S}"


def _took(rollout: Rollout) -> float:
    """Seconds from claiming to the verdict."""
    if rollout.started_at is None or rollout.finished_at is None:
        return 0.0
    return (rollout.finished_at - rollout.started_at).total_seconds()
