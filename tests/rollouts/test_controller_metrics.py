"""The controller's metrics: rollouts by outcome and duration, each service's
phase, the reconcile loop's duration and its errors by kind."""

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from rollouts.control.controller import Controller
from rollouts.models import RolloutState
from rollouts.records import requests

pytestmark = pytest.mark.django_db


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_completed_rollout_is_counted_with_its_outcome_and_phase(worker, engine):
    labels = {"service": "dockercoins_worker", "kind": "apply", "outcome": "completed"}
    before = sample("dockercoins_rollouts_total", **labels)
    controller = Controller(owner="a", client=engine.client(), sync_interval=3600)
    requests.service_scale(service=worker, user=None, replicas=3)

    controller.handle_one()
    watching = sample(
        "dockercoins_rollout_phase",
        service="dockercoins_worker",
        dockercoins_rollout_phase="watching",
    )
    engine.add_task(engine.service("dockercoins_worker"), 3, "running")
    controller.handle_one()

    assert watching == 1
    assert sample("dockercoins_rollouts_total", **labels) == before + 1
    assert (
        sample(
            "dockercoins_rollout_phase",
            service="dockercoins_worker",
            dockercoins_rollout_phase=RolloutState.COMPLETED,
        )
        == 1
    )
    assert (
        sample(
            "dockercoins_rollout_duration_seconds_count",
            service="dockercoins_worker",
            outcome="completed",
        )
        >= 1
    )
    controller.handle_one()  # nothing new: counted once
    assert sample("dockercoins_rollouts_total", **labels) == before + 1


def test_engine_errors_of_the_loop_are_counted_by_kind(engine, db, tmp_path: Path):
    before = sample("dockercoins_reconcile_errors_total", kind="engine")
    rounds = sample("dockercoins_reconcile_duration_seconds_count")
    controller = Controller(owner="a", client=engine.client())
    engine.down = True

    def sleep(seconds: float) -> None:
        controller.stop = True  # one round, then leave the loop

    controller.sleep = sleep  # type: ignore[method-assign]
    controller.run(tmp_path / "alive")

    assert sample("dockercoins_reconcile_errors_total", kind="engine") == before + 1
    # A failed round is timed too: its duration is how long the engine took
    # to fail.
    assert sample("dockercoins_reconcile_duration_seconds_count") == rounds + 1
