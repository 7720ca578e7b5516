"""Polling with a deadline: tests and benches wait for real systems, never sleep
and hope."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call `condition` until it returns something truthy; return that value.

    Raises AssertionError naming `message` (and the last exception, if the
    condition kept raising) when `timeout` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the system under test may not be up yet
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(
                f"timed out after {timeout}s waiting for {message}{detail}"
            )
        time.sleep(interval)
