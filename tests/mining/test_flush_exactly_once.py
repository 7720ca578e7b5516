"""A worker's flush counts once, even when Redis applied it and the reply was
lost (Redis restarted, the connection broke on the way back): the flush is
sent again with the same sequence number and applied once. Against a real
redis-server, with a proxy that loses one reply."""

import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from mining import store
from mining.worker import Flusher, Outages, Tally

NOW = 1_800_000_000.5


class ReplyLosingProxy:
    """127.0.0.1:port -> Redis. The first request that contains `word` reaches
    Redis, and then its connection is closed before the reply gets back: the
    client cannot know whether it was applied."""

    def __init__(self, upstream_port: int, word: bytes) -> None:
        self.upstream_port = upstream_port
        self.word = word
        self.armed = True
        self.lost = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = {"drop": False}
            threading.Thread(
                target=self._requests, args=(client, upstream, state), daemon=True
            ).start()
            threading.Thread(
                target=self._replies, args=(upstream, client, state), daemon=True
            ).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, state) -> None:
        with client, upstream:
            while data := _recv(client):
                if self.armed and self.word in data:
                    self.armed = False
                    state["drop"] = True  # before Redis can answer it
                upstream.sendall(data)

    def _replies(self, upstream: socket.socket, client: socket.socket, state) -> None:
        while data := _recv(upstream):
            if state["drop"]:
                self.lost += 1
                for end in (client, upstream):
                    end.shutdown(socket.SHUT_RDWR)
                return
            client.sendall(data)

    def close(self) -> None:
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


@pytest.fixture
def db(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def lossy(redis_server, redis_url, settings, db) -> Iterator[ReplyLosingProxy]:
    """store's client goes through the proxy; the flush script is already
    loaded, so the request whose reply is lost is the one that applies it."""
    db.script_load(store._RECORD_WORK)
    proxy = ReplyLosingProxy(redis_server.port, b"EVALSHA")
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/0"
    store.reset()
    yield proxy
    proxy.close()
    store.reset()


def flush(hashes: int, sequence: int, run: str = "run1") -> bool:
    return store.record_work(
        hashes=hashes,
        per_second={int(NOW): hashes},
        coins={},
        worker_id="w1",
        now=NOW,
        flush=(run, sequence),
    )


def test_the_same_flush_sent_twice_counts_once(db):
    assert flush(5, sequence=1)
    assert not flush(5, sequence=1)  # the retry of a flush Redis applied
    assert flush(3, sequence=2)

    assert int(db.get("hashes")) == 8
    assert store.snapshot(now=NOW).per_second == {int(NOW): 8}
    assert 0 < db.ttl("flushed:w1:run1") <= store.FLUSH_MEMORY_TTL


def test_another_worker_process_is_never_taken_for_a_retry(db):
    assert flush(5, sequence=1, run="run1")
    assert flush(4, sequence=1, run="run2")  # same host:pid, a new process

    assert int(db.get("hashes")) == 9


def test_a_flush_whose_reply_was_lost_is_retried_and_counted_once(lossy, db):
    # redis-py retries once on a connection error: the same EVALSHA again.
    assert not flush(7, sequence=1)

    assert lossy.lost == 1
    assert int(db.get("hashes")) == 7
    assert store.snapshot(now=NOW).per_second == {int(NOW): 7}


def test_a_flush_the_worker_could_not_confirm_is_sent_again_as_it_was(
    redis_url, db, monkeypatch
):
    tally = Tally()
    flusher = Flusher(tally=tally, outages=Outages(), worker_id="w1")
    for _ in range(6):
        tally.add(int(NOW))
    real = store.record_work
    calls: list[tuple[str, int]] = []

    def applied_then_lost(**kwargs) -> bool:
        calls.append(kwargs["flush"])
        applied = real(**kwargs)
        if len(calls) == 1:  # Redis applied it and went away before answering
            raise store.StoreUnavailable("redis:6379", "Connection reset by peer")
        return applied

    monkeypatch.setattr(store, "record_work", applied_then_lost)

    assert not flusher.flush()
    assert flusher.unsaved == 6  # not known to be saved
    for _ in range(4):
        tally.add(int(NOW) + 1)  # mined meanwhile: a flush of its own
    assert flusher.flush()

    assert calls[0] == calls[1]  # the same flush, the same number
    assert calls[2][1] == calls[1][1] + 1
    assert int(db.get("hashes")) == 10 == tally.made
    assert flusher.unsaved == 0
