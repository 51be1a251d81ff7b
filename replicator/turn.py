"""One turn as the writer: the ingest, the loader and the workers, from start to stop.

A turn restarts a child that dies, with backoff. A child that dies while starting up
ends the turn instead of restarting in a loop, and so do the exit codes no restart
can fix (invalid configuration, a rejected API key). Messages a dead worker had
taken off its queue are recovered by making the ingest reconnect and replay from the
committed cursor, which never ran ahead of them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from replicator.children import Child, Topology, build_topology, start_child
from replicator.config import Config
from replicator.controls import SIGNAL_REPLAY, SIGNAL_RESTART_STREAM
from replicator.exits import EXIT_FAILURE, FATAL_EXITS
from replicator.lease import Lease, LeaseKeeper
from replicator.status import LoadState, SlotState, StatusBlock, StreamState

logger = logging.getLogger(__name__)

RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
#: A child that ran this long before dying restarts without delay growth.
STABLE_RUN_S = 60.0
#: How long a turn that lost the lease waits for its children before killing them.
LEASE_LOSS_STOP_S = 5.0


class TurnEnd:
    SIGNAL = "signal"
    FATAL = "fatal"
    LEASE_LOST = "lease_lost"


class Turn:
    def __init__(
        self, config: Config, cache_version: str, status: StatusBlock, lease: Lease | None
    ) -> None:
        self.config = config
        self.status = status
        self.topology: Topology = build_topology(config, cache_version, status)
        self.keeper = LeaseKeeper(lease, config.writer_lock_ttl_s) if lease else None
        self.lease = lease
        self._data_lost = threading.Event()

    def start(self) -> None:
        for child in self.topology.children:
            child.started_at = time.monotonic()
            start_child(child, self.status)
        if self.keeper is not None:
            self.keeper.start()
        logger.info("Started %d processes.", len(self.topology.children))

    def check(self) -> tuple[str, int] | None:
        """Supervise once; return why and with which exit code the turn must end."""
        if self.keeper is not None and self.keeper.lost.is_set():
            return TurnEnd.LEASE_LOST, 0
        fatal = self._reap_and_restart()
        if fatal is not None:
            return TurnEnd.FATAL, fatal
        if self._data_lost.is_set():
            self._data_lost.clear()
            self._restart_from_scratch()
        return None

    def recover_data_loss(self) -> None:
        """Ask for a full reload on the next check; safe to call from another thread."""
        self._data_lost.set()

    # Restarts ------------------------------------------------------------------------

    def _reap_and_restart(self) -> int | None:
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
                "Process %s failed while starting (exit code %s); stopping the service "
                "instead of restarting it in a loop.",
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
            "Process %s exited with %s after %.0fs; restarting it in %.0fs.",
            child.role,
            describe_exit(code),
            ran_for,
            delay,
        )
        return None

    def _restart(self, child: Child) -> None:
        self.status.slot(child.slot_index).restarts += 1
        child.started_at = time.monotonic()
        start_child(child, self.status)
        if child.kind == "worker":
            # What the dead worker had taken off its queue is lost; the cursor did not
            # pass it, so a replay from the cursor brings it back.
            self._signal_ingest(SIGNAL_REPLAY)

    def _restart_from_scratch(self) -> None:
        logger.error("Redis lost the replicated data; reloading everything.")
        self.topology.control.put(("reload", "Redis lost the replicated data"))
        self._signal_ingest(SIGNAL_RESTART_STREAM)

    def _signal_ingest(self, signum: int) -> None:
        process = self.topology.child("ingest").process
        if process is not None and process.exitcode is None:
            os.kill(process.pid, signum)

    # Stopping ------------------------------------------------------------------------

    def stop(self, end: str, release: bool) -> None:
        if end == TurnEnd.LEASE_LOST:
            self._stop_quickly()
        else:
            self._drain()
        if self.keeper is not None:
            self.keeper.stop()
        if self.lease is not None and release:
            self.lease.release()
            logger.info("Released the writer lease.")
        self._forget_state()

    def _drain(self) -> None:
        self.status.globals.shutting_down = 1
        deadline = time.monotonic() + self.config.shutdown_timeout_s
        logger.info("Shutting down: stopping the datastream reader and the loader.")

        # 1. Stop reading; the ingest hands over its buffers and saves the cursor once
        #    the workers acknowledged what it handed over.
        self._terminate(["ingest", "loader"])
        self._wait_for(["ingest", "loader"], deadline)

        # 2. One sentinel per worker queue: each worker drains, flushes and exits.
        logger.info("Draining the worker queues.")
        workers = self.topology.worker_children()
        for child in workers:
            child.inbox.put(None)
        self._wait_for([child.role for child in workers], deadline)
        self._kill_all()

    def _stop_quickly(self) -> None:
        # Without the lease nothing may be written: the workers already stopped writing
        # and drop what they hold; the new writer replays it from the shared cursor.
        self._terminate([child.role for child in self.topology.children])
        self._wait_for(
            [child.role for child in self.topology.children], time.monotonic() + LEASE_LOSS_STOP_S
        )
        self._kill_all()

    def _forget_state(self) -> None:
        """Reset what the stopped children published, so /ready reflects the standby."""
        state = self.status.globals
        state.stream_state = StreamState.UNKNOWN
        state.flags_loaded = 0
        state.companies_loaded = 0
        state.users_loaded = 0
        if state.load_state == LoadState.RUNNING:
            state.load_state = LoadState.IDLE

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
                    "Process %s (pid %d) did not stop in time; killing it.",
                    child.role,
                    process.pid,
                )
                process.kill()
                process.join(2)


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (killed; out of memory?)" if name == "SIGKILL" else ""
        return f"signal {name}{hint}"
    return f"exit code {code}"
