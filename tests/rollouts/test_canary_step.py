"""The canary step against the fake engine, with Prometheus' figures stubbed:
the hold is the engine's own update delay, promotion is a write of ours (never
an outside write), a failed analysis asks the engine for its rollback, and no
data holds. The real engine and Prometheus: test_swarm_canary.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rollouts.analysis.prometheus import PrometheusError
from rollouts.analysis.rules import VersionFigure
from rollouts.control import canary
from rollouts.control.controller import Controller
from rollouts.models import AnalysisMeasurement, RolloutState
from rollouts.records import requests
from rollouts.spec.specs import to_ns

DAY_NS = to_ns(canary.HOLD)


@pytest.fixture
def held(worker, engine, monkeypatch):
    """A worker rollout 1.0 -> 1.1 with one canary task, written and held."""
    worker.canary, worker.analysis_interval = 1, 10
    worker.save()
    controller = Controller(owner="a", client=engine.client(), sync_interval=3600)
    rollout = requests.service_change(
        service=worker, user=None, change_cause="canary", tag="1.1"
    )
    assert controller.handle_one()
    engine.set_update(engine.service("dockercoins_worker"), "updating")
    rollout.refresh_from_db()
    return controller, rollout


def figures_are(monkeypatch, found):
    def stub(template, window, *, at=None, base_url=""):
        if isinstance(found, Exception):
            raise found
        return found

    monkeypatch.setattr(canary, "figures", stub)


def next_interval(rollout):
    AnalysisMeasurement.objects.filter(rollout=rollout).update(
        at=timezone.now() - timedelta(hours=1)
    )


def test_it_holds_the_update_after_the_canary_batch_with_the_engines_delay(
    held, engine
):
    _, rollout = held
    config = engine.service("dockercoins_worker")["Spec"]["UpdateConfig"]
    assert (config["Parallelism"], config["Delay"]) == (1, DAY_NS)
    assert (rollout.canary_state, rollout.baseline_version) == ("holding", "1.0")


def test_it_rolls_back_when_the_new_tasks_mine_slower(held, engine, monkeypatch):
    controller, rollout = held
    slow, old = VersionFigure("1.1", 0.33, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": slow, "1.0": old})
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rollout.reason.startswith(
        "analysis failed: new tasks mine 0.33 hashes/s each against 3.30 hashes/s "
        "for dockercoins:1.0 (-90 %; limit -20 %"
    )
    assert rollout.measurements.get().phase == "Failed"
    assert rollout.service.rollouts.filter(kind="rollback").exists()


def test_it_promotes_with_a_write_of_its_own_and_completes(held, engine, monkeypatch):
    controller, rollout = held
    good, old = VersionFigure("1.1", 3.2, 1, 6), VersionFigure("1.0", 3.3, 1, 6)
    figures_are(monkeypatch, {"1.1": good, "1.0": old})
    for _ in range(rollout.service.analysis_count):
        controller.handle_one()
        next_interval(rollout)
    rollout.refresh_from_db()
    svc = engine.service("dockercoins_worker")
    assert rollout.canary_state == "promoted"
    assert svc["Spec"]["UpdateConfig"]["Delay"] == 0
    assert rollout.applied_spec["UpdateConfig"]["Delay"] == 0  # ours, read back
    engine.replace_tasks(svc)
    engine.set_update(svc, "completed")
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED, rollout.reason


def test_it_holds_and_says_why_when_prometheus_is_down(held, monkeypatch):
    controller, rollout = held
    figures_are(monkeypatch, PrometheusError("Prometheus at x unreachable: refused"))
    for _ in range(6):
        controller.handle_one()
        next_interval(rollout)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.WATCHING
    assert set(rollout.measurements.values_list("phase", flat=True)) == {"Error"}
    said = list(rollout.events.values_list("message", flat=True))
    assert any("holding" in m and "unreachable" in m for m in said)
    assert any("inconclusive limit reached" in m for m in said)  # 4 errors in a row


def test_an_operator_promotes_a_held_rollout_with_who_and_why(
    held, engine, monkeypatch, admin_user
):
    controller, rollout = held
    figures_are(monkeypatch, {})
    requests.rollout_promote(
        service=rollout.service, user=admin_user, cause="looks fine"
    )
    controller.handle_one()
    rollout.refresh_from_db()
    assert rollout.canary_state == "promoted"
    said = list(rollout.events.values_list("message", flat=True))
    assert any("promoted by admin: looks fine" in m for m in said)
    assert engine.service("dockercoins_worker")["Spec"]["UpdateConfig"]["Delay"] == 0
