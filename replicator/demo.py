"""The ``demo`` command: the simulator, a Redis and the replicator, wired together.

It needs nothing beyond the package. It uses the Redis named by REDIS_URL or
REDIS_ADDR when one of them is set and a server responds there; otherwise it starts
fakeredis's TCP server in this process, so it never writes to a Redis it was not
pointed at. The replicator runs as a child process in its own session, so a
Ctrl-C reaches only this command, which then stops everything in order.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from replicator import logs
from replicator.config import ConfigError, RedisConfig, redis_config_from

logger = logging.getLogger(__name__)

DEMO_API_KEY = "demo-api-key"
READY_TIMEOUT_S = 120.0


@dataclass
class DemoRedis:
    """The Redis the demo writes to, and the embedded server when it started one.

    ``url`` is set only for the embedded server; a configured Redis is passed on to the
    replicator through the environment variables that configured it.
    """

    host: str
    port: int
    description: str
    url: str = ""
    server: Any = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--companies", type=int, default=200, help="companies to simulate")
    parser.add_argument("--users", type=int, default=500, help="users to simulate")
    parser.add_argument("--flags", type=int, default=20, help="flags to simulate")
    parser.add_argument(
        "--rate", type=float, default=2.0, help="simulated changes per second (default 2)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated dataset")
    parser.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="port of the replicator's health server (default HEALTH_PORT or 8090)",
    )


def run(args: argparse.Namespace) -> int:
    logs.configure("INFO")
    logs.set_role("demo")
    from replicator.simulator import Simulator, SimulatorConfig

    stop = threading.Event()
    # SIGHUP too: the replicator runs in its own session, so a closed terminal would
    # otherwise end this command and leave the replicator running.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())

    simulator = Simulator(
        SimulatorConfig(
            api_key=DEMO_API_KEY,
            companies=args.companies,
            users=args.users,
            flags=args.flags,
            seed=args.seed,
            rate=args.rate,
            host="127.0.0.1",
            port=0,
        )
    )
    simulator.start()
    target = choose_redis()
    health_port = args.health_port or int(os.environ.get("HEALTH_PORT", "8090"))
    child = start_replicator(simulator.base_url, target, health_port)

    try:
        announce(simulator, target, health_port, child, stop)
        while not stop.is_set() and child.poll() is None:
            stop.wait(0.5)
        code = child.poll()
        if code is not None:
            logger.error("The replicator exited with code %d; stopping the demo.", code)
    finally:
        stop_replicator(child)
        simulator.stop()
        target.stop()
    logger.info("Demo stopped.")
    logs.shutdown()  # Writes what is still queued before the process exits.
    return 0 if code is None or code == 0 else 1


def choose_redis() -> DemoRedis:
    """Use the configured Redis when it answers; otherwise start an embedded one."""
    settings = _configured_redis() if _address_given() else None
    if settings is not None and _answers(settings):
        description = f"the Redis at {settings.host}:{settings.port} db {settings.db}"
        return DemoRedis(settings.host, settings.port, description)

    import fakeredis

    server = fakeredis.TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True).start()
    port = server.server_address[1]
    if settings is None:
        reason = "set REDIS_URL or REDIS_ADDR to use your own Redis"
    else:
        reason = f"no Redis answered at {settings.host}:{settings.port}"
    description = f"an embedded fakeredis server on 127.0.0.1:{port} ({reason})"
    return DemoRedis("127.0.0.1", port, description, f"redis://127.0.0.1:{port}/0", server)


def _address_given() -> bool:
    return any(os.environ.get(name, "").strip() for name in ("REDIS_URL", "REDIS_ADDR"))


def _configured_redis() -> RedisConfig | None:
    try:
        return redis_config_from(os.environ)
    except ConfigError as exc:
        logger.warning("Ignoring the Redis settings of the environment: %s", exc)
        return None


def _answers(settings: RedisConfig) -> bool:
    client = redis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        ssl=settings.tls,
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start_replicator(api_url: str, target: DemoRedis, health_port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if target.url:
        env = {name: value for name, value in env.items() if not name.startswith("REDIS_")}
        env["REDIS_URL"] = target.url
    env.update(
        {
            "SCHEMATIC_API_KEY": DEMO_API_KEY,
            "SCHEMATIC_API_URL": api_url,
            "HEALTH_PORT": str(health_port),
            "HEALTH_HOST": env.get("HEALTH_HOST", "127.0.0.1"),
            "CACHE_CLEANUP_INTERVAL": env.get("CACHE_CLEANUP_INTERVAL", "0s"),
        }
    )
    env.pop("SCHEMATIC_DATASTREAM_URL", None)
    return subprocess.Popen([sys.executable, "-m", "replicator"], env=env, start_new_session=True)


def announce(
    simulator: Any,
    target: DemoRedis,
    health_port: int,
    child: subprocess.Popen[bytes],
    stop: threading.Event,
) -> None:
    ready_url = f"http://127.0.0.1:{health_port}/ready"
    logger.info("Simulated Schematic API and datastream: %s", simulator.base_url)
    logger.info("Redis: %s.", target.description)
    logger.info("Readiness: %s (503 until the first load completes).", ready_url)
    version = _wait_ready(ready_url, child, stop)
    if stop.is_set() or child.poll() is not None:
        return
    if version:
        logger.info("Replicator ready; cache version %s.", version)
    logger.info(
        "Look at the keys with any Redis client at %s:%d, for example: "
        "redis-cli -h %s -p %d --scan --pattern 'schematic:*'",
        target.host,
        target.port,
        target.host,
        target.port,
    )
    logger.info("Press Ctrl-C to stop.")


def _wait_ready(url: str, child: subprocess.Popen[bytes], stop: threading.Event) -> str:
    """Return the cache version once ``url`` returns 200.

    Returns "" without waiting further when the replicator exits or Ctrl-C arrives, so
    the caller can report the exit or stop at once.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if stop.is_set() or child.poll() is not None:
            return ""
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return str(response.json().get("cache_version", ""))
        except requests.RequestException:
            pass
        stop.wait(0.5)
    logger.warning("The replicator is not ready after %.0fs; see its log above.", READY_TIMEOUT_S)
    return ""


def stop_replicator(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)
