"""The one module that talks to Redis.

Keys shared with the classic DockerCoins (other tools read them):
  hashes  counter of every hash ever made (INCRBY)
  wallet  hash: coin hex -> the random bytes that produced it (HSET)

Keys of our own, each bounded so Redis never grows without limit:
  hashes:sec:<start>  hashes per unix second, one Redis hash per BUCKET_SECONDS
                      window (field = second), expiring after SERIES_TTL
  workers             sorted set: worker id -> unix time of its last flush,
                      pruned by score on every write, expiring when all stop
  probe:latency       the last rng/hasher latency probe (JSON), with a TTL
  probe:lock          single-flight lock for starting a probe (SET NX EX)
  flushed:<worker>:<run>  the sequence number of that worker process' last
                      flush applied (idempotence key, FLUSH_MEMORY_TTL)

Why buckets of 120 s: a bucket then holds at most 120 fields, under Redis'
default hash-max-listpack-entries (128), so it stays in the compact listpack
encoding; a worker's flush is one HINCRBY per second it covers plus one
EXPIRE, and the chart's five minutes are at most four HGETALLs in a single
pipelined round trip. A key per second would need 300 keys per read, a sorted
set or stream would need a read-modify-write to sum several workers' counts.

Exactly once: a worker's flush carries a sequence number and is applied by one
Lua script that first checks the worker's idempotence key. A flush whose reply
was lost (Redis restarted after applying it, or the connection broke on the
way back) is sent again with the same number, by redis-py's own retry or by the
worker's next flush, and the script then applies nothing: the hash count never
counts a flush twice, and never drops one the worker still holds.
"""

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

HASHES = "hashes"
WALLET = "wallet"
SERIES_PREFIX = "hashes:sec:"
WORKERS = "workers"
PROBE_RESULT = "probe:latency"
PROBE_LOCK = "probe:lock"
FLUSHED_PREFIX = "flushed:"

BUCKET_SECONDS = 120
# The chart shows five minutes, plus margin for its 10 s average and for the
# seconds not yet settled; a bucket lives until its last second is that old.
SERIES_SECONDS = 330
SERIES_TTL = SERIES_SECONDS + BUCKET_SECONDS
# A worker flushes about once a second: three missed flushes and it is gone.
WORKER_TTL = 5
# How long Redis remembers a worker's last flush, refreshed by each flush: a
# flush retried later than this after Redis applied it would count twice
# (Redis down for a whole day with a worker waiting for it).
FLUSH_MEMORY_TTL = 24 * 3600

# KEYS: idempotence key, hashes, wallet, workers, then one key per bucket.
# ARGV: sequence (0: no idempotence), idempotence TTL, hashes, worker id, now,
# stale-before, workers TTL, series TTL, then per bucket: N and N (second,
# count) pairs,
# then M and M (coin, bytes) pairs. Effects are written to the AOF as one
# MULTI/EXEC (Redis >= 7): all of a flush or none of it, idempotence key included.
_RECORD_WORK = """
local seq = tonumber(ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[6])
redis.call('EXPIRE', KEYS[4], ARGV[7])
if seq > 0 then
  if seq <= tonumber(redis.call('GET', KEYS[1]) or '0') then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
local hashes = tonumber(ARGV[3])
if hashes > 0 then
  redis.call('INCRBY', KEYS[2], hashes)
end
local i = 9
for b = 5, #KEYS do
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    redis.call('HINCRBY', KEYS[b], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('EXPIRE', KEYS[b], ARGV[8])
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
"""

# Short timeouts so a dead Redis is noticed within about a second, and one
# immediate retry on connection errors (not on timeouts, which would double
# the wait) so a connection left stale by a Redis restart is replaced
# transparently instead of failing the first request after the restart.
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 1.0


class StoreUnavailable(Exception):
    """Redis cannot be reached (refused, timed out, or still loading)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"Redis is unavailable at {address}: {reason}")
        self.address = address
        self.reason = reason


@dataclass(frozen=True)
class Totals:
    hashes: int
    coins: int


@dataclass(frozen=True)
class Snapshot:
    """Everything the dashboard shows, read in one round trip."""

    hashes: int
    coins: int
    per_second: dict[int, int]
    active_workers: int
    probe: bytes | None


_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url = ""


def client() -> redis.Redis:
    """This process' client (thread-safe, pooled), built on first use.

    Built once and kept: constructing a redis.Redis costs about half a
    millisecond (it builds its response-callback tables), more than the
    whole round trip of a /json request.
    """
    global _client, _client_url
    current, url = _client, settings.REDIS_URL
    if current is not None and _client_url == url:
        return current
    with _lock:
        if _client is None or _client_url != url:
            if _client is not None:
                _client.connection_pool.disconnect()
            pool = redis.ConnectionPool.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=READ_TIMEOUT,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
            _client, _client_url = redis.Redis(connection_pool=pool), url
        return _client


def reset() -> None:
    """Drop the client and its pool (tests, or after REDIS_URL changed)."""
    global _client, _client_url
    with _lock:
        if _client is not None:
            _client.connection_pool.disconnect()
        _client, _client_url = None, ""


def _where() -> str:
    kwargs = _client.connection_pool.connection_kwargs if _client else {}
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def _unavailable(exc: redis.RedisError) -> StoreUnavailable:
    # Name the address but never the URL: it may carry a password.
    return StoreUnavailable(_where(), str(exc))


def _run(pipe: redis.client.Pipeline) -> list:
    try:
        return pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise _unavailable(exc) from exc


def bucket_key(second: int) -> str:
    return f"{SERIES_PREFIX}{second - second % BUCKET_SECONDS}"


def record_work(
    *,
    hashes: int,
    per_second: Mapping[int, int],
    coins: Mapping[str, bytes],
    worker_id: str,
    now: float,
    flush: tuple[str, int] = ("", 0),
) -> bool:
    """Add a worker's counts and late coins, refresh its heartbeat; all or
    nothing, and at most once per `flush`.

    `flush` is (the worker process' run id, its flush sequence number, from 1
    up): sent again after an error, the same flush is applied once (module
    docstring). ("", 0), the default, is a flush without idempotence (tests,
    one-off tools). Returns False when Redis had already applied this flush.

    Raises StoreUnavailable when Redis cannot be reached: the caller keeps the
    batch and sends it again with the same `flush`.
    """
    run, sequence = flush
    buckets = _by_bucket(per_second)
    args: list[object] = [
        sequence if run else 0,
        FLUSH_MEMORY_TTL,
        hashes,
        worker_id,
        now,
        now - WORKER_TTL,
        WORKER_TTL * 2,
        SERIES_TTL,
    ]
    for fields in buckets.values():
        args.append(len(fields))
        for second, count in fields.items():
            args += [second, count]
    args.append(len(coins))
    for coin, random_bytes in coins.items():
        args += [coin, random_bytes]
    keys = [f"{FLUSHED_PREFIX}{worker_id}:{run}", HASHES, WALLET, WORKERS, *buckets]
    try:
        applied = _record_work_script()(keys=keys, args=args)  # type: ignore[arg-type]
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise _unavailable(exc) from exc
    return bool(applied)


_script: "redis.commands.core.Script | None" = None


def _record_work_script() -> "redis.commands.core.Script":
    """The script bound to this process' client (EVALSHA; loaded again by
    redis-py when a restarted Redis has forgotten it)."""
    global _script
    current = client()
    if _script is None or _script.registered_client is not current:
        _script = current.register_script(_RECORD_WORK)
    return _script


def _by_bucket(per_second: Mapping[int, int]) -> dict[str, dict[int, int]]:
    buckets: dict[str, dict[int, int]] = {}
    for second, count in per_second.items():
        if count:
            buckets.setdefault(bucket_key(second), {})[second] = count
    return buckets


def forget_worker(worker_id: str) -> None:
    """Stop counting a worker as active as soon as it exits."""
    pipe = client().pipeline(transaction=False)
    pipe.zrem(WORKERS, worker_id)
    _run(pipe)


def store_coin(hex_hash: str, random_bytes: bytes) -> None:
    pipe = client().pipeline(transaction=False)
    # redis-py's hints say str; the protocol (and redis-py) take bytes as is.
    pipe.hset(WALLET, hex_hash, random_bytes)  # type: ignore[arg-type]
    _run(pipe)


def totals() -> Totals:
    pipe = client().pipeline(transaction=False)
    pipe.get(HASHES)
    pipe.hlen(WALLET)
    hashes, coins = _run(pipe)
    return Totals(hashes=int(hashes or 0), coins=int(coins))


def snapshot(*, now: float, seconds: int = SERIES_SECONDS) -> Snapshot:
    """Totals, per-second counts for the last `seconds`, workers, last probe."""
    last = int(now)
    first = last - seconds
    start = first - first % BUCKET_SECONDS
    keys = [f"{SERIES_PREFIX}{b}" for b in range(start, last + 1, BUCKET_SECONDS)]
    pipe = client().pipeline(transaction=False)
    pipe.get(HASHES)
    pipe.hlen(WALLET)
    pipe.zcount(WORKERS, now - WORKER_TTL, "+inf")
    pipe.get(PROBE_RESULT)
    for key in keys:
        pipe.hgetall(key)
    hashes, coins, workers, probe, *buckets = _run(pipe)
    per_second = {
        int(second): int(count)
        for bucket in buckets
        for second, count in bucket.items()
        if first <= int(second) <= last
    }
    return Snapshot(
        hashes=int(hashes or 0),
        coins=int(coins),
        per_second=per_second,
        active_workers=int(workers),
        probe=probe,
    )


def claim_probe(*, seconds: float) -> bool:
    """True for exactly one caller per `seconds`, across every process."""
    pipe = client().pipeline(transaction=False)
    pipe.set(PROBE_LOCK, b"1", nx=True, px=max(1, int(seconds * 1000)))
    (claimed,) = _run(pipe)
    return bool(claimed)


def release_probe() -> None:
    pipe = client().pipeline(transaction=False)
    pipe.delete(PROBE_LOCK)
    _run(pipe)


def save_probe(payload: bytes, *, ttl: float) -> None:
    pipe = client().pipeline(transaction=False)
    pipe.set(PROBE_RESULT, payload, px=max(1, int(ttl * 1000)))
    _run(pipe)


def ping() -> None:
    pipe = client().pipeline(transaction=False)
    pipe.ping()
    _run(pipe)
