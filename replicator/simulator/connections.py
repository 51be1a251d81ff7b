"""WebSocket connections of the simulator and the fan-out of published changes.

Everything here runs on the simulator's event loop. Each connection has one queue and
one writer task, so every message (snapshot, confirmation, replayed change, live change)
leaves in the order it was queued. A change whose seq is at or below a connection's
``floor_seq`` was already queued by a replay and is skipped by the fan-out.

A connection that replays receives the whole change stream from then on: companies,
users and flags. It replays when its first request that carries ``replay_from`` can be
served. The replayed position is one position in one stream, and without this a change
published between its Companies and Users requests would be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from replicator.simulator.stream import ROUTE_ANY, ROUTE_COMPANY, ROUTE_FLAG, ROUTE_USER, Message

logger = logging.getLogger(__name__)

ALL_ROUTES = frozenset({ROUTE_COMPANY, ROUTE_USER, ROUTE_FLAG})

_BATCH_MESSAGES = 256
_BATCH_BYTES = 1 << 20
_HIGH_WATER_BYTES = 4 << 20
_DRAIN_POLL_S = 0.001
_TEXT_FRAME = 0x81  # FIN bit and the text opcode


def frame_header(length: int) -> bytes:
    """Return the header of an unmasked WebSocket text frame with a payload of ``length``."""
    if length < 126:
        return struct.pack("!BB", _TEXT_FRAME, length)
    if length < 65536:
        return struct.pack("!BBH", _TEXT_FRAME, 126, length)
    return struct.pack("!BBQ", _TEXT_FRAME, 127, length)


@dataclass
class ConnectionInfo:
    """Record of one WebSocket connection, open or closed, for tests to check."""

    id: int
    remote: str
    headers: dict[str, str]
    authorized: bool
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    close_code: int | None = None
    rejected: str | None = None
    requests: list[Any] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    replay_from: str | None = None
    replayed: int = 0
    reloads: int = 0
    messages_sent: int = 0
    pings: int = 0
    pongs: int = 0

    @property
    def open(self) -> bool:
        """Whether the connection is still open."""
        return self.closed_at is None and self.rejected is None


class Connection:
    """One open WebSocket: its routes, its queue and its writer task."""

    def __init__(
        self,
        info: ConnectionInfo,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        send_times: dict[str, int],
    ) -> None:
        self.info = info
        self.ws = ws
        self.transport = transport
        self.routes: set[str] = set()
        self.queue: deque[Message] = deque()
        self.wakeup = asyncio.Event()
        self.floor_seq = 0
        self.last_seq = 0
        self.flag_floor_seq = 0
        self.replay_done = False
        self.stalled = False
        self._send_times = send_times

    def offer(self, message: Message) -> None:
        """Queue a published change if this connection subscribed to its route."""
        if message.seq <= self.floor_seq:
            return
        if message.route == ROUTE_ANY:
            if not self.routes:
                return
        elif message.route not in self.routes:
            return
        if message.route == ROUTE_FLAG and message.seq <= self.flag_floor_seq:
            return
        self.last_seq = message.seq
        self.queue.append(message)
        self.wakeup.set()

    def send(self, message: Message) -> None:
        """Queue any message: snapshot, confirmation, error, reload or replayed change."""
        if message.seq:
            self.last_seq = max(self.last_seq, message.seq)
        self.queue.append(message)
        self.wakeup.set()

    def resume(self) -> None:
        """End a stall; queued messages flow again."""
        self.stalled = False
        self.wakeup.set()

    async def write_loop(self) -> None:
        """Send queued messages until the socket closes; pause while stalled.

        Frames are encoded here and written in batches, one transport write for up to
        _BATCH_MESSAGES messages. With one send_str() per message,
        bench/simulator_throughput.py measured about 27,000 messages per second on a
        2-core machine, and about 110,000 with batches. The bytes are the unmasked,
        uncompressed text frames that send_str() writes. aiohttp writes its own frames
        (pongs, close) whole and on this loop, so the two never interleave.
        """
        try:
            while True:
                while self.queue and not self.stalled:
                    if self.ws.closed or self.transport is None or self.transport.is_closing():
                        return
                    self._write_batch(self.transport)
                    await self._drain(self.transport)
                self.wakeup.clear()
                await self.wakeup.wait()
        except (ConnectionError, RuntimeError) as error:
            logger.debug("Stopped writing to connection %r: %s.", self.info.id, error)

    def _write_batch(self, transport: asyncio.BaseTransport) -> None:
        queue = self.queue
        parts: list[bytes] = []
        tracked: list[str] = []
        size = 0
        while queue and len(parts) < 2 * _BATCH_MESSAGES and size < _BATCH_BYTES:
            message = queue.popleft()
            frame = message.frame
            payload = frame.encode() if isinstance(frame, str) else frame
            parts.append(frame_header(len(payload)))
            parts.append(payload)
            size += len(payload)
            if message.track:
                tracked.append(message.stream_id)
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"".join(parts))
        self.info.messages_sent += len(parts) // 2
        if tracked:
            sent_ns = time.time_ns()
            for stream_id in tracked:
                self._send_times.setdefault(stream_id, sent_ns)

    async def _drain(self, transport: asyncio.BaseTransport) -> None:
        """Yield to the loop, and wait while the socket's send buffer is over the limit."""
        assert isinstance(transport, asyncio.WriteTransport)
        await asyncio.sleep(0)
        while transport.get_write_buffer_size() > _HIGH_WATER_BYTES and not transport.is_closing():
            await asyncio.sleep(_DRAIN_POLL_S)

    def reset(self) -> None:
        """Drop the TCP connection with a reset and no close frame."""
        if not isinstance(self.transport, asyncio.Transport):
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class Hub:
    """The open connections and the record of every connection so far."""

    def __init__(self) -> None:
        self.open: dict[int, Connection] = {}
        self.history: list[ConnectionInfo] = []
        self._next_id = 1
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine as a task that is kept referenced until it finishes."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def new_info(self, remote: str, headers: dict[str, str], authorized: bool) -> ConnectionInfo:
        """Record a new connection attempt."""
        info = ConnectionInfo(self._next_id, remote, headers, authorized)
        self._next_id += 1
        self.history.append(info)
        return info

    def fanout(self, message: Message) -> None:
        """Offer a published change to every open connection."""
        for connection in self.open.values():
            connection.offer(message)

    def targets(self, connection_id: int | None) -> list[Connection]:
        """Return one open connection by id, or all of them when the id is None."""
        if connection_id is None:
            return list(self.open.values())
        found = self.open.get(connection_id)
        return [found] if found is not None else []
