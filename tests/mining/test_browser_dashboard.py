"""A real Chromium opens the dashboard: the chart is drawn on load, the figures
refresh every second, and a Redis outage shows (and clears) a notice; the
chart marks each rollout and draws the rate by worker version."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone

from mining import store, views
from rollouts.models import Revision, Rollout, RolloutEvent, Service
from tests.browser import SCREENSHOTS, chromium, why_no_browser
from tests.rollouts.admin_support import make_service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _why_not() -> str:
    if not finders.find(views.CHART_JS):
        return "Chart.js is not installed: run deploy/vendor-static.sh"
    return why_no_browser()


@pytest.fixture(scope="module")
def browser():
    yield from chromium(_why_not)


def mine_history(seconds: int, per_second: int) -> None:
    now = time.time()
    store.record_work(
        hashes=seconds * per_second,
        per_second={int(now) - s: per_second for s in range(seconds)},
        coins={"0abc": b"x"},
        worker_id="browser-test",
        now=now,
    )


def rolled(
    role: str,
    tag: str,
    state: str,
    *,
    started: int,
    finished: int,
    promoted: int | None = None,
) -> None:
    """A rollout of `role` to `tag` that ran from `started` to `finished` s ago."""

    def ago(seconds: int):
        return timezone.now() - timedelta(seconds=seconds)

    service = Service.objects.filter(short_name=role).first() or make_service(role)
    number = service.revisions.count() + 1
    revision = Revision.objects.create(
        service=service, number=number, spec={"tag": tag}, change_cause="test"
    )
    rollout = Rollout.objects.create(
        service=service,
        revision=revision,
        kind="apply",
        state=state,
        started_at=ago(started),
        finished_at=ago(finished),
        baseline_version="1.0",
    )
    if promoted is not None:
        event = RolloutEvent.objects.create(
            rollout=rollout, kind="state", message="promoted at 10:00:00: passed"
        )
        RolloutEvent.objects.filter(pk=event.pk).update(at=ago(promoted))


@contextmanager
def stand_in_prometheus(settings, *, versions: tuple[str, ...]) -> Iterator[None]:
    """A Prometheus on loopback whose workers run `versions`: three tasks of
    the first, one of the others, each mining 5 hashes/s per task."""

    class Answers(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            now = time.time()
            result: list[dict]
            if "query_range" in self.path:
                points: list[list] = [[now - 300 + 5 * i, "5"] for i in range(60)]
                result = [
                    {"metric": {"version": v}, "values": points} for v in versions
                ]
            else:
                result = [
                    {"metric": {"version": v}, "value": [now, "3" if n == 0 else "1"]}
                    for n, v in enumerate(versions)
                ]
            body = {"status": "success", "data": {"result": result}}
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_the_dashboard_charts_and_refreshes_in_a_real_browser(
    browser, live_server, redis_url, redis_server, settings, pipeline
):
    settings.RNG_URL, settings.HASHER_URL = pipeline.rng_url, pipeline.hasher_url
    mine_history(120, 7)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/")

        # Drawn from the data embedded in the page, before the first poll.
        points = page.evaluate("Chart.getChart('chart').data.datasets[0].data")
        assert len(points) == 300 and 7 in points
        assert page.inner_text("#coins") == "1"

        # The page polls every second: new coins and probed latencies show up.
        store.store_coin("0def", b"y")
        # Predicates as functions: a bare expression is eval()ed in the page,
        # which its Content-Security-Policy (no 'unsafe-eval') refuses.
        page.wait_for_function(
            "() => document.querySelector('#coins').innerText === '2'"
        )
        page.wait_for_function(
            "() => document.querySelector('#latency-hasher').innerText !== '\u2013'"
        )
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))

        redis_server.stop()
        try:
            page.wait_for_selector("#redis-notice", state="visible")
            assert "Redis is unavailable" in page.inner_text("#redis-notice")
        finally:
            redis_server.start()
        page.wait_for_selector("#redis-notice", state="hidden")
    finally:
        page.close()


def test_the_chart_marks_each_rollout_and_the_rate_by_version(
    browser, live_server, redis_url, settings, pipeline
):
    settings.RNG_URL, settings.HASHER_URL = pipeline.rng_url, pipeline.hasher_url
    mine_history(200, 7)
    # The seed's story: `slow` rolled back by its analysis, then 1.1 promoted.
    rolled("worker", "slow", "rolled_back", started=200, finished=150)
    rolled("worker", "1.1", "completed", started=100, promoted=70, finished=30)
    with stand_in_prometheus(settings, versions=("1.0", "1.1")):
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{live_server.url}/")
            page.wait_for_function(
                "() => (Chart.getChart('chart').$rolloutMarks || []).length === 5"
            )
            drawn = page.evaluate("Chart.getChart('chart').$rolloutMarks")
            assert [m["text"] for m in drawn] == [
                "worker 1.0 \u2192 slow",
                "rolled back",
                "worker 1.0 \u2192 1.1",
                "promoted",
                "completed",
            ]
            xs = [m["x"] for m in drawn]
            assert xs == sorted(xs)  # in time order across the chart
            listed = page.inner_text("#rollout-marks")
            assert "worker 1.0 \u2192 slow: started" in listed
            assert "rolled back" in listed and "promoted" in listed
            # The rate by version: one dashed line per worker version.
            page.wait_for_function(
                "() => Chart.getChart('chart').data.datasets.length === 4"
            )
            labels = page.evaluate(
                "Chart.getChart('chart').data.datasets.map((d) => d.label)"
            )
            assert labels[2:] == ["version 1.0 (3 tasks)", "version 1.1 (1 task)"]
            page.screenshot(path=str(SCREENSHOTS / "dashboard-rollouts.png"))
            page.uncheck("#by-version")
            assert page.evaluate("Chart.getChart('chart').data.datasets.length") == 2
        finally:
            page.close()
