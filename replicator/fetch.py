"""Fetch REST pages concurrently and turn their items into ``load`` changes.

Requests run on a small thread pool (``ASYNC_LOADER_MAX_CONCURRENT_REQUESTS``) under
the client's rate limit; the loader thread converts each item to the rules-engine
shape and hands it to the worker that owns it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from replicator import convert, keys, logs, records
from replicator.api_client import ApiAuthError, ApiClient, ApiError
from replicator.dispatch import Dispatcher
from replicator.pages import OverlapFilter, PagePlan, PageRequest
from replicator.router import COMPANY, shard_for
from replicator.sweep import SeenSet

logger = logging.getLogger(__name__)

RESOURCES = {"company": "companies", "user": "users"}


@dataclass
class KindLoad:
    """Bookkeeping of one entity type within one load."""

    kind: str
    plan: PagePlan
    ids: SeenSet = field(default_factory=SeenSet)
    lookups: SeenSet = field(default_factory=SeenSet)
    overlap: OverlapFilter = field(default_factory=OverlapFilter)
    done: int = 0  # Distinct entities the pages returned.
    failed_pages: int = 0
    invalid: int = 0

    @property
    def resource(self) -> str:
        return RESOURCES[self.kind]


class Fetcher:
    """Pages every resource of one load and dispatches the converted items."""

    def __init__(
        self,
        api: ApiClient,
        dispatcher: Dispatcher,
        version: str,
        shards: int,
        concurrency: int,
        on_tick: Callable[[], None],
    ) -> None:
        self.api = api
        self.dispatcher = dispatcher
        self.version = version
        self.shards = shards
        self.concurrency = concurrency
        self.on_tick = on_tick
        self.skipped = 0

    def fetch_all(self, loads: dict[str, KindLoad], generation: str) -> None:
        in_flight: dict[Future[list[Any]], tuple[KindLoad, PageRequest]] = {}
        with ThreadPoolExecutor(self.concurrency) as pool:
            while True:
                self._submit(pool, loads, in_flight)
                if not in_flight:
                    return
                done, _ = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
                self.on_tick()
                for future in done:
                    load, request = in_flight.pop(future)
                    self._page_result(future, load, request, generation)

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        loads: dict[str, KindLoad],
        in_flight: dict[Future[list[Any]], tuple[KindLoad, PageRequest]],
    ) -> None:
        for load in loads.values():
            while len(in_flight) < self.concurrency:
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
            load.overlap.new_items(request.index, [])
            logger.error(
                "Giving up on %s page at offset %d: %s", request.resource, request.offset, exc
            )
            return
        load.plan.page_done(request, len(items))
        new = load.overlap.new_items(request.index, [item_id(item) for item in items])
        for item, is_new in zip(items, new, strict=True):
            if is_new:
                self.load_item(load, item, generation)
        load.done += sum(new)
        self.dispatcher.flush()

    def load_item(self, load: KindLoad, item: Any, generation: str, op: str = "load") -> None:
        """Convert one API item and send it to its worker as a ``load`` change.

        The sweep sends ``load_missed`` for an entity the pages missed: its lookups were
        checked already, so the worker reads the stored record to delete the stale ones.
        """
        entity_id = item.get("id") if isinstance(item, dict) else None
        try:
            record = self._convert(load.kind, item)
        except records.InvalidRecord as exc:
            load.invalid += 1
            self.skipped += 1
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
                str(exc).rstrip("."),
            )
            return

        load.ids.add(record["id"])
        for lookup in keys.lookup_keys(load.kind, self.version, record["keys"]):
            load.lookups.add(lookup)
        shard = shard_for(record["id"], self.shards)
        change = (op, record["id"], generation, records.encode(record))
        self.dispatcher.add(load.kind, shard, change)

    def _convert(self, kind: str, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise records.InvalidRecord(kind, item, "an object")
        if kind == COMPANY:
            return records.normalize_company(convert.company_from_api(item))
        return records.normalize_user(convert.user_from_api(item))


def item_id(item: Any) -> str | None:
    """Return the id of an API item, or None when it has no usable one."""
    entity_id = item.get("id") if isinstance(item, dict) else None
    return entity_id if isinstance(entity_id, str) and entity_id else None
