"""Requests no view can answer, refused before they reach one."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

NUL_REASON = "NUL (0x00) is not allowed in a URL or query string"


class RejectNulBytesMiddleware:
    """400 for a NUL byte in the path or the query string (`%00`).

    PostgreSQL text cannot hold NUL ("PostgreSQL text fields cannot contain NUL
    (0x00) bytes", a psycopg DataError), so a lookup such as
    /api/rollouts/services/%00/ or an admin filter ?state__exact=%00 was a 500
    on the stack while SQLite, which the fast tests use, took it. No name, id
    or filter of ours can contain NUL, so it is refused here, once, for every
    view, Django's own admin pages included.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_REASON}, status=400)
            return HttpResponse(
                f"{NUL_REASON}\n", status=400, content_type="text/plain"
            )
        return self.get_response(request)
