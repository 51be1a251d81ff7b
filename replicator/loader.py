"""The loader process: bulk-load companies and users over REST, then sweep.

A load starts when the service starts without a usable replay cursor, and again
whenever the ingest asks for one (the datastream sent ``reload``). It waits until
the datastream is subscribed, so every change made during the load also arrives
on the stream. See docs/architecture.md for the begin/load/fence/sweep protocol.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import redis

from replicator import convert, keys, logs, records, redis_conn
from replicator.api_client import ApiAuthError, ApiClient, ApiError
from replicator.cleanup import run_cleanup
from replicator.config import Config
from replicator.dispatch import Dispatcher, Outlet
from replicator.exits import EXIT_AUTH, EXIT_OK
from replicator.pages import PagePlan, PageRequest
from replicator.progress import Progress
from replicator.router import COMPANY, USER, shard_for
from replicator.status import (
    TEXT_CHARS,
    LoadState,
    SlotState,
    StatusBlock,
    StreamState,
    encode_text,
)
from replicator.sweep import SeenSet, Sweeper
from workers.writer import Writer

logger = logging.getLogger(__name__)

RESOURCES = {COMPANY: "companies", USER: "users"}
FENCE_RESEND_S = 30.0


class LoadStopped(Exception):
    """The process was asked to stop in the middle of a load."""


@dataclass
class LoaderSpec:
    config: Config
    version: str
    status: StatusBlock
    slot_index: int
    outlets: dict[tuple[str, int], Outlet]
    control: Any


@dataclass
class KindLoad:
    """Bookkeeping of one entity type within one load."""

    kind: str
    plan: PagePlan
    ids: SeenSet
    lookups: SeenSet
    failed_pages: int = 0
    invalid: int = 0


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
        self.api = ApiClient(
            self.config.api_url,
            self.config.api_key,
            self.config.loader_page_retries,
            self.config.loader_rate_limit_rps,
        )

    def run(self) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self.slot.state = SlotState.RUNNING
        retry_at = time.monotonic() if self._needs_initial_load() else None
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

    def _cleanup(self) -> None:
        try:
            run_cleanup(self.client, self.spec.version)
        except redis.RedisError as exc:
            logger.warning("Cache cleanup failed, will retry at the next interval: %s", exc)

    def _needs_initial_load(self) -> bool:
        # NOTE: a start with a stored cursor still loads everything; resuming from the
        # cursor alone needs a check that Redis kept our data, which is not built yet.
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
            complete = self.load(reason)
        except ApiError as exc:
            if isinstance(exc, ApiAuthError):
                raise
            logger.error(
                "Bulk load failed: %s; retrying in %.0fs.", exc, self.config.loader_retry_interval_s
            )
            self._finish(LoadState.FAILED, f"failed: {exc}")
            complete = False
        return None if complete else time.monotonic() + self.config.loader_retry_interval_s

    # One load ----------------------------------------------------------------------

    def load(self, reason: str) -> bool:
        """Load everything once; True when every page loaded and the sweep ran."""
        self._wait_for_stream()
        generation = self._begin(reason)
        loads = {kind: self._plan(kind) for kind in RESOURCES}
        progress = Progress(self.status, loads)

        self._fetch_all(loads, generation, progress)
        self._fence(generation)

        complete = all(
            load.failed_pages == 0 and not load.plan.overlap_exceeded for load in loads.values()
        )
        if complete:
            self._sweep(loads, generation)
        else:
            logger.warning(
                "Skipping the sweep because some pages did not load: nothing is deleted, "
                "and the load runs again in %.0fs.",
                self.config.loader_retry_interval_s,
            )

        self.dispatcher.broadcast(COMPANY, ("end", "", generation, b""))
        self.dispatcher.broadcast(USER, ("end", "", generation, b""))
        self.dispatcher.flush()
        progress.log_final()

        if complete:
            self._finish(LoadState.COMPLETE, reason)
        else:
            self._finish(LoadState.FAILED, "incomplete: some pages failed")
        return complete

    def _wait_for_stream(self) -> None:
        while self.status.globals.stream_state != StreamState.READY:
            self._check_stop()
            self.slot.heartbeat = time.monotonic()
            time.sleep(0.1)

    def _begin(self, reason: str) -> str:
        state = self.status.globals
        state.load_generation += 1
        state.load_state = LoadState.RUNNING
        state.load_started_at = time.time()
        state.load_reason = encode_text(reason, TEXT_CHARS)
        generation = str(state.load_generation)
        logger.info("Bulk load %s started (%s).", generation, reason)

        self.dispatcher.broadcast(COMPANY, ("begin", "", generation, b""))
        self.dispatcher.broadcast(USER, ("begin", "", generation, b""))
        self.dispatcher.flush()
        return generation

    def _plan(self, kind: str) -> KindLoad:
        resource = RESOURCES[kind]
        total = self.api.count(resource)
        state = self.status.globals
        setattr(state, f"{resource}_total", total)
        setattr(state, f"{resource}_done", 0)
        counter = "company_deletes" if kind == COMPANY else "user_deletes"
        plan = PagePlan(
            resource, self.config.loader_page_size, total, lambda: int(getattr(state, counter))
        )
        return KindLoad(kind, plan, SeenSet(), SeenSet())

    def _fetch_all(self, loads: dict[str, KindLoad], generation: str, progress: Progress) -> None:
        in_flight: dict[Future[list[Any]], tuple[KindLoad, PageRequest]] = {}
        with ThreadPoolExecutor(self.config.loader_max_concurrent_requests) as pool:
            while True:
                self._submit(pool, loads, in_flight)
                if not in_flight:
                    return
                done, _ = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
                self._keep_alive()
                self._check_stop()
                for future in done:
                    load, request = in_flight.pop(future)
                    self._page_result(future, load, request, generation)
                progress.maybe_log()

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        loads: dict[str, KindLoad],
        in_flight: dict[Future[list[Any]], tuple[KindLoad, PageRequest]],
    ) -> None:
        limit = self.config.loader_max_concurrent_requests
        for load in loads.values():
            while len(in_flight) < limit:
                request = load.plan.next_request()
                if request is None:
                    break
                future = pool.submit(self.api.page, request.resource, request.limit, request.offset)
                in_flight[future] = (load, request)

    def _page_result(
        self, future: Future[list[Any]], load: KindLoad, request: PageRequest, generation: str
    ) -> None:
        try:
            items = future.result()
        except ApiAuthError:
            raise
        except ApiError as exc:
            load.failed_pages += 1
            load.plan.page_done(request, 0)
            logger.error(
                "Giving up on %s page at offset %d: %s", request.resource, request.offset, exc
            )
            return
        load.plan.page_done(request, len(items))
        for item in items:
            self._load_item(load, item, generation)
        self.dispatcher.flush()
        done_field = f"{RESOURCES[load.kind]}_done"
        setattr(self.status.globals, done_field, len(load.ids))

    def _load_item(self, load: KindLoad, item: Any, generation: str) -> None:
        entity_id = item.get("id") if isinstance(item, dict) else None
        try:
            record = self._convert(load.kind, item)
        except records.InvalidRecord as exc:
            load.invalid += 1
            self.slot.skipped += 1
            if isinstance(entity_id, str) and entity_id:
                load.ids.add(entity_id)  # It exists upstream: the sweep must keep it.
            logs.log_every(
                logger,
                f"invalid-api:{load.kind}",
                10.0,
                logging.WARNING,
                "Skipped invalid %s %r from the API: %s.",
                load.kind,
                entity_id,
                exc,
            )
            return

        load.ids.add(record["id"])
        for lookup in keys.lookup_keys(load.kind, self.spec.version, record["keys"]):
            load.lookups.add(lookup)
        shard = shard_for(record["id"], self.config.num_workers)
        change = ("load", record["id"], generation, records.encode(record))
        self.dispatcher.add(load.kind, shard, change)
        self.slot.applied += 1

    def _convert(self, kind: str, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise records.InvalidRecord(kind, item, "an object")
        if kind == COMPANY:
            return records.normalize_company(convert.company_from_api(item))
        return records.normalize_user(convert.user_from_api(item))

    def _sweep(self, loads: dict[str, KindLoad], generation: str) -> None:
        for kind, load in loads.items():
            sweeper = Sweeper(
                self.writer, self.dispatcher, kind, self.spec.version, self.config.num_workers
            )
            records_sent, lookups_sent = sweeper.run(generation, load.ids, load.lookups)
            logger.info(
                "Sweep of %s: %d records and %d lookups not in the source were "
                "handed to the workers.",
                RESOURCES[kind],
                records_sent,
                lookups_sent,
            )
        self._fence(generation)

    def _fence(self, generation: str) -> None:
        """Wait until every entity worker wrote everything queued before this point."""
        target = int(generation)
        while True:
            self.dispatcher.broadcast(COMPANY, ("fence", "", generation, b""))
            self.dispatcher.broadcast(USER, ("fence", "", generation, b""))
            self.dispatcher.flush()
            deadline = time.monotonic() + FENCE_RESEND_S
            while time.monotonic() < deadline:
                if all(
                    outlet.slot.fence_generation >= target for outlet in self.spec.outlets.values()
                ):
                    return
                self._keep_alive()
                self._check_stop()
                time.sleep(0.01)
            logger.warning(
                "Workers have not passed load fence %s after %.0fs; resending it.",
                generation,
                FENCE_RESEND_S,
            )

    def _finish(self, state: int, reason: str) -> None:
        globals_ = self.status.globals
        globals_.load_state = state
        globals_.load_finished_at = time.time()
        globals_.load_reason = encode_text(reason, TEXT_CHARS)
        if state == LoadState.COMPLETE:
            globals_.companies_loaded = 1
            globals_.users_loaded = 1

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
