"""The two references of the throughput benchmark: the Redis ceiling and a naive client.

The ceiling is ``redis-benchmark`` sending pipelined SETs of the record's size to the
benchmark's own redis-server. The naive baseline is bench/naive_baseline.py, run
against its own redis-server and simulator; its applied rate comes from Redis, by
counting SET calls in ``INFO commandstats``.
"""

from __future__ import annotations

import logging
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench.proc_sampler import Watch
from bench.sim_process import API_KEY, SimulatorProcess
from bench.stack import Stack, load_average, start_own_redis, stop_own_redis, wait_for
from replicator import keys
from replicator.version import schema_version

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
PIPELINE_DEPTH = 64
_RATE = re.compile(r"SET: ([\d.]+) requests per second")
_SUBSCRIBE_TIMEOUT_S = 30.0
_APPLY_TIMEOUT_S = 600.0


def record_size(stack: Stack, company_id: str) -> int:
    """Return the stored size in bytes of one burst company's record."""
    version = str(stack.replicator.status()["cache_version"])
    size = stack.client.strlen(keys.company_key(version, company_id))
    return int(size)


def redis_benchmark_command(port: int, value_bytes: int, requests: int) -> list[str]:
    binary = shutil.which("redis-benchmark") or "redis-benchmark"
    return [
        binary, "-h", "127.0.0.1", "-p", str(port), "-t", "set",
        "-P", str(PIPELINE_DEPTH), "-d", str(value_bytes), "-n", str(requests), "-q",
    ]  # fmt: skip


def redis_benchmark(port: int, value_bytes: int, requests: int) -> dict[str, Any]:
    """Run pipelined SETs against the given redis-server; return SETs per second."""
    command = redis_benchmark_command(port, value_bytes, requests)
    load = load_average()
    output = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    match = _RATE.search(output.stdout.replace("\r", "\n"))
    if match is None:
        raise RuntimeError(f"Cannot find the SET rate in redis-benchmark output: {output.stdout!r}")
    return {
        "command": " ".join(["redis-benchmark", *command[1:]]),
        "value_bytes": value_bytes,
        "requests": requests,
        "sets_per_s": float(match.group(1)),
        "load": load,
    }


def _set_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


def _wait_subscribed(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The naive baseline exited with {process.returncode}.")
        readable, _, _ = select.select([process.stdout], [], [], 0.1)
        if readable and process.stdout.readline().strip() == "subscribed":
            return
    raise TimeoutError(f"The naive baseline did not subscribe within {_SUBSCRIBE_TIMEOUT_S} s.")


def naive_command(simulator: SimulatorProcess, redis_port: int) -> list[str]:
    return [
        sys.executable, str(BENCH_DIR / "naive_baseline.py"),
        "--url", simulator.base_url.replace("http", "ws", 1) + "/datastream",
        "--api-key", API_KEY, "--redis-port", str(redis_port),
        "--cache-version", schema_version(),
    ]  # fmt: skip


def _measure_naive(
    simulator: SimulatorProcess, client: redis.Redis, pid: int, count: int, redis_pid: int
) -> dict[str, Any]:
    expected = _set_calls(client) + 4 * count  # a record and three lookups per change

    def all_written() -> float | None:
        return time.time() if _set_calls(client) >= expected else None

    roots = {"naive baseline": pid, "simulator": simulator.pid, "redis-server": redis_pid}
    with Watch(roots) as watch:
        simulator.send_burst(count, 0)
        done_at = wait_for(
            all_written, _APPLY_TIMEOUT_S, f"the naive baseline to write {count} changes", 0.02
        )
        burst = simulator.wait_burst()
    applied_rate = count / (done_at - burst.started_ns / 1e9)
    return {
        "count": count,
        "applied_rate": applied_rate,
        "key_writes_per_s": 4 * applied_rate,
        "cpu_percent": watch.cpu_percent(),
        "machine_busy_percent": 100 * watch.machine_busy,
        "load": load_average(),
    }


def naive_baseline(count: int, work_dir: Path) -> dict[str, Any]:
    """Start a redis-server, a simulator and the naive baseline; apply ``count`` changes."""
    server = start_own_redis()
    log_path = work_dir / "naive-baseline.log"
    try:
        with SimulatorProcess(companies=1000, users=0) as simulator, open(log_path, "w") as log:
            command = naive_command(simulator, server.port)
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
            try:
                _wait_subscribed(process)
                client = redis.Redis(host="127.0.0.1", port=server.port)
                assert server.process is not None
                _measure_naive(simulator, client, process.pid, 1000, server.process.pid)
                result = _measure_naive(simulator, client, process.pid, count, server.process.pid)
            finally:
                process.terminate()
                process.wait(30)
    finally:
        stop_own_redis(server)
    result["command"] = " ".join(["python", "bench/naive_baseline.py", *command[2:]])
    return result
