"""GET /json answered straight from WSGI: the same contract as the Django view."""

import io
import json
import time
from types import SimpleNamespace

import pytest
import redis
from django.core.signals import request_started
from django.core.wsgi import get_wsgi_application

from mining import fastpath, store
from mining.fastpath import with_fast_json


def call(app, method: str, path: str) -> tuple[str, dict, bytes]:
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


@pytest.fixture
def app():
    return with_fast_json(get_wsgi_application())


def test_fast_json_keeps_the_classic_contract(app, redis_url):
    store.record_work(
        hashes=42, per_second={}, coins={"0a": b"x"}, worker_id="w", now=0
    )

    status, headers, body = call(app, "GET", "/json")

    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Length"] == str(len(body))
    payload = json.loads(body)
    assert (payload["coins"], payload["hashes"]) == (1, 42)
    assert isinstance(payload["now"], float)


def test_fast_json_answers_head_without_a_body(app, redis_url):
    status, headers, body = call(app, "HEAD", "/json")

    assert status == "200 OK" and body == b""
    assert int(headers["Content-Length"]) > 0


def test_fast_json_answers_503_json_when_redis_is_down(app, redis_url, redis_server):
    redis_server.stop()
    try:
        status, headers, body = call(app, "GET", "/json")
    finally:
        redis_server.start()

    assert status == "503 Service Unavailable"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["detail"].startswith("Redis is unavailable at ")


# Whatever reaches Django's handler may touch the database: Django closes stale
# connections at every request start.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/totals/"), ("POST", "/json")]
)
def test_everything_else_goes_to_django(app, redis_url, method, path):
    status, headers, _ = call(app, method, path)

    assert status in {"200 OK", "403 Forbidden"}  # a POST meets Django's CSRF check
    assert "X-Frame-Options" in headers  # Django's middleware ran


def test_rng_keeps_reading_json_as_a_byte_count(settings):
    settings.ROOT_URLCONF = "mining.rng.urls"
    django_app = get_wsgi_application()

    assert with_fast_json(django_app) is django_app


@pytest.mark.django_db
def test_the_webui_wsgi_application_serves_json_on_the_fast_path(redis_url):
    from dockercoins.wsgi import application

    django_requests = []

    def seen(sender, **kwargs):
        django_requests.append(sender)

    request_started.connect(seen, dispatch_uid="fastpath-test")
    try:
        status, _, _ = call(application, "GET", "/json")
        call(application, "GET", "/api/totals/")
    finally:
        request_started.disconnect(dispatch_uid="fastpath-test")

    assert status == "200 OK"
    assert len(django_requests) == 1  # /api/totals/ only


def test_json_reads_redis_at_most_every_tenth_of_a_second(redis_url, monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr(
        fastpath,
        "time",
        SimpleNamespace(monotonic=lambda: clock["now"], time=time.time),
    )
    db = redis.Redis.from_url(redis_url)
    db.set("hashes", 1)
    first = json.loads(fastpath.classic_answer()[1])
    db.incrby("hashes", 5)

    again = json.loads(fastpath.classic_answer()[1])
    clock["now"] += fastpath.CACHE_SECONDS
    later = json.loads(fastpath.classic_answer()[1])

    assert again == first  # the same reading, "now" included: a consistent pair
    assert (first["hashes"], later["hashes"]) == (1, 6)
    assert later["now"] >= first["now"]


def call_with(app, **environ: str) -> tuple[str, dict, bytes]:
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/json",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ={**base, **environ}, start_response=start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.django_db
def test_fast_json_refuses_a_nul_in_the_query_like_every_other_page(app, redis_url):
    status, _, body = call_with(app, QUERY_STRING="x=%00")

    assert status.startswith("400")
    assert b"NUL" in body


@pytest.mark.django_db
def test_fast_json_keeps_allowed_hosts(app, redis_url, settings):
    settings.ALLOWED_HOSTS = ["dockercoins.example"]

    status, _, _ = call_with(app, HTTP_HOST="evil.example")
    assert status.startswith("400")
    status, _, _ = call_with(app, HTTP_HOST="dockercoins.example:8000")
    assert status == "200 OK"


@pytest.mark.django_db
def test_fast_json_redirects_to_https_and_sends_hsts_under_https_only(
    redis_url, settings
):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    app = with_fast_json(get_wsgi_application())  # its middleware reads them now

    status, headers, _ = call_with(app)
    assert status.startswith("301")
    assert headers["Location"] == "https://testserver/json"

    status, headers, _ = call_with(app, HTTP_X_FORWARDED_PROTO="https")
    assert status == "200 OK"
    hsts = "max-age=31536000; includeSubDomains"
    assert headers["Strict-Transport-Security"] == hsts
    # the same header Django's own pages get
    _, django_headers, _ = call_with(
        app, PATH_INFO="/api/totals/", HTTP_X_FORWARDED_PROTO="https"
    )
    assert django_headers["Strict-Transport-Security"] == hsts
