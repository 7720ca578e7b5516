"""rng: random bytes from an entropy-limited device.

The device serves one request at a time and each takes RNG_DELAY seconds, so
one replica tops out near 1 / RNG_DELAY requests/s. The workshop's scaling
lesson (more workers stop helping, one rng per node does) depends on that
ceiling being a property of each replica, so a process-wide lock enforces it
on every request (the banner too) whatever the server's concurrency.
"""

import os
import re
import socket
import threading
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

MAX_BYTES = 1024
# ASCII digits only, and few of them: int() of thousands of digits raises
# (Python's int-string limit), and none of that many is a byte count we serve.
_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_MAX_DIGITS = 15
_device = threading.Lock()


@csrf_exempt
@require_safe
def banner(request: HttpRequest) -> HttpResponse:
    # The banner waits its turn at the device like any request (the classic
    # rng served one request at a time): the workshop's step 3 probes `GET /`
    # (httping) to show that rng answers slowly under load.
    with _device:
        pass
    return HttpResponse(
        f"RNG running on {socket.gethostname()}\n", content_type="text/plain"
    )


@csrf_exempt
@require_safe
def random_bytes(request: HttpRequest, count: str) -> HttpResponse:
    if not _NUMBER.fullmatch(count):
        return _bad_request("not a number")
    digits = count.lstrip("+-").lstrip("0")
    sign = -1 if count.startswith("-") else 1
    how_many = sign * int(digits or "0") if len(digits) <= _MAX_DIGITS else 0
    if not 1 <= how_many <= MAX_BYTES:
        return _bad_request(f"n must be between 1 and {MAX_BYTES}")
    return _sized(HttpResponse(draw(how_many), content_type="application/octet-stream"))


def draw(how_many: int) -> bytes:
    """`how_many` random bytes, at the device's pace."""
    with _device:
        if settings.RNG_DELAY:
            time.sleep(settings.RNG_DELAY)
        return os.urandom(how_many)


def _bad_request(reason: str) -> HttpResponse:
    return HttpResponseBadRequest(f"{reason}\n", content_type="text/plain")


def _sized(response: HttpResponse) -> HttpResponse:
    # Without middleware nobody sets Content-Length and gunicorn falls back to
    # chunked encoding: more bytes and more parsing on the worker's hot path.
    response["Content-Length"] = str(len(response.content))
    return response
