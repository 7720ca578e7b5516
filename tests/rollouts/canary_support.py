"""What the canary tests on one node (tests/rollouts/test_swarm_canary.py)
and on the lab (tests/multinode/) share: the analysis' short settings, the
stack's Prometheus asked directly, and what a rolled-back canary must say."""

from deploy.polling import wait_until
from deploy.stacks import Stack
from rollouts.analysis.prometheus import instant

INTERVAL = 15  # seconds: three scrapes of the stack's Prometheus (every 5 s)
ANALYSIS = [
    "--canary", "1",
    "--analysis-interval", f"{INTERVAL}s",
    "--analysis-min-samples", "2",
    "--analysis-count", "1",
]  # fmt: skip
# The analysis' defaults (rollouts.spec.fields), said out loud: what a new
# user's `--canary 1` runs with, whatever an earlier test declared.
ANALYSIS_DEFAULTS = [
    "--analysis-interval", "30s",
    "--analysis-min-samples", "3",
    "--analysis-count", "2",
]  # fmt: skip


def prometheus_vector(stack: Stack, query: str, at: float | None = None) -> list:
    """The vector `query` evaluates to in the stack's Prometheus (now, or at
    Unix time `at`), asked as the analysis asks it."""
    return instant(query, at=at, base_url=stack.url("prometheus", ""))


def prometheus_value(stack: Stack, query: str) -> float | None:
    result = prometheus_vector(stack, query)
    return float(result[0]["value"][1]) if result else None


def hash_rate_known(stack: Stack, workers: int = 4) -> None:
    """Wait until Prometheus has every worker's rate (the baseline)."""
    query = 'count(rate(dockercoins_hashes_total{job="worker"}[15s]) > 0)'
    wait_until(
        lambda: (prometheus_value(stack, query) or 0) >= workers,
        timeout=120,
        interval=2,
        message=f"{workers} workers' hash rates",
    )


def hasher_history_known(stack: Stack) -> None:
    """Wait until Prometheus holds an analysis interval of the hasher's answers
    (the baseline before a rollout; a Prometheus restarted just before has
    none, and the analysis would hold on no data)."""
    query = (
        "max(count_over_time(dockercoins_http_request_duration_seconds_count"
        f'{{job="hasher",method="POST"}}[{INTERVAL}s]))'
    )
    wait_until(
        lambda: (prometheus_value(stack, query) or 0) >= 3,
        timeout=120,
        interval=2,
        message="an interval of the hasher's answers in Prometheus",
    )


def assert_the_reason_names_the_analysis(reason: str, old_version: str) -> None:
    """A rolled-back canary says the metric, the new value, the baseline (its
    version), the limit and the slots: `analysis failed: new tasks mine 0.90
    hashes/s each against 4.33 hashes/s for dockercoins:1.0 (-79 %; limit
    -20 %; 1 new task(s), 3 old) in slot(s) 1`."""
    assert "analysis failed: new tasks mine" in reason, reason
    assert "hashes/s each against" in reason, reason
    assert f":{old_version} (" in reason, reason
    assert "limit -20 %" in reason and "slot(s)" in reason, reason
