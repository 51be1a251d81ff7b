"""Bounded delivery of changes to worker queues, shared by the ingest and the loader.

Changes are gathered per queue and put as one list, so a burst costs one queue
operation per shard instead of one per message. Capacity is counted in messages
through the owning worker's status slot; a producer that finds a shard full waits
until the worker catches up, so a burst is never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from replicator.router import Change
from replicator.status import ProcessSlot

WAIT_STEP_S = 0.001
#: A shard buffer is sent once it holds this many changes, even mid-burst.
MAX_BUNDLE = 256


@dataclass
class Outlet:
    """One worker queue, its owner's status slot and its capacity in messages."""

    queue: Any
    slot: ProcessSlot
    capacity: int


class Dispatcher:
    """Buffers changes per outlet and delivers them with backpressure.

    ``producer`` selects the counter this dispatcher advances (``stream`` for the
    ingest, ``load`` for the loader); each counter has a single writer.
    ``on_wait`` is called while waiting for room (heartbeats, stop checks); when it
    returns False the wait is abandoned and the bundle is kept for the next flush.
    """

    def __init__(
        self,
        outlets: dict[tuple[str, int], Outlet],
        producer: str,
        on_wait: Callable[[], bool] | None = None,
    ) -> None:
        self.outlets = outlets
        self.counter = "enqueued_stream" if producer == "stream" else "enqueued_load"
        self.on_wait = on_wait or (lambda: True)
        self.buffers: dict[tuple[str, int], list[Change]] = {}
        self.waited_s = 0.0

    def add(self, kind: str, shard: int, change: Change) -> None:
        buffer = self.buffers.setdefault((kind, shard), [])
        buffer.append(change)
        if len(buffer) >= MAX_BUNDLE:
            self._deliver((kind, shard))

    def broadcast(self, kind: str, change: Change) -> None:
        """Queue ``change`` for every shard of ``kind``."""
        for outlet_kind, shard in self.outlets:
            if outlet_kind == kind:
                self.add(kind, shard, change)

    def pending(self) -> int:
        return sum(len(buffer) for buffer in self.buffers.values())

    def flush(self) -> bool:
        """Deliver every buffer; False when a wait for room was abandoned."""
        return all(self._deliver(target) for target in list(self.buffers))

    def depth(self, kind: str, shard: int) -> int:
        slot = self.outlets[(kind, shard)].slot
        return slot.enqueued_stream + slot.enqueued_load - slot.dequeued

    def _deliver(self, target: tuple[str, int]) -> bool:
        bundle = self.buffers.get(target)
        if not bundle:
            self.buffers.pop(target, None)
            return True

        outlet = self.outlets[target]
        if not self._wait_for_room(outlet, len(bundle)):
            return False

        outlet.queue.put(bundle)
        setattr(outlet.slot, self.counter, getattr(outlet.slot, self.counter) + len(bundle))
        del self.buffers[target]
        return True

    def _wait_for_room(self, outlet: Outlet, size: int) -> bool:
        started = 0.0
        while True:
            slot = outlet.slot
            depth = slot.enqueued_stream + slot.enqueued_load - slot.dequeued
            # An empty queue always takes the bundle, even one above capacity.
            if depth <= 0 or depth + size <= outlet.capacity:
                break
            if not started:
                started = time.monotonic()
            if not self.on_wait():
                return False
            time.sleep(WAIT_STEP_S)
        if started:
            self.waited_s += time.monotonic() - started
        return True
