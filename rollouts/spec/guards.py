"""Requests the engine would take in a way the operator did not mean.

(The paused-update rule needs the service's records: it is in
rollouts.records.requests, the gate of every request.)

- UpdateConfig.Monitor 0 means "the engine's default" (5 s): stored as 5 s so
  that `plan` and the engine agree.
"""

from typing import Any

from rollouts.spec.fields import DEFAULT_MONITOR


def normalize_monitors(desired: dict[str, Any]) -> dict[str, Any]:
    """`desired` with a monitor of 0 replaced by the engine's meaning of it."""
    fixed = dict(desired)
    for field in ("update_monitor", "rollback_monitor"):
        if fixed.get(field) == 0:
            fixed[field] = DEFAULT_MONITOR
    return fixed
