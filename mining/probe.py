"""Latency of rng and hasher as seen from inside the stack (the workshop's httping).

A probe can take seconds (rng answers one request at a time, so under load a
probe waits in line), so no API call ever waits for one: readers get the last
result from Redis at once, and when it is older than STALE_AFTER one process
in the whole stack wins a Redis lock and probes in a background thread.
"""

import http.client
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from django.conf import settings

from mining import store

log = logging.getLogger("mining.probe")

STALE_AFTER = 2.0
TIMEOUT = 5.0
# Kept long enough to show the last known figures while probes time out.
RESULT_TTL = 60.0
# The lock outlives the slowest probe; the prober deletes it when done.
LOCK_SECONDS = 2 * TIMEOUT + 1


@dataclass(frozen=True)
class Latency:
    """One service's answer time in ms, or why it did not answer."""

    ms: float | None
    error: str = ""


@dataclass(frozen=True)
class ProbeResult:
    rng: Latency
    hasher: Latency
    probed_at: float

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "ProbeResult":
        data = json.loads(raw)
        return cls(
            rng=Latency(**data["rng"]),
            hasher=Latency(**data["hasher"]),
            probed_at=data["probed_at"],
        )


def latest(raw: bytes | None, *, now: float) -> ProbeResult | None:
    """Decode the cached result (from store.snapshot); start a probe if stale.

    Returns immediately; None until the first probe has finished.
    """
    result = _decode(raw)
    if result is None or now - result.probed_at > STALE_AFTER:
        refresh_in_background()
    return result


def _decode(raw: bytes | None) -> ProbeResult | None:
    if not raw:
        return None
    try:
        return ProbeResult.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None  # written by an older version: probe again


def refresh_in_background() -> bool:
    """Start a probe thread unless another process or thread already probes."""
    try:
        if not store.claim_probe(seconds=LOCK_SECONDS):
            return False
    except store.StoreUnavailable:
        return False
    threading.Thread(
        target=_probe_and_release, name="latency-probe", daemon=True
    ).start()
    return True


def _probe_and_release() -> None:
    try:
        store.save_probe(probe_now().to_json(), ttl=RESULT_TTL)
        store.release_probe()
    except store.StoreUnavailable as exc:
        # The lock expires by itself after LOCK_SECONDS.
        log.warning("cannot save the latency probe: %s", exc)


def probe_now() -> ProbeResult:
    """Probe both services at once, so a slow rng does not delay hasher's figure."""
    probed_at = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        rng = pool.submit(measure, settings.RNG_URL)
        hasher = pool.submit(measure, settings.HASHER_URL)
        return ProbeResult(
            rng=rng.result(), hasher=hasher.result(), probed_at=probed_at
        )


def measure(base_url: str) -> Latency:
    """Time one GET / on a fresh connection, as httping does by default."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(
        parts.hostname or "", parts.port or 80, timeout=TIMEOUT
    )
    started = time.perf_counter()
    try:
        conn.request("GET", parts.path.rstrip("/") + "/")
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Latency(ms=None, error=describe(exc))
    finally:
        conn.close()
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    if response.status != 200:
        return Latency(ms=elapsed, error=f"HTTP {response.status}")
    return Latency(ms=elapsed)


def describe(exc: Exception) -> str:
    """A short reason for the page: what an operator would say, not a repr."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
