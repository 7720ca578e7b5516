"""Where a webhook may be sent: checked when a subscription is saved."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError


def validate_target(url: str) -> None:
    """ValidationError unless `url` is http(s)://host[:port]/path with no
    credentials (they would sit in the database and in logs in clear; the
    signature is how a receiver trusts us) and no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port out of range
    except ValueError as error:
        raise ValidationError(f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("a webhook URL starts with http:// or https://")
    if not parts.hostname:
        raise ValidationError("a webhook URL names a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "no credentials in a webhook URL: receivers verify the signature"
        )
    if parts.fragment:
        raise ValidationError("a webhook URL has no #fragment")
    del port
