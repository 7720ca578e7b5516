"""Login throttling (django-axes) as the admin and the API show it.

After settings.AXES_FAILURE_LIMIT wrong passwords for one username from one
address, that pair is refused for settings.AXES_COOLOFF_TIME, right password
or not: 429 with a reason, plain text in the admin, JSON {"detail"} on the API.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.authentication import BasicScheme
from rest_framework import status
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed


def lockout_message() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return (
        f"Too many failed logins: locked out for {minutes} minutes. "
        "An administrator can unlock you sooner."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: what a locked-out login gets, 429 either way."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": lockout_message()}, status=429)
    return HttpResponse(f"{lockout_message()}\n", status=429, content_type="text/plain")


class LoginLockedOut(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "login_locked_out"

    def __init__(self) -> None:
        super().__init__(detail=lockout_message())


class LockableBasicAuthentication(BasicAuthentication):
    """DRF's HTTP Basic, answering 429 instead of 401 while axes locks the login.

    axes marks the request it is handed; DRF hands it its own Request wrapper,
    whose flag AxesMiddleware never sees (it looks at Django's request), so the
    lockout is turned into a response here instead.
    """

    def authenticate_credentials(self, userid, password, request=None):
        # PostgreSQL text cannot hold NUL: looking such a name up (axes does,
        # before any backend) is a DataError, a 500. No account has one.
        if "\x00" in userid:
            raise AuthenticationFailed("Invalid username/password.")
        try:
            return super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise LoginLockedOut() from None
            raise


class LockableBasicScheme(BasicScheme):
    """The OpenAPI security scheme of LockableBasicAuthentication: HTTP Basic."""

    target_class = LockableBasicAuthentication  # type: ignore[assignment]
