"""The analysis rules on recorded measurements (rollouts.analysis.rules): what
a new version's figures against the old version's make of one measurement and
of the run. No Prometheus, no database: figures as Prometheus gave them."""

import math

from rollouts.analysis.rules import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    RUNNING,
    SUCCESSFUL,
    VersionFigure,
    figure,
    measure,
    run_phase,
)
from rollouts.analysis.templates import TEMPLATES, template_for

HASH_RATE = TEMPLATES["worker-hash-rate"]
LATENCY = TEMPLATES["rng-latency"]
ERRORS = TEMPLATES["hasher-errors"]


def fig(version: str, value: float | None, tasks: int = 3, samples: int = 6):
    return VersionFigure(version, value, tasks, samples)


def judge(template, new, old, threshold=0.2, min_samples=3):
    return measure(
        template,
        new,
        old,
        threshold=threshold,
        min_samples=min_samples,
        image="dockercoins",
    )


def test_it_fails_a_new_version_that_mines_ten_times_slower_and_says_by_how_much():
    result = judge(HASH_RATE, fig("slow", 0.33, tasks=1), fig("1.0", 3.30))
    assert result.phase == FAILED
    assert result.message.startswith(
        "new tasks mine 0.33 hashes/s each against 3.30 hashes/s for dockercoins:1.0"
        " (-90 %; limit -20 %"
    )
    assert "1 new task(s), 3 old" in result.message
    assert (result.new_tasks, result.old_tasks) == (1, 3)  # stored, as said
    assert math.isclose(result.limit or 0, 2.64)


def test_it_passes_a_new_version_within_the_threshold():
    assert judge(HASH_RATE, fig("1.1", 2.9), fig("1.0", 3.3)).phase == SUCCESSFUL
    assert judge(HASH_RATE, fig("1.1", 30.0), fig("1.0", 3.3)).phase == SUCCESSFUL


def test_it_calls_no_data_inconclusive_never_a_pass_or_a_failure():
    for new, old in [
        (None, fig("1.0", 3.3)),
        (fig("slow", 0.3), None),
        (fig("slow", None, tasks=0), fig("1.0", 3.3)),
        (fig("slow", 0.3), fig("1.0", None, tasks=0)),
    ]:
        result = judge(HASH_RATE, new, old)
        assert result.phase == INCONCLUSIVE
        assert "no data" in result.message


def test_it_drops_nan_and_infinite_values_instead_of_averaging_them():
    assert figure("1.0", [math.nan, math.inf], [6, 6]).value is None
    only_real = figure("1.0", [math.nan, 3.0, 4.0], [6, 6, 6])
    assert only_real.value == 3.5 and only_real.tasks == 2
    result = judge(HASH_RATE, figure("1.1", [math.nan], [6]), fig("1.0", 3.3))
    assert result.phase == INCONCLUSIVE


def test_it_calls_too_few_samples_inconclusive():
    result = judge(HASH_RATE, fig("slow", 0.3, samples=2), fig("1.0", 3.3))
    assert result.phase == INCONCLUSIVE
    assert "too few samples" in result.message and "2 of 3" in result.message


def test_it_calls_a_zero_baseline_inconclusive_for_a_ratio():
    for template, value in [(HASH_RATE, 0.0), (LATENCY, 0.2)]:
        result = judge(template, fig("1.1", value), fig("1.0", 0.0))
        assert result.phase == INCONCLUSIVE
        assert "no ratio" in result.message


def test_it_judges_an_error_share_in_points_so_a_zero_baseline_still_counts():
    flaky = judge(ERRORS, fig("flaky", 0.10), fig("1.0", 0.0))
    assert flaky.phase == FAILED
    assert "10.0 %" in flaky.message and "limit +2.0 points" in flaky.message
    assert judge(ERRORS, fig("1.1", 0.001), fig("1.0", 0.0)).phase == SUCCESSFUL


def test_it_fails_a_latency_above_the_threshold():
    assert judge(LATENCY, fig("1.1", 0.5), fig("1.0", 0.1)).phase == FAILED
    assert judge(LATENCY, fig("1.1", 0.11), fig("1.0", 0.1)).phase == SUCCESSFUL


def test_it_follows_a_drifting_baseline_measured_over_the_same_window():
    # The whole stack slows down (rng saturated): old and new fall together,
    # so the new version is not blamed for it.
    windows = [(3.3, 3.2), (2.0, 1.9), (1.0, 0.95)]
    phases = [judge(HASH_RATE, fig("1.1", n), fig("1.0", o)).phase for o, n in windows]
    assert phases == [SUCCESSFUL] * 3


def test_it_decides_the_run_like_argo_rollouts():
    limits = {"count": 2, "failure_limit": 0, "inconclusive_limit": 2}
    assert run_phase([], **limits) == RUNNING
    assert run_phase([SUCCESSFUL], **limits) == RUNNING
    assert run_phase([SUCCESSFUL, SUCCESSFUL], **limits) == SUCCESSFUL
    assert run_phase([SUCCESSFUL, FAILED], **limits) == FAILED
    assert run_phase([FAILED, SUCCESSFUL, SUCCESSFUL], **limits) == FAILED
    assert run_phase([INCONCLUSIVE], **limits) == RUNNING
    assert run_phase([INCONCLUSIVE, INCONCLUSIVE, SUCCESSFUL], **limits) == INCONCLUSIVE
    assert run_phase([ERROR] * 3, **limits) == RUNNING
    assert run_phase([ERROR] * 4, **limits) == INCONCLUSIVE


def test_it_never_promotes_a_run_of_only_inconclusive_measurements():
    phases = [INCONCLUSIVE] * 50 + [ERROR] * 3
    assert run_phase(phases, count=1, failure_limit=0, inconclusive_limit=0) == RUNNING


def test_it_picks_each_roles_template_on_auto_and_none_when_off():
    assert template_for("auto", "worker") == HASH_RATE
    assert template_for("auto", "hasher") == ERRORS
    assert template_for("auto", "webui") is None
    assert template_for("off", "worker") is None
    assert template_for("hasher-latency", "worker") == TEMPLATES["hasher-latency"]
