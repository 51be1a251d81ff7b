"""Typed look-ups of environment variables, with a .env file as fallback.

:class:`EnvReader` turns each invalid value into one line of the form
``Invalid NAME='value': expected ...`` and keeps going, so that the caller can report
every problem at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from dotenv import dotenv_values

from replicator.durations import DurationError, format_duration, parse_duration
from replicator.redis_settings import mask_url, mask_urls

T = TypeVar("T")

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})

# ASCII digits only, because ``\d`` and int() also accept the digits of other scripts.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DURATION_EXAMPLES = "such as 10ms, 30s or 1h30m"
_DAY_S = 86400


class EnvReader:
    """Looks up variables (the environment first, then the .env file) and records problems.

    A variable set in the environment hides the file's line even when it is empty, which
    is how python-dotenv's ``load_dotenv`` treats existing variables. A blank value means
    "use the default".
    """

    def __init__(
        self, environ: Mapping[str, str], file_values: Mapping[str, str], file_label: str
    ) -> None:
        self.environ = environ
        self.file_values = file_values
        self.file_label = file_label
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def raw(self, name: str, strip: bool = True) -> str | None:
        """Return the value of ``name``, or None when it is unset or blank."""
        value = self.environ.get(name)
        if value is None:
            value = self.file_values.get(name)
        if value is None or not value.strip():
            return None
        return value.strip() if strip else value

    def fail(self, name: str, shown: str, reason: str) -> None:
        """Record ``Invalid NAME='value': reason.`` with the password of every URL masked.

        ``shown`` should already be masked: the check of the whole line finds a URL only
        up to the first space, so it misses the end of a password that contains one.
        """
        line = f"Invalid {name}={shown!r}{self.origin(name)}: {reason}."
        self.errors.append(mask_urls(line))

    def origin(self, name: str) -> str:
        """Return where the value of ``name`` came from, for messages."""
        if name in self.environ:
            return ""
        if name in self.file_values:
            return f" (from {self.file_label})"
        return " (the default)"

    def parse(
        self,
        name: str,
        default: T,
        parser: Callable[[str], T],
        mask: Callable[[str], str] = mask_url,
    ) -> T:
        """Parse ``name`` with ``parser``; a ValueError becomes a recorded problem.

        ``mask`` hides the secrets of the value in that problem's message. The default
        hides the password of a URL.
        """
        value = self.raw(name)
        if value is None:
            return default

        try:
            return parser(value)
        except ValueError as exc:
            self.fail(name, mask(value), str(exc))
            return default

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        return self.parse(name, default, lambda text: parse_integer(text, low, high))

    def duration(
        self,
        name: str,
        default: float,
        minimum: float | None = 0.0,
        inclusive: bool = False,
        maximum: float | None = None,
    ) -> float:
        """Read a duration above ``minimum`` (or equal when ``inclusive``) and up to ``maximum``.

        A ``minimum`` or ``maximum`` of None leaves that side open.
        """
        return self.parse(
            name, default, lambda text: parse_duration_limited(text, minimum, inclusive, maximum)
        )

    def boolean(self, name: str, default: bool) -> bool:
        return self.parse(name, default, parse_boolean)

    def choice(self, name: str, default: str, choices: Mapping[str, str]) -> str:
        """Read a case-insensitive word and return what ``choices`` maps it to."""
        return self.parse(name, default, lambda text: parse_choice(text, choices))

    def pattern(self, name: str, default: T, regex: re.Pattern[str], expected: str) -> str | T:
        """Read a text that must match ``regex`` completely."""
        fallback: str | T = default
        return self.parse(name, fallback, lambda text: match_pattern(text, regex, expected))


def parse_integer(text: str, low: int, high: int | None = None) -> int:
    """Parse a decimal integer within ``low..high`` (no upper bound when ``high`` is None)."""
    expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"expected {expected}")

    value = int(text)
    if value < low or (high is not None and value > high):
        raise ValueError(f"expected {expected}")
    return value


def parse_boolean(text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected true or false (also accepted: 1/0, yes/no, on/off)")


def parse_duration_limited(
    text: str, minimum: float | None, inclusive: bool, maximum: float | None = None
) -> float:
    """Parse a Go-style duration and check it against ``minimum`` and ``maximum``."""
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise ValueError(f"expected a duration {_DURATION_EXAMPLES}, but {exc}") from None

    too_short = minimum is not None and (
        seconds < minimum or (seconds == minimum and not inclusive)
    )
    too_long = maximum is not None and seconds > maximum
    if too_short or too_long:
        raise ValueError("expected a duration " + duration_range(minimum, inclusive, maximum))
    return seconds


def duration_range(minimum: float | None, inclusive: bool, maximum: float | None) -> str:
    """Describe the accepted durations: ``greater than 0s and at most 1m``."""
    bounds = []
    if minimum is not None:
        bound = "of at least" if inclusive else "greater than"
        bounds.append(f"{bound} {format_duration(minimum)}")
    if maximum is not None:
        bound = "and at most" if bounds else "of at most"
        bounds.append(f"{bound} {format_limit(maximum)}")
    return " ".join(bounds)


def format_limit(seconds: float) -> str:
    """Format a duration limit, with whole days added: ``720h (30 days)``."""
    text = format_duration(seconds)
    if seconds >= _DAY_S and seconds % _DAY_S == 0:
        text += f" ({int(seconds // _DAY_S)} days)"
    return text


def parse_choice(text: str, choices: Mapping[str, str]) -> str:
    try:
        return choices[text.lower()]
    except KeyError:
        raise ValueError("expected one of " + ", ".join(choices)) from None


def match_pattern(text: str, regex: re.Pattern[str], expected: str) -> str:
    if not regex.fullmatch(text):
        raise ValueError(f"expected {expected}")
    return text


def read_dotenv(dotenv_path: str | None) -> tuple[dict[str, str], str, list[str]]:
    """Read a .env file and return its values, its path for messages, and any problem.

    With ``dotenv_path`` None the file is ``.env`` in the working directory, and a
    missing file is not a problem. Values are taken literally: ``interpolate=False``
    keeps a ``$`` inside a password as it is.
    """
    path = dotenv_path if dotenv_path is not None else ".env"
    if not os.path.isfile(path):
        if dotenv_path is None:
            return {}, path, []
        return {}, path, [f"Dotenv file {path!r} was not found: create it or pass another path."]

    values = dotenv_values(path, interpolate=False)
    return {key: value for key, value in values.items() if value is not None}, path, []
