"""A real Chromium opens the dashboard: the chart is drawn on load, the figures
refresh every second, and a Redis outage shows (and clears) a notice."""

import time

import pytest
from django.contrib.staticfiles import finders

from mining import store, views
from tests.browser import SCREENSHOTS, chromium, why_no_browser

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
