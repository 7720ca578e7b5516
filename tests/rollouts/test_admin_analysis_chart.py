"""The rollout page draws its analysis: each recorded measurement against its
baseline and limit, and the verdict, as inline SVG the CSP allows."""

import re

import pytest
from django.urls import reverse

from rollouts.admin.analysis_chart import analysis_svg, verdict
from rollouts.models import AnalysisMeasurement, Rollout, RolloutState
from tests.rollouts.admin_support import active_rollout, make_service

pytestmark = pytest.mark.django_db

OLD = 3.30
LIMIT = round(OLD * 0.8, 3)


def measured(rollout: Rollout, phase: str, value: float | None, **fields):
    values = {
        "template": "worker-hash-rate",
        "phase": phase,
        "value": value,
        "baseline": OLD,
        "limit": LIMIT if value is not None else None,
        "new_version": "slow",
        "old_version": "1.0",
        "new_tasks": 1,
        "old_tasks": 3,
        "message": f"new tasks mine {value} hashes/s each against {OLD}",
        **fields,
    }
    return AnalysisMeasurement.objects.create(rollout=rollout, **values)


def picture(rollout: Rollout) -> str:
    measurements = list(rollout.measurements.all())
    return str(
        analysis_svg(measurements, verdict(rollout, [m.phase for m in measurements]))
    )


def phases_drawn(svg: str) -> list[str]:
    return re.findall(r'class="rollouts-measurement" data-phase="(\w+)"', svg)


def test_a_failed_measurement_is_drawn_below_its_limit_and_rolled_back():
    rollout = active_rollout(make_service(), state=RolloutState.ROLLED_BACK)
    measured(rollout, "Failed", 0.33)

    svg = picture(rollout)

    assert phases_drawn(svg) == ["Failed"]
    assert "Verdict: Failed (1 failed): the new version is past the limit" in svg
    assert "rolled back" in svg
    # The value's dot is lower on the picture (a larger y) than the limit line.
    dot = float(
        re.search(r'<circle cx="[\d.]+" cy="([\d.]+)" r="6" fill="#c92a2a"', svg)[1]
    )
    limit = float(re.search(r'class="rollouts-limit"[^>]* y1="([\d.]+)"', svg)[1])
    baseline = float(re.search(r'class="rollouts-baseline"[^>]* y1="([\d.]+)"', svg)[1])
    assert baseline < limit < dot
    assert "0.33" in svg and "new tasks mine 0.33 hashes/s" in svg  # its tooltip


def test_passed_measurements_and_a_promotion():
    rollout = active_rollout(
        make_service(), state=RolloutState.COMPLETED, canary_state="promoted"
    )
    measured(rollout, "Successful", 3.1)
    measured(rollout, "Successful", 3.4, baseline=3.5, limit=2.8)  # drifting baseline

    svg = picture(rollout)

    assert phases_drawn(svg) == ["Successful", "Successful"]
    assert "Verdict: Passed; promoted (2 passed); the rollout is completed" in svg
    levels = re.findall(r'class="rollouts-baseline"[^>]* y1="([\d.]+)"', svg)
    assert len(set(levels)) == 2  # each measurement's own baseline: a step


def test_no_data_is_a_hollow_mark_and_the_hold_is_the_verdict():
    rollout = active_rollout(make_service(), canary_state="holding")
    measured(
        rollout,
        "Inconclusive",
        None,
        baseline=None,
        message="no data for the new version's tasks",
    )
    measured(rollout, "Inconclusive", float("nan"), limit=None, message="a rate of 0/0")
    measured(rollout, "Error", None, baseline=None, message="Prometheus unreachable")

    svg = picture(rollout)

    assert phases_drawn(svg) == ["Inconclusive", "Inconclusive", "Error"]
    assert svg.count(">no data</text>") == 2 + 1  # two marks, and the legend
    assert ">error</text>" in svg
    assert "nan" not in svg.lower()  # NaN is drawn as no data, never as a figure
    assert (
        "Verdict: Holding (2 inconclusive, 1 error): inconclusive, never promoted"
        in svg
    )


def test_a_dry_run_says_it_never_acted():
    rollout = active_rollout(make_service(), state="completed", canary_state="dry-run")
    measured(rollout, "Failed", 0.5, dry_run=True)
    assert "Verdict: Dry run (1 failed): measured, never acted on" in picture(rollout)


def test_the_picture_has_no_script_and_no_style_attribute_for_the_csp():
    rollout = active_rollout(make_service(), state=RolloutState.ROLLED_BACK)
    measured(rollout, "Failed", 0.33, message='<script>alert("x")</script>')
    svg = picture(rollout)
    assert "<script" not in svg and "style=" not in svg
    assert "&lt;script&gt;" in svg  # the message is escaped in its tooltip


def test_no_measurement_draws_nothing():
    assert str(analysis_svg([], verdict(active_rollout(make_service()), []))) == ""


def test_the_rollout_page_shows_the_picture(operator):
    rollout = active_rollout(make_service(), state=RolloutState.ROLLED_BACK)
    measured(rollout, "Failed", 0.33)
    page = operator.get(reverse("admin:rollouts_rollout_change", args=[rollout.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<svg class="rollouts-analysis"' in html
    assert "Verdict: Failed" in html


def test_a_rollout_without_analysis_says_so(operator):
    rollout = active_rollout(make_service())
    page = operator.get(reverse("admin:rollouts_rollout_change", args=[rollout.pk]))
    assert "no measurement: no canary step or no analysis" in page.content.decode()
