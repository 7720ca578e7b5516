"""The controller's Prometheus metrics (`manage.py rollout controller`).

Served on METRICS_PORT by dockercoins.metrics.serve. Labels stay bounded: a
service name (the stack's handful), an outcome or phase (RolloutState), an
error kind; never a rollout id. Rollouts ended by `rollout apply --wait`
(the command drives it itself) are not in these counts: each process counts
what it drove, and Prometheus scrapes the controller.
"""

from prometheus_client import Counter, Enum, Histogram

from rollouts.models import FINAL_STATES, Rollout, RolloutState

ROLLOUTS = Counter(
    "dockercoins_rollouts",
    "Rollouts this controller drove to an end, by service, kind and outcome.",
    ["service", "kind", "outcome"],
)
ROLLOUT_DURATION = Histogram(
    "dockercoins_rollout_duration_seconds",
    "From a rollout's start to its end, by service and outcome.",
    ["service", "outcome"],
    buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
PHASE = Enum(
    "dockercoins_rollout_phase",
    "The state of the latest rollout of each service this controller drove.",
    ["service"],
    states=[state.value for state in RolloutState],
)
RECONCILE = Histogram(
    "dockercoins_reconcile_duration_seconds",
    "One round of the controller's loop: sync, step every rollout, claim one.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ERRORS = Counter(
    "dockercoins_reconcile_errors",
    "Failed rounds or rollout steps, by kind (engine: Docker unreachable or "
    "refusing; database; step: one rollout's step failed; other).",
    ["kind"],
)


def rollout_stepped(rollout: Rollout, *, state_before: str) -> None:
    """Record a rollout after one drive step: its phase, and its end once."""
    service = rollout.service.name
    PHASE.labels(service).state(rollout.state)
    if rollout.state == state_before or rollout.state not in FINAL_STATES:
        return
    ROLLOUTS.labels(service, rollout.kind, rollout.state).inc()
    if rollout.started_at and rollout.finished_at:
        took = (rollout.finished_at - rollout.started_at).total_seconds()
        ROLLOUT_DURATION.labels(service, rollout.state).observe(took)


def error(kind: str) -> None:
    ERRORS.labels(kind).inc()
