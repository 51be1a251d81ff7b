"""The datastream WebSocket client: connect, subscribe, keep alive.

Built on websocket-client. UTF-8 validation of text frames is left to orjson, which
rejects invalid UTF-8 while decoding; the library's own pure-Python check costs
about twenty times more than the rest of reading a frame.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import orjson
import websocket

from replicator import __version__

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 1.0
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0

#: Close code the Schematic datastream uses for an invalid API key.
CLOSE_UNAUTHORIZED = 4001

SUBSCRIPTIONS = ("rulesengine.Companies", "rulesengine.Users", "rulesengine.Flags")


#: Bytes asked of the socket per read. websocket-client asks for exactly the bytes of
#: the next frame part (header, length, payload: three system calls per frame) and
#: keeps any surplus for the next frame, so asking for more saves most of those calls.
#: Larger values cost more, because the library copies the surplus on every read.
READ_CHUNK = 8192


class BufferedWebSocket(websocket.WebSocket):
    """websocket-client's WebSocket, reading the socket in chunks of READ_CHUNK."""

    def _recv(self, bufsize: int) -> bytes:
        data: bytes = super()._recv(max(bufsize, READ_CHUNK))
        return data

    def has_buffered_frame_data(self) -> bool:
        """Tell whether bytes of a next frame were already read off the socket."""
        return any(self.frame_buffer.recv_buffer)


class AuthRejected(Exception):
    """The datastream rejected the API key: a configuration error, not a network fault."""


def upgrade_headers(api_key: str) -> list[str]:
    """Headers of the upgrade request, as the original replicator sends them."""
    return [
        f"X-Schematic-Api-Key: {api_key}",
        "X-Schematic-Datastream-Mode: replicator",
        "X-Schematic-Client: schematic-datastream-replicator",
        f"X-Schematic-Client-Version: {__version__}",
    ]


def subscription_requests(replay_from: str) -> list[bytes]:
    """The three ``start`` requests, each carrying ``replay_from`` when it is set."""
    requests = []
    for entity_type in SUBSCRIPTIONS:
        data: dict[str, str] = {"action": "start", "entity_type": entity_type}
        if replay_from:
            data["replay_from"] = replay_from
        requests.append(orjson.dumps({"data": data}))
    return requests


def connect(url: str, api_key: str) -> BufferedWebSocket:
    """Open the WebSocket; raise AuthRejected on HTTP 401 or 403."""
    try:
        ws = websocket.create_connection(
            url,
            header=upgrade_headers(api_key),
            timeout=HANDSHAKE_TIMEOUT_S,
            skip_utf8_validation=True,
            enable_multithread=True,
            class_=BufferedWebSocket,
        )
    except websocket.WebSocketBadStatusException as exc:
        if exc.status_code in (401, 403):
            raise AuthRejected(f"the datastream answered HTTP {exc.status_code}") from None
        raise
    assert isinstance(ws, BufferedWebSocket)
    ws.settimeout(READ_TIMEOUT_S)
    return ws


def close_code(frame: Any) -> int | None:
    """Return the status code carried by a close frame, if any."""
    data = frame.data if frame is not None else b""
    if len(data) < 2:
        return None
    return int.from_bytes(data[:2], "big")


def reconnect_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Wait before reconnect ``attempt`` (1-based): 1 s doubling to 30 s, plus up to 1 s jitter."""
    jitter = (rng or random).random()
    if attempt <= 0:
        return jitter
    return min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_CAP_S) + jitter


class Keepalive(threading.Thread):
    """Sends a ping every ``interval_s`` and aborts the socket when no pong came for
    ``pong_wait_s``. Time the reader spends blocked on full queues does not count,
    because the reader is what consumes pongs."""

    def __init__(self, ws: websocket.WebSocket, interval_s: float, pong_wait_s: float) -> None:
        super().__init__(name="keepalive", daemon=True)
        self.ws = ws
        self.interval_s = interval_s
        self.pong_wait_s = pong_wait_s
        self.last_pong = time.monotonic()
        self.paused_since = 0.0
        self.stalled = False
        self._stop = threading.Event()

    def pong_received(self) -> None:
        self.last_pong = time.monotonic()

    def pause(self) -> None:
        if not self.paused_since:
            self.paused_since = time.monotonic()

    def resume(self) -> None:
        if self.paused_since:
            self.last_pong += time.monotonic() - self.paused_since
            self.paused_since = 0.0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        tick = min(self.interval_s, 1.0)
        next_ping = time.monotonic() + self.interval_s
        while not self._stop.wait(tick):
            now = time.monotonic()
            if self._check_stall(now):
                return
            if now >= next_ping:
                next_ping = now + self.interval_s
                self._ping()

    def _check_stall(self, now: float) -> bool:
        if self.paused_since or now - self.last_pong <= self.pong_wait_s:
            return False
        self.stalled = True
        logger.warning(
            "No pong from the datastream for %.0fs (WS_PONG_WAIT); dropping the connection.",
            now - self.last_pong,
        )
        self.ws.abort()
        return True

    def _ping(self) -> None:
        try:
            self.ws.ping()
        except (websocket.WebSocketException, OSError) as exc:
            logger.debug("Ping failed: %s", exc)
