"""CPU per company change of the ingest's frame path and of a company worker's batch path.

Run it as a module from the checkout, with the Python that has the replicator's
dependencies, so that it imports this checkout::

    python -m bench.hot_paths                               # both paths, 5 repetitions
    python -m bench.hot_paths --only worker --repeat 9 --changes 60000

Both paths get the same company ``full`` changes as the throughput benchmark: about
1.6 KB each, three keys, from a pool of 1,000 companies, with stream ids in order.

- ``ingest``: a bare WebSocket server in another process sends every frame at once. The
  ingest's own code reads them off the socket, routes them, tracks their stream ids and
  hands them to two company queues. Two drain processes empty the queues and
  acknowledge every stream id, so the cursor keeper completes them as in production.
  The CPU of this process, all threads, is counted until the committed cursor reaches
  the last stream id.
- ``worker``: a company worker process runs its real loop (queue, decode, normalise,
  plan, one pipeline per batch of BATCH_SIZE to a redis-server started here) and counts
  its own CPU from before its loop to its end.

Each repetition runs the paths one after the other, and the report gives the median,
minimum and maximum microseconds of CPU per change. The numbers depend on the machine
and on what else runs on it. To find the hot spots, run a path under py-spy, e.g.
``py-spy record --subprocesses -o profile.svg -- python -m bench.hot_paths --only worker``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from bench import frame_server
from replicator import procutil, records
from replicator.config import Config, load_config
from replicator.dispatch import Outlet
from replicator.ingest import Ingest, IngestSpec
from replicator.replay import CursorKeeper
from replicator.router import COMPANY, Change
from replicator.simulator.catalog import build_catalog
from replicator.simulator.entities import make_burst_company
from replicator.simulator.stream import change_frame
from replicator.status import StatusBlock
from tests.servers import start_redis

CONTEXT = multiprocessing.get_context("fork")
VERSION = "benchver"
SHARDS = 2
#: Worker settings of the throughput benchmark (bench/throughput.py TUNED_ENV).
BATCH_SIZE = 200
CHANNEL_SIZE = 2000
#: Changes per queue put in the worker path, as the ingest's dispatcher sends them.
BUNDLE = 256
_WAIT_S = 300.0


def build_changes(count: int, pool_size: int = 1000) -> list[Change]:
    """Return ``count`` company ``full`` changes as the router makes them from frames."""
    catalog = build_catalog(7)
    pool = []
    for index in range(pool_size):
        record = make_burst_company(catalog, index)
        pool.append((str(record["id"]), orjson.dumps(record).decode()))
    base_ms = 1_800_000_000_000
    changes = []
    for position in range(count):
        entity_id, data_json = pool[position % pool_size]
        stream_id = f"{base_ms + position // 4}-{position % 4}"
        frame = change_frame("rulesengine.Company", "full", entity_id, stream_id, data_json)
        changes.append(("full", entity_id, stream_id, frame.encode()))
    return changes


def make_config(redis_url: str, datastream_url: str = "ws://127.0.0.1:1/datastream") -> Config:
    environ = {
        "SCHEMATIC_API_KEY": "bench-key",
        "SCHEMATIC_DATASTREAM_URL": datastream_url,
        "REDIS_URL": redis_url,
        "NUM_WORKERS": str(SHARDS),
        "BATCH_SIZE": str(BATCH_SIZE),
        "BATCH_TIMEOUT": "20ms",
        "COMPANY_CHANNEL_SIZE": str(CHANNEL_SIZE),
    }
    return load_config(environ)


# Ingest ------------------------------------------------------------------------------


def measure_ingest(redis_url: str, changes: list[Change]) -> float:
    """Return the ingest's CPU microseconds per change for one pass over ``changes``."""
    server = frame_server.listen()
    port = server.getsockname()[1]
    frames = frame_server.encode_frames(change[3] for change in changes)
    sender = CONTEXT.Process(target=frame_server.serve_once, args=(server, frames), daemon=True)
    sender.start()
    server.close()
    del frames

    config = make_config(redis_url, f"ws://127.0.0.1:{port}/datastream")
    status = StatusBlock.create()
    acks: Any = CONTEXT.Queue()
    outlets, drains = _start_drains(status, acks)
    procutil.tune_gc()  # As replicator.children does in every data-plane child.
    ingest = Ingest(IngestSpec(config, status, 0, outlets, acks, queue.Queue()))
    keeper = CursorKeeper(config, status, ingest.tracker, acks)
    ingest.keeper = keeper
    keeper.start()

    started = time.process_time()
    reason = ingest._run_session()
    _wait_until(lambda: ingest.tracker.committed == changes[-1][2], "the cursor to commit")
    used = time.process_time() - started

    keeper.finish(0.0)
    _stop_drains(outlets, drains)
    sender.join(_WAIT_S)
    received = status.slot(0).received
    if received != len(changes):
        raise RuntimeError(f"The ingest read {received} of {len(changes)} frames ({reason}).")
    return used / len(changes) * 1e6


def _start_drains(
    status: StatusBlock, acks: Any
) -> tuple[dict[tuple[str, int], Outlet], list[Any]]:
    status.claim(0, "ingest")
    outlets, drains = {}, []
    for shard in range(SHARDS):
        slot = status.claim(shard + 1, f"{COMPANY}-{shard}")
        inbox = CONTEXT.Queue()
        outlets[(COMPANY, shard)] = Outlet(inbox, slot, CHANNEL_SIZE)
        drain = CONTEXT.Process(target=_drain, args=(inbox, status, shard + 1, acks), daemon=True)
        drain.start()
        drains.append(drain)
    return outlets, drains


def _drain(inbox: Any, status: StatusBlock, slot_index: int, acks: Any) -> None:
    """Stand in for a worker: take bundles off the queue and acknowledge them."""
    slot = status.slot(slot_index)
    while True:
        bundle = inbox.get()
        if bundle is None:
            return
        slot.dequeued += len(bundle)
        acks.put([change[2] for change in bundle])


def _stop_drains(outlets: dict[tuple[str, int], Outlet], drains: list[Any]) -> None:
    for outlet in outlets.values():
        outlet.queue.put(None)
    for drain in drains:
        drain.join(_WAIT_S)


# Worker ------------------------------------------------------------------------------


def measure_worker(redis_url: str, changes: list[Change]) -> float:
    """Return a company worker's CPU microseconds per change for one pass over ``changes``."""
    redis.Redis.from_url(redis_url).flushall()
    status = StatusBlock.create()
    status.claim(0, f"{COMPANY}-0")
    status.globals.lease_valid_until = time.monotonic() + 3600.0
    inbox: Any = CONTEXT.Queue()
    acks: Any = CONTEXT.Queue()
    results: Any = CONTEXT.Queue()
    config = make_config(redis_url)
    worker = CONTEXT.Process(target=_run_worker, args=(config, status, inbox, acks, results))
    worker.start()

    for start in range(0, len(changes), BUNDLE):
        inbox.put(changes[start : start + BUNDLE])
    acknowledged = 0
    while acknowledged < len(changes):
        acknowledged += len(acks.get(timeout=_WAIT_S))
    inbox.put(None)
    used, applied = results.get(timeout=_WAIT_S)
    worker.join(_WAIT_S)

    if applied != len(changes):
        raise RuntimeError(f"The worker applied {applied} of {len(changes)} changes.")
    _check_stored(redis_url, changes[-1])
    return float(used) / len(changes) * 1e6


def _run_worker(config: Config, status: StatusBlock, inbox: Any, acks: Any, results: Any) -> None:
    from replicator import redis_conn
    from workers.base import Worker, WorkerSpec
    from workers.entities import EntityApplier
    from workers.writer import Writer

    writer = Writer(redis_conn.create_client(config.redis), config.cache_ttl_s)
    applier = EntityApplier(COMPANY, VERSION, writer)
    spec = WorkerSpec(
        f"{COMPANY}-0", COMPANY, 0, inbox, acks, status, config.batch_size, config.batch_timeout_s
    )
    procutil.tune_gc()
    started = time.process_time()
    Worker(spec, applier).run()
    results.put((time.process_time() - started, status.slot(0).applied))


def _check_stored(redis_url: str, change: Change) -> None:
    """Raise unless Redis contains the normalised record of ``change``."""
    data = orjson.loads(change[3])["data"]
    expected = records.encode(records.normalize_company(data))
    stored = redis.Redis.from_url(redis_url).get(f"schematic:{COMPANY}:{VERSION}:{change[1]}")
    if stored != expected:
        raise RuntimeError(f"Redis does not contain the record of company {change[1]!r}.")


# Running -----------------------------------------------------------------------------


def _wait_until(condition: Callable[[], bool], description: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {_WAIT_S:.0f} s waiting for {description}.")
        time.sleep(0.01)


def _report(name: str, samples: list[float]) -> str:
    return (
        f"{name:<7} median {statistics.median(samples):6.1f} µs/change "
        f"(min {min(samples):.1f}, max {max(samples):.1f}, n={len(samples)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=40_000, help="changes per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each path")
    parser.add_argument("--only", choices=("ingest", "worker"), help="measure one path only")
    args = parser.parse_args(argv)

    changes = build_changes(args.changes)
    paths = {"ingest": measure_ingest, "worker": measure_worker}
    if args.only:
        paths = {args.only: paths[args.only]}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    server = start_redis()
    try:
        for _ in range(args.repeat):
            for name, measure in paths.items():
                samples[name].append(measure(server.url, changes))
    finally:
        server.stop()
    for name, values in samples.items():
        print(_report(name, values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
