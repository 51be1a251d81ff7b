"""The supervisor: configuration, Redis self-test, children, signals, restarts, shutdown.

Signal handlers only record the signal; the main loop acts on it. The first
SIGTERM or SIGINT starts a graceful drain, in this order: stop reading the
datastream and stop the loader, let the ingest hand over what it buffered and save
the cursor once the workers acknowledged it, let every worker drain its queue and
flush its last batch, then stop the health server. A second signal kills what is
left at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import redis

from replicator import __version__, logs, redis_conn, sdnotify, version
from replicator.children import Child, Topology, build_topology, start_child
from replicator.config import Config, ConfigError, describe, load_config, secret_values
from replicator.exits import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_REDIS, FATAL_EXITS
from replicator.status import SlotState, StatusBlock

logger = logging.getLogger(__name__)

LOOP_INTERVAL_S = 0.2
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
#: A child that ran this long before dying restarts without delay growth.
STABLE_RUN_S = 60.0
REDIS_PROBE_INTERVAL_S = 2.0


class Supervisor:
    def __init__(self, config: Config, cache_version: str) -> None:
        self.config = config
        self.status = StatusBlock.create()
        self.topology: Topology = build_topology(config, cache_version, self.status)
        self.signals: list[int] = []
        self.exit_code = EXIT_OK
        self._publish_start(cache_version)

    def _publish_start(self, cache_version: str) -> None:
        state = self.status.globals
        state.supervisor_pid = os.getpid()
        state.started_at = time.time()
        state.redis_ok = 1
        self.status.set_cache_version(cache_version)
        self.status.claim(0, "supervisor")
        slot = self.status.slot(0)
        slot.pid = os.getpid()
        slot.state = SlotState.RUNNING

    # Main loop ---------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        sdnotify.start_readiness_notifier(self.status)
        for child in self.topology.children:
            child.started_at = time.monotonic()
            start_child(child, self.status)
        RedisProbe(self.config, self.status).start()
        logger.info("Started %d processes.", len(self.topology.children))

        while not self.signals:
            self.status.slot(0).heartbeat = time.monotonic()
            fatal = self._reap_and_restart()
            if fatal is not None:
                self.exit_code = fatal
                break
            time.sleep(LOOP_INTERVAL_S)

        self._shutdown()
        return self.exit_code

    def _install_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)
        if len(self.signals) >= 2:
            # A second signal means now: no logging here, it could deadlock a handler.
            for child in self.topology.children:
                if child.process is not None and child.process.exitcode is None:
                    os.kill(child.process.pid, signal.SIGKILL)
            os._exit(EXIT_FAILURE)

    def _reap_and_restart(self) -> int | None:
        """Restart dead children; return an exit code when the service must stop."""
        now = time.monotonic()
        for child in self.topology.children:
            process = child.process
            if process is not None and process.exitcode is None:
                continue
            if process is not None:
                fatal = self._child_died(child, now)
                if fatal is not None:
                    return fatal
            if child.process is None and now >= child.restart_at:
                self._restart(child)
        return None

    def _child_died(self, child: Child, now: float) -> int | None:
        code = child.process.exitcode
        slot = self.status.slot(child.slot_index)
        booted = slot.state != SlotState.STARTING
        slot.state = SlotState.EXITED
        slot.exit_code = code
        child.process.join(0)
        child.process = None

        if code in FATAL_EXITS:
            logger.critical(
                "Process %s exited with code %d; stopping the service.", child.role, code
            )
            return int(code)
        if not booted:
            logger.critical(
                "Process %s failed while starting (exit code %s); stopping the "
                "service instead of restarting it in a loop.",
                child.role,
                code,
            )
            return EXIT_FAILURE

        ran_for = now - child.started_at
        if ran_for >= STABLE_RUN_S:
            child.restarts = 0
        delay = min(RESTART_FIRST_DELAY_S * 2**child.restarts, RESTART_MAX_DELAY_S)
        child.restarts += 1
        child.restart_at = now + delay
        logger.error(
            "Process %s exited with %s after %.0fs; restarting in %.0fs.",
            child.role,
            _describe_exit(code),
            ran_for,
            delay,
        )
        return None

    def _restart(self, child: Child) -> None:
        if child.started_at:
            self.status.slot(child.slot_index).restarts += 1
        child.started_at = time.monotonic()
        start_child(child, self.status)

    # Shutdown ----------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.status.globals.shutting_down = 1
        sdnotify.notify_stopping()
        deadline = time.monotonic() + self.config.shutdown_timeout_s
        logger.info("Shutting down: stopping the datastream reader and the loader.")

        # 1. Stop reading; the ingest hands over its buffers and saves the cursor
        #    once the workers acknowledged what it handed over.
        self._terminate(["ingest", "loader"])
        self._wait_for(["ingest", "loader"], deadline)

        # 2. One sentinel per worker queue: each worker drains, flushes and exits.
        logger.info("Draining the worker queues.")
        for child in self.topology.worker_children():
            child.inbox.put(None)
        self._wait_for([child.role for child in self.topology.worker_children()], deadline)

        # 3. The health server goes last, so /health answers during the drain.
        self._terminate(["health"])
        self._wait_for(["health"], deadline + 5)
        self._kill_all()
        logger.info("Stopped.")

    def _terminate(self, roles: list[str]) -> None:
        for role in roles:
            process = self.topology.child(role).process
            if process is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)

    def _wait_for(self, roles: list[str], deadline: float) -> None:
        for role in roles:
            process = self.topology.child(role).process
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))

    def _kill_all(self) -> None:
        for child in self.topology.children:
            process = child.process
            if process is not None and process.exitcode is None:
                logger.warning(
                    "Process %s (pid %d) did not stop in time; killing it.", child.role, process.pid
                )
                process.kill()
                process.join(2)


class RedisProbe(threading.Thread):
    """Pings Redis every few seconds and records the result for /ready."""

    def __init__(self, config: Config, status: StatusBlock) -> None:
        super().__init__(name="redis-probe", daemon=True)
        self.client = redis_conn.create_client(config.redis)
        self.status = status

    def run(self) -> None:
        while True:
            try:
                self.client.ping()
                ok = 1
            except redis.RedisError:
                ok = 0
            if ok != self.status.globals.redis_ok:
                level = logging.INFO if ok else logging.ERROR
                logger.log(level, "Redis is %s.", "reachable again" if ok else "unreachable")
            self.status.globals.redis_ok = ok
            time.sleep(REDIS_PROBE_INTERVAL_S)


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (killed; out of memory?)" if name == "SIGKILL" else ""
        return f"signal {name}{hint}"
    return f"exit code {code}"


def main() -> int:
    """Run the service until it is told to stop; return the exit code."""
    logs.configure("INFO")
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"schematic-datastream-replicator: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    logs.configure(config.log_level, config.log_format, secrets=secret_values(config))
    try:
        return _run_service(config)
    finally:
        logs.shutdown()


def _run_service(config: Config) -> int:
    cache_version = version.effective_version(config.cache_version_override)
    logger.info(
        "Starting Schematic Datastream Replicator %s (cache version %s).",
        __version__,
        cache_version,
    )
    logger.info("Configuration: %s", " ".join(f"{k}={v}" for k, v in describe(config).items()))
    for warning in config.warnings:
        logger.warning("%s", warning)

    try:
        client = redis_conn.create_client(config.redis)
        redis_conn.self_test(client)
        client.close()
    except redis_conn.RedisUnavailable as exc:
        logger.critical("%s", exc)
        return EXIT_REDIS

    return Supervisor(config, cache_version).run()
