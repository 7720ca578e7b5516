"""The controller's unit of work; `manage.py rollout controller` loops over it."""

import logging
import time

from django.db import DatabaseError

from rollouts.models import Rollout, RolloutState
from rollouts.services import (
    default_owner,
    rollout_apply,
    rollout_claim_next,
    rollout_take_over,
    rollout_watch_step,
    rollouts_to_drive,
    service_sync,
)
from rollouts.swarm import SwarmClient, SwarmUnreachable

log = logging.getLogger("rollouts")


class Controller:
    """Applies queued rollouts and watches them to the end.

    Several may run (e.g. a restarted one next to a stale one): rollouts are
    claimed and leased in the database, never held in memory, so a controller
    that restarts finds the rollouts it was watching there again.
    """

    def __init__(
        self,
        *,
        owner: str | None = None,
        client: SwarmClient | None = None,
        stack: str | None = None,
        sync_interval: float = 10.0,
    ) -> None:
        self.owner = owner or default_owner("controller")
        self.client = client or SwarmClient()
        self.stack = stack
        self.sync_interval = sync_interval
        self.next_sync = 0.0

    def handle_one(self) -> bool:
        """Sync when due, step every rollout this controller drives (or may take
        over), then apply one queued rollout. True when it applied one, i.e. when
        there may be more to do right away."""
        if time.monotonic() >= self.next_sync:
            service_sync(stack=self.stack, client=self.client)
            self.next_sync = time.monotonic() + self.sync_interval
        for rollout in rollouts_to_drive(owner=self.owner):
            try:
                self._drive(rollout)
            except (SwarmUnreachable, DatabaseError):
                raise  # nothing can progress: the command backs off
            except Exception:
                # One rollout's trouble must not stall the others; it is
                # tried again on the next loop.
                log.exception(
                    "%s: rollout #%s: step failed", rollout.service, rollout.pk
                )
        claimed = rollout_claim_next(owner=self.owner)
        if claimed is None:
            return False
        rollout_apply(rollout=claimed, client=self.client)
        return True

    def _drive(self, rollout: Rollout) -> None:
        if not rollout_take_over(rollout=rollout, owner=self.owner):
            return
        if rollout.state == RolloutState.APPLYING:
            # Its driver stopped between claiming and writing: write again
            # (the same spec, so a second write changes nothing).
            rollout_apply(rollout=rollout, client=self.client)
        else:
            rollout_watch_step(rollout=rollout, client=self.client)
