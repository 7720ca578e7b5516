"""Strict readers for settings that come from the environment.

A typo in an environment variable should stop the process at start with a clear
message, not surface later as odd behaviour deep in a worker.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from dockercoins import numbers

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_float(
    name: str, default: float, minimum: float = 0.0, maximum: float = 3600.0
) -> float:
    """A decimal in dockercoins.numbers' grammar (the flags' and the fields'),
    within [minimum, maximum]; ImproperlyConfigured naming NAME otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return numbers.bounded_decimal(raw, minimum=minimum, maximum=maximum)
    except numbers.NumberError as error:
        raise ImproperlyConfigured(f"{name}={raw!r}: {error}") from None


def env_int(name: str, default: int, minimum: int = 0, maximum: int = 1_000_000) -> int:
    """A whole number in dockercoins.numbers' grammar, within [minimum, maximum];
    ImproperlyConfigured naming NAME otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return numbers.bounded_int(raw, minimum=minimum, maximum=maximum)
    except numbers.NumberError as error:
        raise ImproperlyConfigured(f"{name}={raw!r}: {error}") from None


def env_float_list(
    name: str, default: tuple[float, ...], minimum: float, maximum: float
) -> tuple[float, ...]:
    """Comma-separated decimals ("5,10,30"), each as env_float reads one and
    within [minimum, maximum]; at least one. ImproperlyConfigured naming NAME
    and the bad item otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    items = [item.strip() for item in raw.split(",")]
    try:
        return tuple(
            numbers.bounded_decimal(item, minimum=minimum, maximum=maximum)
            for item in items
        )
    except numbers.NumberError as error:
        raise ImproperlyConfigured(
            f"{name}={raw!r}: {error} (e.g. 5,10,30: seconds, comma-separated)"
        ) from None


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A URL with one of `schemes` and, but for unix://, a host and a valid
    port; ImproperlyConfigured naming NAME otherwise (REDIS_URL=notaurl used
    to boot, and every /json answered 500)."""
    raw = os.environ.get(name, default)
    example = f"e.g. {default}"
    try:
        parts = urlsplit(raw.strip())
        port = parts.port  # ValueError when it is not a number 0-65535
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}={raw!r}: {error} ({example})") from None
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a URL starting with {allowed} ({example})"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ImproperlyConfigured(f"{name}={raw!r} names no host ({example})")
    if port == 0:
        raise ImproperlyConfigured(f"{name}={raw!r}: port 0 ({example})")
    return raw.strip()


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (how Swarm secrets arrive)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            secret = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ImproperlyConfigured(f"{name}_FILE={path!r}: {reason}") from None
        # An empty file is a secret that was never written, not "no secret":
        # falling back would give every process its own random key.
        if not secret:
            raise ImproperlyConfigured(f"{name}_FILE={path!r}: the file is empty")
        return secret
    return os.environ.get(name, default)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]
