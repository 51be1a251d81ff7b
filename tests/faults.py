"""Shared pieces of the fault tests: a replicator against the simulator and a Redis the
test owns, and the final comparison of Redis with the simulator's truth."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from replicator.pages import overlap_for
from replicator.simulator import Simulator, SimulatorConfig
from tests import truth
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.servers import RedisServer, start_redis

API_KEY = "fault-test-key"


@contextmanager
def environment(
    companies: int = 80, users: int = 120, flags: int = 8, **simulator: Any
) -> Iterator[tuple[Simulator, RedisServer]]:
    server = start_redis()
    config = SimulatorConfig(
        api_key=API_KEY, companies=companies, users=users, flags=flags, **simulator
    )
    try:
        with Simulator(config) as sim:
            yield sim, server
    finally:
        server.stop()


def page_offset(index: int, page_size: int = 100) -> int:
    """Return the offset that the loader requests for page ``index`` (pages overlap)."""
    return index * (page_size - overlap_for(page_size))


def replicator(sim: Simulator, server: RedisServer, **env: str) -> ReplicatorProcess:
    return ReplicatorProcess(sim.base_url, API_KEY, server.url, **env).start()


def marker(sim: Simulator) -> str:
    """Publish an unchanged flag; once the cursor reaches it, everything before is written."""
    first = sim.truth()["flags"][0]
    return sim.upsert_flag(first)


def assert_converged(
    sim: Simulator, server: RedisServer, process: ReplicatorProcess, timeout_s: float = 30.0
) -> None:
    """Stop the changes, wait until the replicator wrote everything, compare with the truth."""
    sim.stop_mutations()
    version = process.wait_ready(timeout_s)["cache_version"]
    process.wait_cursor(marker(sim), timeout_s)
    wait_until(
        lambda: process.status()["load"]["state"] in ("complete", "skipped"),
        timeout_s,
        "the bulk load to finish",
    )
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        problems = truth.differences(client, sim.truth(), version)
    finally:
        client.close()
    assert problems == [], "\n".join(problems[:40])


def ready_status(process: ReplicatorProcess) -> int | None:
    response = process.get("/ready")
    return None if response is None else response.status_code


def pause(server: RedisServer) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def resume(server: RedisServer) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)


def crash_and_restart(server: RedisServer) -> None:
    """SIGKILL the server this test started, then start it on the same port and directory.

    It saves nothing on the way down, so it comes back with its last snapshot, if any.
    """
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    server.process = None
    server.start()


def role_pid(process: ReplicatorProcess, role: str) -> int:
    for entry in process.status()["processes"]:
        if entry["role"] == role and entry["state"] == "running":
            return int(entry["pid"])
    raise AssertionError(f"no running {role} in {process.status()['processes']}")


def wait_restarted(
    process: ReplicatorProcess, role: str, old_pid: int, timeout_s: float = 30.0
) -> int:
    def restarted() -> int:
        try:
            pid = role_pid(process, role)
        except AssertionError:
            return 0
        return pid if pid != old_pid else 0

    return int(wait_until(restarted, timeout_s, f"{role} to be restarted"))


LOAD_STARTED = re.compile(r"Bulk load \d+ started")


def loads_started(process: ReplicatorProcess) -> int:
    return len(LOAD_STARTED.findall(process.output()))


def measure(call: Any) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started
