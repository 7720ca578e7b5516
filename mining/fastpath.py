"""GET /json straight from WSGI, before Django's request machinery.

/json is what dashboards and scripts poll hardest, and its answer is two Redis
reads. Through Django's handler and the eight middleware the admin needs it
costs about twice the CPU of the same answer here. The answer is
mining.views.classic_json's, with the headers Django's security middleware
would have added.

Fast never means other rules (issue 16): only a request every rule would let
through is answered here: no query string (`?x=%00` is Django's to refuse), a
Host in ALLOWED_HOSTS, and under HTTPS_ONLY a request that came over HTTPS
(which then gets HSTS). Anything else goes to Django, which answers it with
the same 400, redirect or header any other page gets.
"""

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from django.urls import Resolver404, resolve

from dockercoins.metrics import VIEW_KEY
from mining import store

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

# Workers add to `hashes` about once a second, so a reading this young is as
# fresh as a live one to anyone polling; it saves a Redis round trip (about
# 40% of the request's CPU) on all but ten requests a second per process.
CACHE_SECONDS = 0.1

_HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
_STATUS = {200: "200 OK", 503: "503 Service Unavailable"}
# Host header -> allowed by ALLOWED_HOSTS; bounded, since anyone picks the key.
_MAX_HOSTS = 64
_HOSTS: dict[str | None, bool] = {}


class _Reading:
    """The last /json answer of this process, shared by its threads."""

    lock = threading.Lock()
    expires = 0.0
    redis_url = ""
    answer: tuple[int, bytes] = (503, b"")


def classic_answer() -> tuple[int, bytes]:
    """(status, body) of /json: {"coins", "hashes", "now"} or 503 {"detail"}.

    "now" is the time of the Redis reading, so hashes and now stay a
    consistent pair for whoever computes a rate from two answers.
    """
    url = settings.REDIS_URL
    if _Reading.expires > time.monotonic() and _Reading.redis_url == url:
        return _Reading.answer
    with _Reading.lock:  # one reader per process; the others wait for it
        if _Reading.expires > time.monotonic() and _Reading.redis_url == url:
            return _Reading.answer
        answer = _read()
        _Reading.answer, _Reading.redis_url = answer, url
        _Reading.expires = time.monotonic() + CACHE_SECONDS
        return answer


def forget() -> None:
    """Drop the cached answer (tests write to Redis and read back at once)."""
    _Reading.expires = 0.0


def _read() -> tuple[int, bytes]:
    try:
        totals = store.totals()
    except store.StoreUnavailable as exc:
        return 503, json.dumps({"detail": str(exc)}).encode()
    payload = {"coins": totals.coins, "hashes": totals.hashes, "now": time.time()}
    return 200, json.dumps(payload).encode()


def with_fast_json(app: WSGIApp) -> WSGIApp:
    """Wrap the Django WSGI app so GET/HEAD /json skips it.

    Only where Django itself routes /json to the classic view (the webui
    role): rng's URLconf reads "/json" as a byte count, and must keep doing so.
    """
    try:
        routed_here = resolve("/json").view_name == "mining:json"
    except Resolver404:
        routed_here = False
    if not routed_here:
        return app

    # Read once, as Django's SecurityMiddleware reads them at start.
    redirect = settings.SECURE_SSL_REDIRECT
    proxy_header, proxy_https = settings.SECURE_PROXY_SSL_HEADER or ("", "")
    hsts = [("Strict-Transport-Security", _hsts())] if _hsts() else []
    # The policy every other page gets from csp.middleware.CSPMiddleware.
    policy = [("Content-Security-Policy", build_policy())]
    forwarded_host = settings.USE_X_FORWARDED_HOST

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if (
            environ.get("PATH_INFO") != "/json"
            or method not in ("GET", "HEAD")
            or environ.get("QUERY_STRING")
            or (forwarded_host and "HTTP_X_FORWARDED_HOST" in environ)
            or not (_HOSTS.get(environ.get("HTTP_HOST")) or _host_allowed(environ))
        ):
            return app(environ, start_response)
        secure = environ.get("wsgi.url_scheme") == "https" or (
            proxy_header != ""
            and environ.get(proxy_header, "").split(",")[0] == proxy_https
        )
        if redirect and not secure:
            return app(environ, start_response)
        environ[VIEW_KEY] = "mining:json"
        status, body = classic_answer()
        headers = [*_HEADERS, *policy, ("Content-Length", str(len(body)))]
        if secure:
            headers += hsts
        start_response(_STATUS[status], headers)
        return [] if method == "HEAD" else [body]

    return application


def _host_allowed(environ: dict) -> bool:
    """As HttpRequest.get_host() judges a Host header; the answer is cached
    in _HOSTS (a hit costs one dict lookup on the hot path)."""
    host = environ.get("HTTP_HOST")
    if host is None:
        return False
    allowed_hosts = settings.ALLOWED_HOSTS
    if not allowed_hosts and settings.DEBUG:  # as HttpRequest.get_host()
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    allowed = bool(domain) and validate_host(domain, allowed_hosts)
    if len(_HOSTS) >= _MAX_HOSTS:
        _HOSTS.clear()
    _HOSTS[host] = allowed
    return allowed


@receiver(setting_changed)
def _forget_hosts(*, setting: str, **kwargs: Any) -> None:
    if setting in ("ALLOWED_HOSTS", "DEBUG"):  # tests' override_settings
        _HOSTS.clear()


def _hsts() -> str:
    """Django's SecurityMiddleware's header; "" when HSTS is off."""
    if not settings.SECURE_HSTS_SECONDS:
        return ""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value
