"""Pure computations over the per-second hash counts (no I/O, easy to test).

Only settled seconds count: the current second is still being mined, and a
worker flushes about once a second, so the previous second may still be
missing some worker's hashes. Including either would make the rate dip.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SETTLE_SECONDS = 2
AVERAGE_WINDOW = 10


@dataclass(frozen=True)
class Rates:
    """Hashes per second over the last 10 and 60 settled seconds."""

    last_10s: float
    last_60s: float


@dataclass(frozen=True)
class Series:
    """What the chart draws: one point per second from `start` (unix second)."""

    start: int
    hashes: list[int]
    average: list[float]


def last_settled_second(now: float) -> int:
    return int(now) - SETTLE_SECONDS


def rate(per_second: Mapping[int, int], *, now: float, window: int) -> float:
    """Mean hashes/s over the `window` settled seconds that end before `now`."""
    end = last_settled_second(now)
    total = sum(per_second.get(s, 0) for s in range(end - window + 1, end + 1))
    return round(total / window, 2)


def rates(per_second: Mapping[int, int], *, now: float) -> Rates:
    return Rates(
        last_10s=rate(per_second, now=now, window=10),
        last_60s=rate(per_second, now=now, window=60),
    )


def series(per_second: Mapping[int, int], *, now: float, seconds: int) -> Series:
    """The last `seconds` settled seconds, with missing seconds as zero."""
    end = last_settled_second(now)
    start = end - seconds + 1
    # Read a window's worth before `start` so the first average is a real one.
    padded = [per_second.get(s, 0) for s in range(start - AVERAGE_WINDOW + 1, end + 1)]
    return Series(
        start=start,
        hashes=padded[AVERAGE_WINDOW - 1 :],
        average=moving_average(padded, AVERAGE_WINDOW)[AVERAGE_WINDOW - 1 :],
    )


def moving_average(values: Sequence[int], window: int) -> list[float]:
    """Trailing mean of up to `window` values ending at each position."""
    averages: list[float] = []
    total = 0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        averages.append(round(total / min(i + 1, window), 2))
    return averages
