"""`manage.py rollout controller`: apply queued rollouts and watch them to the end.

In the shape of healthchecks' sendalerts: a signal only sets the stop flag,
`handle_one()` does one unit of work and says whether it found any, idle and
back-off sleeps are taken in one-second slices so that a stop is quick.

The heartbeat file says "the controller does its work", not "its process
runs": it is touched after each round that worked, never while the engine or
the database fails. Once it is older than the limit of the entrypoint's
heartbeat watch (HEARTBEAT_MAX_AGE), the watch stops the controller and Swarm
starts a new one, which takes the orphaned rollouts over.
"""

import logging
import time
from pathlib import Path

from django.db import DatabaseError

from rollouts.control import database
from rollouts.control.driver import (
    default_owner,
    drive,
    release_orphaned_holds,
    rollout_claim_next,
    rollouts_to_drive,
)
from rollouts.engine.client import SwarmClient, SwarmError, SwarmUnreachable
from rollouts.engine.sync import service_sync
from rollouts.metrics import prometheus as metrics
from rollouts.models import Rollout

log = logging.getLogger("rollouts")

MAX_BACKOFF = 30.0  # seconds
# A reconnect to the database costs one connect (its timeout is 5 s): tried
# more often than the engine, so a restarted PostgreSQL is back in use within
# seconds.
MAX_DATABASE_BACKOFF = 5.0  # seconds


class Controller:
    """Applies queued rollouts and watches them to the end.

    Several may run (e.g. a restarted one next to a stale one): rollouts are
    claimed and leased in the database, never held in memory, so a controller
    that restarts finds the rollouts it was watching there again.
    """

    def __init__(
        self,
        *,
        client: SwarmClient,
        owner: str | None = None,
        stack: str | None = None,
        sync_interval: float = 10.0,
    ) -> None:
        self.owner = owner or default_owner("controller")
        self.client = client
        self.stack = stack
        self.sync_interval = sync_interval  # seconds
        self.next_sync = 0.0
        self.stop = False

    def handle_one(self) -> bool:
        """Sync when due, step every rollout this controller drives (or may take
        over), then apply one queued rollout. True when it applied one, i.e. when
        there may be more to do right away."""
        if time.monotonic() >= self.next_sync:
            service_sync(stack=self.stack, client=self.client)
            release_orphaned_holds(client=self.client, stack=self.stack)
            self.next_sync = time.monotonic() + self.sync_interval
        for rollout in rollouts_to_drive(owner=self.owner):
            try:
                self._drive(rollout)
            except (SwarmUnreachable, DatabaseError):
                raise  # nothing can progress: the loop backs off
            except Exception:
                # One rollout's trouble must not stall the others; it is
                # tried again on the next loop.
                metrics.error("step")
                log.exception(
                    "%s: rollout #%s: step failed", rollout.service, rollout.pk
                )
        claimed = rollout_claim_next(owner=self.owner)
        if claimed is None:
            return False
        self._drive(claimed)
        return True

    def _drive(self, rollout: Rollout) -> None:
        state_before = rollout.state
        drive(rollout=rollout, owner=self.owner, client=self.client)
        metrics.rollout_stepped(rollout, state_before=state_before)

    def run(self, alive_file: Path) -> None:
        """Loop until `stop` is set; errors of the engine or the database back
        off, never kill. `alive_file` (the heartbeat) is touched at the start
        and after every round that worked, so it ages while rounds fail."""
        log.info("controller %s started", self.owner)
        alive_file.touch()
        other = database.Outage(cap=MAX_BACKOFF)  # the engine, or a bug
        db = database.Outage(cap=MAX_DATABASE_BACKOFF)
        while not self.stop:
            try:
                with metrics.RECONCILE.time():
                    worked = self.handle_one()
            except Exception as error:  # the engine or the DB; never die for it
                metrics.error(_kind(error))
                if isinstance(error, DatabaseError):
                    database.drop_broken_connections()  # the next round reconnects
                    delay = db.failed()
                else:
                    delay = other.failed()
                log.warning("%s; retrying in %gs", _describe(error), delay)
                self.sleep(delay)
                continue
            lasted = db.ended()
            if lasted is not None:
                log.info("the database answers again (failed for %.1fs)", lasted)
            lasted = other.ended()
            if lasted is not None:
                log.info("working again after %.1fs of failed rounds", lasted)
            alive_file.touch()
            if not worked:
                self.sleep(1)
        log.info("controller %s stopped", self.owner)

    def request_stop(self, *args: object) -> None:
        """A signal handler: finish the current step, then leave the loop."""
        self.stop = True

    def sleep(self, seconds: float) -> None:
        """Sleep in one-second slices, so that a stop is quick."""
        deadline = time.monotonic() + seconds
        while not self.stop and time.monotonic() < deadline:
            time.sleep(min(1.0, deadline - time.monotonic()))


def _kind(error: Exception) -> str:
    if isinstance(error, SwarmError):
        return "engine"
    if isinstance(error, DatabaseError):
        return "database"
    return "other"


def _describe(error: Exception) -> str:
    if isinstance(error, SwarmError):
        return str(error)
    if isinstance(error, DatabaseError):
        return database.describe(error)
    return f"{error.__class__.__name__}: {error}"
