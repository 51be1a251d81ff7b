"""The datastream WebSocket client: connect, subscribe, keep alive.

Built on websocket-client, with frames read by ``frame_reader``. UTF-8 validation of
text frames is left to orjson, which rejects invalid UTF-8 while decoding;
websocket-client's own pure-Python check costs about twenty times more than the rest
of reading a frame.
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
from replicator.frame_reader import OPCODE_CLOSE, OPCODE_PING, FrameReader

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 1.0
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0

#: Close code the Schematic datastream uses for an invalid API key.
CLOSE_UNAUTHORIZED = 4001

SUBSCRIPTIONS = ("rulesengine.Companies", "rulesengine.Users", "rulesengine.Flags")


class DatastreamSocket(websocket.WebSocket):
    """websocket-client's WebSocket, reading the server's frames with a FrameReader."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames = FrameReader(self._recv)

    def recv_message(self) -> tuple[int, bytes]:
        """Return the next message or control frame as ``(opcode, payload)``.

        Like websocket-client's ``recv_data_frame(True)``, it replies to a ping with a
        pong and to a close frame with a close frame before returning them.
        """
        opcode, payload = self.frames.read()
        if opcode == OPCODE_PING:
            self.pong(payload)
        elif opcode == OPCODE_CLOSE:
            self.send_close()
        return opcode, payload


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


def connect(url: str, api_key: str) -> DatastreamSocket:
    """Open the WebSocket; raise AuthRejected on HTTP 401 or 403."""
    try:
        ws = websocket.create_connection(
            url,
            header=upgrade_headers(api_key),
            timeout=HANDSHAKE_TIMEOUT_S,
            skip_utf8_validation=True,
            enable_multithread=True,
            class_=DatastreamSocket,
        )
    except websocket.WebSocketBadStatusException as exc:
        if exc.status_code in (401, 403):
            raise AuthRejected(f"the datastream answered HTTP {exc.status_code}") from None
        raise
    assert isinstance(ws, DatastreamSocket)
    ws.settimeout(READ_TIMEOUT_S)
    return ws


def close_code(payload: bytes) -> int | None:
    """Return the status code carried by the payload of a close frame, if any."""
    if len(payload) < 2:
        return None
    return int.from_bytes(payload[:2], "big")


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
