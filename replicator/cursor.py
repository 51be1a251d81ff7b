"""Replay cursor: the newest stream id whose message, and every one before it, is in Redis.

The ingest tracks each stream id when it reads the frame and completes it when a
worker reports the Redis write (or the skip of an invalid message) that covered it.
The committed cursor only advances across a contiguous prefix of completed ids, so
it never runs ahead of Redis, and it is what the next connection sends as
``replay_from``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


def parse_stream_id(stream_id: str) -> tuple[int, int] | None:
    """Split ``<ms>-<seq>`` into integers; ``None`` when it is not in that form."""
    head, sep, tail = stream_id.partition("-")
    # isdecimal, not isdigit: int() rejects digits such as "²" that isdigit accepts.
    if not sep or not head.isdecimal() or not tail.isdecimal():
        return None
    return int(head), int(tail)


def stream_id_after(candidate: str, reference: str) -> bool:
    """Tell whether ``candidate`` comes after ``reference`` in stream order.

    Ids in ``<ms>-<seq>`` form compare numerically; anything else compares as text.
    """
    left, right = parse_stream_id(candidate), parse_stream_id(reference)
    if left is not None and right is not None:
        return left > right
    return candidate > reference


def _order_key(stream_id: str) -> tuple[int, int, str]:
    """``(ms, seq, text)`` of an id, with ms -1 when it is not in ``<ms>-<seq>`` form."""
    parsed = parse_stream_id(stream_id)
    if parsed is None:
        return (-1, -1, stream_id)
    return (parsed[0], parsed[1], stream_id)


def _after(candidate: tuple[int, int, str], reference: tuple[int, int, str]) -> bool:
    """:func:`stream_id_after` on keys parsed once."""
    if candidate[0] >= 0 and reference[0] >= 0:
        return candidate[:2] > reference[:2]
    return candidate[2] > reference[2]


class CursorTracker:
    """Thread-safe low-water mark over stream ids in arrival order."""

    def __init__(self, committed: str = "") -> None:
        self._lock = threading.Lock()
        self._committed = committed
        self._committed_key = _order_key(committed) if committed else None
        self._in_flight: OrderedDict[str, bool] = OrderedDict()

    @property
    def committed(self) -> str:
        with self._lock:
            return self._committed

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def track(self, stream_id: str) -> bool:
        """Start tracking ``stream_id``; return False for an id already seen or committed.

        A False result marks a duplicate from a replay overlap, which the caller drops.
        """
        if not stream_id:
            return False
        key = _order_key(stream_id)
        with self._lock:
            if stream_id in self._in_flight:
                return False
            if self._committed_key is not None and not _after(key, self._committed_key):
                return False
            self._in_flight[stream_id] = False
            return True

    def complete(self, stream_ids: Iterable[str]) -> str:
        """Mark ``stream_ids`` as written and return the (possibly advanced) cursor."""
        with self._lock:
            for stream_id in stream_ids:
                if stream_id in self._in_flight:
                    self._in_flight[stream_id] = True
            self._advance()
            return self._committed

    def reset(self, committed: str = "") -> None:
        """Forget everything in flight and start again from ``committed``."""
        with self._lock:
            self._in_flight.clear()
            self._committed = committed
            self._committed_key = _order_key(committed) if committed else None

    def _advance(self) -> None:
        before = self._committed
        in_flight = self._in_flight
        while in_flight:
            stream_id, done = next(iter(in_flight.items()))
            if not done:
                break
            in_flight.popitem(last=False)
            self._committed = stream_id
        if self._committed != before:
            self._committed_key = _order_key(self._committed)
