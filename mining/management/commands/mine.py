"""`manage.py mine`: the worker role.

Shaped like healthchecks' sendalerts: SIGTERM/SIGINT only set a stop flag, the
loop notices within a second, and the pending count is flushed before exit so
a rolling update loses no hash.
"""

import argparse
import logging
import re
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dockercoins import metrics
from mining.worker import WATCHDOG_LIMIT, Worker

log = logging.getLogger("mining.worker")

# ASCII digits only: int() and float() also read "٣", "nan", "inf" and "1e3",
# and time.sleep(nan) raises inside a mining loop instead of at the prompt.
_WHOLE = re.compile(r"[0-9]{1,6}", re.ASCII)
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]*)?|\.[0-9]+", re.ASCII)


def _positive_int(value: str) -> int:
    if not _WHOLE.fullmatch(value) or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number from 1 (digits 0-9)"
        )
    return int(value)


def _seconds(value: str) -> float:
    if not _DECIMAL.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of seconds (e.g. 0.1; digits 0-9, not negative)"
        )
    return float(value)


class Command(BaseCommand):
    help = "Mine DockerCoins: rng -> hasher -> Redis, until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            default=1,
            help="mining threads in this process (default 1)",
        )
        parser.add_argument(
            "--delay",
            type=_seconds,
            default=None,
            help="seconds to sleep before each hash (default WORKER_DELAY, "
            f"now {settings.WORKER_DELAY})",
        )
        parser.add_argument(
            "--flush-interval",
            type=_seconds,
            default=1.0,
            help="seconds between writes of the hash count to Redis (default 1)",
        )
        parser.add_argument(
            "--watchdog",
            type=_seconds,
            default=WATCHDOG_LIMIT,
            help="exit when a mining loop makes no progress for this many seconds, "
            f"so Swarm replaces the task (default {WATCHDOG_LIMIT:.0f}; 0: never)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        delay = options["delay"]
        try:
            worker = Worker(
                rng_url=settings.RNG_URL,
                hasher_url=settings.HASHER_URL,
                delay=settings.WORKER_DELAY if delay is None else delay,
                concurrency=options["concurrency"],
                flush_interval=options["flush_interval"],
                watchdog=options["watchdog"],
                stop=stop,
            )
        except ValueError as exc:  # RNG_URL / HASHER_URL that is not http://host
            raise CommandError(str(exc)) from None

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            metrics.serve(settings.METRICS_PORT)
        except OSError as exc:  # mining matters more than its figures
            log.warning("metrics not served on port %s: %s", settings.METRICS_PORT, exc)
        worker.run()
