"""Every metric follows Prometheus' naming rules and keeps its labels bounded."""

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

import dockercoins.metrics as http_metrics
import mining.metrics as worker_metrics
import rollouts.metrics.prometheus as controller_metrics

# A label whose values grow with tasks, containers, rollouts or requests would
# make a new series per value (Prometheus' naming guide, "Labels").
UNBOUNDED = {"task", "task_id", "container", "id", "rollout", "rollout_id", "path"}


def ours() -> list[MetricWrapperBase]:
    found = []
    for module in (http_metrics, worker_metrics, controller_metrics):
        found += [m for m in vars(module).values() if isinstance(m, MetricWrapperBase)]
    return found


def test_it_names_counters_total_and_durations_in_seconds():
    metrics = ours()
    assert len(metrics) >= 10
    for metric in metrics:
        family = next(iter(metric.describe()))
        assert family.name.startswith("dockercoins_"), family.name
        if isinstance(metric, Counter):
            # Declared without it: the client adds `_total` on exposition.
            assert not family.name.endswith("_total"), family.name
        if isinstance(metric, Histogram):
            assert family.name.endswith("_seconds"), family.name


def test_it_keeps_task_and_rollout_ids_out_of_labels():
    for metric in ours():
        assert not set(metric._labelnames) & UNBOUNDED, metric._name


def test_the_worker_and_http_metrics_carry_the_image_version():
    versioned = [
        worker_metrics.HASHES,
        worker_metrics.COINS,
        worker_metrics.ROUND_TRIP,
        worker_metrics.ERRORS,
        http_metrics.HTTP_DURATION,
    ]
    for metric in versioned:
        assert "version" in metric._labelnames, metric._name


def test_the_worker_exposes_the_names_the_analysis_queries():
    worker_metrics.hashes().inc(0)
    worker_metrics.coins().inc(0)
    worker_metrics.round_trip("rng").observe(0.1)
    names = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    assert {
        "dockercoins_hashes_total",
        "dockercoins_coins_total",
        "dockercoins_upstream_request_duration_seconds_bucket",
    } <= names
