"""`rollout status` says when a rollout is held for its analysis, the last
measurement's verdict and who decides, as it does for unplaced tasks (trial,
11:49: only `#5 watching 1/4`)."""

import io

import pytest
from django.core.management import call_command

from rollouts.models import AnalysisMeasurement, Rollout, RolloutState
from rollouts.records.requests import service_scale

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_docker(engine, monkeypatch):
    monkeypatch.setattr(
        "rollouts.management.commands.rollout.SwarmClient", engine.client
    )


def held(worker, canary_state: str) -> Rollout:
    rollout = service_scale(service=worker, user=None, replicas=3)
    Rollout.objects.filter(pk=rollout.pk).update(
        state=RolloutState.WATCHING, canary_state=canary_state
    )
    rollout.refresh_from_db()
    return rollout


def status() -> list[str]:
    out = io.StringIO()
    call_command("rollout", "status", stdout=out)
    return out.getvalue().splitlines()


def test_it_says_a_held_canary_is_inconclusive_and_who_decides(worker):
    rollout = held(worker, "holding")
    AnalysisMeasurement.objects.create(
        rollout=rollout,
        template="hash-rate",
        phase="Inconclusive",
        message="no measurement: Prometheus at http://prometheus:9090 unreachable",
    )
    assert (
        f"dockercoins_worker: rollout #{rollout.pk} is held, it holds its canary "
        "for analysis: last measurement inconclusive (no measurement: Prometheus "
        "at http://prometheus:9090 unreachable); `rollout promote worker --cause …` "
        "or `rollout abort worker --cause …` decides"
    ) in status()


def test_it_says_a_stability_window_analysis_is_still_measuring(worker):
    rollout = held(worker, "window")
    assert (
        f"dockercoins_worker: rollout #{rollout.pk} is held, it waits for the "
        "analysis of its stability window: measuring, no measurement yet; "
        "`rollout promote worker --cause …` or `rollout abort worker --cause …` "
        "decides"
    ) in status()


def test_a_rollout_that_is_not_held_gets_no_held_line(worker):
    held(worker, "promoted")
    assert not [line for line in status() if "is held" in line]
