"""Strict readers for settings that come from the environment.

A typo in an environment variable should stop the process at start with a clear
message, not surface later as odd behaviour deep in a worker.
"""

import math
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

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


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    # float() also takes "nan", "inf" and "٣": RNG_DELAY=inf would sleep forever,
    # WORKER_DELAY=nan raise in every mining loop instead of here.
    if not raw.strip().isascii() or not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number")
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    # ASCII digits only: int() would also take "٣" or "1_000".
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number")
    if int(value) < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return int(value)


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (how Swarm secrets arrive)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={path!r}: {exc.strerror}"
            ) from None
    return os.environ.get(name, default)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]
