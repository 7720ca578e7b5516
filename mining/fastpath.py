"""GET /json straight from WSGI, before Django's request machinery.

/json is what dashboards and scripts poll hardest, and its answer is two Redis
reads. Through Django's handler and the admin's eight middleware it costs
several times those reads in CPU; here it costs little more than the Redis
round trip, which is what lets one webui replica match the classic Node.js
webui's throughput. The answer is the same as mining.views.classic_json's,
with the headers Django's security middleware would have added.
"""

import json
import time
from collections.abc import Callable, Iterable

from django.urls import Resolver404, resolve

from mining import store

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

_HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


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

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/json" and environ.get("REQUEST_METHOD") in (
            "GET",
            "HEAD",
        ):
            return classic_json(environ, start_response)
        return app(environ, start_response)

    return application


def classic_json(environ: dict, start_response: Callable) -> Iterable[bytes]:
    try:
        totals = store.totals()
    except store.StoreUnavailable as exc:
        status, payload = "503 Service Unavailable", {"detail": str(exc)}
    else:
        status = "200 OK"
        payload = {"coins": totals.coins, "hashes": totals.hashes, "now": time.time()}
    body = json.dumps(payload).encode()
    start_response(status, [*_HEADERS, ("Content-Length", str(len(body)))])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
