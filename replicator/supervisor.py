"""The supervisor: configuration, Redis self-test, the writer lease, children, signals.

The health server runs for the whole life of the supervisor. The other children run
in *turns* (see turn.py) while this replicator holds the writer lease, or always when
the lease is disabled. A turn that lost a child is followed by a new one after a
backoff. The loss of the lease ends the turn at once, and the replicator then waits as
a standby until it can take the lease again.

Signal handlers only record the signal; the main loop acts on it. The first SIGTERM,
SIGINT or SIGHUP drains in this order: stop reading the datastream and stop the loader,
let the ingest hand over what it buffered and save the cursor once the workers
acknowledged it, let every worker drain its queue and flush its last batch, release
the lease, then stop the health server. A second signal kills what is left at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

from replicator import __version__, log_channels, logs, redis_conn, sdnotify, version
from replicator.children import Child, health_child, start_child
from replicator.config import Config, ConfigError, describe, load_config, secret_values
from replicator.controls import SIGNAL_RESTART_STREAM
from replicator.exits import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_REDIS
from replicator.lease import FOREVER, STANDBY_RETRY_S, Lease, LeaseKeeper
from replicator.probe import RedisProbe
from replicator.status import TEXT_CHARS, SlotState, StatusBlock, encode_text
from replicator.turn import Turn, TurnEnd

logger = logging.getLogger(__name__)

LOOP_INTERVAL_S = 0.2
#: Signals that start the graceful shutdown. SIGHUP is one of them because a closed
#: terminal sends it, and the configuration is read only at start anyway.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
#: A turn that ran this long before a child died restarts after the shortest delay.
STABLE_RUN_S = 60.0


class Supervisor:
    def __init__(self, config: Config, cache_version: str) -> None:
        self.config = config
        self.version = cache_version
        self.status = StatusBlock.create()
        self.signals: list[int] = []
        self.exit_code = EXIT_OK
        self.health = health_child(config, self.status)
        self.turn: Turn | None = None
        self.lease: Lease | None = None
        self._signal_logged = False
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
        # Before any fork: only the supervisor may talk to systemd (see sdnotify.py).
        sdnotify.start_readiness_notifier(self.status)
        self.health.started_at = time.monotonic()
        start_child(self.health, self.status)
        probe = RedisProbe(self.config, self.status, self._on_data_loss)
        probe.start()
        if not self.config.writer_lock_disabled:
            self.lease = Lease(
                probe.client,
                self.config.writer_lock_key,
                self.config.writer_lock_ttl_s,
                self.status,
            )

        while not self.signals:
            if not self._wait_for_lease():
                break
            end, code = self._hold_lease()
            if end != TurnEnd.LEASE_LOST:
                self.exit_code = self.exit_code or code
                break
            logger.warning("Lost the writer lease; stopped writing and standing by.")

        self._log_signal()
        self._stop_health()
        return self.exit_code

    def _hold_lease(self) -> tuple[str, int]:
        """Run turns while the lease is ours, restarting them with backoff after a crash."""
        keeper = None
        if self.lease is not None:
            keeper = LeaseKeeper(self.lease, self.config.writer_lock_ttl_s)
            keeper.start()
        failures = 0
        while True:
            end, code, ran_for = self._run_turn(keeper)
            if end != TurnEnd.CHILD_DIED:
                break
            failures = 0 if ran_for >= STABLE_RUN_S else failures + 1
            delay = min(RESTART_FIRST_DELAY_S * 2 ** max(failures - 1, 0), RESTART_MAX_DELAY_S)
            logger.info("Restarting the active processes in %.0fs.", delay)
            if not self._sleep(delay, keeper):
                end, code = (TurnEnd.LEASE_LOST, 0) if _lost(keeper) else (TurnEnd.SIGNAL, 0)
                break

        if keeper is not None:
            keeper.stop()
        if self.lease is not None and end != TurnEnd.LEASE_LOST:
            self.lease.release()
            logger.info("Released the writer lease.")
        return end, code

    def _install_signals(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record_signal)
        # The supervisor sends this signal to the ingest. Sent to the whole group (as
        # `systemctl kill` does), it would otherwise end the supervisor and the workers,
        # which inherit this setting.
        signal.signal(SIGNAL_RESTART_STREAM, signal.SIG_IGN)

    def _record_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)
        if len(self.signals) >= 2:
            # A second signal means now: no logging here, it could deadlock a handler.
            for child in self._all_children():
                if child.process is not None and child.process.exitcode is None:
                    os.kill(child.process.pid, signal.SIGKILL)
            os._exit(EXIT_FAILURE)

    def _log_signal(self) -> None:
        """Log a SIGHUP once, from the main loop, because the handler may not log."""
        if self._signal_logged or signal.SIGHUP not in self.signals[:1]:
            return
        self._signal_logged = True
        logger.info(
            "Received SIGHUP: stopping as on SIGTERM. The configuration is read only at "
            "start, so start the service again to apply a change."
        )

    def _all_children(self) -> list[Child]:
        turn_children = self.turn.topology.children if self.turn is not None else []
        return [self.health, *turn_children]

    # Lease -------------------------------------------------------------------------

    def _wait_for_lease(self) -> bool:
        """Take the writer lease, standing by while another replicator holds it.

        Returns False when a signal arrived first.
        """
        state = self.status.globals
        if self.lease is None:
            state.lease_valid_until = FOREVER
            return True

        announced = ""
        while not self.signals:
            self._tick()
            if self.lease.try_acquire():
                state.standby = 0
                state.lease_holder = b""
                logger.info("Took the writer lease %r.", self.config.writer_lock_key)
                return True
            # An empty holder means Redis did not respond or the key just expired. No
            # other writer is known, so this replicator does not count as a standby.
            holder = self.lease.holder()
            state.standby = 1 if holder else 0
            state.lease_holder = encode_text(holder, TEXT_CHARS)
            if holder and holder != announced:
                logger.info("Standing by: the writer lease is held by %r.", holder)
                announced = holder
            self._sleep(STANDBY_RETRY_S)
        return False

    # Turn ----------------------------------------------------------------------------

    def _run_turn(self, keeper: LeaseKeeper | None) -> tuple[str, int, float]:
        self.turn = Turn(self.config, self.version, self.status)
        self.turn.start()
        end, code = TurnEnd.SIGNAL, EXIT_OK
        while not self.signals:
            self._tick()
            if _lost(keeper):
                end, code = TurnEnd.LEASE_LOST, 0
                break
            outcome = self.turn.check()
            if outcome is not None:
                end, code = outcome
                break
            time.sleep(LOOP_INTERVAL_S)
        self._log_signal()
        ran_for = time.monotonic() - self.turn.started_at
        self.turn.stop(end)
        self.turn = None
        return end, code, ran_for

    def _on_data_loss(self, reason: str) -> None:
        """Called by the probe thread when Redis lost the replicated data.

        Without a turn there is nothing to restart: the next turn's loader finds the
        unrepaired loss in the status block and loads everything.
        """
        turn = self.turn
        if turn is not None:
            turn.recover_data_loss(reason)

    # Helpers -----------------------------------------------------------------------

    def _tick(self) -> None:
        self.status.slot(0).heartbeat = time.monotonic()
        health = self.health.process
        if health is not None and health.exitcode is not None and not self.signals:
            self._restart_health()

    def _restart_health(self) -> None:
        code = self.health.process.exitcode
        booted = self.status.slot(self.health.slot_index).state != SlotState.STARTING
        self.health.process = None
        if not booted:
            logger.critical(
                "The health server could not start (exit code %s): is port %d in use? Set "
                "HEALTH_PORT to a free port.",
                code,
                self.config.health_port,
            )
            self.exit_code = EXIT_FAILURE
            self.signals.append(signal.SIGTERM)
            return
        logger.error("The health server exited with code %s; restarting it.", code)
        self.status.slot(self.health.slot_index).restarts += 1
        start_child(self.health, self.status)

    def _sleep(self, seconds: float, keeper: LeaseKeeper | None = None) -> bool:
        """Sleep; False when a signal arrived or the lease was lost meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.signals or _lost(keeper):
                return False
            self._tick()
            time.sleep(min(LOOP_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        return True

    def _stop_health(self) -> None:
        process = self.health.process
        if process is not None and process.exitcode is None:
            os.kill(process.pid, signal.SIGTERM)
            process.join(10)
            if process.exitcode is None:
                process.kill()
                process.join(2)
        logger.info("Stopped.")


def _lost(keeper: LeaseKeeper | None) -> bool:
    return keeper is not None and keeper.lost.is_set()


def main() -> int:
    """Run the service until a stop signal or a fatal error; return the exit code."""
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
        logs.flush_repeats()
        log_channels.drain()
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
