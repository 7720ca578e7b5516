"""Loaded by every Python process started with bench/diag on PYTHONPATH (only
bench/tails.py does): records each garbage collection inside the gunicorn
workers, and can turn the collector off or freeze the start-up heap.

TAILS_GC_DIR  a directory: each process writes <pid>.json there at exit, a
              list of [unix time at the end, generation, seconds] per pass
TAILS_GC      "off": gc.disable() (forks inherit it); "freeze": gc.freeze()
              once gunicorn's worker has loaded the app (its start-up objects
              are then never scanned again)
TAILS_GREEDY  "1": deploy/gunicorn.conf.py's post_request no longer yields
              after each request (take_turns): each keep-alive connection
              keeps the worker for as long as its client answers at once;
              "timer": it yields with a 1 us timer instead of gevent.sleep(0)

With TAILS_GC_DIR set, a gunicorn worker also runs a probe greenlet that asks
gevent for a 5 ms sleep over and over and records how late it wakes: the time
the worker's event loop could not run (its process off the CPU, or one
greenlet holding it). <pid>.lag.json: [unix time, seconds late] per wake.
"""

import atexit
import gc
import json
import os
import time

_DIR = os.environ.get("TAILS_GC_DIR", "")
_MODE = os.environ.get("TAILS_GC", "")
_passes: list[list[float]] = []
_started: list[float] = [0.0]


def _timed(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _passes.append(
            [time.time(), info["generation"], time.perf_counter() - _started[0]]
        )


_lags: list[list[float]] = []
PROBE_SECONDS = 0.005


def _write() -> None:
    with open(os.path.join(_DIR, f"{os.getpid()}.json"), "w") as out:
        json.dump(_passes, out)
    if _lags:
        with open(os.path.join(_DIR, f"{os.getpid()}.lag.json"), "w") as out:
            json.dump(_lags, out)


def _in_child() -> None:
    _passes.clear()  # the parent's passes are the parent's


def _probe() -> None:
    import gevent  # type: ignore[import-untyped]

    while True:
        asked = time.perf_counter()
        gevent.sleep(PROBE_SECONDS)
        late = time.perf_counter() - asked - PROBE_SECONDS
        _lags.append([time.time(), late])


if _DIR:
    gc.callbacks.append(_timed)
    atexit.register(_write)
    os.register_at_fork(after_in_child=_in_child)

if _MODE == "off":
    gc.disable()
if _DIR:
    try:
        from gunicorn.workers import base  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        _load = base.Worker.load_wsgi

        def load_wsgi(self) -> None:
            _load(self)
            if _MODE == "freeze":
                gc.collect()
                gc.freeze()
            if os.environ.get("TAILS_GREEDY") == "1":
                self.cfg.post_request.__globals__["take_turns"] = lambda: None
            if os.environ.get("TAILS_GREEDY") == "timer":
                self.cfg.post_request.__globals__["TURN"] = 1e-6
            if "gevent" in type(self).__module__:
                import gevent

                gevent.spawn(_probe)

        base.Worker.load_wsgi = load_wsgi
