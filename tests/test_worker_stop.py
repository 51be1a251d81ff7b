"""A worker stopped while Redis rejects its writes counts the changes it gave up."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import redis

from replicator.router import Change
from replicator.status import StatusBlock
from tests.replicator_process import wait_until
from workers.base import Worker, WorkerSpec
from workers.entities import Outcome

FORK = multiprocessing.get_context("fork")
SLOT = 2


class RejectingApplier:
    """Stands in for the Redis writer of a worker whose Redis rejects every write."""

    def apply(self, segment: list[Change]) -> Outcome:
        raise redis.ConnectionError("Connection refused (test)")


def change(number: int) -> Change:
    return ("full", f"comp_{number}", f"1-{number}", b"{}")


def run_worker(spec: WorkerSpec) -> None:
    Worker(spec, RejectingApplier()).run()


def test_stopped_worker_counts_unwritten_changes() -> None:
    status = StatusBlock.create()
    status.globals.lease_valid_until = time.monotonic() + 600
    inbox, acks = FORK.Queue(), FORK.Queue()
    spec = WorkerSpec("company-0", "company", SLOT, inbox, acks, status, 4, 0.01)
    inbox.put([change(number) for number in range(10)])

    process = FORK.Process(target=run_worker, args=(spec,))
    process.start()
    wait_until(lambda: status.slot(SLOT).redis_errors >= 2, 30, "failed writes")
    assert process.pid is not None
    os.kill(process.pid, signal.SIGTERM)
    process.join(30)

    slot = status.slot(SLOT)
    assert process.exitcode == 0
    assert slot.applied == 0
    assert slot.received == 10
    assert slot.dropped == 10
    assert acks.empty()


class ReleasingApplier:
    """Stands in for an entity applier that parked many partials during a failed load."""

    def __init__(self, parked: int) -> None:
        self.parked = parked
        self.segments: list[int] = []

    def abort(self, generation: str) -> list[Change]:
        return [("partial", f"comp_{n}", "", b"{}") for n in range(self.parked)]

    def apply(self, segment: list[Change]) -> Outcome:
        self.segments.append(len(segment))
        return Outcome(applied=len(segment))


def test_abort_writes_released_partials_in_batches() -> None:
    status = StatusBlock.create()
    status.globals.lease_valid_until = time.monotonic() + 600
    spec = WorkerSpec("company-0", "company", SLOT, FORK.Queue(), FORK.Queue(), status, 4, 0.01)
    applier = ReleasingApplier(parked=10)
    worker = Worker(spec, applier)

    worker._control(("abort", "", "3", b""))

    assert applier.segments == [4, 4, 2]
    assert status.slot(SLOT).applied == 10
