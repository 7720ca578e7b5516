"""The stats API and the classic /json, against a real Redis."""

from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from mining import probe, selectors, store

NOW = 1_800_000_000.5
SETTLED = int(NOW) - 2  # the last second every worker has flushed


@pytest.fixture(autouse=True)
def frozen(monkeypatch) -> list:
    """Freeze the clock the figures are computed at; record probe requests."""
    monkeypatch.setattr(selectors, "time", SimpleNamespace(time=lambda: NOW))
    started = []
    monkeypatch.setattr(probe, "refresh_in_background", lambda: started.append(1))
    return started


def mined(per_second: dict[int, int], *, worker: str = "w1") -> None:
    store.record_work(
        hashes=sum(per_second.values()),
        per_second=per_second,
        coins={},
        worker_id=worker,
        now=NOW,
    )


def test_stats_api_has_everything_the_page_shows(client: Client, redis_url):
    mined({SETTLED - s: 6 for s in range(60)}, worker="a")
    mined({}, worker="b")
    store.store_coin("0abc", b"x")

    body = client.get("/api/stats/").json()

    assert body["now"] == NOW
    assert body["totals"] == {"hashes": 360, "coins": 1}
    assert body["rate"] == {"last_10s": 6.0, "last_60s": 6.0}
    assert body["workers"] == {"active": 2, "heartbeat_ttl": store.WORKER_TTL}
    assert body["latency"] is None
    series = body["series"]
    assert series["start"] == SETTLED - selectors.CHART_SECONDS + 1
    assert series["step"] == 1
    assert len(series["hashes"]) == len(series["average"]) == 300
    assert series["hashes"][-60:] == [6] * 60
    assert series["hashes"][:-60] == [0] * 240


def test_totals_api_counts_hashes_and_coins(client: Client, redis_url):
    mined({SETTLED: 5})
    store.store_coin("0abc", b"x")

    assert client.get("/api/totals/").json() == {"hashes": 5, "coins": 1}


def test_rate_api_averages_the_last_10_and_60_seconds(client: Client, redis_url):
    mined({SETTLED - s: 12 for s in range(10)})

    assert client.get("/api/rate/").json() == {"last_10s": 12.0, "last_60s": 2.0}


def test_series_api_is_the_last_five_minutes_per_second(client: Client, redis_url):
    mined({SETTLED: 7, SETTLED - 299: 3, SETTLED - 300: 99})

    series = client.get("/api/series/").json()

    assert series["hashes"][0] == 3
    assert series["hashes"][-1] == 7
    assert sum(series["hashes"]) == 10


def test_workers_api_counts_workers_seen_in_the_last_seconds(client: Client, redis_url):
    mined({}, worker="a")
    mined({}, worker="b")
    store.forget_worker("b")

    assert client.get("/api/workers/").json()["active"] == 1


def test_latency_api_answers_at_once_and_starts_a_probe_when_none_is_cached(
    client: Client, redis_url, frozen
):
    assert client.get("/api/latency/").json() == {"latency": None}
    assert frozen == [1]


def test_latency_api_shows_the_last_probe_in_ms(client: Client, redis_url, frozen):
    result = probe.ProbeResult(
        rng=probe.Latency(ms=103.2),
        hasher=probe.Latency(ms=None, error="connection refused"),
        probed_at=NOW - 1,
    )
    store.save_probe(result.to_json(), ttl=60)

    assert client.get("/api/latency/").json() == {
        "latency": {
            "rng": {"ms": 103.2, "error": ""},
            "hasher": {"ms": None, "error": "connection refused"},
            "probed_at": NOW - 1,
        }
    }
    assert frozen == []  # fresh enough: no new probe


def test_a_stale_probe_is_shown_and_refreshed_in_the_background(
    client: Client, redis_url, frozen
):
    stale = probe.ProbeResult(
        rng=probe.Latency(ms=5.0), hasher=probe.Latency(ms=4.0), probed_at=NOW - 10
    )
    store.save_probe(stale.to_json(), ttl=60)

    assert client.get("/api/latency/").json()["latency"]["rng"]["ms"] == 5.0
    assert frozen == [1]


def test_json_keeps_the_classic_contract(client: Client, redis_url):
    mined({SETTLED: 42})
    store.store_coin("0abc", b"x")

    response = client.get("/json")

    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"coins", "hashes", "now"}
    assert (body["coins"], body["hashes"]) == (1, 42)
    assert isinstance(body["now"], float)


def test_json_counts_zero_on_a_fresh_redis(client: Client, redis_url):
    body = client.get("/json").json()

    assert (body["coins"], body["hashes"]) == (0, 0)


ENDPOINTS = (
    ["/json"]
    + [f"/api/{name}/" for name in ("stats", "totals", "rate", "series", "workers")]
    + ["/api/latency/"]
)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_every_endpoint_answers_503_json_when_redis_is_down(
    client: Client, redis_url, redis_server, url: str
):
    redis_server.stop()
    try:
        response = client.get(url)
    finally:
        redis_server.start()

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("Redis is unavailable at 127.0.0.1:")


def test_api_url_names_are_namespaced():
    assert reverse("mining:api:stats") == "/api/stats/"
    assert reverse("mining:json") == "/json"
    assert reverse("mining:index") == "/"
