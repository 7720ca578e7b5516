"""Reads shared by the page, /json and the API: one Redis round trip each."""

import time
from dataclasses import dataclass

from mining import probe, stats, store

CHART_SECONDS = 300


@dataclass(frozen=True)
class Dashboard:
    now: float
    hashes: int
    coins: int
    rates: stats.Rates
    series: stats.Series
    active_workers: int
    latency: probe.ProbeResult | None


def totals() -> store.Totals:
    """Raises store.StoreUnavailable."""
    return store.totals()


def dashboard(*, now: float | None = None) -> Dashboard:
    """Everything the page shows. Raises store.StoreUnavailable.

    Never waits for a latency probe: a stale one is refreshed in the
    background and shows up on a later call.
    """
    now = time.time() if now is None else now
    snapshot = store.snapshot(now=now)
    return Dashboard(
        now=now,
        hashes=snapshot.hashes,
        coins=snapshot.coins,
        rates=stats.rates(snapshot.per_second, now=now),
        series=stats.series(snapshot.per_second, now=now, seconds=CHART_SECONDS),
        active_workers=snapshot.active_workers,
        latency=probe.latest(snapshot.probe, now=now),
    )
