"""The one module that asks Prometheus for measurements (its HTTP API,
/api/v1/query), and turns the answer into each version's figure.

Every failure to get an answer (connection refused, timeout, an HTTP error, a
body that is not Prometheus' JSON) is a PrometheusError, which the caller
records as an Error measurement: never a pass, never a failure.
"""

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict

from django.conf import settings

from rollouts.analysis.rules import VersionFigure, figure
from rollouts.analysis.templates import Template, query

_MAX_BODY = 4 * 1024 * 1024  # bytes: far above a stack's series
# Prometheus is the stack's own service (or its published port): never through
# an HTTP proxy the environment may name.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusError(Exception):
    """No usable answer from Prometheus; str() is one line for the operator."""


def instant(promql: str, *, at: float | None = None, base_url: str = "") -> list[dict]:
    """The vector `promql` evaluates to (now, or at Unix time `at`):
    [{"metric": {labels}, "value": [t, "text"]}]. Raises PrometheusError."""
    base = (base_url or settings.PROMETHEUS_URL).rstrip("/")
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with _opener.open(url, timeout=settings.PROMETHEUS_TIMEOUT) as answer:
            body = json.loads(answer.read(_MAX_BODY))
    except urllib.error.HTTPError as error:
        raise PrometheusError(f"Prometheus at {base} answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PrometheusError(f"Prometheus at {base} unreachable: {reason}") from None
    except ValueError:
        raise PrometheusError(f"Prometheus at {base} answered no JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if body.get("status") != "success" or not isinstance(data, dict):
        raise PrometheusError(f"Prometheus at {base}: {body.get('error', 'no data')}")
    result = data.get("result")
    return result if isinstance(result, list) else []


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
        instant(query(template.per_task, window), at=at, base_url=base_url)
    )
    samples = _by_version(
        instant(query(template.samples, window), at=at, base_url=base_url)
    )
    return {
        version: figure(
            version,
            per_task,
            [int(s) for s in samples.get(version, []) if math.isfinite(s)],
        )
        for version, per_task in values.items()
    }
