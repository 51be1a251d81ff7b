"""The servers one benchmark runs against: its own redis-server, simulator and replicator.

Everything here binds to 127.0.0.1 and stops what it started, by pid, when the
``with`` block ends. The replicator runs as ``python -m replicator`` in a subprocess,
so it imports the checkout named by ``PYTHONPATH`` (run_all.py sets it).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from bench.proc_sampler import descendants
from bench.sim_process import API_KEY, SimulatorProcess
from replicator.cursor import parse_stream_id
from tests.replicator_process import ReplicatorProcess
from tests.servers import RedisServer, start_redis

logger = logging.getLogger(__name__)

#: Settings every benchmark run of the replicator gets; a benchmark adds its own.
BASE_ENV = {"LOG_LEVEL": "info", "ASYNC_LOADER_RATE_LIMIT_RPS": "0"}

_READY_TIMEOUT_S = 120.0


def load_average() -> float:
    """Return the 1-minute load average of the machine."""
    with open("/proc/loadavg", encoding="ascii") as handle:
        return float(handle.read().split()[0])


def wait_for(
    condition: Callable[[], Any], timeout_s: float, description: str, interval_s: float
) -> Any:
    """Poll ``condition`` until it returns something truthy; raise TimeoutError after.

    ``description`` names the awaited state in the error, e.g. "/ready to return 200".
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout_s:.0f} s waiting for {description}.")
        time.sleep(interval_s)


def stream_key(stream_id: str) -> tuple[int, int]:
    """Return the sortable (ms, seq) form of a stream id; ``(0, 0)`` for an empty one."""
    return parse_stream_id(stream_id) or (0, 0)


def roles_of(details: dict[str, Any]) -> dict[int, str]:
    """Map the pid of every replicator process to its role (``ingest``, ``company-0``),
    from ``/status`` details. A child of a role's process, such as the gunicorn worker
    under ``health``, is named ``<role> (child)``."""
    roles = {int(process["pid"]): str(process["role"]) for process in details["processes"]}
    roles[int(details["supervisor_pid"])] = "supervisor"
    for pid, role in list(roles.items()):
        if role == "supervisor":
            continue  # Every process descends from it; only grandchildren need a name.
        for child in descendants(pid)[1:]:
            roles.setdefault(child, f"{role} (child)")
    return roles


@dataclass
class Stack:
    """A running redis-server, simulator process and replicator, with their settings."""

    redis: RedisServer
    simulator: SimulatorProcess
    replicator: ReplicatorProcess
    env: dict[str, str]
    redis_args: list[str] = field(default_factory=list)

    @property
    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.redis.port)

    def cursor(self) -> str:
        """Return the replicator's committed replay cursor from ``/status``."""
        return str(self.replicator.status()["stream"]["cursor"])

    def wait_applied(self, stream_id: str, timeout_s: float, interval_s: float = 0.02) -> float:
        """Wait until the cursor reaches ``stream_id``; return ``time.time()`` at that moment."""
        target = stream_key(stream_id)
        wait_for(
            lambda: stream_key(self.cursor()) >= target,
            timeout_s,
            f"the replay cursor to reach {stream_id}",
            interval_s,
        )
        return time.time()

    def roles(self) -> dict[int, str]:
        return roles_of(self.replicator.status())

    @property
    def supervisor_pid(self) -> int:
        assert self.replicator.process is not None
        return self.replicator.process.pid


def start_own_redis(*arguments: str) -> RedisServer:
    """Start a redis-server on a free loopback port with ``--bind 127.0.0.1 --save ''
    --appendonly no`` (tests.servers) and the extra ``arguments``."""
    return start_redis(*arguments)


def stop_own_redis(server: RedisServer) -> None:
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def running_stack(
    env: dict[str, str],
    log_path: Path,
    companies: int = 1000,
    users: int = 1000,
    redis_args: tuple[str, ...] = (),
) -> Iterator[Stack]:
    """Start redis-server, the simulator and the replicator; wait for ``/ready``; stop all.

    The replicator's output is copied to ``log_path`` when it stops.
    """
    with contextlib.ExitStack() as stop_later:
        server = start_own_redis(*redis_args)
        stop_later.callback(stop_own_redis, server)
        simulator = SimulatorProcess(companies, users).start()
        stop_later.callback(simulator.stop)
        full_env = {**BASE_ENV, **env}
        replicator = ReplicatorProcess(simulator.base_url, API_KEY, server.url, **full_env)
        stop_later.callback(stop_replicator, replicator, log_path)
        replicator.start()
        replicator.wait_ready(_READY_TIMEOUT_S)
        yield Stack(server, simulator, replicator, full_env, list(redis_args))


def stop_replicator(replicator: ReplicatorProcess, log_path: Path) -> None:
    """Stop the replicator with SIGTERM and move its output to ``log_path``."""
    try:
        replicator.stop()
    except AssertionError as error:  # ReplicatorProcess reports a slow stop this way
        logger.warning("The replicator did not stop cleanly: %s", error)
    finally:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(replicator.log.name, log_path)
