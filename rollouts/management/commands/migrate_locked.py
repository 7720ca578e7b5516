"""`manage.py migrate_locked`: `migrate`, run by exactly one process at a time.

Every webui and controller replica runs it when it starts (deploy/entrypoint.sh),
on whichever node: the first takes a PostgreSQL advisory lock and migrates, the
others wait on the lock and then find nothing left to do. Two plain `migrate`s
at once would both try to create the same tables. A session-level lock goes
away with its connection, so a replica killed mid-migration blocks no one.
On SQLite (one node, one file) it is a plain `migrate`.
"""

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection

from dockercoins.numbers import NumberError, bounded_decimal

# Any constant shared by every replica: "DCMI" (DockerCoins MIgrate).
MIGRATE_LOCK = 0x44434D49
MAX_WAIT = 3600.0  # seconds
# Seconds between two "still waiting" lines: no long silence at start-up.
WAIT_REPORT_EVERY = 10.0


def _wait_seconds(text: str) -> float:
    try:
        return bounded_decimal(text, minimum=0, maximum=MAX_WAIT, unit="s")
    except NumberError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _database_target() -> str:
    """Where the database is, in the settings' words, for the waiting lines."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"PostgreSQL at POSTGRES_HOST={db['HOST']}:{db['PORT']}"
    return f"SQLite at DATABASE_PATH={db['NAME']}"


class Command(BaseCommand):
    help = "Apply migrations once, safely, whichever replica starts first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait",
            type=_wait_seconds,
            default=60.0,
            metavar="SECONDS",
            help="seconds to wait for the database to answer, 0 to "
            f"{MAX_WAIT:g} (default 60)",
        )

    def handle(self, *args: Any, wait: float, verbosity: int, **options: Any) -> None:
        self._wait_for_database(wait)
        if connection.vendor != "postgresql":
            call_command("migrate", interactive=False, verbosity=verbosity)
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
        try:
            call_command("migrate", interactive=False, verbosity=verbosity)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])

    def _wait_for_database(self, wait: float) -> None:
        # The stack starts every service at once: PostgreSQL may still be
        # initialising its volume when the first webui replica gets here.
        self._sqlite_is_writable()
        target = _database_target()
        started = time.monotonic()
        deadline = started + wait
        reported = -WAIT_REPORT_EVERY
        while True:
            try:
                connection.ensure_connection()
                return
            except OperationalError as exc:
                connection.close()
                first = str(exc).strip().splitlines()[0] if str(exc) else ""
                now = time.monotonic()
                if now >= deadline:
                    raise CommandError(
                        f"{target} did not answer within {wait:g}s: {first}"
                    ) from None
                if now - reported >= WAIT_REPORT_EVERY:
                    reported = now
                    self.stderr.write(
                        f"waiting for {target} ({now - started:.0f}s of {wait:g}s): "
                        f"{first}"
                    )
                time.sleep(1)

    @staticmethod
    def _sqlite_is_writable() -> None:
        """SQLite writes its file and, in WAL mode, files beside it: try both
        (os.access says yes to root on a read-only mount)."""
        if connection.vendor != "sqlite":
            return
        path = Path(connection.settings_dict["NAME"])
        try:
            with path.open("ab"), tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as error:
            raise CommandError(
                f"DATABASE_PATH={path}: not writable by this process ({error.strerror})"
            ) from None
