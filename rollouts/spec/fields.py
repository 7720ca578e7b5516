"""The desired spec of a service, declared once: one `SpecField` per field.

Each declaration carries the field's name, kind, unit, default, engine key,
command-line flag, label and help, and owns its one strict parser. The admin
form, the API serializer, `manage.py rollout`'s flags, validation, the plan's
wording and the translation to the engine's UpdateConfig/RollbackConfig are all
derived from `FIELDS`; adding a policy field means adding one `SpecField` here
and its column in `models.Service` (a test checks that the two agree).

Parsing is strict and happens before any conversion: ASCII digits in
the documented grammar only (`"²".isdigit()` and `int("٣")` would accept what no
operator typed), finite values only (no nan, inf or 1e999), bounded length. A
plain number keeps a leading "-", so that validation, with the field's range,
explains why a negative value is refused.
"""

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models

from dockercoins import numbers
from rollouts.spec.choices import (
    AnalysisMode,
    AnalysisTemplate,
    DeadlineAction,
    FailureAction,
    Mode,
    Order,
)
from rollouts.spec.choices import RollbackFailureAction as RollbackAction

MAX_DURATION = 24 * 3600.0  # seconds; longer is a typo, not a policy
# The canary's hold (rollouts.control.canary): the update delay written after
# the canary batch. One second above MAX_DURATION, so no declared policy can
# have it and a spec that carries it is known to be held, by its value alone.
CANARY_HOLD = MAX_DURATION + 1.0  # seconds
MAX_COUNT = 1000  # replicas and parallelism
_MAX_DIGITS = 15  # far below Python's int-string limit, above any sane value

_DECIMAL = re.compile(r"-?(?:[0-9]{1,15}(?:\.[0-9]{1,9})?|\.[0-9]{1,9})", re.ASCII)
_DURATION_PART = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(ms|s|m|h)", re.ASCII)
# Digits on both sides of a space: "1 0" is a typo, not 10 seconds.
_SPLIT_NUMBER = re.compile(r"[0-9.]\s+[0-9.]", re.ASCII)
# Every duration is a whole number of these seconds, so that what is shown
# (human_duration) parses back to what is stored, and the engine's nanoseconds
# are exactly what is stored.
DURATION_STEP = 0.001
_STEPS_PER_SECOND = 1000
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class ParseError(ValueError):
    """A value outside the field's grammar; str() is one line for the operator."""


@contextlib.contextmanager
def _as_parse_error() -> Iterator[None]:
    # The grammar of numbers is dockercoins.numbers', shared with the settings.
    try:
        yield
    except numbers.NumberError as error:
        raise ParseError(str(error)) from None


# --- the strict parsers -------------------------------------------------------------


def _number(value: object, *, whole: bool) -> float | int | None:
    """An int (or a finite float) given as a number; None when it is text."""
    with _as_parse_error():
        return numbers._given_number(value, whole=whole)


def parse_int(value: object) -> int:
    """A whole number from an int or from ASCII digits ("12", "-1"); ParseError
    otherwise ("1.5", "1e3", "٣", "²", " ", more than 15 digits)."""
    with _as_parse_error():
        return numbers.parse_int(value)


def parse_id(value: object) -> int:
    """A database id: 1 to 15 ASCII digits, no sign; ParseError otherwise."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_DIGITS:
        raise ParseError(f"{text!r} is not an id (digits 0-9)")
    return int(text)


_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def parse_service_name(value: object) -> str:
    """A service's name as the engine spells it (dockercoins_worker) or its short
    name (worker): ASCII letters, digits, . _ -, 1 to 200; ParseError otherwise."""
    text = str(value)
    if not _SERVICE_NAME.fullmatch(text):
        raise ParseError(
            f"{text!r} is not a service name (letters, digits, . _ -, e.g. worker)"
        )
    return text


def parse_stack_name(value: object) -> str:
    """A stack's name (dockercoins): the engine names a stack's services
    `<stack>_<service>`, so a stack name follows the service name's rule
    (ASCII letters, digits, . _ -, starting with a letter or digit, 1 to 63);
    ParseError otherwise."""
    text = str(value)
    if not _STACK_NAME.fullmatch(text):
        raise ParseError(
            f"{text!r} is not a stack name (letters, digits, . _ -, e.g. dockercoins)"
        )
    return text


def parse_decimal(value: object) -> float:
    """A finite number from a number or from "0.2", ".5", "-1"; no exponent,
    no nan or inf; ParseError otherwise."""
    with _as_parse_error():
        return numbers.parse_decimal(value)


def parse_duration(value: object) -> float:
    """Seconds from a number or from "5", "0.5", "5s", "500ms", "1m30s", "2h"
    (Docker's notation, ASCII only), in whole milliseconds (DURATION_STEP): a
    finer value is refused, not rounded to 0 ns on the way to the engine. A
    plain number keeps its sign ("-5", for validation to refuse); Docker's
    notation has none ("-5s" is refused here). Spaces may separate parts
    ("1m 30s") but never digits ("1 0"). ParseError otherwise."""
    number = _number(value, whole=False)
    if number is not None:
        return _whole_ms(Decimal(repr(number)) * 1000, value)
    text = str(value).strip()
    if _SPLIT_NUMBER.search(text):
        raise ParseError(f"{text!r} is not a duration (e.g. 5s, 500ms, 1m30s)")
    compact = text.replace(" ", "")
    sign = -1 if compact.startswith("-") else 1
    body = compact[1:] if sign < 0 else compact
    if body.isascii() and _DECIMAL.fullmatch(body) and not body.startswith("-"):
        return _whole_ms(sign * Decimal(body) * 1000, text)
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ParseError(f"{text!r} is not a duration (e.g. 5s, 500ms, 1m30s)")
    if sign < 0:
        raise ParseError(f"{text!r} is not a duration: a duration is never negative")
    ms = sum(Decimal(n) * _UNIT_MS[u] for n, u in parts)
    return _whole_ms(Decimal(ms), text)


def _whole_ms(ms: Decimal, given: object) -> float:
    # Decimal, not float: 1e-9 ms must not pass as "0 within rounding error".
    if ms != ms.to_integral_value():
        raise ParseError(
            f"{given!r} is finer than the smallest duration, 1ms "
            "(what the engine and the admin can show and keep)"
        )
    return int(ms) / _STEPS_PER_SECOND


def parse_text(value: object) -> str:
    if not isinstance(value, str):
        raise ParseError(f"{value!r} is not text")
    return value.strip()


def human_duration(seconds: float) -> str:
    """5 -> "5s", 0.5 -> "500ms", 90 -> "1m30s", 7200 -> "2h"; to the
    millisecond (DURATION_STEP), so parse_duration reads back what it shows."""
    ms = round(seconds * _STEPS_PER_SECOND)
    if 0 < ms < _STEPS_PER_SECOND:
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60 * _STEPS_PER_SECOND)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if rest or not (hours or minutes):
        parts.append(f"{rest / _STEPS_PER_SECOND:g}s")
    return "".join(parts)


# --- the declaration ----------------------------------------------------------------

# Docker's tag grammar, ASCII only (`\w` would take "１", a full-width one).
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
TAG_GRAMMAR = "letters, digits, . _ -; at most 128"

TEXT, CHOICE, COUNT, RATIO, DURATION = "text", "choice", "count", "ratio", "duration"

_PARSERS: dict[str, Callable[[object], Any]] = {
    TEXT: parse_text,
    CHOICE: parse_text,
    COUNT: parse_int,
    RATIO: parse_decimal,
    DURATION: parse_duration,
}


@dataclass(frozen=True)
class SpecField:
    """One field of the desired spec.

    `policy` is the docker-py UpdateConfig/RollbackConfig argument of a policy
    field ("delay"), `engine_key` its key in the Engine API ("Delay"); both are
    empty for the rest. Durations are seconds here and nanoseconds in the engine.
    """

    name: str
    kind: str
    label: str
    help: str
    default: Any
    flag: str
    metavar: str
    choices: type[models.TextChoices] | None = None
    minimum: float = 0
    maximum: float | None = None
    policy: str = ""
    engine_key: str = ""
    max_length: int | None = None  # text: the column's size
    swarm: bool = True  # False: ours alone (the progress deadline)
    optional: bool = False  # may be None (replicas of a global service)
    pattern: re.Pattern[str] | None = None  # text: the whole value must match
    grammar: str = ""  # text: the pattern in words, for its refusal

    @property
    def unit(self) -> str:
        return "seconds" if self.kind == DURATION else ""

    def parse(self, value: object) -> Any:
        """The typed value of `value` (text from a form or a flag, or a number
        from JSON); ParseError when it is outside the grammar."""
        if value is None or value == "":
            if self.optional:
                return None
            raise ParseError("a value is required")
        parsed = _PARSERS[self.kind](value)
        if self.pattern is not None and not self.pattern.fullmatch(parsed):
            raise ParseError(f"{parsed!r} is not a valid {self.label} ({self.grammar})")
        if self.choices is not None and parsed not in self.choices.values:
            # Outside the grammar like "5x" for a duration: the command exits 2
            # for it, as for every input it cannot read.
            allowed = ", ".join(self.choices.values)
            raise ParseError(f"{parsed!r} is not one of: {allowed}")
        return parsed

    def human(self, value: Any) -> str:
        """The value in the words `rollout plan` and the admin use."""
        if value is None:
            return "-"
        if self.kind == DURATION:
            return human_duration(value)
        if self.policy == "parallelism" and value == 0:
            return "0 (all at once)"
        if self.kind == RATIO:
            return f"{value:g}"
        return str(value)

    def flag_text(self, value: Any) -> str:
        shown = human_duration(value) if self.kind == DURATION else value
        return f"--{self.flag} {shown}"


def _choices(values: type[models.TextChoices]) -> str:
    return "|".join(values.values)


@dataclass(frozen=True)
class _Policy:
    """One key of UpdateConfig and RollbackConfig: both prefixes share it."""

    engine_key: str
    kind: str
    metavar: str
    default: Any  # the engine's (`docker service create`), not the SDK's
    update_help: str
    rollback_help: str
    minimum: float = 0


# Every write sets every key: the SDK's own defaults (parallelism 0, failure
# action continue) differ from the engine's.
_POLICIES = {
    "parallelism": _Policy(
        "Parallelism",
        COUNT,
        "N",
        1,
        "Tasks replaced at once (engine default 1; 0 = all at once).",
        "Tasks rolled back at once (engine default 1).",
    ),
    "delay": _Policy(
        "Delay",
        DURATION,
        "DURATION",
        0.0,
        "Wait between batches, e.g. 5s (engine default 0s).",
        "Wait between rollback batches (engine default 0s).",
    ),
    "failure_action": _Policy(
        "FailureAction",
        CHOICE,
        "",  # the prefix's choices
        "pause",
        "What the engine does when too many new tasks fail (engine default pause).",
        "What the engine does when a rollback itself fails (engine default pause).",
    ),
    "monitor": _Policy(
        "Monitor",
        DURATION,
        "DURATION",
        5.0,
        "How long each new task is watched for failure after it starts, e.g. 20s "
        "(engine default 5s).",
        "How long each rolled-back task is watched (default 5s).",
        # 0 is accepted with the engine's meaning, "the default" (5 s); the
        # service layer stores it as 5 s so that plan and the engine agree.
        minimum=0,
    ),
    "max_failure_ratio": _Policy(
        "MaxFailureRatio",
        RATIO,
        "0..1",
        0.0,
        "Share of tasks that may fail before the failure action, 0 to 1 (0.2 = 20%; "
        "engine default 0).",
        "Share of tasks that may fail during a rollback, 0 to 1 (engine default 0).",
    ),
    "order": _Policy(
        "Order",
        CHOICE,
        _choices(Order),
        "stop-first",
        "stop-first stops an old task before starting its replacement; start-first "
        "overlaps them (engine default stop-first).",
        "Order of stop and start during a rollback.",
    ),
}
ENGINE_POLICY_DEFAULTS = {key: p.default for key, p in _POLICIES.items()}
# seconds: what the engine reads a monitor of 0 as
DEFAULT_MONITOR: float = ENGINE_POLICY_DEFAULTS["monitor"]
POLICY_KEYS = {key: p.engine_key for key, p in _POLICIES.items()}
_MAXIMA = {COUNT: MAX_COUNT, RATIO: 1, DURATION: MAX_DURATION}


def _policy(prefix: str) -> list[SpecField]:
    failure = FailureAction if prefix == "update" else RollbackAction
    choices = {"failure_action": failure, "order": Order}
    return [
        SpecField(
            name=f"{prefix}_{key}",
            kind=p.kind,
            label=f"{prefix} {key.replace('_', ' ')}",
            help=p.update_help if prefix == "update" else p.rollback_help,
            default=p.default,
            flag=f"{prefix}-{key.replace('_', '-')}",
            metavar=p.metavar or _choices(failure),
            choices=choices.get(key),
            minimum=p.minimum,
            maximum=_MAXIMA.get(p.kind),
            policy=key,
            engine_key=p.engine_key,
        )
        for key, p in _POLICIES.items()
    ]


FIELDS: tuple[SpecField, ...] = (
    SpecField(
        "image",
        TEXT,
        "image repository",
        "Repository, without the tag (dockercoins).",
        None,
        "image",
        "REPOSITORY",
        max_length=255,
    ),
    SpecField(
        "tag",
        TEXT,
        "image tag",
        "Tag to run (1.0, 1.1, bugged). Must be an image the swarm node has.",
        None,
        "image-tag",
        "TAG",
        max_length=128,
        pattern=TAG_PATTERN,
        grammar=TAG_GRAMMAR,
    ),
    SpecField(
        "mode",
        CHOICE,
        "mode",
        "Replicated runs N tasks; global runs one task on every node. "
        "Changing it removes and re-creates the service.",
        Mode.REPLICATED,
        "mode",
        _choices(Mode),
        choices=Mode,
    ),
    SpecField(
        "replicas",
        COUNT,
        "replicas",
        "Number of tasks. Leave empty for a global service.",
        None,
        "replicas",
        "N",
        maximum=MAX_COUNT,
        optional=True,
    ),
    *_policy("update"),
    *_policy("rollback"),
    SpecField(
        "progress_deadline",
        DURATION,
        "progress deadline",
        "A rollout not finished after this long is failed, e.g. 10m (default "
        "10m). Swarm alone would wait forever.",
        600.0,
        "progress-deadline",
        "DURATION",
        minimum=1,
        maximum=MAX_DURATION,
        swarm=False,
    ),
    SpecField(
        "deadline_action",
        CHOICE,
        "deadline action",
        "What to do when the deadline passes.",
        DeadlineAction.REPORT,
        "deadline-action",
        _choices(DeadlineAction),
        choices=DeadlineAction,
        swarm=False,
    ),
    SpecField(
        "stable_for",
        DURATION,
        "stable for",
        "How long new tasks must stay up before a rollout completes, e.g. 30s "
        "(like Kubernetes' minReadySeconds). Empty: the update monitor.",
        None,
        "stable-for",
        "DURATION",
        maximum=MAX_DURATION,
        swarm=False,
        optional=True,  # None: the update monitor window (rollouts.control.outcome)
    ),
    *(  # The canary step and its analysis (rollouts.analysis; docs/analysis.md).
        SpecField(
            "canary",
            COUNT,
            "canary tasks",
            "Tasks replaced first, the rest held while the analysis runs; "
            "0 = no canary step (the update runs through).",
            0,
            "canary",
            "N",
            maximum=MAX_COUNT,
            swarm=False,
        ),
        SpecField(
            "analysis_template",
            CHOICE,
            "analysis",
            "What judges the new version against the old one: auto = the role's "
            "template (worker hash rate, rng latency, hasher errors), off = none.",
            AnalysisTemplate.AUTO,
            "analysis",
            _choices(AnalysisTemplate),
            choices=AnalysisTemplate,
            swarm=False,
        ),
        SpecField(
            "analysis_threshold",
            RATIO,
            "analysis threshold",
            "How much worse than the old version's tasks the new ones may be, "
            "0 to 1 (0.2: hash rate at least 0.8 times the old tasks', latency "
            "at most 1.2 times; error share at most 0.02 above the old tasks').",
            0.2,
            "analysis-threshold",
            "0..1",
            maximum=1,
            swarm=False,
        ),
        SpecField(
            "analysis_interval",
            DURATION,
            "analysis interval",
            "Time between measurements, and the window each one covers, e.g. 30s.",
            30.0,
            "analysis-interval",
            "DURATION",
            minimum=1,
            maximum=MAX_DURATION,
            swarm=False,
        ),
        SpecField(
            "analysis_count",
            COUNT,
            "analysis count",
            "Successful measurements needed to promote.",
            2,
            "analysis-count",
            "N",
            minimum=1,
            maximum=MAX_COUNT,
            swarm=False,
        ),
        SpecField(
            "analysis_failure_limit",
            COUNT,
            "analysis failure limit",
            "Failed measurements tolerated; one more rolls back (0: the first).",
            0,
            "analysis-failure-limit",
            "N",
            maximum=MAX_COUNT,
            swarm=False,
        ),
        SpecField(
            "analysis_inconclusive_limit",
            COUNT,
            "analysis inconclusive limit",
            "Inconclusive measurements (no data, too few samples, no old task) "
            "after which the rollout stays held for an operator; 0 = hold forever.",
            0,
            "analysis-inconclusive-limit",
            "N",
            maximum=MAX_COUNT,
            swarm=False,
        ),
        SpecField(
            "analysis_min_samples",
            COUNT,
            "analysis minimum samples",
            "What no data means: fewer samples than this per version in the "
            "window is inconclusive, never a pass or a failure.",
            3,
            "analysis-min-samples",
            "N",
            minimum=1,
            maximum=MAX_COUNT,
            swarm=False,
        ),
        SpecField(
            "analysis_mode",
            CHOICE,
            "analysis mode",
            "act: promote on pass, roll back on failure; dry-run: record the "
            "measurements and let the update run through.",
            AnalysisMode.ACT,
            "analysis-mode",
            _choices(AnalysisMode),
            choices=AnalysisMode,
            swarm=False,
        ),
    ),
)

BY_NAME = {field.name: field for field in FIELDS}
SPEC_FIELDS = tuple(BY_NAME)
# What lives in the swarm's service spec; the rest is ours alone.
SWARM_FIELDS = tuple(field.name for field in FIELDS if field.swarm)


def policy_fields(prefix: str) -> list[SpecField]:
    """The UpdateConfig ("update") or RollbackConfig ("rollback") fields."""
    return [f for f in FIELDS if f.policy and f.name.startswith(f"{prefix}_")]


def parse_desired(values: dict[str, object]) -> dict[str, Any]:
    """Every value of `values` through its field's parser.

    Raises ParseError naming the field ("update_delay: 'nan' is not a
    duration ..."); an unknown name is a ParseError too.
    """
    parsed = {}
    for name, value in values.items():
        field = BY_NAME.get(name)
        if field is None:
            raise ParseError(f"unknown field {name!r}")
        try:
            parsed[name] = field.parse(value)
        except ParseError as error:
            raise ParseError(f"{name}: {error}") from None
    return parsed
