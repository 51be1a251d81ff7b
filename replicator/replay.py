"""Persist the replay cursor: acknowledgements in, a Redis key out.

The keeper runs as a thread of the ingest process. It completes stream ids as
workers acknowledge them, publishes the committed cursor in the status block, and
saves it to Redis every few seconds when it moved, and once more at shutdown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from replicator import redis_conn
from replicator.config import Config
from replicator.cursor import CursorTracker
from replicator.lease import lease_valid
from replicator.status import StatusBlock, encode_text

logger = logging.getLogger(__name__)

SAVE_INTERVAL_S = 5.0
ACK_WAIT_S = 0.2


class CursorKeeper(threading.Thread):
    def __init__(
        self, config: Config, status: StatusBlock, tracker: CursorTracker, acks: Any
    ) -> None:
        super().__init__(name="cursor-keeper", daemon=True)
        self.config = config
        self.status = status
        self.tracker = tracker
        self.acks = acks
        self.key = config.replay_cursor_key
        self.client = redis_conn.create_client(config.redis)
        self.saved = ""
        self._stop_event = threading.Event()
        self._load()

    def _load(self) -> None:
        if self.config.replay_disabled:
            return
        raw = self.client.get(self.key)
        value = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw or "")
        self.tracker.reset(value)
        self.saved = value
        self._publish(value)
        if value:
            logger.info("Loaded replay cursor %r from Redis.", value)

    def run(self) -> None:
        next_save = time.monotonic() + SAVE_INTERVAL_S
        while not self._stop_event.is_set():
            self._take_acks(ACK_WAIT_S)
            if time.monotonic() >= next_save:
                self.save()
                next_save = time.monotonic() + SAVE_INTERVAL_S

    def _take_acks(self, timeout_s: float) -> None:
        try:
            batch = self.acks.get(timeout=timeout_s)
        except queue.Empty:
            return
        while True:
            self._publish(self.tracker.complete(batch))
            try:
                batch = self.acks.get_nowait()
            except queue.Empty:
                return

    def _publish(self, value: str) -> None:
        self.status.globals.cursor = encode_text(value, 48)

    def save(self) -> None:
        """Write the committed cursor to Redis if it moved since the last save."""
        value = self.tracker.committed
        if self.config.replay_disabled or not value or value == self.saved:
            return
        if not lease_valid(self.status):
            return  # The cursor belongs to whichever replicator holds the lease.
        try:
            self.client.set(self.key, value)
        except redis_conn.REDIS_ERRORS as exc:
            logger.warning("Failed to save replay cursor %r, will retry: %s", value, exc)
            return
        self.saved = value
        self.status.globals.cursor_saved_at = time.time()

    def drop(self) -> None:
        """Forget the cursor, in memory and in Redis, before a full reload."""
        self.tracker.reset("")
        self.saved = ""
        self._publish("")
        if not lease_valid(self.status):
            return
        try:
            self.client.delete(self.key)
        except redis_conn.REDIS_ERRORS as exc:
            logger.warning("Failed to delete replay cursor key %r: %s", self.key, exc)

    def finish(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for outstanding acknowledgements, then save."""
        deadline = time.monotonic() + timeout_s
        while self.tracker.pending and time.monotonic() < deadline and lease_valid(self.status):
            self._take_acks(0.05)
        self._stop_event.set()
        self.join(timeout=2)
        self._take_acks(0)
        self.save()
        if self.tracker.pending:
            logger.warning(
                "Stopped with %d stream messages not yet acknowledged; the next start "
                "replays them from cursor %r.",
                self.tracker.pending,
                self.tracker.committed,
            )
        elif self.tracker.committed:
            logger.info("Replay cursor %r saved.", self.tracker.committed)
