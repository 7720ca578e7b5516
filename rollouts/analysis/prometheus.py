"""A rollout's measurements from Prometheus: each template's PromQL, asked
through dockercoins/prometheus.py (the one module that talks to Prometheus),
turned into each version's figure.

Every failure to get an answer is a PrometheusError, which the caller records
as an Error measurement: never a pass, never a failure.
"""

import math
from collections import defaultdict

from dockercoins.prometheus import PrometheusError, query
from rollouts.analysis.rules import VersionFigure, figure
from rollouts.analysis.templates import Template
from rollouts.analysis.templates import query as promql_for

__all__ = ["PrometheusError", "figures", "instant"]


def instant(promql: str, *, at: float | None = None, base_url: str = "") -> list[dict]:
    """The vector `promql` evaluates to (now, or at Unix time `at`):
    [{"metric": {labels}, "value": [t, "text"]}]. Raises PrometheusError."""
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return query("/api/v1/query", params, base_url=base_url)


def _by_version(vector: list[dict]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = defaultdict(list)
    for sample in vector:
        version = str(sample.get("metric", {}).get("version", ""))
        try:
            value = float(sample["value"][1])  # "NaN" and "+Inf" parse; rules drop them
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if version:
            found[version].append(value)
    return found


def figures(
    template: Template, window: float, *, at: float | None = None, base_url: str = ""
) -> dict[str, VersionFigure]:
    """Each version's figure over the `window` seconds before `at` (now):
    the per-task values averaged, the tasks counted, the fewest scrapes.
    Raises PrometheusError."""
    values = _by_version(
        instant(promql_for(template.per_task, window), at=at, base_url=base_url)
    )
    samples = _by_version(
        instant(promql_for(template.samples, window), at=at, base_url=base_url)
    )
    return {
        version: figure(
            version,
            per_task,
            [int(s) for s in samples.get(version, []) if math.isfinite(s)],
        )
        for version, per_task in values.items()
    }
