"""`manage.py rollout controller`: apply queued rollouts and watch them to the end.

In the shape of healthchecks' sendalerts: a signal only sets the stop flag,
`handle_one()` does one unit of work and says whether it found any, idle and
back-off sleeps are taken in one-second slices so that a stop is quick.
"""

import logging
import time
from pathlib import Path

from django.db import DatabaseError

from rollouts.control.driver import (
    default_owner,
    drive,
    rollout_claim_next,
    rollouts_to_drive,
)
from rollouts.engine.client import SwarmClient, SwarmError, SwarmUnreachable
from rollouts.engine.sync import service_sync

log = logging.getLogger("rollouts")

MAX_BACKOFF = 30.0  # seconds


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
            self.next_sync = time.monotonic() + self.sync_interval
        for rollout in rollouts_to_drive(owner=self.owner):
            try:
                drive(rollout=rollout, owner=self.owner, client=self.client)
            except (SwarmUnreachable, DatabaseError):
                raise  # nothing can progress: the loop backs off
            except Exception:
                # One rollout's trouble must not stall the others; it is
                # tried again on the next loop.
                log.exception(
                    "%s: rollout #%s: step failed", rollout.service, rollout.pk
                )
        claimed = rollout_claim_next(owner=self.owner)
        if claimed is None:
            return False
        drive(rollout=claimed, owner=self.owner, client=self.client)
        return True

    def run(self, alive_file: Path) -> None:
        """Loop until `stop` is set, touching `alive_file` (the healthcheck's)
        every round; errors of the engine or the database back off, never kill."""
        log.info("controller %s started", self.owner)
        backoff = 0.0
        while not self.stop:
            alive_file.touch()
            try:
                worked = self.handle_one()
                backoff = 0.0
            except Exception as error:  # the engine or the DB; never die for it
                backoff = min(max(1.0, backoff * 2), MAX_BACKOFF)
                log.warning("%s; retrying in %gs", _describe(error), backoff)
                self.sleep(backoff)
                continue
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


def _describe(error: Exception) -> str:
    if isinstance(error, SwarmError):
        return str(error)
    if isinstance(error, DatabaseError):
        return f"database not ready ({error})"
    return f"{error.__class__.__name__}: {error}"
