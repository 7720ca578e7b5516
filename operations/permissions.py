"""Who may change rollouts through the API: the admin's rule, plus a token's
scope."""

from django.contrib.auth.models import User
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from access.models import ApiToken
from access.tokens import describe_scope, token_allows
from rollouts.models import Service

APPLY_PERMISSION = "rollouts.apply_rollout"


class CanApplyRollouts(BasePermission):
    """Active staff with rollouts.apply_rollout, as in the admin; by session
    (with its CSRF token), HTTP Basic or an API token of such a user."""

    message = (
        "changing rollouts needs an active staff user with the permission "
        f"{APPLY_PERMISSION} (log in, or send Authorization: Bearer <token>)"
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            isinstance(user, User)
            and user.is_active
            and user.is_staff
            and user.has_perm(APPLY_PERMISSION)
        )


def check_scope(request: Request, service: Service) -> None:
    """PermissionDenied (403) when the request's token may not act on
    `service`; sessions and passwords are not scoped."""
    token = request.auth
    if isinstance(token, ApiToken) and not token_allows(token, service):
        raise PermissionDenied(
            f"this token may not change {service.name} (its scope: "
            f"{describe_scope(token)})"
        )
