"""Logging for the supervisor and every child process it forks.

The supervisor calls :func:`configure` once, before it forks. Its stream handler is
the only writer of the output stream: each child calls :func:`set_role` right after the
fork, then formats its own records and sends them to the supervisor through a pipe of
its own (see :mod:`replicator.log_channels`).

Text lines look like this (WARN stands for Python's WARNING); they carry no time,
because the service manager or container runtime that collects them adds one::

    [INFO] ingest[1234]: Connected to the datastream.

JSON lines carry ``time``, ``level``, ``role``, ``pid``, ``logger`` and ``message``, plus
``exc_info`` with the traceback text when there is one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO
from urllib.parse import quote

from replicator.durations import format_duration

LEVEL_NAMES = {"WARNING": "WARN"}
MASK = "***"

#: Secrets shorter than this are not redacted, because replacing every occurrence of
#: one to three characters would garble every line.
MIN_SECRET_CHARS = 4

_NO_LOCK = contextlib.nullcontext()

_role = "supervisor"
_installed: list[logging.Handler] = []
_stream: logging.StreamHandler | None = None

#: The user-information part of a Redis URL: ``redis://user:password@`` up to the ``@``.
_REDIS_USERINFO = re.compile(r"(rediss?://)[^\s@/]+@")


def set_role(role: str) -> None:
    """Set the role that every later record of this process carries, e.g. ``"ingest"``."""
    global _role
    _role = role


def get_role() -> str:
    return _role


class RoleFilter(logging.Filter):
    """Adds ``record.role``, the process-wide role set by :func:`set_role`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = _role
        return True


class RedactingFilter(logging.Filter):
    """Replaces secrets with ``***`` in a record's final message and exception text.

    It formats the message and the traceback itself, so that a secret among the
    arguments or inside an exception is hidden before a handler writes the record or
    sends it to another process.
    The user and password part of every ``redis://`` or ``rediss://`` URL is hidden too.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        variants = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_CHARS:
                variants.update({secret, quote(secret, safe="")})
        # Longer secrets first, so that a secret containing another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _REDIS_USERINFO.sub(r"\1" + MASK + "@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(_message_of(record))
        record.args = None

        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _message_of(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg} (the log arguments did not match this message)"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _level(record: logging.LogRecord) -> str:
    return LEVEL_NAMES.get(record.levelname, record.levelname)


class TextFormatter(logging.Formatter):
    """``[LEVEL] role[pid]: message``, then the traceback on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        role = getattr(record, "role", _role)
        line = f"[{_level(record)}] {role}[{record.process}]: {record.getMessage()}"
        extra = self._details(record)
        return f"{line}\n{extra}" if extra else line

    def _details(self, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        parts = [part for part in (record.exc_text, record.stack_info) if part]
        return "\n".join(parts)


class JsonFormatter(TextFormatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": _level(record),
            "role": getattr(record, "role", _role),
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        details = self._details(record)
        if details:
            document["exc_info"] = details
        return json.dumps(document, ensure_ascii=False)


def configure(
    level: str, fmt: str = "text", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Send every record of this process and its future children to one stream handler.

    ``level`` is a level name (``DEBUG``, ``INFO``, ``WARNING`` or ``WARN``, ``ERROR``),
    ``fmt`` is ``"text"`` or ``"json"``, ``secrets`` are the texts to redact, and
    ``stream`` defaults to stderr. Any handler on the root logger is replaced.
    """
    global _stream
    shutdown()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RoleFilter())
    handler.addFilter(RedactingFilter(secrets))
    root.addHandler(handler)
    root.setLevel(_level_number(level))
    _installed.append(handler)
    _stream = handler


def stream_handler() -> logging.StreamHandler | None:
    """The handler :func:`configure` installed, whose format and filters children copy."""
    return _stream


def write_formatted(text: str) -> None:
    """Write one record that a child already formatted and redacted to the output stream."""
    handler = _stream
    if handler is None:
        sys.stderr.write(text + "\n")
        return
    with handler.lock or _NO_LOCK:
        handler.stream.write(text + "\n")
        handler.flush()


def _level_number(level: str) -> int:
    name = level.upper()
    name = "WARNING" if name == "WARN" else name
    number = logging.getLevelName(name)
    if not isinstance(number, int):
        raise ValueError(f"Unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR.")
    return number


def shutdown() -> None:
    """Remove the handlers :func:`configure` installed, after writing every pending record.

    Call it in the supervisor before it exits.
    """
    global _stream
    _stream = None
    root = logging.getLogger()
    while _installed:
        handler = _installed.pop()
        root.removeHandler(handler)
        handler.close()


@dataclass
class _Window:
    """One key's current interval: when it started and what was suppressed since."""

    start: float
    repeats: int = 0
    level: int = logging.INFO
    #: Format and arguments of the latest suppressed record, shown by the summary.
    last_msg: str = ""
    last_args: tuple[Any, ...] = ()


class RateLimitedLogger:
    """Logs the first record of each key, then counts repeats within ``interval_s``.

    The first record of a key after its interval has passed carries a summary, e.g.
    ``Redis write failed (and 41 more like this in the last 10s).``, and starts a new
    interval. :meth:`flush` logs the summaries still pending, e.g. at shutdown.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def log(self, level: int, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        """Log ``msg % args`` unless ``key`` was logged within the interval; return if logged."""
        now = self.clock()
        window = self._windows.get(key)
        if window is not None and now - window.start < self.interval_s:
            window.repeats += 1
            window.level = max(window.level, level)
            window.last_msg, window.last_args = msg, args
            return False

        if window is not None and window.repeats:
            msg, args = _with_summary(msg, args, window.repeats, now - window.start)
        self._start_window(key, now, level)
        self.logger.log(level, msg, *args, **kwargs)
        return True

    def _start_window(self, key: str, now: float, level: int) -> None:
        self._windows.pop(key, None)
        if len(self._windows) >= self.max_keys:
            # Dicts keep insertion order, so the first key is the least recently logged.
            self._windows.pop(next(iter(self._windows)))
        self._windows[key] = _Window(start=now, level=level)

    def flush(self, only_due: bool = False) -> None:
        """Log one summary line for every key with repeats not yet reported; with
        ``only_due``, only for keys whose interval has passed."""
        now = self.clock()
        for window in self._windows.values():
            due = now - window.start >= self.interval_s
            if window.repeats and (due or not only_due):
                self.logger.log(
                    window.level,
                    "Suppressed %d more log %s like this in the last %s: %s",
                    window.repeats,
                    "line" if window.repeats == 1 else "lines",
                    format_duration(round(now - window.start)),
                    _render(window.last_msg, window.last_args),
                )
                window.start, window.repeats = now, 0

    def debug(self, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.DEBUG, key, msg, *args, **kwargs)

    def info(self, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.INFO, key, msg, *args, **kwargs)

    def warning(self, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.WARNING, key, msg, *args, **kwargs)

    def error(self, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.ERROR, key, msg, *args, **kwargs)


def _render(msg: str, args: tuple[Any, ...]) -> str:
    """Format ``msg % args`` as logging would, or return ``msg`` when they do not match."""
    if not args:
        return msg
    try:
        return msg % args
    except (TypeError, ValueError):
        return msg


def _with_summary(
    msg: str, args: tuple[Any, ...], repeats: int, elapsed_s: float
) -> tuple[str, tuple[Any, ...]]:
    """Append ``(and N more like this in the last T)`` before the message's final period."""
    if not args:
        msg = msg.replace("%", "%%")
    base = msg[:-1] if msg.endswith(".") and not msg.endswith("..") else msg
    summary = " (and %d more like this in the last %s)."
    return base + summary, (*args, repeats, format_duration(round(elapsed_s)))


_limiters: dict[tuple[str, float], RateLimitedLogger] = {}


def log_every(
    logger: logging.Logger,
    key: str,
    interval_s: float,
    level: int,
    msg: str,
    *args: Any,
    **kwargs: Any,
) -> bool:
    """Log through a process-wide :class:`RateLimitedLogger` for ``logger`` and ``interval_s``.

    ``log_every(logger, "redis-down", 10, logging.ERROR, "Redis write failed: %s.", exc)``
    logs at most one line per 10 s for that key, and counts the rest.
    """
    limiter = _limiters.get((logger.name, interval_s))
    if limiter is None:
        limiter = _limiters[(logger.name, interval_s)] = RateLimitedLogger(logger, interval_s)
    return limiter.log(level, key, msg, *args, **kwargs)


def flush_repeats(only_due: bool = False) -> None:
    """Log the pending repeat summaries of every :func:`log_every` limiter.

    Processes call it with ``only_due`` from their loops, so a burst of skipped messages
    is summarised soon after its interval even when nothing else is logged, and without
    it when they exit.
    """
    for limiter in list(_limiters.values()):
        limiter.flush(only_due)
