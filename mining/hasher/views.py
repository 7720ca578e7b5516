"""hasher: the SHA-256 of a request body, after HASHER_DELAY seconds.

Unlike rng it has no capacity limit of its own. The body comes with a
Content-Length or chunked (Transfer-Encoding: chunked); either way at most
MAX_BODY bytes, else 413.
"""

import hashlib
import random
import socket
import time

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
)
from django.views.decorators.csrf import csrf_exempt

from dockercoins.transport import unreadable_body

MAX_BODY = 1024 * 1024
TOO_BIG = "body must be at most 1 MiB"


@csrf_exempt
def index(request: HttpRequest) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        return HttpResponse(
            f"HASHER running on {socket.gethostname()}\n", content_type="text/plain"
        )
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    # Refuse an oversized body before reading it, from its declared length.
    if _declared_length(request) > MAX_BODY:
        return _too_big()
    try:
        body = _body(request)
    except OSError as error:
        # A chunk size such as "zz", a client gone mid-body, or a body that
        # stalled past BODY_TIMEOUT (gunicorn.conf.py): the client's fault,
        # answered in one line, never a 500 with a traceback in our log.
        return unreadable_body(request.META, error)
    if body is None:
        return _too_big()
    if not body:
        return _bad_request("empty body: POST the bytes to hash")
    if settings.HASHER_DELAY:
        time.sleep(settings.HASHER_DELAY)
    if settings.HASHER_ERROR_SHARE and random.random() < settings.HASHER_ERROR_SHARE:  # noqa: S311 (not security)
        return HttpResponse(
            "flaky: failed on purpose\n", status=500, content_type="text/plain"
        )
    digest = hashlib.sha256(body).hexdigest()
    return _sized(HttpResponse(digest, content_type="text/plain"))


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _body(request: HttpRequest) -> bytes | None:
    """The request body, or None when it is longer than MAX_BODY bytes.

    Django reads CONTENT_LENGTH bytes, so a chunked body (no Content-Length)
    reads as empty there. gunicorn decodes the chunks itself and says so with
    wsgi.input_terminated (the input ends where the body ends), so such a body
    is read from wsgi.input directly, one byte past the limit at most.
    """
    meta = request.META
    if meta.get("CONTENT_LENGTH") or not meta.get("wsgi.input_terminated"):
        return request.body
    body = meta["wsgi.input"].read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _too_big() -> HttpResponse:
    response = HttpResponse(f"{TOO_BIG}\n", status=413, content_type="text/plain")
    return _sized(response)


def _bad_request(reason: str) -> HttpResponse:
    return HttpResponseBadRequest(f"{reason}\n", content_type="text/plain")


def _sized(response: HttpResponse) -> HttpResponse:
    # Without middleware nobody sets Content-Length and gunicorn falls back to
    # chunked encoding: more bytes and more parsing on the worker's hot path.
    response["Content-Length"] = str(len(response.content))
    return response
