"""Go-style duration strings (``300ms``, ``1h30m``, ``2h45m30.5s``) as float seconds.

The original service read its duration variables with Go's ``time.ParseDuration``, so
operators already write values in that syntax. This module accepts the same grammar:
an optional sign, then one or more decimal numbers each followed by a unit, or a bare
``0``.
"""

from __future__ import annotations

import re

#: Seconds per unit. Both micro signs (U+00B5 and U+03BC) are accepted, as in Go.
UNIT_SECONDS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

#: Go rejects durations beyond the int64 nanosecond range, about 292 years.
MAX_SECONDS = (2**63 - 1) / 1e9

ACCEPTED_UNITS = "ns, us, ms, s, m or h"

# Digits are ASCII only: ``\d`` and float() would also take other scripts' digits.
_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_BARE_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)")


class DurationError(ValueError):
    """A text that is not a valid Go-style duration."""


def parse_duration(text: str) -> float:
    """Parse a Go duration such as ``1h30m`` or ``10ms`` and return seconds.

    Negative values parse (``-5s``), so each caller decides what they mean. Raises
    :class:`DurationError` with the reason for any other input.
    """
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return 0.0

    if not value:
        raise DurationError("the value is empty")
    if _BARE_NUMBER.fullmatch(value):
        raise DurationError(f'{value!r} has no unit; add one, for example "{value}s"')

    sign = -1.0 if value[0] == "-" else 1.0
    body = value[1:] if value[0] in "+-" else value
    seconds = _sum_parts(body, value)
    if seconds > MAX_SECONDS:
        raise DurationError(f"{value!r} is longer than the maximum of about 292 years")
    return sign * seconds


def _sum_parts(body: str, original: str) -> float:
    if not body:
        raise DurationError(f"{original!r} has a sign but no number")

    total = 0.0
    position = 0
    while position < len(body):
        match = _PART.match(body, position)
        assert match is not None  # every group of the pattern may be empty
        whole, fraction, unit = match.groups()
        if not whole and not fraction:
            raise DurationError(
                f"{original!r} is not a duration: expected a number at {body[position:]!r}"
            )
        if unit not in UNIT_SECONDS:
            raise DurationError(_unit_problem(original, unit))

        number = float(f"{whole or 0}.{fraction or 0}")
        total += number * UNIT_SECONDS[unit]
        position = match.end()
    return total


def _unit_problem(original: str, unit: str) -> str:
    if not unit:
        return f"{original!r} has a number without a unit; units are {ACCEPTED_UNITS}"
    return f"{original!r} has the unknown unit {unit!r}; units are {ACCEPTED_UNITS}"


def format_duration(seconds: float) -> str:
    """Format seconds the short way for logs: ``1h30m``, ``45s``, ``10ms``, ``0s``.

    Components that are zero are left out, so the result is shorter than Go's
    ``1h30m0s`` but still parses back with :func:`parse_duration`.
    """
    nanoseconds = round(seconds * 1e9)
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < 0:
        return "-" + format_duration(-seconds)

    if nanoseconds < 1_000_000_000:
        return _format_small(nanoseconds)
    return _format_large(nanoseconds)


def _format_small(nanoseconds: int) -> str:
    """Format a positive duration under one second in ms, us or ns."""
    for unit, size in (("ms", 1_000_000), ("us", 1_000)):
        if nanoseconds >= size:
            return _decimal(nanoseconds, size) + unit
    return f"{nanoseconds}ns"


def _format_large(nanoseconds: int) -> str:
    """Format a duration of one second or more as hours, minutes and seconds."""
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)

    text = ""
    if hours:
        text += f"{hours}h"
    if minutes:
        text += f"{minutes}m"
    if rest:
        text += _decimal(rest, 1_000_000_000) + "s"
    return text


def _decimal(amount: int, unit_size: int) -> str:
    """Write ``amount / unit_size`` exactly, without trailing zeros."""
    whole, fraction = divmod(amount, unit_size)
    if not fraction:
        return str(whole)

    digits = len(str(unit_size)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
