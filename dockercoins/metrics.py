"""How every role's Prometheus samples leave the process (GET /metrics).

The metrics themselves are declared in mining.metrics and rollouts.metrics.prometheus;
this module only serves them, in one of two ways:

- Under gunicorn (rng, hasher, webui: several worker processes behind one
  port) prometheus_client's multiprocess mode: each process writes its samples
  to files in PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py makes one per
  server), and whichever process answers GET /metrics adds them all up.
  Requests and their duration are counted here, in front of Django, so the
  roles without middleware (rng, hasher) pay no middleware chain for it.
- In a command process (`manage.py mine`, `rollout controller`) the default
  registry, served on METRICS_PORT by prometheus_client's own HTTP server in a
  daemon thread: the mining and reconcile loops never wait for a scrape.
"""

import os
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    make_wsgi_app,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The WSGI environ key naming the view that answered: set by ViewName (Django's
# URL name, namespaced) or by a fast path in front of Django; Django's
# request.META is the environ itself, so the name reaches the timer below.
VIEW_KEY = "dockercoins.view"
# Views of the roles without middleware: rng and hasher route by path alone.
_LEAN_VIEWS = {"rng": ("rng-banner", "rng-bytes"), "hasher": ("hasher-index",) * 2}

# Labels stay bounded: a view is one of the URLconf's names, a method one of
# METHODS or "other", a status one of the codes the app answers with, a
# version one per image.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# One histogram and no separate request counter: its `_count` is the number of
# requests answered, and each metric written costs /json about 2 % of its CPU
# (docs/metrics.md, "Figures").
HTTP_DURATION = Histogram(
    "dockercoins_http_request_duration_seconds",
    "Time from a request reaching the app to its response being ready, by "
    "view, method and status (GET /metrics not counted); _count: requests.",
    ["view", "method", "status", "version"],
)
# (view, method, status) -> its histogram child: labels() validates and locks
# on every call, a dict lookup does not.
_children: dict[tuple[str, str, str], Histogram] = {}


def registry() -> CollectorRegistry:
    """The registry to expose: every gunicorn worker's files in multiprocess
    mode, else this process's default registry."""
    from prometheus_client import REGISTRY

    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged)
    return merged


class ViewName:
    """Django middleware: records the name of the view about to answer."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> object:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *args: object) -> None:
        match = request.resolver_match
        request.META[VIEW_KEY] = (match and match.view_name) or "unnamed"


def view_of(environ: dict, status: str) -> str:
    """The view label of a request: its recorded name, else the lean role's
    view for its path, else "unmatched" (a 404 no view answered)."""
    named = environ.get(VIEW_KEY)
    if named:
        return str(named)
    lean = _LEAN_VIEWS.get(settings.ROLE)
    if lean is None or status == "404":
        return "unmatched"
    return lean[0] if environ.get("PATH_INFO") == "/" else lean[1]


def observe_request(environ: dict, status: str, seconds: float) -> None:
    method = environ.get("REQUEST_METHOD", "")
    key = (view_of(environ, status), method if method in METHODS else "other", status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = HTTP_DURATION.labels(*key, settings.VERSION)
    child.observe(seconds)


def with_metrics(app: WSGIApp, observe: Callable = observe_request) -> WSGIApp:
    """Wrap a WSGI app: GET /metrics answers the samples, every other request
    is timed and handed to `observe(environ, status, seconds)`.

    The status is the first three characters of the line the app started its
    response with; the time runs until the app returned its body (Django
    builds the whole body before returning).
    """
    exposition = make_wsgi_app(registry())

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return exposition(environ, start_response)
        started = time.perf_counter()
        status = ["500"]

        def record_status(line: str, headers: list, *exc_info: object) -> object:
            status[0] = line[:3]
            return start_response(line, headers, *exc_info)

        try:
            return app(environ, record_status)
        finally:
            observe(environ, status[0], time.perf_counter() - started)

    return application


def serve(port: int) -> None:
    """Serve this process's metrics on `port` (all interfaces), in a daemon
    thread; 0 serves nothing. Raises OSError when the port is taken."""
    if port:
        start_http_server(port)
