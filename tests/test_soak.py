"""Soak: random faults for a few minutes under a steady stream of changes, then Redis must
equal the simulator's truth. SOAK_SECONDS sets the length (default 150) and SOAK_SEED the
random sequence, which the test prints so a failure can be replayed."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from replicator.simulator import Simulator
from tests.faults import (
    assert_converged,
    environment,
    page_offset,
    pause,
    ready_status,
    replicator,
    resume,
    role_pid,
)
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.servers import RedisServer

ROLES = ("ingest", "loader", "flags", "company-0", "company-1", "user-0", "user-1")


def fault_menu(
    sim: Simulator, server: RedisServer, process: ReplicatorProcess, rng: random.Random
) -> dict[str, Callable[[], Any]]:
    def kill_child() -> None:
        # No running process with that role while the processes restart after a fault.
        with contextlib.suppress(AssertionError):
            os.kill(role_pid(process, rng.choice(ROLES)), signal.SIGKILL)

    def pause_redis() -> None:
        pause(server)
        time.sleep(rng.uniform(1, 5))
        resume(server)

    def stall() -> None:
        sim.faults.stall()
        time.sleep(4)
        sim.faults.clear_stall()

    def slow_reload() -> None:
        sim.faults.slow_page("/companies", offset=page_offset(1), delay_s=2.0)
        sim.faults.send_reload()

    def rate_limited_reload() -> None:
        sim.faults.rate_limit_page("/users", offset=0, retry_after_s=1.0)
        sim.faults.send_reload()

    def failed_page_reload() -> None:
        sim.faults.fail_page("/companies", offset=0, status=500, times=2)
        sim.faults.send_reload()

    def flushall() -> None:
        client = redis.Redis(host="127.0.0.1", port=server.port)
        client.flushall()
        client.close()
        # Until the probe notices the loss, /status still shows the last load as
        # complete, and a comparison right after this fault would read an empty Redis.
        wait_until(lambda: ready_status(process) == 503, 30, "the data loss to be noticed")

    return {
        "close": lambda: sim.faults.close(code=rng.choice((1000, 1001, 1011))),
        "reset": lambda: sim.faults.reset(),
        "stall": stall,
        "reload": lambda: sim.faults.send_reload(),
        "slow reload": slow_reload,
        "rate-limited reload": rate_limited_reload,
        "failed page reload": failed_page_reload,
        "kill a child": kill_child,
        "pause redis": pause_redis,
        "malformed frame": lambda: sim.faults.send_wrong_types(),
        "flushall": flushall,
    }


@pytest.mark.slow
def test_soak_random_faults_converge() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "150"))
    seed = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"soak seed {seed}, {seconds:.0f}s")
    injected: list[str] = []

    with environment(companies=300, users=400, flags=15) as (sim, server):
        process = replicator(
            sim,
            server,
            WS_PING_INTERVAL="1s",
            WS_PONG_WAIT="3s",
            LOADER_PAGE_RETRIES="1",
            LOADER_RETRY_INTERVAL="3s",
            CIRCUIT_BREAKER_TIMEOUT="2s",
            LOG_LEVEL="info",
        )
        try:
            process.wait_ready(timeout_s=60)
            sim.start_mutations(60)
            menu = fault_menu(sim, server, process, rng)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(rng.uniform(3, 9))
                name = rng.choice(sorted(menu))
                injected.append(name)
                menu[name]()
            assert_converged(sim, server, process, timeout_s=120)
        finally:
            print("faults injected:", ", ".join(injected))
            code = process.stop()

    assert code == 0, process.output()[-3000:]
    assert len(injected) >= seconds / 12
