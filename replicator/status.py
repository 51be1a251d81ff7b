"""Shared-memory status block: one slot per process plus global replication state.

The supervisor creates the block before it forks any child, so every child and the
health app inherit the same anonymous shared mapping. Each field has exactly one
writing process (named in the comments below), so no lock is needed: readers may
see a counter one update late, or a string field half rewritten while it changes,
and the health app tolerates both.
"""

from __future__ import annotations

import ctypes
import mmap
import time
from collections.abc import Iterator
from typing import Any

#: Number of process slots: supervisor, health, ingest, loader, one flags worker and up
#: to 64 company plus 64 user workers (NUM_WORKERS accepts at most 64).
MAX_SLOTS = 133
#: Bytes of the cache version field: CACHE_VERSION accepts up to 64 characters.
VERSION_CHARS = 72

#: Upper bounds of the histogram buckets kept per worker slot (a last, implicit bucket
#: holds everything larger). Batch sizes count changes; write latency is in seconds.
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
WRITE_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

ROLE_CHARS = 24
TEXT_CHARS = 160


class SlotState:
    """Lifecycle of a process slot, as written by the process itself or the supervisor."""

    EMPTY = 0
    STARTING = 1
    RUNNING = 2
    STOPPING = 3
    EXITED = 4

    NAMES = {
        EMPTY: "empty",
        STARTING: "starting",
        RUNNING: "running",
        STOPPING: "stopping",
        EXITED: "exited",
    }


class StreamState:
    """Datastream connection state, written by the ingest process."""

    UNKNOWN = 0
    CONNECTING = 1
    CONNECTED = 2
    READY = 3
    DISCONNECTED = 4
    AUTH_FAILED = 5

    NAMES = {
        UNKNOWN: "unknown",
        CONNECTING: "connecting",
        CONNECTED: "connected",
        READY: "ready",
        DISCONNECTED: "disconnected",
        AUTH_FAILED: "auth_failed",
    }


class LoadState:
    """Bulk-load state, written by the loader process."""

    IDLE = 0
    RUNNING = 1
    COMPLETE = 2
    FAILED = 3
    SKIPPED = 4
    PENDING = 5  # Requested, and the loader has not started it yet.

    NAMES = {
        IDLE: "idle",
        RUNNING: "running",
        COMPLETE: "complete",
        FAILED: "failed",
        SKIPPED: "skipped",
        PENDING: "pending",
    }


class CircuitState:
    """Redis circuit breaker of a worker."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half_open"}


def observe(counts: Any, bounds: tuple[float, ...], value: float) -> None:
    """Count ``value`` in the first bucket whose upper bound is at least ``value``."""
    for index, bound in enumerate(bounds):
        if value <= bound:
            counts[index] += 1
            return
    counts[len(bounds)] += 1


class ProcessSlot(ctypes.Structure):
    """Per-process record. The process that owns the slot writes every field except
    ``restarts`` and ``exit_code``, which the supervisor writes."""

    _fields_ = [
        ("role", ctypes.c_char * ROLE_CHARS),
        ("pid", ctypes.c_int64),
        ("state", ctypes.c_int32),
        ("exit_code", ctypes.c_int32),
        ("started_at", ctypes.c_double),  # wall-clock seconds
        ("heartbeat", ctypes.c_double),  # time.monotonic(), shared by all processes on Linux
        ("restarts", ctypes.c_int64),
        # Message counters of a worker, or of the ingest for what it read off the socket.
        ("received", ctypes.c_int64),
        ("applied", ctypes.c_int64),
        ("skipped", ctypes.c_int64),
        ("dropped", ctypes.c_int64),
        ("errors", ctypes.c_int64),
        # Queue accounting: depth = enqueued_stream + enqueued_load - dequeued.
        # enqueued_stream is written by the ingest, enqueued_load by the loader,
        # dequeued by the worker that owns the queue.
        ("enqueued_stream", ctypes.c_int64),
        ("enqueued_load", ctypes.c_int64),
        ("dequeued", ctypes.c_int64),
        # Batch accounting of a worker.
        ("batches", ctypes.c_int64),
        ("batch_items", ctypes.c_int64),
        ("redis_errors", ctypes.c_int64),
        # Histograms of a worker: counts per bucket (see the *_BUCKETS bounds above, plus
        # one overflow bucket) and the sum of observed values.
        ("batch_size_counts", ctypes.c_int64 * (len(BATCH_SIZE_BUCKETS) + 1)),
        ("write_seconds_counts", ctypes.c_int64 * (len(WRITE_SECONDS_BUCKETS) + 1)),
        ("write_seconds_sum", ctypes.c_double),
        # Redis circuit breaker of a worker: see CircuitState.
        ("breaker_state", ctypes.c_int32),
        # Records and lookups this worker deleted in sweeps after bulk loads.
        ("swept_records", ctypes.c_int64),
        ("swept_lookups", ctypes.c_int64),
        # Newest load fence this worker has passed (loader protocol): a time.time_ns().
        ("fence_token", ctypes.c_int64),
        ("last_error", ctypes.c_char * TEXT_CHARS),
    ]


class GlobalState(ctypes.Structure):
    """Replication state shared by all processes; the writer of each group is named."""

    _fields_ = [
        # Supervisor.
        ("supervisor_pid", ctypes.c_int64),
        ("started_at", ctypes.c_double),
        ("shutting_down", ctypes.c_int32),
        # Set by the supervisor before it stops a turn without draining it.
        ("quick_stop", ctypes.c_int32),
        ("redis_ok", ctypes.c_int32),
        ("cache_version", ctypes.c_char * VERSION_CHARS),
        # time.monotonic() until which the writer lease is known to be ours; 0 = not ours.
        ("lease_valid_until", ctypes.c_double),
        ("lease_holder", ctypes.c_char * TEXT_CHARS),  # the token seen while standing by
        ("standby", ctypes.c_int32),
        # Wall time at which Redis was found to have lost our data; 0 = never.
        ("data_lost_at", ctypes.c_double),
        # Wall time at which the supervisor restarted the stream after a data loss. A load
        # pages only after a connection made since then.
        ("stream_restart_at", ctypes.c_double),
        # Ingest.
        ("stream_state", ctypes.c_int32),
        ("connections", ctypes.c_int64),
        # Subscriptions in the current turn; the supervisor zeroes it when a turn starts.
        ("turn_subscriptions", ctypes.c_int64),
        ("reconnects", ctypes.c_int64),
        ("connected_since", ctypes.c_double),
        ("last_message_at", ctypes.c_double),
        ("stream_reason", ctypes.c_char * TEXT_CHARS),
        ("cursor", ctypes.c_char * 48),
        ("last_stream_id", ctypes.c_char * 48),  # newest stream id read off the socket
        ("cursor_saved_at", ctypes.c_double),
        # Flags worker.
        ("flags_loaded", ctypes.c_int32),
        ("flags_count", ctypes.c_int64),
        ("flags_snapshot_at", ctypes.c_double),
        # Loader.
        ("load_state", ctypes.c_int32),
        ("load_generation", ctypes.c_int64),
        ("load_started_at", ctypes.c_double),
        ("load_finished_at", ctypes.c_double),
        ("companies_loaded", ctypes.c_int32),
        ("users_loaded", ctypes.c_int32),
        ("companies_total", ctypes.c_int64),
        ("companies_done", ctypes.c_int64),
        ("users_total", ctypes.c_int64),
        ("users_done", ctypes.c_int64),
        ("load_reason", ctypes.c_char * TEXT_CHARS),
        # Start time of the latest load that completed: it repaired every data loss
        # reported before that time.
        ("complete_load_started_at", ctypes.c_double),
        # Wall time after which the load marker must exist in Redis: the loader sets it
        # once it wrote the marker at the start of a load, or read it when resuming.
        ("marker_seen_at", ctypes.c_double),
        # Time of a load that found the marker missing at its start, or its in-progress
        # value gone at its end. The probe reports the loss unless it did so already.
        ("marker_lost_in_load", ctypes.c_double),
        # Slot table size actually in use (supervisor).
        ("slot_count", ctypes.c_int32),
    ]


KEPT_ON_CLAIM = ("restarts",)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def encode_text(value: str, limit: int) -> bytes:
    """Encode ``value`` for a fixed-size char field, cut at a UTF-8 boundary."""
    data = value.encode("utf-8")[: limit - 1]
    return data.decode("utf-8", "ignore").encode("utf-8")


class StatusBlock:
    """The shared mapping, viewed as one GlobalState followed by MAX_SLOTS slots."""

    def __init__(self, buffer: mmap.mmap) -> None:
        self._buffer = buffer
        self.globals = GlobalState.from_buffer(buffer, 0)
        slot_base = ctypes.sizeof(GlobalState)
        self._slots = (ProcessSlot * MAX_SLOTS).from_buffer(buffer, slot_base)

    @classmethod
    def create(cls) -> StatusBlock:
        """Map a new zeroed anonymous shared block. Call before forking children."""
        size = ctypes.sizeof(GlobalState) + ctypes.sizeof(ProcessSlot) * MAX_SLOTS
        buffer = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)
        return cls(buffer)

    def slot(self, index: int) -> ProcessSlot:
        if not 0 <= index < MAX_SLOTS:
            raise IndexError(f"status slot {index} is outside 0..{MAX_SLOTS - 1}")
        return self._slots[index]

    def used_slots(self) -> Iterator[tuple[int, ProcessSlot]]:
        for index in range(self.globals.slot_count):
            yield index, self._slots[index]

    def claim(self, index: int, role: str) -> ProcessSlot:
        """Reset slot ``index`` for a process with ``role``; the supervisor calls this.

        Only the restart count survives: every start of a worker comes with a new queue.
        """
        slot = self.slot(index)
        kept = {name: getattr(slot, name) for name in KEPT_ON_CLAIM}
        ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(ProcessSlot))
        for name, value in kept.items():
            setattr(slot, name, value)
        slot.role = encode_text(role, ROLE_CHARS)
        slot.state = SlotState.STARTING
        slot.heartbeat = time.monotonic()
        self.globals.slot_count = max(self.globals.slot_count, index + 1)
        return slot

    def set_cache_version(self, version: str) -> None:
        self.globals.cache_version = encode_text(version, VERSION_CHARS)

    def snapshot(self) -> dict[str, Any]:
        """Copy the whole block into plain Python values for the health app."""
        now = time.monotonic()
        state = self.globals
        processes = [_slot_snapshot(slot, now) for _, slot in self.used_slots()]
        return {
            "supervisor_pid": state.supervisor_pid,
            "started_at": state.started_at,
            "shutting_down": bool(state.shutting_down),
            "redis_ok": bool(state.redis_ok),
            "cache_version": _text(state.cache_version),
            "lease": {
                "held": state.lease_valid_until > now,
                "standby": bool(state.standby),
                "holder": _text(state.lease_holder),
            },
            "data_lost_at": state.data_lost_at,
            "stream": {
                "state": StreamState.NAMES.get(state.stream_state, "unknown"),
                "connections": state.connections,
                "reconnects": state.reconnects,
                "connected_since": state.connected_since,
                "last_message_at": state.last_message_at,
                "reason": _text(state.stream_reason),
                "cursor": _text(state.cursor),
                "last_stream_id": _text(state.last_stream_id),
                "cursor_saved_at": state.cursor_saved_at,
            },
            "flags": {
                "loaded": bool(state.flags_loaded),
                "count": state.flags_count,
                "snapshot_at": state.flags_snapshot_at,
            },
            "load": {
                "state": LoadState.NAMES.get(state.load_state, "unknown"),
                "generation": state.load_generation,
                "started_at": state.load_started_at,
                "finished_at": state.load_finished_at,
                "complete_load_started_at": state.complete_load_started_at,
                "companies_loaded": bool(state.companies_loaded),
                "users_loaded": bool(state.users_loaded),
                "companies_total": state.companies_total,
                "companies_done": state.companies_done,
                "users_total": state.users_total,
                "users_done": state.users_done,
                "reason": _text(state.load_reason),
            },
            "processes": processes,
        }


def _slot_snapshot(slot: ProcessSlot, now: float) -> dict[str, Any]:
    depth = slot.enqueued_stream + slot.enqueued_load - slot.dequeued
    return {
        "role": _text(slot.role),
        "pid": slot.pid,
        "state": SlotState.NAMES.get(slot.state, "unknown"),
        "exit_code": slot.exit_code,
        "started_at": slot.started_at,
        "heartbeat_age_s": max(0.0, now - slot.heartbeat) if slot.heartbeat else None,
        "restarts": slot.restarts,
        "received": slot.received,
        "applied": slot.applied,
        "skipped": slot.skipped,
        "dropped": slot.dropped,
        "errors": slot.errors,
        "queue_depth": max(0, depth),
        "batches": slot.batches,
        "batch_items": slot.batch_items,
        "batch_size_counts": list(slot.batch_size_counts),
        "write_seconds_counts": list(slot.write_seconds_counts),
        "write_seconds_sum": slot.write_seconds_sum,
        "breaker_state": CircuitState.NAMES.get(slot.breaker_state, "unknown"),
        "redis_errors": slot.redis_errors,
        "fence_token": slot.fence_token,
        "last_error": _text(slot.last_error),
    }
