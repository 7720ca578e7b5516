"""The worker's Prometheus metrics (`manage.py mine`), served on METRICS_PORT.

Every series carries the worker image's version (settings.VERSION), so during
a rolling update the old and the new version can be compared over the same
interval: `sum by (version) (rate(dockercoins_hashes_total[1m]))` divided by
the number of tasks of each version is the hash rate per task by version.
No task ids in labels: Prometheus adds each task's address as `instance`.

The HTTP roles' request metrics are dockercoins.metrics'.
"""

from django.conf import settings
from prometheus_client import Counter, Histogram

# rng answers one request at a time per replica (0.1 s each in the workshop),
# so a round trip may queue for seconds with many workers; hasher takes 0.1 s.
ROUND_TRIP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5, 10)

HASHES = Counter(
    "dockercoins_hashes",
    "Hashes made: one per rng + hasher round trip.",
    ["version"],
)
COINS = Counter(
    "dockercoins_coins",
    "Coins found: hashes whose hex starts with 0.",
    ["version"],
)
ROUND_TRIP = Histogram(
    "dockercoins_upstream_request_duration_seconds",
    "Round trip of a successful request from the worker to rng or hasher.",
    ["upstream", "version"],
    buckets=ROUND_TRIP_BUCKETS,
)
ERRORS = Counter(
    "dockercoins_upstream_errors",
    "Failed calls from the worker, by upstream (rng, hasher, redis) and kind "
    "(connection: no answer; status: an answer other than 200).",
    ["upstream", "kind", "version"],
)


def hashes() -> Counter:
    """This version's hash counter (labels bound once, not per hash)."""
    return HASHES.labels(settings.VERSION)


def coins() -> Counter:
    return COINS.labels(settings.VERSION)


def round_trip(upstream: str) -> Histogram:
    return ROUND_TRIP.labels(upstream, settings.VERSION)


def error(upstream: str, kind: str) -> None:
    ERRORS.labels(upstream, kind, settings.VERSION).inc()
