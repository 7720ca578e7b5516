"""Rates and chart series from per-second counts (pure functions)."""

import pytest

from mining import stats

NOW = 1_000_000.5  # mid-second: 1_000_000 is still being mined


def steady(rate: int, *, first: int, last: int) -> dict[int, int]:
    return {second: rate for second in range(first, last + 1)}


def test_the_rate_uses_only_settled_seconds():
    counts = steady(5, first=999_900, last=999_998)
    counts[999_999] = 1  # not every worker has flushed this second yet
    counts[1_000_000] = 1  # still being mined

    assert stats.rate(counts, now=NOW, window=10) == 5.0


def test_the_10s_and_60s_rates_average_their_windows():
    counts = steady(2, first=999_900, last=999_998)
    counts.update(steady(8, first=999_989, last=999_998))  # the last 10 s

    rates = stats.rates(counts, now=NOW)

    assert rates.last_10s == 8.0
    assert rates.last_60s == pytest.approx((50 * 2 + 10 * 8) / 60)


def test_seconds_without_hashes_count_as_zero():
    counts = {999_998: 10}

    assert stats.rate(counts, now=NOW, window=10) == 1.0


def test_no_hashes_at_all_is_a_rate_of_zero():
    assert stats.rates({}, now=NOW) == stats.Rates(last_10s=0.0, last_60s=0.0)


def test_the_series_has_one_point_per_second_ending_at_the_last_settled_one():
    counts = {999_996: 3, 999_998: 4, 999_999: 99}

    series = stats.series(counts, now=NOW, seconds=5)

    assert series.start == 999_994
    assert series.hashes == [0, 0, 3, 0, 4]
    assert len(series.average) == 5


def test_the_series_average_looks_back_before_the_first_point():
    counts = steady(6, first=999_000, last=999_998)

    series = stats.series(counts, now=NOW, seconds=3)

    assert series.average == [6.0, 6.0, 6.0]


def test_the_moving_average_is_a_trailing_mean():
    assert stats.moving_average([2, 4, 6, 8], 2) == [2.0, 3.0, 5.0, 7.0]
