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

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any


class _Nothing:
    """A metric that records nothing: inc(), observe(), labels() ..."""

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: self


def _without_metrics(app: Any, observe: Any = None) -> Any:
    return app


_NOTHING = _Nothing()


def _switch_off(module: ModuleType) -> None:
    if module.__name__ == "dockercoins.metrics":
        module.with_metrics = _without_metrics  # type: ignore[attr-defined]
    else:  # mining.metrics
        for name in ("hashes", "coins", "round_trip"):
            setattr(module, name, lambda *args: _NOTHING)
        module.error = lambda *args: None  # type: ignore[attr-defined]


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches the two metrics modules right after their normal import (not
    before: gunicorn's gevent patching and Django's settings come first)."""

    names = ("dockercoins.metrics", "mining.metrics")

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _switch_off(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _AfterImport())
