"""The loader process: bulk-load companies and users over REST, then sweep.

A start with a committed replay cursor and a load marker of the current cache
version resumes from the cursor without a load. Otherwise a load runs once the
datastream is subscribed, so every change made during the load also arrives on the
stream; it runs again whenever asked (the datastream sent ``reload``, or Redis lost
the data) and after a load that did not complete. See docs/architecture.md for the
begin/load/fence/sweep protocol.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from dataclasses import dataclass
from typing import Any

from replicator import keys, logs, redis_conn
from replicator.api_client import ApiAuthError, ApiClient, ApiError
from replicator.cleanup import run_cleanup
from replicator.config import Config
from replicator.dispatch import Dispatcher, Outlet
from replicator.exits import EXIT_AUTH, EXIT_OK
from replicator.fetch import RESOURCES, Fetcher, KindLoad
from replicator.lease import lease_valid
from replicator.load_marker import LoadMarker
from replicator.pages import PagePlan
from replicator.progress import Progress
from replicator.router import COMPANY, USER
from replicator.status import (
    TEXT_CHARS,
    LoadState,
    SlotState,
    StatusBlock,
    StreamState,
    encode_text,
)
from replicator.sweep import Sweeper
from workers.writer import Writer

logger = logging.getLogger(__name__)

FENCE_RESEND_S = 30.0


class LoadStopped(Exception):
    """The process was asked to stop in the middle of a load."""


class LoadIncomplete(Exception):
    """A load that must run again: the reason is the message."""


class DataLost(LoadIncomplete):
    """Redis lost data while the load ran, so the load is no complete copy.

    The loss is reported to the supervisor, which requests the full reload that repairs it.
    """


@dataclass
class LoaderSpec:
    config: Config
    version: str
    status: StatusBlock
    slot_index: int
    outlets: dict[tuple[str, int], Outlet]
    control: Any


class Loader:
    def __init__(self, spec: LoaderSpec) -> None:
        self.spec = spec
        self.config = spec.config
        self.status = spec.status
        self.slot = spec.status.slot(spec.slot_index)
        self.stop_requested = False
        self.dispatcher = Dispatcher(spec.outlets, "load", on_wait=self._keep_alive)
        self.client = redis_conn.create_client(self.config.redis)
        self.writer = Writer(self.client, self.config.cache_ttl_s)
        self.marker = LoadMarker(self.client)
        # The marker value this load wrote at its start ("" when it wrote none), and the
        # wall time it started at (0 between loads).
        self.marker_value = ""
        self.started_at = 0.0
        self.api = ApiClient(
            self.config.api_url,
            self.config.api_key,
            self.config.loader_page_retries,
            self.config.loader_rate_limit_rps,
            self.config.loader_breaker_threshold,
            self.config.loader_breaker_timeout_s,
        )
        self.current: dict[str, KindLoad] = {}
        self.progress: Progress | None = None
        self.fetcher = Fetcher(
            self.api,
            self.dispatcher,
            spec.version,
            self.config.num_workers,
            self.config.loader_max_concurrent_requests,
            self._tick,
        )

    # Process loop --------------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self.slot.state = SlotState.RUNNING
        retry_at = None if self._resume() else time.monotonic()
        interval = self.config.cache_cleanup_interval_s
        cleanup_at = time.monotonic() + interval if interval > 0 else None

        try:
            while not self.stop_requested:
                reason = self._next_command(retry_at)
                if reason:
                    retry_at = self._load_or_schedule(reason)
                if cleanup_at is not None and time.monotonic() >= cleanup_at:
                    self._cleanup()
                    cleanup_at = time.monotonic() + interval
        except ApiAuthError as exc:
            logger.critical("The Schematic API rejected the API key: %s", exc)
            return EXIT_AUTH
        except LoadStopped:
            logger.info("Loader stopped during a load.")
        finally:
            self.slot.state = SlotState.EXITED
        return EXIT_OK

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _resume(self) -> bool:
        """Skip the first load when Redis holds our data and a cursor to resume from."""
        if self.config.replay_disabled:
            return False
        state = self.status.globals
        if state.data_lost_at > state.complete_load_started_at:
            logger.info(
                "Redis lost data that no complete bulk load has repaired yet, so "
                "everything is loaded again instead of resuming from the replay cursor."
            )
            return False
        try:
            cursor = self.client.get(self.config.replay_cursor_key)
            marker = self.client.get(keys.LOAD_MARKER_KEY)
        except redis_conn.REDIS_ERRORS as exc:
            logger.warning("Could not read the replay cursor, loading everything: %s", exc)
            return False
        if not cursor or marker != self.spec.version.encode():
            return False
        state.marker_seen_at = time.time()

        logger.info(
            "Resuming from replay cursor %r: Redis holds cache version %s, so no "
            "bulk load is needed.",
            cursor.decode("utf-8", "replace") if isinstance(cursor, bytes) else cursor,
            self.spec.version,
        )
        self._finish(LoadState.SKIPPED, "resumed from the replay cursor")
        return True

    def _next_command(self, retry_at: float | None) -> str:
        self.slot.heartbeat = time.monotonic()
        if retry_at is not None and time.monotonic() >= retry_at:
            return "initial load" if not self.status.globals.load_generation else "retry"
        try:
            command, reason = self.spec.control.get(timeout=1.0)
        except queue.Empty:
            return ""
        return str(reason) if command == "reload" else ""

    def _load_or_schedule(self, reason: str) -> float | None:
        """Run one load; return when to retry it, or None when it completed."""
        try:
            self.load(reason)
            return None
        except DataLost as exc:
            # The reload requested for the loss runs next, so this retry is only a fallback.
            logger.error("Bulk load did not complete: %s. A full reload runs next.", exc)
            self._tell_workers("abort", str(self.status.globals.load_generation))
            self._finish(LoadState.FAILED, f"incomplete: {exc}")
            return time.monotonic() + self.config.loader_retry_interval_s
        except (LoadIncomplete, ApiError, *redis_conn.REDIS_ERRORS) as exc:
            if isinstance(exc, ApiAuthError):
                raise
            retry_s = self.config.loader_retry_interval_s
            logger.error("Bulk load did not complete: %s; it runs again in %.0fs.", exc, retry_s)
            # No loaded records are coming, so the workers stop parking partials for them.
            self._tell_workers("abort", str(self.status.globals.load_generation))
            self._finish(LoadState.FAILED, f"incomplete: {exc}")
            return time.monotonic() + retry_s

    def _cleanup(self) -> None:
        if not lease_valid(self.status):
            return
        try:
            run_cleanup(self.client, self.spec.version)
        except redis_conn.REDIS_ERRORS as exc:
            logger.warning("Cache cleanup failed, will retry at the next interval: %s", exc)

    # One load ----------------------------------------------------------------------

    def load(self, reason: str) -> None:
        """Load everything once, then sweep; raise LoadIncomplete when it must run again."""
        self._wait_for_stream()
        reason = self._merge_requests(reason)
        generation = self._begin(reason)
        loads = {kind: self._plan(kind) for kind in RESOURCES}
        self.current = loads
        progress = self.progress = Progress(self.status)

        self.fetcher.fetch_all(loads, generation)
        self.slot.skipped += self.fetcher.skipped
        self.fetcher.skipped = 0
        self._fence()
        self._check_complete(loads)

        for kind, load in loads.items():
            self._sweep(kind, load, generation)
        self._fence()
        self._tell_workers("end", generation)

        self._tick()
        self._complete_marker()
        progress.log_final()
        self.progress = None
        self._finish(LoadState.COMPLETE, reason)

    def _check_complete(self, loads: dict[str, KindLoad]) -> None:
        failed = sum(load.failed_pages for load in loads.values())
        if failed:
            raise LoadIncomplete(f"pages failed: {failed}, so nothing is swept")

    def _merge_requests(self, reason: str) -> str:
        """Take the reload requests queued meanwhile: the load about to start serves them.

        One data loss requests several (the probe, then the ingest that reconnects
        without a cursor), and each would otherwise run a full load of its own.
        """
        reasons = [reason]
        while True:
            try:
                command, queued = self.spec.control.get_nowait()
            except queue.Empty:
                break
            if command == "reload" and str(queued) not in reasons:
                reasons.append(str(queued))
        if len(reasons) > 1:
            logger.info("One bulk load serves %d reload requests.", len(reasons))
        return "; ".join(reasons)

    def _wait_for_stream(self) -> None:
        """Wait for a ready datastream connection made after the last stream restart."""
        state = self.status.globals
        while (
            state.stream_state != StreamState.READY
            or state.connected_since < state.stream_restart_at
        ):
            self._check_stop()
            self.slot.heartbeat = time.monotonic()
            time.sleep(0.1)

    def _begin(self, reason: str) -> str:
        state = self.status.globals
        state.load_generation += 1
        state.load_state = LoadState.RUNNING
        self.started_at = state.load_started_at = time.time()
        state.load_reason = encode_text(reason, TEXT_CHARS)
        generation = str(state.load_generation)
        logger.info("Bulk load %s started (%s).", generation, reason)
        # Until this load completes, Redis does not hold a complete copy, so a restart
        # meanwhile must load again instead of resuming from the cursor. The marker
        # exists from now on, so the probe notices when Redis loses it during the load.
        self.marker_value = ""
        if lease_valid(self.status):
            expected = state.marker_seen_at > state.data_lost_at
            self.marker_value, found = self.marker.begin(generation)
            if expected and not found:
                # Lost since the probe's last round: the probe reports it, and this load
                # stops because it started before the report.
                state.marker_lost_in_load = time.time()
            state.marker_seen_at = time.time()

        self._tell_workers("begin", generation)
        return generation

    def _tell_workers(self, op: str, token: str) -> None:
        """Queue a control change to every company and user worker, behind what is queued."""
        change = (op, "", token, b"")
        self.dispatcher.broadcast(COMPANY, change)
        self.dispatcher.broadcast(USER, change)
        self.dispatcher.flush()

    def _plan(self, kind: str) -> KindLoad:
        resource = RESOURCES[kind]
        total = self.api.count(resource)
        state = self.status.globals
        setattr(state, f"{resource}_total", total)
        setattr(state, f"{resource}_done", 0)
        return KindLoad(kind, PagePlan(resource, self.config.loader_page_size, total))

    # Sweep ---------------------------------------------------------------------------

    def _sweep(self, kind: str, load: KindLoad, generation: str) -> None:
        sweeper = Sweeper(
            self.writer, self.dispatcher, kind, self.spec.version, self.config.num_workers
        )
        candidates, lookups = sweeper.run(generation, load.ids, load.lookups)
        absent = 0
        for entity_id in candidates:
            self._tick()
            item = self.api.item(load.resource, entity_id)
            if item is None:
                sweeper.send_sweep(entity_id, generation)
                absent += 1
            else:
                self.fetcher.load_item(load, item, generation, "load_missed")
        self.dispatcher.flush()
        logger.info(
            "Sweep of %s: %d stored records were not in the pages (%d no longer exist "
            "upstream), and %d lookups not written by the load were checked.",
            load.resource,
            len(candidates),
            absent,
            lookups,
        )

    def _complete_marker(self) -> None:
        """Set the marker to the cache version if it still contains this load's value.

        Raises DataLost when a loss was reported while the load ran, or when the
        marker no longer contains the value written at the start. In the second case
        the status block records the loss for the probe to report.
        """
        self._check_lost()
        if not self.marker_value or not lease_valid(self.status):
            return
        if self.marker.complete(self.marker_value, self.spec.version):
            return
        self._check_lost()
        if not lease_valid(self.status):
            raise LoadIncomplete("the writer lease was lost at the end of the load")
        self.status.globals.marker_lost_in_load = self.started_at
        raise DataLost(
            f"the load marker {keys.LOAD_MARKER_KEY!r} lost the value this load wrote at "
            "its start, so Redis lost data while the load ran"
        )

    def _check_lost(self) -> None:
        """Raise DataLost when a loss was reported after this load started.

        Such a load wrote part of its records before the loss, so it cannot repair it.
        """
        if self.started_at and self.status.globals.data_lost_at >= self.started_at:
            raise DataLost("Redis lost data while the load ran")

    # Helpers -------------------------------------------------------------------------

    def _fence(self) -> None:
        """Wait until every entity worker wrote everything queued before this point.

        Each fence carries a new token (the wall clock in nanoseconds), so a fence is
        never mistaken for an earlier one, also across restarts of the loader.
        """
        token = time.time_ns()
        while True:
            self._tell_workers("fence", str(token))
            deadline = time.monotonic() + FENCE_RESEND_S
            while time.monotonic() < deadline:
                if all(o.slot.fence_token >= token for o in self.spec.outlets.values()):
                    return
                self._tick()
                time.sleep(0.01)
            logger.warning(
                "Workers have not passed a load fence after %.0fs; sending it again.",
                FENCE_RESEND_S,
            )

    def _finish(self, state: int, reason: str) -> None:
        globals_ = self.status.globals
        if state == LoadState.COMPLETE:
            globals_.complete_load_started_at = self.started_at
        self.started_at = 0.0
        globals_.load_state = state
        globals_.load_finished_at = time.time()
        globals_.load_reason = encode_text(reason, TEXT_CHARS)
        if state in (LoadState.COMPLETE, LoadState.SKIPPED):
            globals_.companies_loaded = 1
            globals_.users_loaded = 1

    def _tick(self) -> None:
        self._keep_alive()
        self._check_stop()
        self._check_lost()
        if self.current:
            state = self.status.globals
            state.companies_done = self.current[COMPANY].done
            state.users_done = self.current[USER].done
        if self.progress is not None:
            self.progress.maybe_log()

    def _keep_alive(self) -> bool:
        self.slot.heartbeat = time.monotonic()
        return not self.stop_requested

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise LoadStopped()


def run_loader(spec: LoaderSpec) -> int:
    """Entry point of the loader process, after the fork."""
    logs.set_role("loader")
    spec.status.slot(spec.slot_index).pid = os.getpid()
    return Loader(spec).run()
