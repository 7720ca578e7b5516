"""How a worker process shows it is alive: a heartbeat file for an engine
health check, and a watchdog that ends the process when a loop hangs."""

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("mining.worker")

WATCHDOG_PERIOD = 1.0
# sysexits' EX_SOFTWARE: the exit code a stuck worker's task reports.
EXIT_STUCK = 70


class HeartbeatFile:
    """A file whose age the image's health check tests (deploy/entrypoint.sh).

    Touched once per flush cycle, whether or not Redis answered: it says the
    loop is alive. Were it touched only on successful flushes, a Redis outage
    longer than the health check's limit would get every worker replaced, and
    the replaced workers' unflushed hashes would be lost for nothing.
    """

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._failed = False

    def beat(self) -> None:
        if self.path is None:
            return
        try:
            self.path.touch()
        except OSError as exc:
            if not self._failed:  # one line, not one per second
                log.warning("cannot touch heartbeat file %s: %s", self.path, exc)
                self._failed = True


class Watchdog:
    """Ends the process when a loop of this worker stops making progress.

    It stands in for the engine's health check, which the stack turns off for
    the worker: one check is an exec costing about 80 ms of CPU here (README,
    rollout timing), and with it a new task would count as running only after
    the check's interval. Each miner beats after every attempt and the main
    loop after every flush; all their calls are bounded by timeouts, so a loop
    silent for `limit` seconds is stuck (a deadlock, a hang no timeout covers).
    The process then exits with EXIT_STUCK and Swarm's restart policy starts a
    fresh task, as it would replace an unhealthy container. A limit of 0 turns
    the watchdog off.
    """

    def __init__(
        self,
        *,
        limit: float,
        clock: Callable[[], float] = time.monotonic,
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._exit = exit
        self._last: dict[str, float] = {}

    def beat(self, name: str) -> None:
        self._last[name] = self._clock()

    def silent(self) -> dict[str, float]:
        """{loop name: seconds since its last beat} for loops past the limit."""
        now = self._clock()
        ages = {name: now - last for name, last in list(self._last.items())}
        return {name: age for name, age in ages.items() if age > self.limit}

    def check(self) -> bool:
        """One look; exit the process when a loop is stuck. True if one was."""
        if not self.limit:
            return False
        stuck = self.silent()
        if not stuck:
            return False
        names = ", ".join(
            f"{name} silent for {age:.0f} s" for name, age in stuck.items()
        )
        log.error("worker stuck (%s); exiting so Swarm replaces it", names)
        logging.shutdown()
        self._exit(EXIT_STUCK)
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(WATCHDOG_PERIOD):
            self.check()
