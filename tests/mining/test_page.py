"""The web UI page, rendered by Django."""

import json
import re

import pytest
from django.test import Client

from mining import probe, views


@pytest.fixture(autouse=True)
def no_probe(monkeypatch):
    monkeypatch.setattr(probe, "refresh_in_background", lambda: None)


def embedded_stats(html: str):
    match = re.search(
        r'<script id="initial-stats" type="application/json">(.*?)</script>', html, re.S
    )
    assert match is not None, "no initial-stats script in the page"
    return json.loads(match.group(1))


def test_the_page_embeds_the_last_five_minutes_so_the_chart_draws_at_once(
    client: Client, redis_url
):
    response = client.get("/")

    assert response.status_code == 200
    stats = embedded_stats(response.content.decode())
    assert len(stats["series"]["hashes"]) == 300
    assert set(stats) == {"now", "totals", "rate", "series", "workers", "latency"}


def test_the_page_polls_the_stats_api(client: Client, redis_url):
    html = client.get("/").content.decode()

    assert 'data-stats-url="/api/stats/"' in html
    assert "/static/mining/dashboard.js" in html


def test_the_page_says_redis_is_unavailable_instead_of_failing(
    client: Client, redis_url, redis_server
):
    redis_server.stop()
    try:
        response = client.get("/")
    finally:
        redis_server.start()

    html = response.content.decode()
    assert response.status_code == 200
    assert '<p id="redis-notice" class="notice" role="alert">' in html  # not hidden
    assert "Redis is unavailable at 127.0.0.1:" in html
    assert embedded_stats(html) is None


def test_the_page_loads_chart_js_installed_by_npm(
    client: Client, redis_url, monkeypatch
):
    monkeypatch.setattr(views, "chart_js_installed", lambda: True)

    html = client.get("/").content.decode()

    assert '<script src="/static/mining/vendor/chart.umd.min.js">' in html
    assert '<canvas id="chart">' in html


def test_the_page_still_renders_when_chart_js_is_missing(
    client: Client, redis_url, monkeypatch
):
    monkeypatch.setattr(views, "chart_js_installed", lambda: False)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Chart library missing" in html
    assert "chart.umd.min.js" not in html
