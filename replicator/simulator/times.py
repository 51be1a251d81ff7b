"""Time conversions between the rules-engine JSON (RFC 3339) and the REST API (unix seconds)."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import re

#: Go's zero time.Time as encoding/json writes it; the REST API sends 0 in its place.
ZERO_TIME = "0001-01-01T00:00:00Z"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
#: Simulated creation times of REST items fall in the year before this instant.
_STAMP_END = 1_767_225_600  # 2026-01-01T00:00:00Z
_YEAR_S = 365 * 86_400


def to_unix_seconds(text: str | None) -> int:
    """Convert an RFC 3339 time to whole unix seconds, dropping any fraction.

    None and Go's zero time become 0, which is how the REST API sends an unset period.
    Raises ValueError for any other text that is not RFC 3339.
    """
    if text is None or text == ZERO_TIME:
        return 0
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"Invalid time {text!r}: expected RFC 3339, e.g. 2026-07-01T00:00:00Z.")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    zone = match.group(7)
    offset_s = 0
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset_s = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds - offset_s


def from_unix_seconds(seconds: int) -> str:
    """Format unix seconds as an RFC 3339 UTC time; 0 becomes Go's zero time."""
    if seconds == 0:
        return ZERO_TIME
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def whole_seconds(text: str | None) -> str:
    """Return a time as it comes back from a trip through unix seconds."""
    return from_unix_seconds(to_unix_seconds(text))


def stamp(entity_id: str, purpose: str) -> str:
    """Return a stable, plausible time in 2025 for a REST-only field of an entity."""
    digest = hashlib.blake2b(f"{purpose}:{entity_id}".encode(), digest_size=4).digest()
    day, second_of_day = divmod(int.from_bytes(digest, "big") % _YEAR_S, 86_400)
    minute, second = divmod(second_of_day, 60)
    days, minutes, seconds = _stamp_parts()
    return days[day] + minutes[minute] + seconds[second]


@functools.cache
def _stamp_parts() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Return the texts of the days ("2025-01-01T"), minutes ("00:00:") and seconds ("00Z")
    of the stamp year, which starts at midnight, so a stamp is three lookups."""
    start = _STAMP_END - _YEAR_S
    days = tuple(from_unix_seconds(start + day * 86_400)[:11] for day in range(_YEAR_S // 86_400))
    minutes = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(24 * 60))
    seconds = tuple(f"{second:02d}Z" for second in range(60))
    return days, minutes, seconds
