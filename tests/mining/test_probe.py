"""Latency probes of rng and hasher (the workshop's httping), for real."""

import socket

import pytest
import redis
from django.test import Client

from deploy.polling import wait_until
from mining import probe, store
from tests.conftest import free_port


@pytest.fixture
def probed(settings, pipeline):
    settings.RNG_URL = pipeline.rng_url
    settings.HASHER_URL = pipeline.hasher_url
    return settings


def test_a_probe_measures_rng_and_hasher_in_ms(probed):
    result = probe.probe_now()

    assert result.rng.ms > 0 and result.rng.error == ""
    assert result.hasher.ms > 0 and result.hasher.error == ""


def test_a_probe_says_why_a_service_did_not_answer(probed):
    probed.RNG_URL = f"http://127.0.0.1:{free_port()}"

    result = probe.probe_now()

    assert result.rng.ms is None
    assert result.rng.error == "connection refused"
    assert result.hasher.error == ""


def test_only_one_probe_runs_at_a_time_in_the_whole_stack(probed, redis_url):
    assert probe.refresh_in_background()
    assert not probe.refresh_in_background()  # another process would see the same

    db = redis.Redis.from_url(redis_url)
    wait_until(lambda: db.get(store.PROBE_RESULT), timeout=15, message="a result")
    wait_until(lambda: not db.exists(store.PROBE_LOCK), timeout=5, message="unlock")
    assert store.claim_probe(seconds=1)  # free again for the next stale read


def test_the_api_answers_at_once_while_a_slow_rng_is_being_probed(
    probed, redis_url, client: Client
):
    # A listening socket that never accepts: the probe's GET waits for an
    # answer that does not come, as with an rng stuck behind a long queue.
    stuck = socket.create_server(("127.0.0.1", 0))
    probed.RNG_URL = f"http://127.0.0.1:{stuck.getsockname()[1]}"
    db = redis.Redis.from_url(redis_url)
    try:
        assert client.get("/api/latency/").json() == {"latency": None}
        assert db.exists(store.PROBE_LOCK)  # the probe is running meanwhile
        assert client.get("/api/latency/").json() == {"latency": None}
    finally:
        stuck.close()  # resets the waiting connection: the probe ends

    def latency():
        return client.get("/api/latency/").json()["latency"]

    result = wait_until(latency, timeout=15, message="the probe to finish")
    assert result["rng"]["ms"] is None and result["rng"]["error"]
    assert result["hasher"]["ms"] > 0
