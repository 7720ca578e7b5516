"""The one module that talks to Prometheus: its HTTP API (/api/v1/query,
/api/v1/query_range), asked by the controller's analysis
(rollouts/analysis/prometheus.py) and the dashboard's rate by version
(mining/prometheus.py), each with its own queries.

Every failure to get an answer (connection refused, a timeout, an HTTP error, a
body that is not Prometheus' JSON, `"status": "error"`) is a PrometheusError
whose str() is one line for a person: the analysis records it as an Error
measurement (never a pass, never a failure), the dashboard as a 503.
"""

import json
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

_MAX_BODY = 4 * 1024 * 1024  # bytes: far above a stack's series
# Prometheus is the stack's own service (or its published port): never through
# an HTTP proxy the environment may name.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusError(Exception):
    """No usable answer from Prometheus; str() is one line for the operator."""


def query(
    path: str,
    params: dict[str, str],
    *,
    timeout: float | None = None,
    base_url: str = "",
) -> list[dict]:
    """GET `path` (e.g. "/api/v1/query") with `params` from Prometheus at
    `base_url` (default settings.PROMETHEUS_URL) and return its `data.result`:
    a vector [{"metric": {labels}, "value": [t, "text"]}] or a matrix
    [{"metric": {labels}, "values": [[t, "text"], ...]}]. `timeout` is in
    seconds (default and upper bound settings.PROMETHEUS_TIMEOUT).
    Raises PrometheusError."""
    base = (base_url or settings.PROMETHEUS_URL).rstrip("/")
    limit = settings.PROMETHEUS_TIMEOUT
    seconds = limit if timeout is None else min(timeout, limit)
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with _opener.open(url, timeout=seconds) as answer:
            body = json.loads(answer.read(_MAX_BODY))
    except urllib.error.HTTPError as error:
        raise PrometheusError(f"Prometheus at {base} answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PrometheusError(f"Prometheus at {base} unreachable: {reason}") from None
    except ValueError:
        raise PrometheusError(f"Prometheus at {base} answered no JSON") from None
    if not isinstance(body, dict):
        raise PrometheusError(f"Prometheus at {base} answered no JSON object")
    data = body.get("data")
    if body.get("status") != "success" or not isinstance(data, dict):
        raise PrometheusError(f"Prometheus at {base}: {body.get('error', 'no data')}")
    result = data.get("result")
    return result if isinstance(result, list) else []
