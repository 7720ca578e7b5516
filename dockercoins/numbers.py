"""One grammar for every number a user gives: settings, flags, forms, the API.

No Django here: settings import this module before any app is loaded, and the
spec fields (rollouts) and the command-line flags (mining, rollouts) use the
same functions, so `WORKER_DELAY=1_000` and `mine --delay 1_000` are refused
alike, with the same words.

The grammar is ASCII digits only (`int("٣")` is 3 and `"²".isdigit()` is True,
neither of which an operator typed), an optional "-" (so that a range check,
not the grammar, explains why a negative value is refused), an optional
fraction of up to 9 digits for decimals, and no exponent, "_", nan or inf
(`float("1e3")`, `float("1_000")`, `float("nan")` all parse in Python).
"""

import math
import re

_INTEGER = re.compile(r"-?[0-9]{1,15}", re.ASCII)
_DECIMAL = re.compile(r"-?(?:[0-9]{1,15}(?:\.[0-9]{1,9})?|\.[0-9]{1,9})", re.ASCII)


class NumberError(ValueError):
    """A value outside the grammar or its bounds; str() is one line for the user."""


def _given_number(value: object, *, whole: bool) -> float | int | None:
    """An int (or a finite float) given as a number; None when it is text."""
    if isinstance(value, bool):
        raise NumberError(f"{value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or (whole and not value.is_integer()):
            kind = "whole number" if whole else "finite number"
            raise NumberError(f"{value!r} is not a {kind}")
        return int(value) if whole else value
    if not isinstance(value, str):
        raise NumberError(f"{value!r} is not a number")
    return None


def parse_int(value: object) -> int:
    """A whole number from an int or from ASCII digits ("12", "-1"); NumberError
    otherwise ("1.5", "1e3", "1_000", "٣", "²", " ", more than 15 digits)."""
    number = _given_number(value, whole=True)
    if number is not None:
        return int(number)
    text = str(value).strip()
    if not _INTEGER.fullmatch(text):
        raise NumberError(f"{text!r} is not a whole number (digits 0-9)")
    return int(text)


def parse_decimal(value: object) -> float:
    """A finite number from a number or from "0.2", ".5", "-1"; no exponent,
    no "_", nan or inf; NumberError otherwise."""
    number = _given_number(value, whole=False)
    if number is not None:
        return float(number)
    text = str(value).strip()
    if not _DECIMAL.fullmatch(text):
        raise NumberError(f"{text!r} is not a number (e.g. 0.2)")
    return float(text)


def within(value: float, *, minimum: float, maximum: float, unit: str = "") -> float:
    """`value` itself when minimum <= value <= maximum; NumberError otherwise."""
    suffix = f" {unit}" if unit else ""
    if value < minimum:
        raise NumberError(f"{value:g} must be at least {minimum:g}{suffix}")
    if value > maximum:
        raise NumberError(f"{value:g} must be at most {maximum:g}{suffix}")
    return value


def bounded_int(value: object, *, minimum: int, maximum: int) -> int:
    """parse_int, then within the bounds."""
    return int(within(parse_int(value), minimum=minimum, maximum=maximum))


def bounded_decimal(
    value: object, *, minimum: float, maximum: float, unit: str = ""
) -> float:
    """parse_decimal, then within the bounds."""
    return within(parse_decimal(value), minimum=minimum, maximum=maximum, unit=unit)
