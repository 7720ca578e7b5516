"""`Authorization: Bearer <token>` for the API, throttled like passwords.

knox's TokenAuthentication finds the token by its first characters and
compares SHA-512 digests; expired tokens are deleted on sight. Wrong tokens
count as failed logins for django-axes under one pseudo-username per address
(TOKEN_LOGIN), so whoever guesses tokens from one address is locked out after
settings.AXES_FAILURE_LIMIT misses, right token or not, exactly as a wrong
password locks out HTTP Basic (dockercoins.auth).
"""

from typing import Any

from axes.handlers.proxy import AxesProxyHandler  # type: ignore[import-untyped]
from django.contrib.auth.signals import user_login_failed
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from dockercoins.auth import LoginLockedOut

# What axes counts bad tokens under; never a real username (it has spaces).
TOKEN_LOGIN = "(api token)"


class BearerTokenAuthentication(TokenAuthentication):
    """knox tokens sent as `Authorization: Bearer <token>`
    (settings.REST_KNOX["AUTH_HEADER_PREFIX"]); 429 while axes locks tokens
    from this address."""

    def authenticate(self, request: Request) -> Any:
        django_request = request._request
        credentials = {"username": TOKEN_LOGIN}
        try:
            found = super().authenticate(request)
        except AuthenticationFailed:
            if not AxesProxyHandler.is_allowed(django_request, credentials):
                raise LoginLockedOut() from None
            user_login_failed.send(
                sender=type(self), credentials=credentials, request=django_request
            )
            if not AxesProxyHandler.is_allowed(django_request, credentials):
                raise LoginLockedOut() from None
            raise
        if found is not None and not AxesProxyHandler.is_allowed(
            django_request, credentials
        ):
            raise LoginLockedOut()
        return found


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of BearerTokenAuthentication."""

    target_class = BearerTokenAuthentication
    name = "bearerToken"
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (admin: API tokens, or "
            "`manage.py token create USER`)",
        }
