"""`manage.py token create|list|revoke`: API tokens from the command line.

`token create USER` prints the new token alone on its last line, so a
bootstrap script can take it with `| tail -n 1`; it is shown only then.
"""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from access.models import ApiToken
from access.tokens import (
    MAX_LIFETIME,
    describe_scope,
    scope_stack_parse,
    token_create,
    token_revoke,
)
from rollouts.models import Service
from rollouts.records import selectors
from rollouts.spec.fields import ParseError, parse_duration


def _lifetime(given: str) -> timedelta:
    """ "30d", "12h", "90m", "3600s" or seconds (spaces around are ignored);
    ParseError otherwise, with examples that include days."""
    text = given.strip()
    if text.endswith("d") and text[:-1].isascii() and text[:-1].isdigit():
        days = int(text[:-1])
        if days > MAX_LIFETIME.days:  # also before timedelta overflows
            raise ParseError(
                f"{text!r} is more than {MAX_LIFETIME.days}d (a token lives "
                "at most 10 years)"
            )
        return timedelta(days=days)
    try:
        return timedelta(seconds=parse_duration(text))
    except ParseError:
        raise ParseError(
            f"{text!r} is not a lifetime (e.g. 30d, 12h, 90m, 3600s)"
        ) from None


class Command(BaseCommand):
    help = "Create, list and revoke API tokens (Authorization: Bearer <token>)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        create = sub.add_parser("create", help="a new token; printed once, last line")
        create.add_argument("user", help="the Django user it acts as")
        create.add_argument("--name", default="", help="what it is for")
        create.add_argument(
            "--expires", help="lifetime: 30d, 12h, 90m, 3600s (default: never)"
        )
        create.add_argument("--stack", default="", help="only this stack's services")
        create.add_argument(
            "--services",
            nargs="+",
            default=[],
            metavar="SERVICE",
            help="only these services (swarm or short names)",
        )
        listing = sub.add_parser("list", help="tokens, newest first")
        listing.add_argument("--user", help="only this user's")
        revoke = sub.add_parser("revoke", help="revoke tokens now")
        revoke.add_argument(
            "keys",
            nargs="+",
            metavar="KEY",
            help="the first 15 characters of a token, as `token list` shows them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['subcommand']}")(options)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None

    def do_create(self, options: dict[str, Any]) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no Django user {options['user']!r}")
        expires_in = None
        if options["expires"]:
            try:
                expires_in = _lifetime(options["expires"])
            except ParseError as error:
                raise CommandError(f"--expires: {error}") from None
        try:
            stack = scope_stack_parse(options["stack"])
        except ValidationError as error:
            raise CommandError(f"--stack: {'; '.join(error.messages)}") from None
        services = [self._service(name, stack) for name in options["services"]]
        token, secret = token_create(
            user=user,
            name=options["name"],
            expires_in=expires_in,
            scope_stack=stack,
            scope_services=services,
        )
        until = (
            f"until {token.expiry:%Y-%m-%d %H:%M} UTC" if token.expiry else "no expiry"
        )
        self.stdout.write(
            f"token {token.token_key} for {user.username} ({until}; "
            f"scope: {describe_scope(token)}). It is shown only now:"
        )
        self.stdout.write(secret)

    def do_list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.select_related("user")
        if options["user"]:
            tokens = tokens.filter(user__username=options["user"])
        now = timezone.now()
        for token in tokens:
            expiry = (
                "never" if token.expiry is None else f"{token.expiry:%Y-%m-%d %H:%M}"
            )
            if token.expiry is not None and token.expiry < now:
                expiry += " (expired)"
            self.stdout.write(
                f"{token.token_key}  {token.user.username}  {token.name or '-'}  "
                f"expires {expiry}  scope: {describe_scope(token)}"
            )

    def do_revoke(self, options: dict[str, Any]) -> None:
        for key in options["keys"]:
            found = list(ApiToken.objects.filter(token_key=key))
            if not found:
                raise CommandError(f"no token {key!r} (`token list` shows them)")
            for token in found:
                token_revoke(token=token)
            self.stdout.write(f"revoked {key}")

    @staticmethod
    def _service(name: str, stack: str) -> Service:
        try:
            return selectors.service_get(name=name, stack=stack or None)
        except Service.DoesNotExist as error:
            raise CommandError(f"--services: {error}") from None
