"""Waiting for a rollout's end inside an API request, and the status code that
tells a pipeline how it ended.

The webui serves with gunicorn's gevent workers (deploy/gunicorn.conf.py): a
waiting request is one greenlet that reads the rollout's row once per POLL
seconds until it is final or the wait is over; `time.sleep` is gevent's there,
so the worker keeps serving (and notifying gunicorn's arbiter) meanwhile. The
database connection is closed between reads, so a hundred waiting pipelines
do not hold a hundred PostgreSQL connections for ten minutes.
"""

import time
from collections.abc import Callable

from django.db import connection
from rest_framework import status

from rollouts.models import Rollout, RolloutState

WAIT_LIMIT = 900  # seconds a request may ask to wait (?wait=N)
POLL = 1.0  # seconds between two reads of the rollout's state

# How a rollout ended, as a status code (README: the write API).
_ENDED = {
    RolloutState.COMPLETED: status.HTTP_200_OK,
    RolloutState.SUPERSEDED: status.HTTP_409_CONFLICT,
    RolloutState.ABORTED: status.HTTP_409_CONFLICT,
    RolloutState.CANCELLED: status.HTTP_409_CONFLICT,
    RolloutState.FAILED: status.HTTP_422_UNPROCESSABLE_ENTITY,
    RolloutState.ROLLED_BACK: status.HTTP_422_UNPROCESSABLE_ENTITY,
    RolloutState.PAUSED: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


def status_for(rollout: Rollout) -> int:
    """200 completed; 409 superseded, aborted or cancelled; 422 failed, rolled
    back or paused; 202 not ended yet (queued, applying, watching)."""
    return _ENDED.get(RolloutState(rollout.state), status.HTTP_202_ACCEPTED)


def rollout_wait(
    rollout: Rollout,
    *,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Rollout:
    """`rollout` as it stands when it ended, or after `seconds` (0: at once).

    A client that hangs up leaves the rollout alone: nothing here acts on it,
    and this loop ends at its deadline anyway.
    """
    deadline = clock() + seconds
    while True:
        rollout.refresh_from_db()
        left = deadline - clock()
        if rollout.is_final or left <= 0:
            return rollout
        _release_connection()
        sleep(min(POLL, left))


def _release_connection() -> None:
    # Not inside a transaction (a test's, or ATOMIC_REQUESTS): closing would
    # end it. The next read opens a connection again.
    if not connection.in_atomic_block:
        connection.close()
