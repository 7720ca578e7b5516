"""The mining step and loop, against real rng/hasher servers and a real Redis."""

import hashlib
import logging
import threading

import pytest
import redis

from deploy.polling import wait_until
from mining import store
from mining.liveness import EXIT_STUCK, Watchdog
from mining.worker import Flusher, Miner, Outages, ServiceDown, Tally, Worker
from tests.conftest import free_port


def make_miner(rng_url: str, hasher_url: str, **kwargs) -> Miner:
    return Miner(
        rng_url=rng_url,
        hasher_url=hasher_url,
        delay=kwargs.pop("delay", 0),
        tally=kwargs.pop("tally", Tally()),
        outages=kwargs.pop("outages", Outages()),
        stop=kwargs.pop("stop", threading.Event()),
        **kwargs,
    )


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_work_step_makes_one_hash_of_rng_bytes_on_hasher(pipeline, redis_url):
    miner = make_miner(pipeline.rng_url, pipeline.hasher_url)

    hex_hash = miner.work_once()

    assert len(hex_hash) == 64
    assert int(hex_hash, 16) >= 0
    assert miner.tally.made == 1


def test_a_hash_starting_with_0_is_a_coin_stored_in_the_wallet_at_once(
    pipeline, redis_url
):
    miner = make_miner(pipeline.rng_url, pipeline.hasher_url)
    # One hash in 16 is a coin: 600 tries miss with probability (15/16)**600.
    coin = next(h for h in (miner.work_once() for _ in range(600)) if h[0] == "0")

    random_bytes = redis.Redis.from_url(redis_url).hget("wallet", coin)

    assert len(random_bytes) == 32
    assert hashlib.sha256(random_bytes).hexdigest() == coin
    assert miner.tally.coins_found >= 1


def test_hashes_are_counted_in_redis_when_the_worker_flushes(pipeline, redis_url):
    miner = make_miner(pipeline.rng_url, pipeline.hasher_url)
    flusher = Flusher(tally=miner.tally, outages=miner.outages, worker_id="w1")
    for _ in range(25):
        miner.work_once()

    assert flusher.flush()

    db = redis.Redis.from_url(redis_url)
    assert int(db.get("hashes")) == 25
    series = {}
    for key in db.keys("hashes:sec:*"):
        assert 0 < db.ttl(key) <= store.SERIES_TTL
        series.update(db.hgetall(key))
    assert sum(int(count) for count in series.values()) == 25
    assert db.zscore("workers", "w1") is not None


def test_a_dead_rng_is_logged_once_while_the_miner_keeps_retrying(
    pipeline, redis_url, caplog
):
    miner = make_miner(dead_url(), pipeline.hasher_url)
    attempts = []
    work_once = miner.work_once

    def counted() -> str:
        attempts.append(1)
        return work_once()

    miner.work_once = counted
    caplog.set_level(logging.INFO, logger="mining.worker")
    thread = threading.Thread(target=miner.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(attempts) >= 3, timeout=10, message="3 attempts")
        assert thread.is_alive()
        miner.rng = make_miner(pipeline.rng_url, pipeline.hasher_url).rng
        wait_until(lambda: miner.tally.made > 0, timeout=15, message="mining again")
    finally:
        miner.stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("rng is unavailable")]) == 1
    assert len([m for m in messages if m.startswith("rng is back")]) == 1


def test_a_dead_hasher_stops_a_work_step_with_a_reason(pipeline):
    miner = make_miner(pipeline.rng_url, dead_url())

    with pytest.raises(ServiceDown) as failure:
        miner.work_once()

    assert failure.value.service == "hasher"
    assert "Connection" in failure.value.reason


def test_unflushed_counts_survive_a_redis_outage(pipeline, redis_url, redis_server):
    miner = make_miner(pipeline.rng_url, pipeline.hasher_url)
    flusher = Flusher(tally=miner.tally, outages=miner.outages, worker_id="w1")
    for _ in range(10):
        miner.work_once()
    redis_server.stop()
    try:
        assert not flusher.flush()
        assert miner.outages.is_down("redis")
        with pytest.raises(ServiceDown):
            miner.work_once()  # no mining while coins cannot be banked
    finally:
        redis_server.start()

    assert flusher.flush()
    assert int(redis.Redis.from_url(redis_url).get("hashes")) == 10
    assert not miner.outages.is_down("redis")


def test_a_coin_found_while_redis_is_down_is_banked_on_the_next_flush(redis_url):
    tally = Tally()
    tally.add(1_000)
    tally.add_coin("0abc", b"bytes", stored=False)
    flusher = Flusher(tally=tally, outages=Outages(), worker_id="w1")

    assert flusher.flush()
    assert redis.Redis.from_url(redis_url).hget("wallet", "0abc") == b"bytes"


def test_a_worker_counts_every_hash_it_made_when_it_stops(pipeline, redis_url):
    worker = Worker(rng_url=pipeline.rng_url, hasher_url=pipeline.hasher_url, delay=0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_until(lambda: worker.tally.made >= 50, timeout=20, message="50 hashes")
    worker.stop.set()
    thread.join(timeout=15)

    assert not thread.is_alive()
    db = redis.Redis.from_url(redis_url)
    assert int(db.get("hashes")) == worker.tally.made
    assert db.hlen("wallet") == worker.tally.coins_found
    assert db.zcard("workers") == 0  # it said goodbye


def test_a_worker_survives_redis_going_away_and_resumes_counting(
    pipeline, redis_url, redis_server
):
    worker = Worker(
        rng_url=pipeline.rng_url,
        hasher_url=pipeline.hasher_url,
        delay=0,
        concurrency=2,
        flush_interval=0.2,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    db = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: int(db.get("hashes") or 0) > 0, timeout=20, message="hashes")
        redis_server.stop()
        wait_until(
            lambda: worker.outages.is_down("redis"), timeout=10, message="outage seen"
        )
        assert thread.is_alive()
        redis_server.start()  # an empty Redis: it keeps no data across restarts
        db = redis.Redis.from_url(redis_url)
        wait_until(
            lambda: int(db.get("hashes") or 0) > 0, timeout=20, message="counting again"
        )
        assert thread.is_alive()
    finally:
        worker.stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert not worker.outages.is_down("redis")


def test_the_heartbeat_file_says_the_loop_is_alive_even_while_redis_is_down(
    redis_url, redis_server, tmp_path, monkeypatch
):
    heartbeat = tmp_path / "alive"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(heartbeat))
    worker = Worker(
        rng_url=dead_url(), hasher_url=dead_url(), delay=0, flush_interval=0.05
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    redis_server.stop()
    try:
        thread.start()
        first = wait_until(
            lambda: heartbeat.exists() and heartbeat.stat().st_mtime_ns,
            timeout=10,
            message="a heartbeat",
        )
        wait_until(lambda: heartbeat.stat().st_mtime_ns > first, timeout=10)
        assert worker.outages.is_down("redis")
    finally:
        worker.stop.set()
        thread.join(timeout=15)
        redis_server.start()
    assert not thread.is_alive()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_watchdog_ends_the_process_when_a_loop_goes_silent(caplog):
    clock, exits = FakeClock(), []
    watchdog = Watchdog(limit=60, clock=clock, exit=exits.append)
    watchdog.beat("flusher")
    watchdog.beat("miner-1")
    clock.now += 30
    watchdog.beat("flusher")

    assert not watchdog.check()
    clock.now += 31
    with caplog.at_level(logging.ERROR, logger="mining.worker"):
        assert watchdog.check()

    assert exits == [EXIT_STUCK]
    assert "miner-1 silent for 61 s" in caplog.text
    assert "flusher" not in caplog.text


def test_a_watchdog_limit_of_0_never_ends_the_process():
    clock, exits = FakeClock(), []
    watchdog = Watchdog(limit=0, clock=clock, exit=exits.append)
    watchdog.beat("miner-1")
    clock.now += 3600

    assert not watchdog.check()
    assert exits == []


def test_a_miner_backing_off_from_a_dead_rng_still_beats_the_watchdog(pipeline):
    watchdog = Watchdog(limit=60)
    beats = []
    watchdog.beat = beats.append
    miner = make_miner(dead_url(), pipeline.hasher_url, watchdog=watchdog)
    thread = threading.Thread(target=miner.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(beats) >= 3, timeout=10, message="three beats")
    finally:
        miner.stop.set()
        thread.join(timeout=10)
    assert set(beats) == {"miner"}


def test_a_worker_watches_its_flusher_and_every_miner(pipeline, redis_url):
    worker = Worker(
        rng_url=pipeline.rng_url,
        hasher_url=pipeline.hasher_url,
        delay=0,
        concurrency=2,
        flush_interval=0.05,
        watchdog=60,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: set(worker.watchdog._last) == {"flusher", "miner-1", "miner-2"}
            and worker.tally.made > 0,
            timeout=10,
            message="every loop registered",
        )
        assert worker.watchdog.silent() == {}
        assert worker.watchdog.limit == 60 + 0.05
    finally:
        worker.stop.set()
        thread.join(timeout=15)
