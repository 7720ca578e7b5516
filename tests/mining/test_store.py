"""The Redis keys, against a real redis-server."""

import socket

import pytest
import redis

from mining import store

NOW = 1_800_000_000.5


@pytest.fixture
def db(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def record(hashes: dict[int, int], worker: str = "w1", now: float = NOW, **kw):
    store.record_work(
        hashes=sum(hashes.values()),
        per_second=hashes,
        coins=kw.get("coins", {}),
        worker_id=worker,
        now=now,
    )


def test_flushes_from_several_workers_add_up(db):
    record({1_800_000_000: 3}, worker="a")
    record({1_800_000_000: 4, 1_799_999_999: 1}, worker="b")

    assert int(db.get("hashes")) == 8
    assert store.totals() == store.Totals(hashes=8, coins=0)
    snapshot = store.snapshot(now=NOW)
    assert snapshot.per_second == {1_800_000_000: 7, 1_799_999_999: 1}


def test_coins_go_into_the_classic_wallet_hash(db):
    store.store_coin("0abc", b"\x00\x01")
    record({}, coins={"0def": b"late"})

    assert db.hgetall("wallet") == {b"0abc": b"\x00\x01", b"0def": b"late"}
    assert store.totals().coins == 2


def test_the_per_second_series_is_bounded_by_expiry(db):
    record({1_800_000_000: 3})

    (key,) = db.keys("hashes:sec:*")
    assert 0 < db.ttl(key) <= store.SERIES_TTL
    assert db.hlen(key) == 1


def test_a_snapshot_reads_only_the_chart_window(db):
    old = int(NOW) - store.SERIES_SECONDS - 5
    record({old: 9, int(NOW) - 10: 2})

    assert store.snapshot(now=NOW).per_second == {int(NOW) - 10: 2}


def test_a_worker_is_active_until_its_heartbeat_is_too_old(db):
    record({}, worker="old", now=NOW - store.WORKER_TTL - 1)
    record({}, worker="new", now=NOW)

    assert store.snapshot(now=NOW).active_workers == 1
    assert db.zcard("workers") == 1  # pruned on write, not just ignored
    assert 0 < db.ttl("workers") <= 2 * store.WORKER_TTL


def test_a_worker_that_stops_is_no_longer_active(db):
    record({}, worker="gone")
    store.forget_worker("gone")

    assert store.snapshot(now=NOW).active_workers == 0


def test_the_probe_lock_is_taken_by_one_caller_at_a_time(db):
    assert store.claim_probe(seconds=10)
    assert not store.claim_probe(seconds=10)
    store.release_probe()
    assert store.claim_probe(seconds=10)


def test_a_stopped_redis_raises_store_unavailable_with_its_address(
    redis_url, redis_server
):
    redis_server.stop()
    try:
        with pytest.raises(store.StoreUnavailable) as failure:
            store.totals()
    finally:
        redis_server.start()

    assert f"127.0.0.1:{redis_server.port}" in str(failure.value)
    assert "Redis is unavailable" in str(failure.value)


def test_the_pool_follows_a_change_of_redis_url(redis_url, settings, redis_server):
    store.totals()
    settings.REDIS_URL = f"redis://127.0.0.1:{redis_server.port}/1"
    redis.Redis.from_url(settings.REDIS_URL).set("hashes", 5)

    assert store.totals().hashes == 5


def test_a_restarted_redis_is_used_again_without_an_error(redis_url, redis_server):
    store.totals()  # a pooled connection that the restart makes stale
    redis_server.stop()
    redis_server.start()

    assert store.totals() == store.Totals(hashes=0, coins=0)


def test_a_redis_that_never_answers_is_reported_unavailable(settings):
    # Accepts connections (the kernel's backlog) but never replies: a hung
    # Redis. The read timeout turns it into StoreUnavailable, not a hang.
    hung = socket.create_server(("127.0.0.1", 0))
    settings.REDIS_URL = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
    try:
        with pytest.raises(store.StoreUnavailable, match="Timeout"):
            store.totals()
    finally:
        hung.close()
