"""Every role serves its Prometheus metrics: rng and hasher under gunicorn as
in the image (two hasher processes added up), the webui's views by name, the
worker's hashes, round trips and errors by version."""

import threading
import urllib.request

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dockercoins.wsgi import application
from mining.worker import Miner, Outages, ServiceDown, Tally
from tests.conftest import free_port
from tests.mining.conftest import serve_role, stop
from tests.mining.test_fastpath import call


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} from GET url/metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests(samples: dict, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        value
        for (name, found), value in samples.items()
        if name == "dockercoins_http_request_duration_seconds_count" and wanted <= found
    )


@pytest.fixture(scope="module")
def hasher():
    served = serve_role("hasher", "--workers", "2", DOCKERCOINS_VERSION="9.9")
    yield served.url
    stop(served)


def test_the_hasher_counts_every_request_over_all_its_processes(hasher):
    before = requests(scrape(hasher), view="hasher-index", method="POST", status="200")
    # New connections each time: gunicorn's two processes share the work.
    for n in range(40):
        urllib.request.urlopen(
            urllib.request.Request(hasher + "/", data=b"x%d" % n), timeout=5
        ).read()

    samples = scrape(hasher)

    assert requests(samples, view="hasher-index", method="POST", status="200") == (
        before + 40
    )
    slowest = [
        value
        for (name, labels), value in samples.items()
        if name == "dockercoins_http_request_duration_seconds_bucket"
        and ("le", "+Inf") in labels
    ]
    assert sum(slowest) >= 40
    assert requests(samples, version="9.9") >= 40


def test_the_hasher_keeps_metrics_out_of_its_own_counts(hasher):
    scrape(hasher)
    samples = scrape(hasher)
    assert requests(samples, view="unmatched") == requests(samples, status="404")
    assert not any("metrics" in dict(labels).get("view", "") for _, labels in samples)


def test_rng_serves_metrics_instead_of_reading_it_as_a_byte_count(pipeline):
    urllib.request.urlopen(pipeline.rng_url + "/32", timeout=5).read()

    samples = scrape(pipeline.rng_url)

    assert requests(samples, view="rng-bytes", status="200") >= 1
    assert requests(samples, view="rng-banner", status="200") >= 1  # the probe


@pytest.mark.django_db
def test_the_webui_counts_requests_by_view_and_status(redis_url):
    def seen(view: str, status: str) -> float:
        value = REGISTRY.get_sample_value(
            "dockercoins_http_request_duration_seconds_count",
            {"view": view, "method": "GET", "status": status, "version": "dev"},
        )
        return value or 0.0

    before = seen("mining:json", "200"), seen("unmatched", "404")
    call(application, "GET", "/json")
    call(application, "GET", "/no-such-page/")
    status, headers, body = call(application, "GET", "/metrics")

    assert (seen("mining:json", "200"), seen("unmatched", "404")) == (
        before[0] + 1,
        before[1] + 1,
    )
    assert status.startswith("200")
    assert b'method="GET",status="200",version="dev",view="mining:json"}' in body


def test_the_worker_counts_hashes_and_round_trips_by_version(pipeline, redis_url):
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"version": "dev", **labels}) or 0.0

    before = (
        value("dockercoins_hashes_total"),
        value("dockercoins_upstream_request_duration_seconds_count", upstream="hasher"),
    )
    miner = Miner(
        rng_url=pipeline.rng_url,
        hasher_url=pipeline.hasher_url,
        delay=0,
        tally=Tally(),
        outages=Outages(),
        stop=threading.Event(),
    )
    for _ in range(5):
        miner.work_once()

    assert value("dockercoins_hashes_total") == before[0] + 5
    assert (
        value("dockercoins_upstream_request_duration_seconds_count", upstream="hasher")
        == before[1] + 5
    )


def test_the_worker_counts_errors_by_upstream(pipeline, redis_url):
    def errors() -> float:
        return (
            REGISTRY.get_sample_value(
                "dockercoins_upstream_errors_total",
                {"upstream": "rng", "kind": "connection", "version": "dev"},
            )
            or 0.0
        )

    before = errors()
    miner = Miner(
        rng_url=f"http://127.0.0.1:{free_port()}",
        hasher_url=pipeline.hasher_url,
        delay=0,
        tally=Tally(),
        outages=Outages(),
        stop=threading.Event(),
    )
    with pytest.raises(ServiceDown):
        miner.work_once()

    assert errors() == before + 1
