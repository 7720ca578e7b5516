"""Requests no view can answer, refused before they reach one."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError

from dockercoins.transport import unreadable_body

NUL_IN_PATH = "Not found: no path contains NUL (0x00)"
NUL_IN_QUERY = "NUL (0x00) is not allowed in a query string"


class RejectNulBytesMiddleware:
    """A NUL byte (`%00`): 404 in the path (it names nothing), 400 in the query.

    PostgreSQL text cannot hold NUL ("PostgreSQL text fields cannot contain NUL
    (0x00) bytes", a psycopg DataError), so a lookup such as
    /api/rollouts/services/%00/ or an admin filter ?state__exact=%00 was a 500
    on the stack while SQLite, which the fast tests use, took it. No name, id
    or filter of ours can contain NUL, so it is refused here, once, for every
    view, Django's own admin pages included. The path gets the 404 an unknown
    name gets anyway, so the API answers only the statuses its schema lists.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return self._refuse(request, NUL_IN_PATH, 404)
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return self._refuse(request, NUL_IN_QUERY, 400)
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest, reason: str, status: int) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": reason}, status=status)
        return HttpResponse(f"{reason}\n", status=status, content_type="text/plain")


class UnreadableBodyMiddleware:
    """A body the client never finished (or framed wrongly, or stalled): 400
    or 408 in one line, not a 500 with a traceback (dockercoins.transport)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if isinstance(exception, UnreadablePostError):
            return unreadable_body(request.META, exception)
        return None
