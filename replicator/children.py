"""The supervisor's children: what each one runs and the queues between them.

Everything here is built in the supervisor before any fork, so children inherit
the queues and the status mapping. Nothing here opens a socket.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replicator import log_channels, logs, procutil
from replicator.config import Config
from replicator.dispatch import Outlet
from replicator.exits import EXIT_FAILURE
from replicator.router import COMPANY, FLAGS, USER
from replicator.status import StatusBlock

logger = logging.getLogger(__name__)

CONTEXT = multiprocessing.get_context("fork")


@dataclass
class Child:
    """One supervised process: its role, slot, entry point and current process."""

    role: str
    slot_index: int
    target: Callable[[], int | None]
    kind: str = ""  # "worker" for queue consumers, else the role
    inbox: Any = None
    process: Any = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float = 0.0
    log_channel: log_channels.ChildLogChannel | None = None


@dataclass
class Topology:
    """The queues and children of one service instance."""

    config: Config
    version: str
    status: StatusBlock
    acks: Any = field(default_factory=CONTEXT.Queue)
    control: Any = field(default_factory=CONTEXT.Queue)
    outlets: dict[tuple[str, int], Outlet] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def worker_children(self) -> list[Child]:
        return [child for child in self.children if child.kind == "worker"]

    def child(self, role: str) -> Child:
        return next(child for child in self.children if child.role == role)


#: Slot 0 is the supervisor's and slot 1 the health server's; the active children
#: (workers, loader, ingest) take the slots from here on.
HEALTH_SLOT = 1
FIRST_ACTIVE_SLOT = 2


def build_topology(config: Config, version: str, status: StatusBlock) -> Topology:
    """Create fresh queues and describe the active children, in start order.

    A new topology is built each time this replicator becomes the writer, so nothing
    queued during an earlier turn is written after another replicator's changes.
    """
    topology = Topology(config, version, status)
    _add_worker(topology, FLAGS, 0, config.flags_channel_size)
    for index in range(config.num_workers):
        _add_worker(topology, COMPANY, index, config.company_channel_size)
        _add_worker(topology, USER, index, config.user_channel_size)
    _add_loader(topology)
    _add_ingest(topology)
    return topology


def _next_slot(topology: Topology) -> int:
    return len(topology.children) + FIRST_ACTIVE_SLOT


def health_child(config: Config, status: StatusBlock) -> Child:
    """The health server, which runs for the whole life of the supervisor."""
    from replicator.health_server import run_health

    target = lambda: run_health(config, status, HEALTH_SLOT)  # noqa: E731
    return Child("health", HEALTH_SLOT, target, kind="health")


def _add_worker(topology: Topology, kind: str, shard: int, capacity: int) -> None:
    from workers.process import run_worker_process

    index = _next_slot(topology)
    role = FLAGS if kind == FLAGS else f"{kind}-{shard}"
    inbox = CONTEXT.Queue()
    topology.outlets[(kind, shard)] = Outlet(inbox, topology.status.slot(index), capacity)
    target = lambda: run_worker_process(topology, role, kind, index, inbox)  # noqa: E731
    topology.children.append(Child(role, index, target, kind="worker", inbox=inbox))


def _add_loader(topology: Topology) -> None:
    from replicator.loader import LoaderSpec, run_loader

    index = _next_slot(topology)
    entity_outlets = {key: outlet for key, outlet in topology.outlets.items() if key[0] != FLAGS}
    spec = LoaderSpec(
        topology.config, topology.version, topology.status, index, entity_outlets, topology.control
    )
    topology.children.append(Child("loader", index, lambda: run_loader(spec), kind="loader"))


def _add_ingest(topology: Topology) -> None:
    from replicator.ingest import IngestSpec, run_ingest

    index = _next_slot(topology)
    spec = IngestSpec(
        topology.config, topology.status, index, topology.outlets, topology.acks, topology.control
    )
    topology.children.append(Child("ingest", index, lambda: run_ingest(spec), kind="ingest"))


def start_child(child: Child, status: StatusBlock) -> None:
    """Fork ``child``; its slot is reset first so its counters start clean."""
    status.claim(child.slot_index, child.role)
    child.log_channel = log_channels.ChildLogChannel()
    child.process = CONTEXT.Process(
        target=_child_main, args=(child,), name=child.role, daemon=False
    )
    child.process.start()
    child.log_channel.attach_parent(child.role)
    status.slot(child.slot_index).pid = child.process.pid or 0


#: Niceness added to the data-plane children (ingest, loader, workers). When the CPUs
#: are saturated, the health server and the supervisor then get the CPU first, so
#: /health and /ready stay fast under load and a liveness probe does not time out.
DATA_PLANE_NICENESS = 3


def _child_main(child: Child) -> None:
    """Run ``child.target`` in the forked process and exit with its code."""
    procutil.die_with_parent()
    # A hangup reaches the whole process group, but only the supervisor decides to stop.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logs.set_role(child.role)
    if child.log_channel is not None:
        child.log_channel.attach_child()
    if child.kind != "health":
        os.nice(DATA_PLANE_NICENESS)
        procutil.tune_gc()
    try:
        code = child.target() or 0
    except Exception:
        logger.critical(
            "Process %s (pid %d) failed: %s", child.role, os.getpid(), traceback.format_exc()
        )
        code = EXIT_FAILURE
    logs.flush_repeats()
    sys.exit(code)
