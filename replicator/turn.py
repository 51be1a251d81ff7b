"""One turn of the active children: the ingest, the loader and the workers.

A turn runs until a stop signal, the loss of the writer lease, or the death of a
child. A dead child ends the whole turn, and the supervisor starts a new one with
fresh queues after a backoff: a process killed while it held a queue's lock, or in
the middle of reading a message, leaves that queue unusable for whoever replaces it.
Nothing is lost by this, because the replay cursor never passed what was still in
the queues; the new ingest replays from it.

A child that dies while starting up, or with an exit code no restart can fix
(invalid configuration, a rejected API key), stops the service instead.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from replicator import sdnotify
from replicator.children import Child, Topology, build_topology, start_child
from replicator.config import Config
from replicator.controls import SIGNAL_RESTART_STREAM, request_reload
from replicator.exits import EXIT_FAILURE, FATAL_EXITS
from replicator.status import LoadState, SlotState, StatusBlock, StreamState

logger = logging.getLogger(__name__)

#: How long a turn that must stop at once waits for its children before killing them.
QUICK_STOP_S = 5.0


class TurnEnd:
    SIGNAL = "signal"
    FATAL = "fatal"
    LEASE_LOST = "lease_lost"
    CHILD_DIED = "child_died"


class Turn:
    def __init__(self, config: Config, cache_version: str, status: StatusBlock) -> None:
        self.config = config
        self.status = status
        self.topology: Topology = build_topology(config, cache_version, status)
        self.started_at = 0.0
        self._data_lost = threading.Event()
        self._data_loss_reason = ""

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.status.globals.turn_subscriptions = 0
        self.status.globals.quick_stop = 0
        for child in self.topology.children:
            child.started_at = time.monotonic()
            start_child(child, self.status)
        logger.info("Started %d processes.", len(self.topology.children))

    def check(self) -> tuple[str, int] | None:
        """Supervise once; return why and with which exit code the turn must end."""
        for child in self.topology.children:
            process = child.process
            if process is not None and process.exitcode is not None:
                return self._child_died(child)
        if self._data_lost.is_set():
            self._data_lost.clear()
            self._restart_from_scratch()
        return None

    def recover_data_loss(self, reason: str) -> None:
        """Ask for a full reload on the next check; safe to call from another thread."""
        self._data_loss_reason = reason
        self._data_lost.set()

    def _child_died(self, child: Child) -> tuple[str, int]:
        code = child.process.exitcode
        slot = self.status.slot(child.slot_index)
        booted = slot.state != SlotState.STARTING
        slot.state = SlotState.EXITED
        slot.exit_code = code
        child.process.join(0)
        child.process = None
        ran_for = time.monotonic() - child.started_at

        if code in FATAL_EXITS:
            logger.critical(
                "Process %s exited with code %d; stopping the service.", child.role, code
            )
            return TurnEnd.FATAL, int(code)
        if not booted:
            logger.critical(
                "Process %s failed while starting (exit code %s); stopping the service "
                "instead of restarting it in a loop.",
                child.role,
                code,
            )
            return TurnEnd.FATAL, EXIT_FAILURE

        slot.restarts += 1
        logger.error(
            "Process %s exited with %s after %.0fs; restarting the active processes.",
            child.role,
            describe_exit(code),
            ran_for,
        )
        return TurnEnd.CHILD_DIED, 0

    def _restart_from_scratch(self) -> None:
        # The probe logged the loss and its cause.
        reason = self._data_loss_reason or "Redis lost the replicated data"
        # The loader pages only after the ingest has reconnected, so changes made while it
        # reconnects are in the pages.
        self.status.globals.stream_restart_at = time.time()
        request_reload(self.topology.control, self.status, reason)
        process = self.topology.child("ingest").process
        if process is not None and process.exitcode is None:
            os.kill(process.pid, SIGNAL_RESTART_STREAM)

    # Stopping ------------------------------------------------------------------------

    def stop(self, end: str) -> None:
        if end in (TurnEnd.SIGNAL, TurnEnd.FATAL):
            self._drain()
        else:
            self._stop_quickly()
        self._forget_state()

    def _drain(self) -> None:
        self.status.globals.shutting_down = 1
        sdnotify.notify_stopping()
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
        # What the stopped workers held is replayed from the cursor by the next turn,
        # this replicator's or another's.
        roles = [child.role for child in self.topology.children]
        self.status.globals.quick_stop = 1
        self._terminate(roles)
        self._wait_for(roles, time.monotonic() + QUICK_STOP_S)
        self._kill_all()

    def _forget_state(self) -> None:
        """Reset what the stopped children published, so /ready reports the current state."""
        state = self.status.globals
        state.stream_state = StreamState.UNKNOWN
        state.flags_loaded = 0
        state.companies_loaded = 0
        state.users_loaded = 0
        if state.load_state in (LoadState.RUNNING, LoadState.PENDING):
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
