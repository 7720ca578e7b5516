"""`manage.py migrate_locked`: `migrate`, run by exactly one process at a time.

Every webui and controller replica runs it when it starts (deploy/entrypoint.sh),
on whichever node: the first takes a PostgreSQL advisory lock and migrates, the
others wait on the lock and then find nothing left to do. Two plain `migrate`s
at once would both try to create the same tables. A session-level lock goes
away with its connection, so a replica killed mid-migration blocks no one.
On SQLite (one node, one file) it is a plain `migrate`.
"""

import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection

# Any constant shared by every replica: "DCMI" (DockerCoins MIgrate).
MIGRATE_LOCK = 0x44434D49


class Command(BaseCommand):
    help = "Apply migrations once, safely, whichever replica starts first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait",
            type=float,
            default=60.0,
            help="seconds to wait for the database to answer (default 60)",
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
        deadline = time.monotonic() + wait
        while True:
            try:
                connection.ensure_connection()
                return
            except OperationalError as exc:
                connection.close()
                if time.monotonic() >= deadline:
                    first = str(exc).strip().splitlines()[0] if str(exc) else ""
                    raise CommandError(
                        f"the database did not answer within {wait:g}s: {first}"
                    ) from None
                time.sleep(1)
