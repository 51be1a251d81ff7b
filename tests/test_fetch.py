"""Fetcher against an in-memory API whose entities shift between page reads."""

from __future__ import annotations

from typing import Any

from replicator.fetch import Fetcher, KindLoad
from replicator.pages import PagePlan
from replicator.router import Change


class ShiftingApi:
    """Companies served by offset, of which the first ones go after the first page read."""

    def __init__(self, total: int, deletes_after_first_page: int) -> None:
        self.items = [{"id": f"comp_{n:04d}", "environment_id": "env"} for n in range(total)]
        self.deletes = deletes_after_first_page
        self.reads = 0

    def page(self, resource: str, limit: int, offset: int) -> list[Any]:
        page = self.items[offset : offset + limit]
        self.reads += 1
        if self.reads == 1:
            del self.items[: self.deletes]
        return page


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def add(self, kind: str, shard: int, change: Change) -> None:
        self.changes.append(change)

    def flush(self) -> bool:
        return True


def run_load(api: ShiftingApi, page_size: int) -> tuple[KindLoad, list[str]]:
    recorder = Recorder()
    fetcher = Fetcher(api, recorder, "ver1", 2, 1, lambda: None)  # type: ignore[arg-type]
    load = KindLoad("company", PagePlan("companies", page_size, len(api.items)))
    fetcher.fetch_all({"company": load}, "1")
    return load, [change[1] for change in recorder.changes]


def test_shifted_entity_loaded_once() -> None:
    api = ShiftingApi(total=300, deletes_after_first_page=1)
    before = [item["id"] for item in api.items]

    load, loaded = run_load(api, 100)

    assert sorted(loaded) == before
    assert load.done == 300


def test_overlap_counts_distinct_entities() -> None:
    api = ShiftingApi(total=250, deletes_after_first_page=0)

    load, loaded = run_load(api, 100)

    assert len(loaded) == 250
    assert len(set(loaded)) == 250
    assert load.done == 250


def test_shift_beyond_overlap_misses_entities() -> None:
    api = ShiftingApi(total=300, deletes_after_first_page=10)

    load, loaded = run_load(api, 100)

    assert len(set(loaded)) == len(loaded)
    assert len(loaded) == load.done
    assert load.done == 300 - 10 + 5
