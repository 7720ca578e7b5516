"""Loaded by every Python process started with bench/metrics_off on PYTHONPATH:
the app's metrics become no-ops, so that `bench/pipeline.py` can be run with
the metrics on and off side by side in one session (issue 14: their cost on
the pipeline and `/json` stays within 5 %).

    PYTHONPATH=bench/metrics_off .venv/bin/python bench/pipeline.py

What is switched off: the WSGI wrapper that times every request of rng,
hasher and webui (dockercoins.metrics.with_metrics, which also serves
GET /metrics), and the worker's counters and histograms (mining.metrics).
Django's view-naming middleware stays (it only sets a key in the environ).
"""

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class _Nothing:
    """A metric that records nothing: inc(), observe(), labels() ..."""

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: self


def _without_metrics(app: Any, observe: Any = None) -> Any:
    return app


def _off() -> None:
    from dockercoins import metrics
    from mining import metrics as mining_metrics

    metrics.with_metrics = _without_metrics
    nothing = _Nothing()
    for name in ("hashes", "coins", "round_trip"):
        setattr(mining_metrics, name, lambda *args: nothing)
    mining_metrics.error = lambda *args: None


_off()
