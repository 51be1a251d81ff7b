"""Entry point of a worker process: build its Redis client and applier, then run."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from replicator import redis_conn
from replicator.router import FLAGS
from workers.base import Worker, WorkerSpec
from workers.entities import EntityApplier
from workers.flags import FlagsApplier
from workers.writer import Writer

if TYPE_CHECKING:
    from replicator.children import Topology


def run_worker_process(
    topology: Topology, role: str, kind: str, slot_index: int, inbox: Any
) -> int:
    config = topology.config
    status = topology.status
    status.slot(slot_index).pid = os.getpid()

    client = redis_conn.create_client(config.redis)
    writer = Writer(client, config.cache_ttl_s)
    applier: Any
    if kind == FLAGS:
        applier = FlagsApplier(topology.version, writer, status)
    else:
        loaded_field = "companies_loaded" if kind == "company" else "users_loaded"
        applier = EntityApplier(
            kind,
            topology.version,
            writer,
            first_load_done=lambda: bool(getattr(status.globals, loaded_field)),
        )

    spec = WorkerSpec(
        role=role,
        kind=kind,
        slot_index=slot_index,
        inbox=inbox,
        acks=topology.acks,
        status=status,
        batch_size=config.batch_size,
        batch_timeout_s=config.batch_timeout_s,
        breaker_threshold=config.breaker_threshold,
        breaker_timeout_s=config.breaker_timeout_s,
    )
    Worker(spec, applier).run()
    return 0
