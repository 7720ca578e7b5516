"""The workers' hash rate by image version, for the dashboard's chart: its
PromQL, asked through dockercoins/prometheus.py (the one module that talks to
Prometheus; the controller's analysis asks through it too, with its own
queries). Every failure to get an answer is a PrometheusError: the chart then
shows the total rate only.
"""

import math
from dataclasses import dataclass

from dockercoins.prometheus import query

# Each worker task's hashes, summed by version: the total of one version's
# tasks, which adds up to the chart's hash-rate line. 15 s = three scrapes.
RATE_BY_VERSION = 'sum by (version) (rate(dockercoins_hashes_total{job="worker"}[15s]))'
TASKS_BY_VERSION = 'count by (version) (dockercoins_hashes_total{job="worker"})'
STEP_SECONDS = 5  # the scrape interval (deploy/prometheus.yml)
# The page waits for this answer: far below the analysis' timeout.
TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class VersionRate:
    """One version's hashes/s at each step from `start` (None: no sample)."""

    version: str
    tasks: int
    rates: list[float | None]


def _get(path: str, params: dict[str, str]) -> list[dict]:
    return query(path, params, timeout=TIMEOUT_SECONDS)


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return round(value, 2) if math.isfinite(value) else None


def rate_by_version(*, start: int, end: int) -> list[VersionRate]:
    """Each version's hash rate every STEP_SECONDS from `start` to `end`
    (Unix seconds), in version order. Raises PrometheusError."""
    steps = (end - start) // STEP_SECONDS + 1
    matrix = _get(
        "/api/v1/query_range",
        {
            "query": RATE_BY_VERSION,
            "start": str(start),
            "end": str(start + (steps - 1) * STEP_SECONDS),
            "step": str(STEP_SECONDS),
        },
    )
    tasks = {
        str(sample.get("metric", {}).get("version", "")): _number(
            (sample.get("value") or [0, "0"])[1]
        )
        for sample in _get("/api/v1/query", {"query": TASKS_BY_VERSION})
        if isinstance(sample, dict)
    }
    found = []
    for series in matrix:
        if not isinstance(series, dict):
            continue
        version = str(series.get("metric", {}).get("version", ""))
        rates: list[float | None] = [None] * steps
        for point in series.get("values") or []:
            try:
                index = round((float(point[0]) - start) / STEP_SECONDS)
            except (TypeError, ValueError, IndexError):
                continue
            if 0 <= index < steps:
                rates[index] = _number(point[1])
        if version:
            found.append(VersionRate(version, int(tasks.get(version) or 0), rates))
    return sorted(found, key=lambda v: v.version)
