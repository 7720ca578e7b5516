"""The mining loop: random bytes from rng, their hash from hasher, coins to Redis.

Only `manage.py mine` imports this module. The `bugged` image is built by
deleting the import lines below, so the module must fail at import time
without them (the module-level logger does) and no other role may import it.
"""

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from mining import metrics, store
from mining.balance import RoundRobin
from mining.keepalive import HttpError
from mining.liveness import HeartbeatFile, Watchdog

log = logging.getLogger("mining.worker")

RANDOM_BYTES = 32
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 5.0
# rng serves one request at a time: with many workers on one replica a request
# legitimately waits in line for seconds, so reads may take long; a connect
# that takes long means the address is gone.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 15.0
MAX_PENDING_COINS = 10_000
# The image's entrypoint names the file (deploy/entrypoint.sh declares it for
# its health check); unset, as outside the image, there is no heartbeat file.
HEARTBEAT_ENV = "WORKER_HEARTBEAT_FILE"
# Every miner call is bounded: connects of 2 s per address tried, one read of
# 15 s, backoffs of 5 s at most. A loop silent for this long is hung.
WATCHDOG_LIMIT = 60.0
# Seconds between two looks at the stop flag in the main loop: the bound on
# how long SIGTERM takes to be noticed.
STOP_POLL = 0.05


class ServiceDown(Exception):
    """rng, hasher or Redis failed; the miner backs off and tries again."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class Outages:
    """One log line when a dependency goes down, one when it is back.

    Shared by every thread of a worker, so N threads failing on the same dead
    rng still log a single line.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}

    def down(self, service: str, reason: str) -> None:
        with self._lock:
            if service in self._since:
                return
            self._since[service] = time.monotonic()
        log.warning("%s is unavailable (%s); backing off and retrying", service, reason)

    def up(self, service: str) -> None:
        if service not in self._since:  # the common case: no lock per hash
            return
        with self._lock:
            started = self._since.pop(service, None)
        if started is not None:
            log.info("%s is back after %.1f s", service, time.monotonic() - started)

    def is_down(self, service: str) -> bool:
        return service in self._since


class Backoff:
    """Exponential delays: 0.1, 0.2, 0.4 ... capped at BACKOFF_CAP seconds."""

    def __init__(self) -> None:
        self._next = BACKOFF_FIRST

    def failed(self) -> float:
        delay, self._next = self._next, min(BACKOFF_CAP, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = BACKOFF_FIRST


@dataclass
class Batch:
    hashes: int = 0
    per_second: dict[int, int] = field(default_factory=dict)
    coins: dict[str, bytes] = field(default_factory=dict)


class Tally:
    """Hashes made but not yet in Redis, kept until a flush succeeds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = Batch()
        self.made = 0
        self.coins_found = 0
        self._hashes = metrics.hashes()
        self._coins = metrics.coins()

    def add(self, second: int) -> None:
        with self._lock:
            self._pending.hashes += 1
            per_second = self._pending.per_second
            per_second[second] = per_second.get(second, 0) + 1
            self.made += 1
        self._hashes.inc()

    def add_coin(self, hex_hash: str, random_bytes: bytes, *, stored: bool) -> None:
        self._coins.inc()
        with self._lock:
            self.coins_found += 1
            if not stored and len(self._pending.coins) < MAX_PENDING_COINS:
                self._pending.coins[hex_hash] = random_bytes

    def take(self, *, oldest: int) -> Batch:
        """Everything pending; seconds before `oldest` are off the chart, dropped."""
        with self._lock:
            batch, self._pending = self._pending, Batch()
        batch.per_second = {s: n for s, n in batch.per_second.items() if s >= oldest}
        return batch

    @property
    def unsaved(self) -> int:
        return self._pending.hashes


class Upstream:
    """rng or hasher: every task of it, over this thread's keep-alive connections.

    Named as nginx names a group of servers behind one name; the requests are
    spread over the group by mining.balance.RoundRobin.
    """

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.url = base_url
        self.round_trip = metrics.round_trip(name)
        try:
            self.pool = RoundRobin(
                base_url, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT
            )
        except ValueError as exc:
            raise ValueError(f"{name} {exc}") from None

    def call(self, method: str, path: str, body: bytes = b"") -> bytes:
        started = time.perf_counter()
        try:
            status, data = self.pool.request(method, path, body)
        except HttpError as exc:
            metrics.error(self.name, "connection")
            raise ServiceDown(self.name, str(exc)) from exc
        if status != 200:
            metrics.error(self.name, "status")
            raise ServiceDown(self.name, f"HTTP {status}")
        self.round_trip.observe(time.perf_counter() - started)
        return data

    def close(self) -> None:
        self.pool.close()


class Miner:
    """One mining thread: its own keep-alive connections, a shared tally."""

    def __init__(
        self,
        *,
        rng_url: str,
        hasher_url: str,
        delay: float,
        tally: Tally,
        outages: Outages,
        stop: threading.Event,
        name: str = "miner",
        watchdog: Watchdog | None = None,
    ) -> None:
        self.name = name
        self.watchdog = watchdog or Watchdog(limit=0)
        self.rng = Upstream("rng", rng_url)
        self.hasher = Upstream("hasher", hasher_url)
        self.delay = delay
        self.tally = tally
        self.outages = outages
        self.stop = stop

    def work_once(self) -> str:
        """Make one hash and return it; raise ServiceDown when a dependency fails.

        While Redis is known to be down the miner waits instead of mining, so
        coins that cannot be banked do not pile up in memory.
        """
        if self.delay:
            self.stop.wait(self.delay)
        if self.outages.is_down("redis"):
            raise ServiceDown("redis", "waiting for the flusher to reach Redis")
        random_bytes = self.rng.call("GET", f"/{RANDOM_BYTES}")
        self.outages.up("rng")
        hex_hash = self.hasher.call("POST", "/", random_bytes).decode().strip()
        self.outages.up("hasher")
        self.tally.add(int(time.time()))
        if hex_hash.startswith("0"):
            self._bank(hex_hash, random_bytes)
        return hex_hash

    def _bank(self, hex_hash: str, random_bytes: bytes) -> None:
        try:
            store.store_coin(hex_hash, random_bytes)
        except store.StoreUnavailable as exc:
            metrics.error("redis", "connection")
            # Counted now, written by the next successful flush.
            self.tally.add_coin(hex_hash, random_bytes, stored=False)
            raise ServiceDown("redis", f"{exc.address}: {exc.reason}") from exc
        self.tally.add_coin(hex_hash, random_bytes, stored=True)

    def run(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                self.work_once()
            except ServiceDown as exc:
                self.outages.down(exc.service, exc.reason)
                self.stop.wait(backoff.failed())
            else:
                backoff.reset()
            # A failed attempt is progress too: an outage is not a hang.
            self.watchdog.beat(self.name)
        self.rng.close()
        self.hasher.close()


class Flusher:
    """Moves the tally into Redis; the only writer of counts and heartbeats.

    Exactly once: each flush has a sequence number (per worker process, `run`
    a random id of this process), and a flush whose outcome is unknown (an
    error after it was sent: Redis may have applied it) is kept as it was and
    sent again with the same number before anything newer; Redis applies a
    number once (mining/store.py).
    """

    def __init__(self, *, tally: Tally, outages: Outages, worker_id: str) -> None:
        self.tally = tally
        self.outages = outages
        self.worker_id = worker_id
        self.run = secrets.token_hex(4)
        self.sequence = 0
        self._unsure: Batch | None = None  # sent, reply lost: same number again

    def flush(self) -> bool:
        now = time.time()
        try:
            if self._unsure is not None:
                self._send(self._unsure, now)
                self._unsure = None
            self.sequence += 1
            batch = self.tally.take(oldest=int(now) - store.SERIES_SECONDS)
            self._unsure = batch
            self._send(batch, now)
            self._unsure = None
        except store.StoreUnavailable as exc:
            metrics.error("redis", "connection")
            self.outages.down("redis", f"{exc.address}: {exc.reason}")
            return False
        self.outages.up("redis")
        return True

    def _send(self, batch: Batch, now: float) -> None:
        store.record_work(
            hashes=batch.hashes,
            per_second=batch.per_second,
            coins=batch.coins,
            worker_id=self.worker_id,
            now=now,
            flush=(self.run, self.sequence),
        )

    @property
    def unsaved(self) -> int:
        """Hashes not known to be in Redis: pending, and a flush not confirmed."""
        return self.tally.unsaved + (self._unsure.hashes if self._unsure else 0)

    def forget(self) -> None:
        # If Redis is down the heartbeat simply expires within WORKER_TTL.
        with contextlib.suppress(store.StoreUnavailable):
            store.forget_worker(self.worker_id)


class Worker:
    """A worker process: `concurrency` miner threads and one flusher."""

    def __init__(
        self,
        *,
        rng_url: str,
        hasher_url: str,
        delay: float,
        concurrency: int = 1,
        flush_interval: float = 1.0,
        watchdog: float = 0.0,
        stop: threading.Event | None = None,
    ) -> None:
        """`watchdog`: seconds a loop may stay silent, beyond its own `delay`
        and `flush_interval`, before the process exits (0: never; `manage.py
        mine` defaults to WATCHDOG_LIMIT)."""
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self.stop = stop or threading.Event()
        self._stop_requested = False
        self.tally = Tally()
        self.outages = Outages()
        self.flush_interval = flush_interval
        self.heartbeat = HeartbeatFile(os.environ.get(HEARTBEAT_ENV))
        self.watchdog = Watchdog(
            limit=watchdog + delay + flush_interval if watchdog else 0.0
        )
        self.flusher = Flusher(
            tally=self.tally, outages=self.outages, worker_id=self.id
        )
        self.miners = [
            Miner(
                rng_url=rng_url,
                hasher_url=hasher_url,
                delay=delay,
                tally=self.tally,
                outages=self.outages,
                stop=self.stop,
                name=f"miner-{n}",
                watchdog=self.watchdog,
            )
            for n in range(1, concurrency + 1)
        ]

    def run(self, *, join_timeout: float = 3.0) -> None:
        """Mine until `stop` is set, then flush what is pending and return."""
        started = time.monotonic()
        first = self.miners[0]
        log.info(
            "worker %s started: %d thread(s), delay %.3f s, rng %s, hasher %s",
            self.id,
            len(self.miners),
            first.delay,
            first.rng.url,
            first.hasher.url,
        )
        for loop in ["flusher"] + [miner.name for miner in self.miners]:
            self.watchdog.beat(loop)  # a loop that never starts is stuck too
        # Flush at once, before any hash: the worker shows as active, and a
        # dead Redis is reported (and waited for by the miners) from the start.
        self._cycle()
        threads = [
            threading.Thread(target=miner.run, name=miner.name, daemon=True)
            for miner in self.miners
        ]
        for thread in threads:
            thread.start()
        threading.Thread(
            target=self.watchdog.run, args=(self.stop,), name="watchdog", daemon=True
        ).start()
        while self._pause(self.flush_interval):
            self._cycle()
        self.stop.set()  # here, in the main loop: never in a signal handler
        # A thread stuck in a slow HTTP call must not hold up the exit; its
        # unfinished hash was never counted, so nothing is lost.
        deadline = time.monotonic() + join_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        saved = self.flusher.flush()
        self.flusher.forget()
        self._log_totals(time.monotonic() - started, saved)

    def request_stop(self) -> None:
        """Ask run() to stop within STOP_POLL seconds. Safe in a signal handler:
        it only sets a flag. (Event.set() takes the Event's lock, which the
        interrupted main thread may be holding inside Event.wait(): the
        handler then waits for ever on a lock its own thread holds.)"""
        self._stop_requested = True

    def _pause(self, seconds: float) -> bool:
        """Sleep `seconds` in STOP_POLL slices; False once a stop is asked for."""
        deadline = time.monotonic() + seconds
        while not (self._stop_requested or self.stop.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(STOP_POLL, left))
        return False

    def _cycle(self) -> None:
        self.flusher.flush()
        self.heartbeat.beat()
        self.watchdog.beat("flusher")

    def _log_totals(self, elapsed: float, saved: bool) -> None:
        made = self.tally.made
        rate = made / elapsed if elapsed else 0.0
        fate = (
            "all counted in Redis"
            if saved
            else f"{self.flusher.unsaved} hashes NOT saved: Redis unavailable"
        )
        log.info(
            "worker %s stopped: made %d hashes, %d coins in %.1f s (%.1f hashes/s); %s",
            self.id,
            made,
            self.tally.coins_found,
            elapsed,
            rate,
            fate,
        )
