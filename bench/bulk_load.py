"""Benchmark 3: bulk load of N companies and N users from a fresh start to ``/ready``.

The simulator runs as ``python -m replicator simulate`` in its own process, so its
CPU is accounted apart from the replicator's. The replicator starts against an empty
redis-server with the loader's rate limit off. Every 0.25 s the benchmark sums VmRSS
and PSS over the replicator's supervisor and all its descendants, and reads the CPU
time of every process. The clock runs from the replicator's start to the first 200
response from ``/ready``, polled every 0.1 s.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench import profiling
from bench.proc_sampler import Watch
from bench.sim_process import API_KEY
from bench.stack import (
    BASE_ENV,
    load_average,
    roles_of,
    start_own_redis,
    stop_own_redis,
    stop_replicator,
    wait_for,
)
from tests.replicator_process import ReplicatorProcess
from tests.servers import free_port, wait_for_port

logger = logging.getLogger(__name__)

#: Loader settings: 100 records a page, 8 page requests in flight, no rate limit.
LOADER_ENV = {
    "ASYNC_LOADER_PAGE_SIZE": "100",
    "ASYNC_LOADER_MAX_CONCURRENT_REQUESTS": "8",
    "ASYNC_LOADER_RATE_LIMIT_RPS": "0",
}
FLAGS = 50
#: Profiling of the largest load: which processes, when and for how long.
PROFILED_ROLES = ("loader", "company-0", "user-0", "supervisor")
PROFILE_LEAD_S = 20.0
PROFILE_S = 10.0
_SIMULATOR_START_S = 120.0
_POLL_S = 0.1


@dataclass
class BulkLoadOptions:
    """Dataset sizes: each size loads that many companies and as many users."""

    sizes: tuple[int, ...] = (100_000, 1_000_000)
    ready_timeout_s: float = 3600.0
    profile: bool = True


def simulate_command(port: int | str, size: int | str) -> list[str]:
    return [
        sys.executable, "-m", "replicator", "simulate",
        "--companies", str(size), "--users", str(size), "--flags", str(FLAGS),
        "--rate", "0", "--retention", "0", "--stats-interval", "3600",
        "--log-level", "WARNING", "--port", str(port), "--api-key", API_KEY,
    ]  # fmt: skip


def _start_simulator(size: int, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(simulate_command(port, size), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, _SIMULATOR_START_S)
    except TimeoutError:
        process.kill()
        process.wait(10)
        raise
    return process, port


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _ready(replicator: ReplicatorProcess) -> float | None:
    response = replicator.get("/ready")
    if response is None or response.status_code != 200:
        if replicator.process is not None and replicator.process.poll() is not None:
            raise RuntimeError(
                f"The replicator exited with {replicator.process.returncode} during the load."
            )
        return None
    return time.time()


class LoadProfiler(threading.Thread):
    """Records py-spy profiles of the loading processes once, ``lead_s`` after start."""

    def __init__(self, replicator: ReplicatorProcess, simulator_pid: int, out_dir: Path) -> None:
        super().__init__(name="load-profiler", daemon=True)
        self.replicator = replicator
        self.simulator_pid = simulator_pid
        self.out_dir = out_dir
        self.cancelled = threading.Event()
        self.profiles: dict[str, Any] = {}

    def run(self) -> None:
        if self.cancelled.wait(PROFILE_LEAD_S):
            return
        pids = {
            str(process["role"]): int(process["pid"])
            for process in self.replicator.status()["processes"]
            if process["role"] in PROFILED_ROLES
        }
        pids["simulator"] = self.simulator_pid
        logger.info("Profiling the bulk load: %s.", ", ".join(sorted(pids)))
        self.profiles = profiling.profile(pids, PROFILE_S, self.out_dir)


def _measure(
    replicator: ReplicatorProcess,
    simulator_pid: int,
    options: BulkLoadOptions,
    profile_dir: Path | None,
) -> dict[str, Any]:
    started = time.time()
    replicator.start()
    assert replicator.process is not None
    profiler = None
    if profile_dir is not None:
        profiler = LoadProfiler(replicator, simulator_pid, profile_dir)
        profiler.start()
    roots = {"replicator": replicator.process.pid, "simulator": simulator_pid}
    with Watch(roots, from_zero=("replicator",)) as watch:
        ready_at = wait_for(
            lambda: _ready(replicator), options.ready_timeout_s, "/ready to return 200", _POLL_S
        )
        details = replicator.status()
        watch.roles = roles_of(details)
    if profiler is not None:
        profiler.cancelled.set()
        profiler.join()
    tree = watch.samplers["replicator"]
    load = details["load"]
    return {
        "profiles": profiler.profiles if profiler is not None else {},
        "ready_s": ready_at - started,
        "load_s": load["finished_at"] - load["started_at"],
        "loaded": load["companies_done"] + load["users_done"],
        "peak_rss_mib": tree.peak_rss_mib,
        "peak_pss_mib": tree.peak_pss_mib,
        "peak_pss_mib_by_process": watch.peak_pss_mib("replicator"),
        "simulator_peak_rss_mib": watch.samplers["simulator"].peak_rss_mib,
        "processes": max((sample.processes for sample in tree.samples), default=0),
        "cpu_percent": watch.cpu_percent(),
        "machine_busy_percent": 100 * watch.machine_busy,
    }


def run_size(
    size: int, options: BulkLoadOptions, work_dir: Path, profile: bool = False
) -> dict[str, Any]:
    """Load ``size`` companies and ``size`` users once; return time, rate, memory, CPU.

    With ``profile``, py-spy records the loading processes for PROFILE_S seconds,
    PROFILE_LEAD_S after the start, if the load is still running then.
    """
    load_before = load_average()
    server = start_own_redis()
    sim_log_path = work_dir / f"bulk-{size}-simulator.log"
    try:
        with open(sim_log_path, "wb") as sim_log:
            simulator, port = _start_simulator(size, sim_log)
            try:
                env = {**BASE_ENV, **LOADER_ENV}
                api_url = f"http://127.0.0.1:{port}"
                replicator = ReplicatorProcess(api_url, API_KEY, server.url, **env)
                try:
                    profile_dir = work_dir / "profiles" / f"bulk-{size}" if profile else None
                    result = _measure(replicator, simulator.pid, options, profile_dir)
                finally:
                    stop_replicator(replicator, work_dir / f"bulk-{size}-replicator.log")
            finally:
                _stop_process(simulator)
        result["redis_used_memory_mib"] = _redis_memory_mib(server.port)
    finally:
        stop_own_redis(server)
    result.update(
        size=size,
        entities=2 * size,
        entities_per_s=2 * size / result["ready_s"],
        load_before=load_before,
        load_after=load_average(),
    )
    logger.info(
        "Bulk load of %d + %d: ready after %.1f s, %.0f entities/s, peak PSS %.0f MiB.",
        size,
        size,
        result["ready_s"],
        result["entities_per_s"],
        result["peak_pss_mib"],
    )
    return result


def _redis_memory_mib(port: int) -> float:
    info = redis.Redis(host="127.0.0.1", port=port).info("memory")
    return float(info["used_memory"]) / (1024 * 1024)


def run(options: BulkLoadOptions, work_dir: Path) -> dict[str, Any]:
    """Run benchmark 3 for every size of ``options``, smallest first."""
    largest = max(options.sizes)
    return {
        "env": LOADER_ENV,
        "flags": FLAGS,
        "simulate_command": " ".join(["python", *simulate_command("<port>", "<N>")[1:]]),
        "sizes": [
            run_size(size, options, work_dir, profile=options.profile and size == largest)
            for size in sorted(options.sizes)
        ],
    }
