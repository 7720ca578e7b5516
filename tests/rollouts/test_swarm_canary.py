"""The canary step and its analysis on a real swarm, with the stack's real
Prometheus: a release that runs fine but mines ten times slower is rolled back
by the analysis alone; 1.1 is promoted and completes; with Prometheus stopped
the canary holds as inconclusive and says so.

One stack (Prometheus on, 4 workers) serves the module, and one database: the
tests run in file order, each starting from the version the last one left.
Intervals are short (settings below) so the module costs about three minutes.
"""

import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from deploy.polling import wait_until
from deploy.stacks import Stack, deployed_stack, docker
from rollouts.models import AnalysisMeasurement, RolloutState
from tests.rollouts.swarm_support import (
    latest_rollout,
    module_database,
    refused,
    run,
    running_images,
    service,
)

pytestmark = pytest.mark.swarm

INTERVAL = 15  # seconds: three scrapes of the stack's Prometheus (every 5 s)
ANALYSIS = [
    "--canary", "1",
    "--analysis-interval", f"{INTERVAL}s",
    "--analysis-min-samples", "2",
    "--analysis-count", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def stack(docker_client) -> Iterator[Stack]:
    # rng at 20 ms, so the worker's own delay sets the hash rate (1.0: 0.1 s).
    env = {"PROMETHEUS_REPLICAS": "1", "WORKER_REPLICAS": "4", "RNG_DELAY": "0.02"}
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


def hash_rate_known(stack: Stack) -> None:
    """Wait until Prometheus has every worker's rate (the baseline)."""

    def four_rates() -> bool:
        import json
        import urllib.parse
        import urllib.request

        query = 'count(rate(dockercoins_hashes_total{job="worker"}[15s]) > 0)'
        url = stack.url("prometheus", "/api/v1/query?") + urllib.parse.urlencode(
            {"query": query}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as answer:
            result = json.load(answer)["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) >= 4

    wait_until(four_rates, timeout=120, interval=2, message="4 workers' hash rates")


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
    assert "analysis failed: new tasks mine" in error
    assert "hashes/s each against" in error and ":1.0 (" in error
    assert "limit -20 %" in error and "slot(s)" in error
    failed = rollout.measurements.filter(phase="Failed")
    assert failed.exists()
    # Decided within about two analysis intervals of the write (plus the
    # engine's rollback of one task).
    assert took < 4 * INTERVAL + 30, took
    assert images(docker_client, stack) == ["1.0"] * 4
    # The hold (a day's update delay) went with the engine's rollback: the
    # desired spec is the service's own policy again, not the hold.
    assert service(stack, "worker").update_delay == 0
    print(f"TIMING slow rolled back in {took:.1f}s: {rollout.reason}")


def test_it_promotes_a_release_that_mines_as_well_and_completes(
    stack, history, docker_client
):
    hash_rate_known(stack)
    out = run(
        "apply", "worker", "--image-tag", "1.1", *ANALYSIS, "--cause", "1.1", "--wait"
    )
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


def test_it_holds_as_inconclusive_when_prometheus_is_down(stack, history):
    docker("service", "scale", "--detach", f"{stack.service('prometheus')}=0")
    try:
        error = refused(
            "apply", "worker", "--image-tag", "slow", *ANALYSIS,
            "--progress-deadline", "25s", "--deadline-action", "rollback",
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
