"""The canary step and its analysis on a real swarm, with the stack's real
Prometheus: a release that runs fine but mines ten times slower is rolled back
by the analysis alone; 1.1 is promoted and completes (with `make up`'s pace and
the analysis' defaults, as a new user runs it); an aborted canary is rolled
back; with Prometheus stopped the canary holds as inconclusive and says so; a
hasher that answers errors is caught by its error share. Whatever the end, the
live update policy is the declared one again: the hold never outlives it.

One stack (Prometheus on, 4 workers, the stack's default rng and hasher pace)
serves the module, and one database: the tests run in file order, each
starting from the version the last one left. Intervals are short (settings
below) except where a new user's defaults are the point; about five minutes.
"""

import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack, docker
from rollouts.analysis.prometheus import figures
from rollouts.analysis.templates import TEMPLATES
from rollouts.control.controller import Controller
from rollouts.engine.client import SwarmClient
from rollouts.models import AnalysisMeasurement, RolloutKind, RolloutState
from rollouts.spec.drift import service_drift
from rollouts.spec.fields import CANARY_HOLD
from tests.rollouts.canary_support import (
    ANALYSIS,
    ANALYSIS_DEFAULTS,
    INTERVAL,
    assert_the_reason_names_the_analysis,
    hash_rate_known,
    hasher_history_known,
    prometheus_value,
)
from tests.rollouts.swarm_support import (
    latest_rollout,
    module_database,
    refused,
    run,
    running_images,
    service,
)

pytestmark = pytest.mark.swarm

# A new user's `--canary 1`, whatever an earlier test declared.
DEFAULTS = ["--canary", "1", *ANALYSIS_DEFAULTS]


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    # `make up`'s pace (rng and hasher at 0.1 s, one of each): the new-user
    # trial's 1.1 canary was rolled back on it (issue 14).
    env = {"PROMETHEUS_REPLICAS": "1", "WORKER_REPLICAS": "4"}
    with deployed_stack(env) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def history(stack, django_db_setup, django_db_blocker):
    previous = settings.PROMETHEUS_URL
    settings.PROMETHEUS_URL = stack.url("prometheus", "")
    with module_database(stack, django_db_blocker):
        yield
    settings.PROMETHEUS_URL = previous


def images(docker_client, stack: Stack) -> list[str]:
    return [
        i.rsplit(":", 1)[1]
        for i in running_images(docker_client, stack.service("worker"))
    ]


def live_update_policy(docker_client, stack: Stack, short: str = "worker"):
    """(parallelism, delay in seconds) of the service's UpdateConfig as the
    engine has it now."""
    spec = docker_client.api.inspect_service(stack.service(short))["Spec"]
    config = spec.get("UpdateConfig") or {}
    return config.get("Parallelism", 0), config.get("Delay", 0) / 1e9


def assert_the_declared_update_policy(docker_client, stack: Stack, short="worker"):
    """The hold is gone: what runs has the service's declared parallelism and
    delay (the stack file's 1 and 0 s), and our write is not drift."""
    declared = service(stack, short)
    live = live_update_policy(docker_client, stack, short)
    assert live == (declared.update_parallelism, declared.update_delay) == (1, 0.0)
    assert CANARY_HOLD not in (declared.update_delay, live[1])
    assert service_drift(declared) is None, service_drift(declared)


def test_prometheus_scrapes_every_worker_on_one_node(stack):
    # Reported by the new-user trial: "no worker target on a single node".
    def workers_up() -> bool:
        return prometheus_value(stack, 'sum(up{job="worker"})') == 4

    wait_until(workers_up, timeout=60, interval=2, message="4 worker targets up")


def test_it_rolls_back_a_release_that_runs_but_mines_ten_times_slower(
    stack, history, docker_client
):
    hash_rate_known(stack)
    started = time.monotonic()
    error = refused(
        "apply", "worker", "--image-tag", "slow", *ANALYSIS, "--cause", "slow", "--wait"
    )
    took = time.monotonic() - started
    rollout = service(stack, "worker").rollouts.filter(kind="apply").order_by("-pk")[0]
    assert rollout.state == RolloutState.ROLLED_BACK, rollout.reason
    assert_the_reason_names_the_analysis(error, "1.0")
    failed = rollout.measurements.filter(phase="Failed")
    assert failed.exists()
    # Decided within about two analysis intervals of the write (plus the
    # engine's rollback of one task).
    assert took < 4 * INTERVAL + 30, took
    assert images(docker_client, stack) == ["1.0"] * 4
    print(f"TIMING slow rolled back in {took:.1f}s: {rollout.reason}")


def test_a_rolled_back_canary_leaves_the_declared_update_delay(
    stack, history, docker_client
):
    assert_the_declared_update_policy(docker_client, stack)


def test_it_promotes_a_release_that_mines_as_well_and_completes(
    stack, history, docker_client
):
    # The new-user trial, exactly: `--canary 1` with the analysis' defaults.
    hash_rate_known(stack)
    started = time.monotonic()
    out = run(
        "apply", "worker", "--image-tag", "1.1", *DEFAULTS, "--cause", "1.1", "--wait"
    )
    took = time.monotonic() - started
    rollout = latest_rollout(service(stack, "worker"))
    assert rollout.state == RolloutState.COMPLETED, rollout.reason
    assert "promoted at" in out and "analysis passed" in out
    assert rollout.canary_state == "promoted"
    assert "superseded" not in out
    wait_until(
        lambda: images(docker_client, stack) == ["1.1"] * 4,
        timeout=60,
        interval=1,
        message="4 workers on 1.1",
    )
    said = [m.message for m in rollout.measurements.order_by("at")]
    print(f"TIMING 1.1 promoted and completed in {took:.1f}s: {said}")
    # The diagnosis, measured: what the first window used to be (from our
    # write, one interval long) against the windows taken now.
    template = TEMPLATES["worker-hash-rate"]
    assert rollout.applied_at is not None
    for after in (20, 30, 40, 50, 60):
        at = rollout.applied_at.timestamp() + after
        found = figures(template, 30, at=at)
        print(
            f"DIAGNOSIS window of 30 s ending {after} s after the write: "
            + ", ".join(
                f"{v}: {f.value or 0:.2f}/s x{f.tasks} ({f.samples} samples)"
                for v, f in sorted(found.items())
            )
        )


def test_a_promoted_canary_leaves_the_declared_update_delay(
    stack, history, docker_client
):
    assert_the_declared_update_policy(docker_client, stack)


def test_an_aborted_canary_is_rolled_back_with_the_declared_update_delay(
    stack, history, docker_client
):
    # Written and left (no --wait): nobody drives it until the controller
    # below, started after the abort, as after a controller restart.
    run("apply", "worker", "--image-tag", "1.0", *ANALYSIS, "--cause", "to abort")
    wait_until(
        lambda: images(docker_client, stack).count("1.0") == 1
        and live_update_policy(docker_client, stack)[1] == CANARY_HOLD,
        timeout=60,
        interval=1,
        message="the canary task running, the rest held",
    )
    out = run("abort", "worker", "--cause", "changed my mind")
    assert "The held canary is rolled back" in out
    aborted = latest_rollout(service(stack, "worker"))
    controller = Controller(client=SwarmClient(), sync_interval=3600)

    def rolled_back() -> bool:
        controller.handle_one()
        follow_up = aborted.service.rollouts.filter(
            kind=RolloutKind.ROLLBACK, pk__gt=aborted.pk
        ).first()
        return follow_up is not None and follow_up.is_final

    wait_until(rolled_back, timeout=90, interval=1, message="the canary rolled back")
    aborted.refresh_from_db()
    assert (aborted.state, aborted.canary_state) == (RolloutState.ABORTED, "released")
    assert images(docker_client, stack) == ["1.1"] * 4
    assert_the_declared_update_policy(docker_client, stack)


def test_a_failed_analysis_between_batches_rolls_back_before_the_next_batch(
    stack, history, docker_client
):
    # No canary: one task per batch, 45 s apart; measured while the engine waits.
    hash_rate_known(stack)
    error = refused(
        "apply", "worker", "--image-tag", "slow", "--canary", "0",
        "--update-parallelism", "1", "--update-delay", "45s",
        "--analysis-interval", f"{INTERVAL}s", "--analysis-min-samples", "2",
        "--analysis-count", "1", "--cause", "batches", "--wait",
    )  # fmt: skip
    rollout = service(stack, "worker").rollouts.filter(kind="apply").order_by("-pk")[0]
    assert rollout.state == RolloutState.ROLLED_BACK, rollout.reason
    assert rollout.canary_state == "batches"
    assert "analysis failed: new tasks mine" in error and "limit -20 %" in error
    # Decided during the first batch's delay: one slow task, never a second.
    assert rollout.measurements.filter(phase="Failed", new_tasks=1).exists()
    assert images(docker_client, stack) == ["1.1"] * 4
    assert_the_declared_update_policy(docker_client, stack)
    print(f"TIMING batches: {rollout.reason}")


def test_it_holds_as_inconclusive_when_prometheus_is_down(
    stack, history, docker_client
):
    docker("service", "scale", "--detach", f"{stack.service('prometheus')}=0")
    try:
        error = refused(
            "apply", "worker", "--image-tag", "slow", *ANALYSIS,
            "--progress-deadline", "50s", "--deadline-action", "rollback",
            "--cause", "no prometheus", "--wait",
        )  # fmt: skip
    finally:
        docker("service", "scale", "--detach", f"{stack.service('prometheus')}=1")
    rollout = service(stack, "worker").rollouts.filter(kind="apply").order_by("-pk")[0]
    phases = set(rollout.measurements.values_list("phase", flat=True))
    assert phases and phases <= {"Inconclusive", "Error"}, phases
    assert "deadline" in error
    said = list(rollout.events.values_list("message", flat=True))
    assert any("holding: the analysis is inconclusive" in m for m in said), said
    assert any("unreachable" in m for m in said), said
    assert not AnalysisMeasurement.objects.filter(
        rollout=rollout, phase__in=["Successful", "Failed"]
    ).exists()
    assert_the_declared_update_policy(docker_client, stack)


def test_it_rolls_back_a_hasher_that_answers_errors(stack, history, docker_client):
    # The README stack's one hasher (its published host-mode port allows one
    # task per node): no canary and no batches are possible, so the analysis
    # runs during a stability window long enough for a measurement, against
    # the hasher before the rollout, and "done" waits for it.
    hasher_history_known(stack)  # the test before restarted Prometheus
    error = refused(
        "apply", "hasher", "--image-tag", "flaky", *ANALYSIS[2:], "--canary", "0",
        "--stable-for", f"{10 + INTERVAL + 5}s", "--cause", "flaky", "--wait",
    )  # fmt: skip
    rollout = service(stack, "hasher").rollouts.filter(kind="apply").order_by("-pk")[0]
    assert rollout.state == RolloutState.ROLLED_BACK, rollout.reason
    assert rollout.canary_state == "window"
    assert "analysis failed: new hasher tasks answer" in error
    assert "of requests with an error" in error and "limit +2.0 points" in error
    assert "dockercoins:1.0" in error or ":1.0 (" in error
    assert_the_declared_update_policy(docker_client, stack, "hasher")
    print(f"TIMING flaky: {rollout.reason}")
