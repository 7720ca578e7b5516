"""Creating and revoking API tokens: the admin and `manage.py token` call these."""

from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from access.models import ApiToken
from rollouts.models import Service
from rollouts.spec.fields import ParseError, parse_stack_name

MAX_LIFETIME = timedelta(days=3650)


def scope_stack_parse(value: str) -> str:
    """A token's stack scope: "" (any stack) or a stack name; ValidationError
    keyed scope_stack otherwise (the admin's field, the command's --stack)."""
    if not value:
        return ""
    try:
        return parse_stack_name(value)
    except ParseError as error:
        raise ValidationError({"scope_stack": str(error)}) from None


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str = "",
    expires_in: timedelta | None = None,
    scope_stack: str = "",
    scope_services: Iterable[Service] = (),
) -> tuple[ApiToken, str]:
    """A new token of `user`; returns the row and the secret, which is stored
    nowhere (only its digest is) and so can be shown only now.

    `expires_in` None: the token never expires. Raises ValidationError for an
    inactive user or a lifetime that is not positive or beyond MAX_LIFETIME.
    """
    if not user.is_active:
        raise ValidationError({"user": f"{user.username} is not active"})
    scope_stack = scope_stack_parse(scope_stack)
    if expires_in is not None and not timedelta(0) < expires_in <= MAX_LIFETIME:
        raise ValidationError(
            {"expiry": "a token lives more than 0 seconds and at most 10 years"}
        )
    token, secret = ApiToken.objects.create(
        user=user, expiry=expires_in, name=name[:100], scope_stack=scope_stack
    )
    token.scope_services.set(scope_services)
    return token, secret


def token_revoke(*, token: ApiToken) -> None:
    """Revoke `token` now: its row goes, so its secret authenticates nobody."""
    token.delete()


def token_allows(token: ApiToken, service: Service) -> bool:
    """Whether `token`'s scope covers `service` (no scope: every service)."""
    if token.scope_stack and service.stack != token.scope_stack:
        return False
    chosen = token.scope_services.all()
    return not chosen.exists() or chosen.filter(pk=service.pk).exists()


def describe_scope(token: ApiToken) -> str:
    services = ", ".join(s.name for s in token.scope_services.all())
    parts = [f"stack {token.scope_stack}" if token.scope_stack else "", services]
    return "; ".join(p for p in parts if p) or "every service"
