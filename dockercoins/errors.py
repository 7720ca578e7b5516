"""The 500 handler: a database that does not answer is a 503, not a crash.

While PostgreSQL restarts or is down, every page that reads a session, a user
or a rollout fails with an OperationalError, often in a middleware before any
view runs. Django hands every such exception to `handler500` (still inside
its `except` block, so the exception is at hand); this one answers 503 with a
Retry-After for those, JSON under /api/ and a short page elsewhere, and
Django's own 500 for everything else. Nothing is cached: the next request
opens a new connection (Django closes a broken one when a request ends), so
the site recovers by itself as soon as the database answers.
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

RETRY_AFTER = 5  # seconds
DATABASE_DOWN = "the database does not answer; try again in a few seconds"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Service unavailable</title>
</head><body><h1>Service unavailable</h1>
<p>The database does not answer (it may be restarting). This page works again
as soon as it does; try again in a few seconds.</p></body></html>
"""


def server_error(request: HttpRequest) -> HttpResponse:
    if not isinstance(sys.exception(), OperationalError | InterfaceError):
        return defaults.server_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": DATABASE_DOWN}, status=503)
    else:
        response = HttpResponse(PAGE, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response
