"""Stream ids, pre-serialised messages and the retained window used for replay.

A stream id is ``<ms>-<seq>``: the wall clock in milliseconds, never going backwards, and
a counter within one millisecond. Every change message is serialised once, when it is
published; the event loop only ever sends the finished string.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import orjson

#: Routes of published messages: which subscription receives them.
ROUTE_COMPANY = "company"
ROUTE_USER = "user"
ROUTE_FLAG = "flag"
ROUTE_ANY = "any"

ENTITY_TYPES = {
    ROUTE_COMPANY: "rulesengine.Company",
    ROUTE_USER: "rulesengine.User",
    ROUTE_FLAG: "rulesengine.Flag",
}

StreamKey = tuple[int, int]


def parse_stream_id(text: object) -> StreamKey | None:
    """Parse ``<ms>-<seq>`` into a comparable pair, or return None when it does not parse."""
    if not isinstance(text, str):
        return None
    ms, dash, seq = text.partition("-")
    if not dash or not ms.isdigit() or not seq.isdigit():
        return None
    return int(ms), int(seq)


def format_stream_id(key: StreamKey) -> str:
    """Format a (ms, seq) pair as a stream id."""
    return f"{key[0]}-{key[1]}"


class StreamClock:
    """Issues strictly increasing stream ids from the wall clock."""

    def __init__(self, floor: StreamKey | None = None) -> None:
        start = (time.time_ns() // 1_000_000, 0)
        self.last: StreamKey = max(start, floor) if floor else start

    def next(self) -> StreamKey:
        """Return the next stream id: a later millisecond, or the same one with seq + 1."""
        now_ms = time.time_ns() // 1_000_000
        last_ms, last_seq = self.last
        self.last = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        return self.last


@dataclass(slots=True)
class Message:
    """One frame to send, with what the fan-out needs to route it.

    ``seq`` numbers published changes from 1; messages that are not changes (snapshots,
    confirmations, errors, reloads) have seq 0 and no stream id. ``frame`` is bytes only
    for a raw frame of fault injection, which may be invalid UTF-8.
    """

    seq: int
    stream_id: str
    key: StreamKey
    route: str
    frame: str | bytes
    track: bool = False


def change_frame(
    entity_type: str, message_type: str, entity_id: str | None, stream_id: str, data_json: str
) -> str:
    """Build the JSON text of a change message around an already encoded ``data``."""
    head = orjson.dumps(
        {
            "entity_type": entity_type,
            "message_type": message_type,
            "entity_id": entity_id,
            "stream_id": stream_id,
        }
    ).decode()
    return f'{head[:-1]},"data":{data_json}}}'


def raw_message(frame: str | bytes) -> Message:
    """Wrap a frame to send as it is, without a stream id."""
    return Message(0, "", (0, 0), ROUTE_ANY, frame)


def control_message(entity_type: str | None, message_type: str, data: object) -> Message:
    """Build a message without a stream id: snapshot, confirmation, error or reload."""
    frame = orjson.dumps(
        {"entity_type": entity_type, "message_type": message_type, "entity_id": None, "data": data}
    ).decode()
    return Message(0, "", (0, 0), ROUTE_ANY, frame)


class RetainedWindow:
    """The last N change messages, for replay after a reconnect.

    ``floor`` is the newest id that can no longer be replayed: the last evicted message,
    or the point the stream started from. A replay from an id at or after the floor is
    complete; an older id needs a reload.
    """

    def __init__(self, capacity: int, floor: StreamKey) -> None:
        self.capacity = capacity
        self.messages: deque[Message] = deque()
        self.floor = floor

    def append(self, message: Message) -> None:
        """Retain a message, evicting the oldest one when the window is full."""
        self.messages.append(message)
        if len(self.messages) > self.capacity:
            self.floor = self.messages.popleft().key

    def last_key(self) -> StreamKey:
        """Return the id of the newest retained message, or the floor when there is none."""
        return self.messages[-1].key if self.messages else self.floor

    def after(self, key: StreamKey) -> list[Message] | None:
        """Return the retained messages after ``key`` in order, or None if replay is impossible.

        Replay is impossible when messages after ``key`` were evicted, or when ``key`` is
        newer than anything this stream published (it comes from another stream).
        """
        if key < self.floor or key > self.last_key():
            return None
        found = []
        for message in reversed(self.messages):
            if message.key <= key:
                break
            found.append(message)
        found.reverse()
        return found
