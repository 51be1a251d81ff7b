"""Bursts of pre-built company changes, for benchmarks.

A burst publishes N company ``full`` messages, each about 1.5 KB with three keys, from a
pool of records encoded before the burst starts, so the event loop does no JSON encoding.
Each change is applied to the truth like any other. The writer of the first connection
that sends a burst message records ``time.time_ns()`` for its stream id in
``Service.send_times``, so a benchmark can compute how long a change took to arrive
where it measures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson

from replicator.simulator.connections import Hub
from replicator.simulator.entities import make_burst_company
from replicator.simulator.service import Service
from replicator.simulator.stream import ROUTE_COMPANY, change_frame

#: Messages published between two checks of the connections' queues.
_CHUNK = 256
#: A burst at full speed waits while a connection has more than this many queued messages.
MAX_BACKLOG = 20_000
_PLACEHOLDER = "@@stream-id@@"


@dataclass
class BurstResult:
    """Outcome of one burst."""

    count: int
    started_ns: int
    finished_ns: int
    stream_ids: list[str] = field(default_factory=list)

    @property
    def publish_rate(self) -> float:
        """Messages handed to the fan-out per second during the burst."""
        elapsed_s = (self.finished_ns - self.started_ns) / 1e9
        return self.count / elapsed_s if elapsed_s > 0 else float("inf")


Pool = list[tuple[str, dict[str, object], tuple[str, str]]]


def build_pool(service: Service, size: int) -> Pool:
    """Encode ``size`` burst companies: (id, record, frame text before and after the stream id)."""
    pool = []
    for index in range(max(1, size)):
        record = make_burst_company(service.catalog, index)
        frame = change_frame(
            "rulesengine.Company",
            "full",
            str(record["id"]),
            _PLACEHOLDER,
            orjson.dumps(record).decode(),
        )
        head, _, tail = frame.partition(_PLACEHOLDER)
        pool.append((str(record["id"]), record, (head, tail)))
    return pool


def _backlog(hub: Hub) -> int:
    return max((len(connection.queue) for connection in hub.open.values()), default=0)


async def run_burst(service: Service, hub: Hub, pool: Pool, count: int, rate: float) -> BurstResult:
    """Publish ``count`` changes from the pool at ``rate`` per second (0: as fast as possible).

    At full speed the burst yields to the writers after every chunk and waits while a
    connection's queue is longer than MAX_BACKLOG, so it measures what clients receive.
    """
    loop = asyncio.get_running_loop()
    result = BurstResult(count, time.time_ns(), 0)
    companies = service.state.companies
    start = loop.time()
    sent = 0
    while sent < count:
        if rate > 0:
            due = min(count, int((loop.time() - start) * rate) + 1)
        else:
            due = min(count, sent + _CHUNK)
        with service.lock:
            for position in range(sent, due):
                company_id, record, parts = pool[position % len(pool)]
                companies.put(record)
                message = service.publish(
                    ROUTE_COMPANY, "full", company_id, "", track=True, parts=parts
                )
                result.stream_ids.append(message.stream_id)
        sent = due
        if rate > 0:
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
            continue
        await asyncio.sleep(0)
        while _backlog(hub) > MAX_BACKLOG:
            await asyncio.sleep(0.001)
    result.finished_ns = time.time_ns()
    return result
