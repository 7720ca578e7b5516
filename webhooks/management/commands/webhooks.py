"""`manage.py webhooks deliver`: send the outbox, forever (or `--once`).

The loop has the shape of healthchecks' sendalerts: SIGTERM/SIGINT set a flag;
`while not shutdown: handle_one()`; idle waits in one-second slices; a broken
database connection is closed so the next step opens a new one. Attempts
run on WEBHOOK_CONCURRENCY threads, one per subscription at a time, each cut
off at WEBHOOK_TIMEOUT (webhooks.delivery.Dispatcher): a receiver that is slow
or hangs delays its own deliveries only, and never the controller, which runs
elsewhere.
"""

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections, connection

from webhooks.delivery import Dispatcher

log = logging.getLogger("webhooks")


class Command(BaseCommand):
    help = "Send webhook deliveries (Standard Webhooks), retrying with backoff."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        deliver = sub.add_parser("deliver", help="send due deliveries until stopped")
        deliver.add_argument(
            "--once", action="store_true", help="send what is due now, then exit"
        )
        deliver.add_argument(
            "--idle", type=float, default=1.0, help="seconds between looks when idle"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.shutdown = False
        self.dispatcher = Dispatcher(settings.WEBHOOK_CONCURRENCY)
        try:
            if options["once"]:
                self.dispatcher.drain()
                return
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
            log.info(
                "webhooks: delivering (%d at a time, %g s per attempt at most)",
                settings.WEBHOOK_CONCURRENCY,
                settings.WEBHOOK_TIMEOUT,
            )
            while not self.shutdown:
                if not self.step():
                    self.pause(options["idle"])
        finally:
            self.dispatcher.close()

    def step(self) -> bool:
        close_old_connections()
        try:
            return self.dispatcher.step()
        except DatabaseError as error:
            log.warning("webhooks: database error (%s); reconnecting", error)
            connection.close()
            return False

    def pause(self, seconds: float) -> None:
        """Until an attempt ends, `seconds` pass or a stop is asked."""
        end = time.monotonic() + seconds
        while not self.shutdown and time.monotonic() < end:
            self.dispatcher.wait(min(1.0, max(0.0, end - time.monotonic())))
            if any(f.done() for _, f in self.dispatcher.in_flight.values()):
                return

    def stop(self, signum: int, frame: Any) -> None:
        self.shutdown = True
