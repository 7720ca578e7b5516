"""`manage.py mine`: the worker role.

Shaped like healthchecks' sendalerts: SIGTERM/SIGINT only set a stop flag, the
loop notices within a second, and the pending count is flushed before exit so
a rolling update loses no hash.
"""

import argparse
import logging
import signal
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dockercoins import metrics
from dockercoins.numbers import NumberError, bounded_decimal, bounded_int
from mining.worker import WATCHDOG_LIMIT, Worker

log = logging.getLogger("mining.worker")

MAX_WATCHDOG = 3600.0

# rng serves one draw at a time per replica: a hundred threads in one worker
# only queue there (and flood it); more is a typo.
MAX_CONCURRENCY = 100
MAX_FLUSH_INTERVAL = 3600.0


def _flag(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a dockercoins.numbers parser: the grammar and the
    bounds of the settings (WORKER_DELAY=1_000 and --delay 1_000 alike)."""

    def parsed(value: str) -> Any:
        try:
            return parse(value)
        except NumberError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parsed


def _seconds(maximum: float) -> Callable[[str], Any]:
    return _flag(
        lambda value: bounded_decimal(value, minimum=0, maximum=maximum, unit="s")
    )


class Command(BaseCommand):
    help = "Mine DockerCoins: rng -> hasher -> Redis, until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=_flag(
                lambda value: bounded_int(value, minimum=1, maximum=MAX_CONCURRENCY)
            ),
            default=1,
            metavar="N",
            help=f"mining threads in this process, 1 to {MAX_CONCURRENCY} (default 1)",
        )
        parser.add_argument(
            "--delay",
            type=_seconds(settings.MAX_DELAY),
            default=None,
            metavar="SECONDS",
            help=f"seconds to sleep before each hash, 0 to {settings.MAX_DELAY:g} "
            f"(default WORKER_DELAY, now {settings.WORKER_DELAY:g})",
        )
        parser.add_argument(
            "--flush-interval",
            type=_seconds(MAX_FLUSH_INTERVAL),
            default=1.0,
            metavar="SECONDS",
            help="seconds between writes of the hash count to Redis, 0 to "
            f"{MAX_FLUSH_INTERVAL:g} (default 1)",
        )
        parser.add_argument(
            "--watchdog",
            type=_seconds(MAX_WATCHDOG),
            default=WATCHDOG_LIMIT,
            metavar="SECONDS",
            help="exit when a mining loop makes no progress for this many seconds, "
            f"so Swarm replaces the task, 0 to {MAX_WATCHDOG:g} "
            f"(default {WATCHDOG_LIMIT:.0f}; 0: never)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        delay = options["delay"]
        try:
            worker = Worker(
                rng_url=settings.RNG_URL,
                hasher_url=settings.HASHER_URL,
                delay=settings.WORKER_DELAY if delay is None else delay,
                concurrency=options["concurrency"],
                flush_interval=options["flush_interval"],
                watchdog=options["watchdog"],
            )
        except ValueError as exc:  # RNG_URL / HASHER_URL that is not http://host
            raise CommandError(str(exc)) from None

        def on_signal(signum: int, frame: object) -> None:
            worker.request_stop()  # a flag only: see Worker.request_stop

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            metrics.serve(settings.METRICS_PORT)
        except OSError as exc:  # mining matters more than its figures
            log.warning("metrics not served on port %s: %s", settings.METRICS_PORT, exc)
        worker.run()
