"""Record when Redis changes company record keys, from a process of its own.

The benchmark's redis-server runs with ``notify-keyspace-events K$``: every SET, and
every key of an MSET, publishes the command name on ``__keyspace@0__:<key>``. The
listener subscribes to one pattern and stores ``(key, time.time_ns())`` for each
``set`` event as it reads it. Clock and reader: the simulator stamps its sends with
the same ``time.time_ns()`` on the same machine, so the two need no synchronisation.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection

import redis

_START_TIMEOUT_S = 30.0
_IDLE_S = 0.05
_CHANNEL_PREFIX = "__keyspace@0__:"

#: Redis configuration the listener needs: keyspace events for string commands.
NOTIFY_ARGS = ("--notify-keyspace-events", "K$")


def _listen(pipe: Connection, port: int, pattern: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    pubsub = client.pubsub()
    pubsub.psubscribe(_CHANNEL_PREFIX + pattern)
    while True:
        message = pubsub.get_message(timeout=_IDLE_S)
        if message is not None and message["type"] == "psubscribe":
            break
    pipe.send("subscribed")

    skip = len(_CHANNEL_PREFIX)
    events: list[tuple[str, int]] = []
    while True:
        message = pubsub.get_message(timeout=_IDLE_S)
        if message is not None:
            if message["data"] == b"set":
                events.append((message["channel"][skip:].decode(), time.time_ns()))
            continue
        if pipe.poll():  # Only when idle: everything Redis sent so far was read.
            pipe.recv()
            pipe.send(events)
            return


class KeyspaceListener:
    """Records the ``set`` events of keys matching ``key_pattern`` until :meth:`stop`."""

    def __init__(self, port: int, key_pattern: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(
            target=_listen,
            args=(theirs, port, key_pattern),
            name="bench-keyspace-listener",
        )

    def start(self) -> KeyspaceListener:
        self._process.start()
        if not self._pipe.poll(_START_TIMEOUT_S):
            self._process.kill()
            raise TimeoutError(
                f"The keyspace listener did not subscribe within {_START_TIMEOUT_S} s."
            )
        self._pipe.recv()
        return self

    def stop(self) -> list[tuple[str, int]]:
        """Stop listening; return ``(key, receive time in ns)`` of every ``set`` event."""
        self._pipe.send("stop")
        events: list[tuple[str, int]] = self._pipe.recv()
        self._process.join(10)
        return events
