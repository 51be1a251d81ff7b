"""The worker process loop: drain one queue, batch, write, acknowledge, heartbeat.

A worker collects changes until it holds ``BATCH_SIZE`` of them or ``BATCH_TIMEOUT``
has passed since the first one arrived, then writes them in one pipeline. A failed
write is retried with backoff until it succeeds, so nothing taken off the queue is
lost while Redis is away; the queue fills meanwhile and the producers wait.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from replicator import logs
from replicator.breaker import CircuitBreaker
from replicator.lease import lease_valid
from replicator.redis_conn import REDIS_ERRORS
from replicator.router import Change
from replicator.status import (
    BATCH_SIZE_BUCKETS,
    TEXT_CHARS,
    WRITE_SECONDS_BUCKETS,
    CircuitState,
    ProcessSlot,
    SlotState,
    StatusBlock,
    encode_text,
    observe,
)
from workers.entities import CONTROL_OPS, Outcome

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0
LEASE_WAIT_S = 0.05
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 5.0


@dataclass
class WorkerSpec:
    """Everything a worker process needs; built by the supervisor before the fork."""

    role: str
    kind: str  # "company", "user" or "flags"
    slot_index: int
    inbox: Any  # multiprocessing.Queue of list[Change], or None to stop
    acks: Any  # multiprocessing.Queue of list[str]
    status: StatusBlock
    batch_size: int
    batch_timeout_s: float
    breaker_threshold: int = 3
    breaker_timeout_s: float = 15.0


class WorkerStopped(Exception):
    """Raised when a stop request ends a write that keeps failing; nothing was acknowledged."""


class Worker:
    """Runs inside the worker process; ``applier`` does the Redis work of one batch."""

    def __init__(self, spec: WorkerSpec, applier: Any) -> None:
        self.spec = spec
        self.applier = applier
        self.slot: ProcessSlot = spec.status.slot(spec.slot_index)
        self.pending: deque[Change] = deque()
        self.first_at = 0.0
        self.stop_requested = False
        self.draining = False
        self.breaker = CircuitBreaker(spec.breaker_threshold, spec.breaker_timeout_s)

    def run(self) -> None:
        self._install_signals()
        self.slot.state = SlotState.RUNNING
        logger.info("Worker %s started (pid %d).", self.spec.role, os.getpid())

        try:
            while not self.stop_requested:
                self._receive(self._wait_time())
                self._heartbeat()
                self._flush_ready()
                if self.draining and not self.pending:
                    break
            self._flush_all()
        except WorkerStopped:
            self.slot.dropped += len(self.pending)
            logger.warning(
                "Worker %s stopped with %d changes unwritten; replay will resend them.",
                self.spec.role,
                len(self.pending),
            )
        self.slot.state = SlotState.EXITED
        logger.info("Worker %s stopped (pid %d).", self.spec.role, os.getpid())

    def _install_signals(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _wait_time(self) -> float:
        if not self.pending:
            return HEARTBEAT_INTERVAL_S
        deadline = self.first_at + self.spec.batch_timeout_s
        return max(0.0, deadline - time.monotonic())

    def _receive(self, timeout_s: float) -> None:
        """Take one item off the queue, then whatever else is already there."""
        inbox = self.spec.inbox
        try:
            item = inbox.get(timeout=timeout_s) if timeout_s > 0 else inbox.get_nowait()
            while True:
                if item is None:
                    self.draining = True  # Everything queued before the sentinel is pending.
                    return
                self._accept(item)
                if len(self.pending) >= self.spec.batch_size:
                    return
                item = inbox.get_nowait()
        except (queue.Empty, InterruptedError):
            return

    def _accept(self, item: list[Change]) -> None:
        if not item:
            return
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.extend(item)
        self.slot.dequeued += len(item)
        self.slot.received += len(item)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.slot.heartbeat >= HEARTBEAT_INTERVAL_S:
            logs.flush_repeats(only_due=True)
        self.slot.heartbeat = now

    def _flush_ready(self) -> None:
        while self.pending and (
            len(self.pending) >= self.spec.batch_size
            or time.monotonic() - self.first_at >= self.spec.batch_timeout_s
        ):
            self._flush_one()

    def _flush_all(self) -> None:
        while self.pending:
            self._flush_one()

    def _flush_one(self) -> None:
        batch = [
            self.pending.popleft() for _ in range(min(self.spec.batch_size, len(self.pending)))
        ]
        self.first_at = time.monotonic()
        segment: list[Change] = []
        start = 0
        try:
            for index, change in enumerate(batch):
                if change[0] in CONTROL_OPS:
                    self._write(segment)
                    segment, start = [], index + 1
                    self._control(change)
                else:
                    segment.append(change)
            self._write(segment)
        except WorkerStopped:
            # Put back what was not written, so the count of unwritten changes is whole.
            self.pending.extendleft(reversed(batch[start:]))
            raise

    def _write(self, segment: list[Change]) -> None:
        if not segment:
            return
        outcome = self._write_with_retry(segment)
        self.slot.applied += outcome.applied
        self.slot.skipped += outcome.skipped
        self.slot.swept_records += outcome.swept_records
        self.slot.swept_lookups += outcome.swept_lookups
        self.slot.batches += 1
        self.slot.batch_items += len(segment)
        observe(self.slot.batch_size_counts, BATCH_SIZE_BUCKETS, len(segment))
        if outcome.acks:
            self.spec.acks.put(outcome.acks)

    def _write_with_retry(self, segment: list[Change]) -> Outcome:
        """Write ``segment``, waiting out Redis failures, an open breaker and a missing
        writer lease; the segment is never dropped, only abandoned on a stop request."""
        delay = RETRY_FIRST_DELAY_S
        while True:
            if self.stop_requested:
                raise WorkerStopped()
            pause = self._pause_before_write()
            if pause:
                self._sleep_with_heartbeat(pause)
                continue

            started = time.monotonic()
            try:
                outcome: Outcome = self.applier.apply(segment)
            except REDIS_ERRORS as exc:
                self._record_error(exc, delay)
                self._sleep_with_heartbeat(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY_S)
                continue

            self._record_success(time.monotonic() - started)
            return outcome

    def _pause_before_write(self) -> float:
        """Seconds to wait before the next write attempt; 0 means write now."""
        if not lease_valid(self.spec.status):
            return LEASE_WAIT_S  # Another replicator may be the writer: never write.
        pause = self.breaker.wait_time()
        self.slot.breaker_state = self.breaker.state
        return pause

    def _record_success(self, elapsed: float) -> None:
        if self.breaker.state != CircuitState.CLOSED:
            logger.info("Worker %s writes to Redis again; circuit closed.", self.spec.role)
        self.breaker.success()
        self.slot.breaker_state = self.breaker.state
        self.slot.write_seconds_sum += elapsed
        observe(self.slot.write_seconds_counts, WRITE_SECONDS_BUCKETS, elapsed)

    def _record_error(self, exc: Exception, delay: float) -> None:
        if self.breaker.failure():
            logger.error(
                "Worker %s opened its Redis circuit after %d failures; no write for %.0fs.",
                self.spec.role,
                self.breaker.failures,
                self.breaker.timeout_s,
            )
        self.slot.breaker_state = self.breaker.state
        self.slot.redis_errors += 1
        self.slot.errors += 1
        self.slot.last_error = encode_text(f"Redis write failed: {exc}", TEXT_CHARS)
        logs.log_every(
            logger,
            f"redis:{self.spec.role}",
            10.0,
            logging.ERROR,
            "Worker %s failed to write a batch to Redis, retrying in %.1fs: %s",
            self.spec.role,
            delay,
            exc,
        )

    def _sleep_with_heartbeat(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        while not self.stop_requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(HEARTBEAT_INTERVAL_S, remaining))
            self._heartbeat()

    def _control(self, change: Change) -> None:
        op, _, token, _ = change
        generation = token
        if op == "begin":
            self.applier.begin(generation)
        elif op == "end":
            dropped = self.applier.end(generation)
            if dropped:
                self.slot.skipped += dropped
                logger.info(
                    "Worker %s dropped %d partials for entities the load did not contain.",
                    self.spec.role,
                    dropped,
                )
        elif op == "abort":
            released = self.applier.abort(generation)
            # In batches of the usual size, so the heartbeat keeps going between them.
            for start in range(0, len(released), self.spec.batch_size):
                self._write(released[start : start + self.spec.batch_size])
                self._heartbeat()
        elif op == "fence":
            self.slot.fence_token = int(token)
