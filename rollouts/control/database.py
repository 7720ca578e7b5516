"""When the database stops answering a long-running process, and when it is back.

Django drops a broken connection only around a request (`close_old_connections`
on request_started/finished). A management command that loops, the controller
or `rollout apply --wait`, keeps its connection for its whole life: after
PostgreSQL restarts, every query on it fails with "the connection is lost"
forever. These helpers drop it, so that the next query opens a new one.
"""

import time

from django.db import DatabaseError, InterfaceError, OperationalError, connections

# What a database that is not there (yet) says, as opposed to a schema that
# is not there: the advice differs (wait, or migrate).
_SCHEMA_MISSING = ("no such table", "does not exist")


def drop_broken_connections() -> None:
    """Close every connection of this thread that is outside a transaction.

    Called after a DatabaseError: closing a healthy connection only costs a
    reconnect, while keeping a broken one fails every later query. A
    connection inside `atomic()` belongs to whoever opened the block (a test's
    transaction, say): it is left to that block's rollback.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def is_outage(error: DatabaseError) -> bool:
    """True when `error` says the database cannot be reached (a restart, an
    outage), False when it says the schema is missing (`migrate` cures it)."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    text = str(error).lower()
    return not any(words in text for words in _SCHEMA_MISSING)


def describe(error: DatabaseError) -> str:
    """One line for an operator: what failed and what cures it."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    reason = first or error.__class__.__name__
    if is_outage(error):
        return f"database unreachable ({reason})"
    return f"database not ready ({reason}); run `manage.py migrate`"


class Outage:
    """Back-off delays and the length of one outage, as seen by one loop."""

    def __init__(self, *, cap: float) -> None:
        self.cap = cap  # seconds
        self.since: float | None = None  # time.monotonic() of the first failure
        self._delay = 0.0

    def failed(self) -> float:
        """Record a failure; the seconds to wait before the next try (1, 2, 4
        ... up to `cap`)."""
        if self.since is None:
            self.since = time.monotonic()
        self._delay = min(max(1.0, self._delay * 2), self.cap)
        return self._delay

    @property
    def lasted(self) -> float:
        """Seconds since the first failure (0 when none is going on)."""
        return 0.0 if self.since is None else time.monotonic() - self.since

    def ended(self) -> float | None:
        """Record a success; the outage's length in seconds, None if none."""
        lasted = self.lasted if self.since is not None else None
        self.since, self._delay = None, 0.0
        return lasted
