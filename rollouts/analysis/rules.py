"""The analysis rules, as pure functions on figures already measured.

Argo Rollouts' vocabulary: each measurement is Successful, Failed,
Inconclusive or Error; the run is Running until enough measurements decide it.
The traps the Kubernetes tools' users keep reporting are closed here: no data
(no value, NaN, too few samples, no task of a version, Prometheus down) is
Inconclusive, never Successful and never Failed; a zero baseline cannot make a
ratio pass or fail; an Inconclusive run is never promoted.
"""

import math
from dataclasses import dataclass

from rollouts.analysis.templates import HIGHER, LOWER, SHARE, SHARE_POINTS, Template

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = (
    "Successful",
    "Failed",
    "Inconclusive",
    "Error",
)
RUNNING = "Running"
# Errors in a row (Prometheus unreachable, a bad answer) before the run is
# Inconclusive: Argo's consecutiveErrorLimit, default 4.
CONSECUTIVE_ERROR_LIMIT = 4


@dataclass(frozen=True)
class VersionFigure:
    """One version's tasks over the window: the mean of the per-task values
    (None: no value at all), how many tasks had one, and the fewest scrapes
    any of those tasks had in the window."""

    version: str
    value: float | None
    tasks: int
    samples: int


@dataclass(frozen=True)
class Measurement:
    phase: str
    value: float | None
    baseline: float | None
    limit: float | None
    message: str
    new_tasks: int = 0
    old_tasks: int = 0


def figure(version: str, per_task: list[float], samples: list[int]) -> VersionFigure:
    """The figure of one version from its tasks' values; NaN and infinite
    values (a rate over an empty window, a division by zero requests) are
    dropped, never averaged in."""
    values = [v for v in per_task if math.isfinite(v)]
    mean = sum(values) / len(values) if values else None
    return VersionFigure(version, mean, len(values), min(samples, default=0))


def _show(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value * 100:.1f} %"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def _missing(fig: VersionFigure | None, min_samples: int, what: str) -> str:
    if fig is None or fig.tasks == 0 or fig.value is None:
        return f"no data for {what}"
    if fig.samples < min_samples:
        return f"too few samples for {what} ({fig.samples} of {min_samples})"
    return ""


def measure(
    template: Template,
    new: VersionFigure | None,
    old: VersionFigure | None,
    *,
    threshold: float,
    min_samples: int,
    image: str = "",
) -> Measurement:
    """One measurement: the new version's tasks against the baseline `old`
    (the old version's tasks over the same window, or the service before the
    rollout). `threshold` is how much worse the new may be (0.2 = 20 %).

    Inconclusive when either side has no data or too few samples, or when a
    ratio's baseline is zero (nothing to be 80 % of).
    """
    old_name = "" if old is None else f"{image}:{old.version}" if image else old.version
    gap = _missing(new, min_samples, "the new version's tasks") or _missing(
        old, min_samples, f"the baseline ({old_name or 'no old task'})"
    )
    if gap or new is None or old is None or new.value is None or old.value is None:
        new_value = new.value if new else None
        old_value = old.value if old else None
        return Measurement(
            INCONCLUSIVE,
            new_value,
            old_value,
            None,
            gap,
            new.tasks if new else 0,
            old.tasks if old else 0,
        )
    value, baseline = new.value, old.value
    if template.better == HIGHER:
        limit = baseline * (1 - threshold)
        passed = value >= limit
    elif template.better == LOWER:
        limit = baseline * (1 + threshold)
        passed = value <= limit
    else:
        limit = baseline + threshold * SHARE_POINTS
        passed = value <= limit
    if template.better != SHARE and baseline <= 0:
        return Measurement(
            INCONCLUSIVE,
            value,
            baseline,
            None,
            f"the baseline {old_name} is {baseline:g} {template.unit}: "
            "no ratio to judge by",
            new.tasks,
            old.tasks,
        )
    unit = template.unit if template.unit != "share" else ""
    said = template.wording.format(value=_show(value, template.unit))
    if template.better == SHARE:
        change = f"+{(value - baseline) * 100:.1f} points; limit "
        change += f"+{threshold * SHARE_POINTS * 100:.1f} points"
    else:
        sign = "-" if template.better == HIGHER else "+"
        change = f"{(value / baseline - 1) * 100:+.0f} %; limit {sign}"
        change += f"{threshold * 100:.0f} %"
    message = (
        f"{said} against {_show(baseline, template.unit)}{(' ' + unit) if unit else ''}"
        f" for {old_name} ({change}; {new.tasks} new task(s), {old.tasks} old)"
    )
    return Measurement(
        SUCCESSFUL if passed else FAILED,
        value,
        baseline,
        limit,
        message,
        new.tasks,
        old.tasks,
    )


def error(reason: str) -> Measurement:
    """A measurement that could not be taken (Prometheus down, a bad answer)."""
    return Measurement(ERROR, None, None, None, reason)


def run_phase(
    phases: list[str],
    *,
    count: int,
    failure_limit: int,
    inconclusive_limit: int,
    consecutive_error_limit: int = CONSECUTIVE_ERROR_LIMIT,
) -> str:
    """The run's phase from its measurements' phases, oldest first.

    Failed once failures exceed `failure_limit`; Successful once `count`
    measurements succeeded; Inconclusive once inconclusive ones reach
    `inconclusive_limit` (0: never, the run stays Running and the rollout
    held) or errors in a row reach `consecutive_error_limit`; else Running.
    A failure decides before anything else: a run with one failure too many
    is never promoted by later successes.
    """
    if phases.count(FAILED) > failure_limit:
        return FAILED
    errors_in_a_row = 0
    for phase in reversed(phases):
        if phase != ERROR:
            break
        errors_in_a_row += 1
    if consecutive_error_limit and errors_in_a_row >= consecutive_error_limit:
        return INCONCLUSIVE
    inconclusive = phases.count(INCONCLUSIVE)
    if inconclusive_limit and inconclusive >= inconclusive_limit:
        return INCONCLUSIVE
    if phases.count(SUCCESSFUL) >= count:
        return SUCCESSFUL
    return RUNNING
