"""The ingest process: holds the datastream connection and routes every frame.

It reconnects forever with backoff, resumes with ``replay_from`` when a cursor is
committed, and hands frames to the worker queues in per-shard bundles. An API key
that the datastream rejects stops the whole service with EXIT_AUTH instead of
retrying, because no retry can fix it.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from dataclasses import dataclass
from typing import Any

import websocket

from replicator import datastream, logs, router
from replicator.config import Config
from replicator.controls import SIGNAL_RESTART_STREAM, request_reload
from replicator.cursor import CursorTracker
from replicator.dispatch import Dispatcher, Outlet
from replicator.exits import EXIT_AUTH, EXIT_OK
from replicator.frame_reader import DATA_OPCODES, OPCODE_CLOSE, OPCODE_PONG
from replicator.replay import CursorKeeper
from replicator.status import (
    TEXT_CHARS,
    LoadState,
    SlotState,
    StatusBlock,
    StreamState,
    encode_text,
)

logger = logging.getLogger(__name__)

#: A session shorter than this counts as a failed attempt for the backoff.
STABLE_SESSION_S = 10.0


@dataclass
class IngestSpec:
    """Settings and shared objects the supervisor hands the ingest process."""

    config: Config
    status: StatusBlock
    slot_index: int
    outlets: dict[tuple[str, int], Outlet]
    acks: Any
    control: Any


class Ingest:
    def __init__(self, spec: IngestSpec) -> None:
        self.spec = spec
        self.config = spec.config
        self.status = spec.status
        self.slot = spec.status.slot(spec.slot_index)
        self.shards = spec.config.num_workers
        self.stop_requested = False
        self.reconnect_request = 0
        self.tracker = CursorTracker()
        self.keeper: CursorKeeper | None = None
        self.dispatcher = Dispatcher(spec.outlets, "stream", on_wait=self._on_wait)
        self.keepalive: datastream.Keepalive | None = None

    # Process lifecycle -------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(SIGNAL_RESTART_STREAM, self._on_reconnect_request)
        self.slot.state = SlotState.RUNNING

        self.keeper = CursorKeeper(self.config, self.status, self.tracker, self.spec.acks)
        self.keeper.start()
        try:
            self._connect_forever()
        except datastream.AuthRejected as exc:
            self._set_stream(StreamState.AUTH_FAILED, f"API key rejected: {exc}")
            logger.critical(
                "The datastream rejected the API key (%s). Check SCHEMATIC_API_KEY; "
                "the service stops because retrying cannot fix this.",
                exc,
            )
            return EXIT_AUTH
        finally:
            self._drain()
        return EXIT_OK

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _on_reconnect_request(self, signum: int, frame: Any) -> None:
        # The read loop acts on it within a second (the socket read timeout).
        self.reconnect_request = signum

    def _drain(self) -> None:
        """Shutdown, in order: hand buffered frames to the workers, then let the
        cursor keeper wait for their acknowledgements and save the cursor."""
        self.stop_requested = True
        self.dispatcher.on_wait = lambda: True
        self.dispatcher.flush()
        if self.keeper is not None:
            # A quick stop saves the committed cursor without waiting: the workers are
            # stopping too, and the next turn replays whatever they did not write.
            quick = bool(self.status.globals.quick_stop)
            self.keeper.finish(0.0 if quick else self.config.shutdown_timeout_s / 2)
        self.slot.state = SlotState.EXITED

    # Connection loop ---------------------------------------------------------------

    def _connect_forever(self) -> None:
        attempt = 0
        while not self.stop_requested:
            self._take_reconnect_request()
            started = time.monotonic()
            reason = self._run_session()
            if self.stop_requested:
                return
            if self.reconnect_request:
                attempt, delay = 0, 0.0
            else:
                stable = time.monotonic() - started >= STABLE_SESSION_S
                attempt = 0 if stable else attempt + 1
                delay = datastream.reconnect_delay(attempt)
            self._set_stream(StreamState.DISCONNECTED, reason)
            logger.warning("Datastream disconnected (%s); reconnecting in %.1fs.", reason, delay)
            self._sleep(delay)

    def _run_session(self) -> str:
        """Connect, subscribe and read until the connection ends; return why it ended."""
        self._set_stream(StreamState.CONNECTING, "connecting")
        try:
            ws = datastream.connect(self.config.datastream_url, self.config.api_key)
        except (websocket.WebSocketException, OSError) as exc:
            return f"connect to {self.config.datastream_url} failed: {exc}"

        try:
            self._subscribe(ws)
            return self._read(ws)
        except (websocket.WebSocketException, OSError) as exc:
            return f"connection error: {exc}"
        finally:
            self._stop_keepalive()
            ws.close(timeout=1)
            self.dispatcher.flush()

    def _subscribe(self, ws: datastream.DatastreamSocket) -> None:
        state = self.status.globals
        if state.connections:
            state.reconnects += 1
        state.connections += 1
        state.connected_since = time.time()
        self._set_stream(StreamState.CONNECTED, "subscribing")

        # Messages read but not acknowledged on the previous connection are replayed on
        # this one, so stop waiting for them.
        self.tracker.reset(self.tracker.committed)
        replay_from = "" if self.config.replay_disabled else self.tracker.committed
        for request in datastream.subscription_requests(replay_from):
            ws.send(request)
        if not replay_from and state.turn_subscriptions and state.load_state != LoadState.PENDING:
            # Without a cursor the datastream cannot resend what changed while we were
            # away, so only the API has it now. A pending load starts only once the
            # stream is ready, after this connection, so it serves this one too.
            request_reload(self.spec.control, self.status, "reconnected without a replay cursor")
        state.turn_subscriptions += 1
        logger.info(
            "Connected to %s and requested companies, users and flags%s.",
            self.config.datastream_url,
            f" (replay from {replay_from})" if replay_from else "",
        )

        self.keepalive = datastream.Keepalive(
            ws, self.config.ws_ping_interval_s, self.config.ws_pong_wait_s
        )
        self.keepalive.start()
        self._set_stream(StreamState.READY, "")

    def _stop_keepalive(self) -> None:
        if self.keepalive is not None:
            self.keepalive.stop()
            self.keepalive = None

    # Reading -----------------------------------------------------------------------

    def _read(self, ws: datastream.DatastreamSocket) -> str:
        while not self.stop_requested:
            if self.reconnect_request:
                return self._reconnect_reason()
            try:
                opcode, payload = ws.recv_message()
            except websocket.WebSocketTimeoutException:
                self._idle()
                continue
            except websocket.WebSocketConnectionClosedException:
                return self._closed_reason("the connection was closed without a close frame")

            if opcode in DATA_OPCODES:
                self._handle(payload)
                if not _readable(ws):
                    self._idle()
            elif opcode == OPCODE_PONG and self.keepalive is not None:
                self.keepalive.pong_received()
            elif opcode == OPCODE_CLOSE:
                return self._on_close(datastream.close_code(payload))
        return "shutting down"

    def _reconnect_reason(self) -> str:
        return "reconnecting from scratch because Redis lost the replicated data"

    def _take_reconnect_request(self) -> bool:
        """Act on a reconnect request: True when one was pending."""
        request, self.reconnect_request = self.reconnect_request, 0
        if request == SIGNAL_RESTART_STREAM and self.keeper is not None:
            self.keeper.drop()
        return bool(request)

    def _closed_reason(self, default: str) -> str:
        if self.keepalive is not None and self.keepalive.stalled:
            return f"no pong within {self.config.ws_pong_wait_s:g}s"
        return default

    def _on_close(self, code: int | None) -> str:
        if code == datastream.CLOSE_UNAUTHORIZED:
            raise datastream.AuthRejected("the datastream closed with code 4001 (unauthorized)")
        return f"the server closed the connection with code {code}"

    def _idle(self) -> None:
        now = time.monotonic()
        if now - self.slot.heartbeat >= 1.0:
            logs.flush_repeats(only_due=True)
        self.slot.heartbeat = now
        self.dispatcher.flush()
        self._resume_keepalive()

    def _resume_keepalive(self) -> None:
        if self.keepalive is not None:
            self.keepalive.resume()

    def _handle(self, raw: bytes) -> None:
        self.slot.received += 1
        self.status.globals.last_message_at = time.time()
        route = router.route(raw, self.shards)

        if route.stream_id:
            self.status.globals.last_stream_id = route.stream_id.encode("utf-8", "replace")[:47]
        if route.action == "worker" and route.change is not None:
            if route.stream_id and not self.tracker.track(route.stream_id):
                self.slot.skipped += 1  # A replay duplicate of something already applied.
                return
            self.dispatcher.add(route.kind, route.shard, route.change)
            self._resume_keepalive()
        elif route.action == "reload":
            self._reload()
        else:
            self._log_route(route)

    def _log_route(self, route: router.Route) -> None:
        if route.action == "confirmation":
            logger.info("Subscription to %s confirmed.", route.entity_type)
        elif route.action == "error":
            logs.log_every(
                logger,
                "datastream-error",
                10.0,
                logging.WARNING,
                "The datastream sent an error for %s: %s",
                route.entity_type,
                route.detail,
            )
        elif route.action == "invalid":
            self.slot.skipped += 1
            logs.log_every(
                logger,
                f"invalid:{route.entity_type}",
                10.0,
                logging.WARNING,
                "Skipped an invalid datastream message (entity type %r, message type %r, "
                "entity id %r, stream id %r): %s.",
                route.entity_type,
                route.message_type,
                route.entity_id,
                route.stream_id,
                route.detail,
            )

    def _reload(self) -> None:
        logger.warning(
            "The datastream cannot replay from cursor %r and asked for a full reload.",
            self.tracker.committed,
        )
        # Everything already queued is still written; only the cursor is dropped.
        self.dispatcher.flush()
        if self.keeper is not None:
            self.keeper.drop()
        request_reload(self.spec.control, self.status, "the datastream sent reload")

    # Helpers -----------------------------------------------------------------------

    def _on_wait(self) -> bool:
        """Called while a shard queue is full: keep the heartbeat fresh and the
        keepalive from mistaking our own backpressure for a silent server."""
        self.slot.heartbeat = time.monotonic()
        if self.keepalive is not None:
            self.keepalive.pause()
        return not self.stop_requested

    def _set_stream(self, state: int, reason: str) -> None:
        self.status.globals.stream_state = state
        self.status.globals.stream_reason = encode_text(reason, TEXT_CHARS)

    def _sleep(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        while not self.stop_requested and time.monotonic() < deadline:
            self.slot.heartbeat = time.monotonic()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _readable(ws: datastream.DatastreamSocket) -> bool:
    """Tell whether more frame bytes are already waiting, without blocking."""
    if ws.frames.has_buffered_data():
        return True
    sock = ws.sock
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def run_ingest(spec: IngestSpec) -> int:
    """Entry point of the ingest process, after the fork."""
    logs.set_role("ingest")
    spec.status.slot(spec.slot_index).pid = os.getpid()
    return Ingest(spec).run()
