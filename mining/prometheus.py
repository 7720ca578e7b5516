"""The web UI's one module that asks Prometheus (its HTTP API,
/api/v1/query_range): the workers' hash rate by image version, for the chart.

The controller's analysis has its own client (rollouts.analysis.prometheus),
which the webui must not import (docs/architecture.md). Every failure to get
an answer is PrometheusUnavailable: the chart then shows the total rate only.
"""

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings

# Each worker task's hashes, summed by version: the total of one version's
# tasks, which adds up to the chart's hash-rate line. 15 s = three scrapes.
RATE_BY_VERSION = 'sum by (version) (rate(dockercoins_hashes_total{job="worker"}[15s]))'
TASKS_BY_VERSION = 'count by (version) (dockercoins_hashes_total{job="worker"})'
STEP_SECONDS = 5  # the scrape interval (deploy/prometheus.yml)
# The page waits for this answer: far below the analysis' timeout.
TIMEOUT_SECONDS = 2.0
_MAX_BODY = 1024 * 1024  # bytes: a few versions × 60 points
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusUnavailable(Exception):
    """No usable answer from Prometheus; str() is one line for the page."""


@dataclass(frozen=True)
class VersionRate:
    """One version's hashes/s at each step from `start` (None: no sample)."""

    version: str
    tasks: int
    rates: list[float | None]


def _get(path: str, params: dict[str, str]) -> list[dict]:
    base = settings.PROMETHEUS_URL.rstrip("/")
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    timeout = min(settings.PROMETHEUS_TIMEOUT, TIMEOUT_SECONDS)
    try:
        with _opener.open(url, timeout=timeout) as answer:
            body = json.loads(answer.read(_MAX_BODY))
    except urllib.error.HTTPError as error:
        raise PrometheusUnavailable(
            f"Prometheus at {base} answered {error.code}"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PrometheusUnavailable(
            f"Prometheus at {base} unreachable: {reason}"
        ) from None
    except ValueError:
        raise PrometheusUnavailable(f"Prometheus at {base} answered no JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or body.get("status") != "success":
        raise PrometheusUnavailable(f"Prometheus at {base} answered an error")
    result = data.get("result")
    return result if isinstance(result, list) else []


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return round(value, 2) if math.isfinite(value) else None


def rate_by_version(*, start: int, end: int) -> list[VersionRate]:
    """Each version's hash rate every STEP_SECONDS from `start` to `end`
    (Unix seconds), in version order. Raises PrometheusUnavailable."""
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
