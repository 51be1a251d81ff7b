"""The simulator's current state: base entities plus an overlay of changes.

Companies and users live in an :class:`EntityTable`: the base source (generated on demand
or loaded from a file) plus the changed, created and deleted entities. Only the overlay
is kept in memory, so a table of a million generated companies costs nothing until it is
changed. Live entities are ordered by base index, then created entities in creation
order; REST pages are slices of that order, so offsets shift when entities are deleted,
as they do in the real API under concurrent changes.

Callers serialise access: the simulator holds one lock around every change and its
publication. Records are never changed in place; every change stores a new dict, so a
shallow copy of the overlay is a consistent snapshot.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable, Iterator
from typing import IO, Any

from replicator.simulator.catalog import Catalog
from replicator.simulator.dataset import (
    Dataset,
    GeneratedSource,
    ListSource,
    Source,
    generate,
    write_dataset,
)

Record = dict[str, Any]


class EntityTable:
    """Live companies or live users."""

    def __init__(self, kind: str, source: Source, make_id: Callable[[int], str]) -> None:
        self.kind = kind
        self.source = source
        self.make_id = make_id
        self.changed: dict[str, Record] = {}
        self.deleted: list[int] = []
        self.created: dict[str, Record] = {}
        self._created_ids: list[str] = []
        self._created_slots: dict[str, int] = {}
        self.next_index = source.size

    def count(self) -> int:
        """Return the number of live entities."""
        return self.source.size - len(self.deleted) + len(self.created)

    def _is_deleted(self, index: int) -> bool:
        position = bisect.bisect_left(self.deleted, index)
        return position < len(self.deleted) and self.deleted[position] == index

    def get(self, entity_id: str) -> Record | None:
        """Return the current record of an entity, or None when it does not exist."""
        if entity_id in self.created:
            return self.created[entity_id]
        index = self.source.index_of(entity_id)
        if index is None or self._is_deleted(index):
            return None
        return self._base_record(index)

    def put(self, record: Record) -> None:
        """Insert or replace a record; a deleted base entity comes back at its old place."""
        entity_id = str(record["id"])
        if entity_id in self.changed:  # a live base entity: the common case of an update
            self.changed[entity_id] = record
            return
        index = self.source.index_of(entity_id)
        if index is None:
            if entity_id not in self.created:
                self._created_slots[entity_id] = len(self._created_ids)
                self._created_ids.append(entity_id)
            self.created[entity_id] = record
            return
        if self._is_deleted(index):
            self.deleted.pop(bisect.bisect_left(self.deleted, index))
        self.changed[entity_id] = record

    def remove(self, entity_id: str) -> Record | None:
        """Delete an entity and return its last record, or None when it did not exist."""
        record = self.get(entity_id)
        if record is None:
            return None
        if entity_id in self.created:
            del self.created[entity_id]
            self._forget_created(entity_id)
            return record
        index = self.source.index_of(entity_id)
        assert index is not None
        bisect.insort(self.deleted, index)
        self.changed.pop(entity_id, None)
        return record

    def _forget_created(self, entity_id: str) -> None:
        # Swap-remove keeps picking a random created entity O(1).
        slot = self._created_slots.pop(entity_id)
        last = self._created_ids.pop()
        if last != entity_id:
            self._created_ids[slot] = last
            self._created_slots[last] = slot

    def _base_index(self, position: int) -> int:
        """Map a position among live base entities to its base index."""
        index = position
        while True:
            candidate = position + bisect.bisect_right(self.deleted, index)
            if candidate == index:
                return index
            index = candidate

    def _base_record(self, index: int) -> Record:
        ref = self._base_ref(index)
        return self.source.record(ref) if isinstance(ref, int) else ref

    def _base_ref(self, index: int) -> Record | int:
        if self.changed:
            changed = self.changed.get(self.source.id_of(index))
            if changed is not None:
                return changed
        return index

    def _base_refs_from(self, position: int) -> Iterator[Record | int]:
        index = self._base_index(position)
        gaps = iter(self.deleted[bisect.bisect_left(self.deleted, index) :])
        gap = next(gaps, None)
        while index < self.source.size:
            if index == gap:
                gap = next(gaps, None)
            else:
                yield self._base_ref(index)
            index += 1

    def iter_refs_from(self, position: int) -> Iterator[Record | int]:
        """Yield live entities from a position to the end, each as a reference.

        A reference is the base index of an unchanged base entity, whose record
        ``source.record(index)`` returns, or else the entity's current record.
        """
        base_live = self.source.size - len(self.deleted)
        if position < base_live:
            yield from self._base_refs_from(position)
            position = base_live
        yield from itertools.islice(self.created.values(), position - base_live, None)

    def iter_from(self, position: int) -> Iterator[Record]:
        """Yield live records from a position to the end."""
        for ref in self.iter_refs_from(position):
            yield self.source.record(ref) if isinstance(ref, int) else ref

    def page(self, offset: int, limit: int) -> list[Record]:
        """Return up to ``limit`` live records starting at position ``offset``."""
        return list(itertools.islice(self.iter_from(offset), limit))

    def page_refs(self, offset: int, limit: int) -> list[Record | int]:
        """Return up to ``limit`` live entities from position ``offset``, as references."""
        return list(itertools.islice(self.iter_refs_from(offset), limit))

    def id_at(self, position: int) -> str:
        """Return the id of the live entity at a position (created entities in any order)."""
        base_live = self.source.size - len(self.deleted)
        if position < base_live:
            return self.source.id_of(self._base_index(position))
        return self._created_ids[position - base_live]

    def allocate_index(self) -> int:
        """Return a fresh generator index whose entity id is not in use."""
        while True:
            index = self.next_index
            self.next_index += 1
            if self.get(self.make_id(index)) is None:
                return index

    def snapshot(self) -> EntityTable:
        """Return a copy of the table whose later changes do not affect this one."""
        copy = EntityTable(self.kind, self.source, self.make_id)
        copy.changed = dict(self.changed)
        copy.deleted = list(self.deleted)
        copy.created = dict(self.created)
        copy._created_ids = list(self._created_ids)
        copy._created_slots = dict(self._created_slots)
        copy.next_index = self.next_index
        return copy


class Truth:
    """Flags, companies and users as the simulated service currently stores them."""

    def __init__(
        self, catalog: Catalog, companies: Source, users: Source, flags: list[Record]
    ) -> None:
        self.catalog = catalog
        self.companies = EntityTable(
            "company", companies, functools.partial(catalog.entity_id, "comp")
        )
        self.users = EntityTable("user", users, functools.partial(catalog.entity_id, "user"))
        self.flags: dict[str, Record] = {str(flag["key"]): flag for flag in flags}
        self.next_flag_index = len(flags)

    @classmethod
    def generated(cls, catalog: Catalog, companies: int, users: int, flags: int) -> Truth:
        """Build the truth of a seeded, generated dataset."""
        return cls(
            catalog,
            GeneratedSource(catalog, "company", companies),
            GeneratedSource(catalog, "user", users),
            [generate(catalog, "flag", index) for index in range(flags)],
        )

    @classmethod
    def loaded(cls, catalog: Catalog, dataset: Dataset) -> Truth:
        """Build the truth of a dataset file; creations use the seeded generator."""
        return cls(catalog, ListSource(dataset.companies), ListSource(dataset.users), dataset.flags)

    def table(self, kind: str) -> EntityTable:
        """Return the table of ``company`` or ``user``."""
        return self.companies if kind == "company" else self.users

    def snapshot(self) -> Truth:
        """Return a copy that later changes do not affect."""
        copy = Truth.__new__(Truth)
        copy.catalog = self.catalog
        copy.companies = self.companies.snapshot()
        copy.users = self.users.snapshot()
        copy.flags = dict(self.flags)
        copy.next_flag_index = self.next_flag_index
        return copy

    def write(self, handle: IO[bytes], last_stream_id: str | None) -> None:
        """Stream the truth in the dataset-file format."""
        write_dataset(
            handle,
            self.flags.values(),
            self.companies.iter_from(0),
            self.users.iter_from(0),
            last_stream_id,
        )

    def as_dict(self, last_stream_id: str | None) -> dict[str, Any]:
        """Return the truth in the dataset format, as one in-memory dict."""
        return {
            "flags": list(self.flags.values()),
            "companies": list(self.companies.iter_from(0)),
            "users": list(self.users.iter_from(0)),
            "last_stream_id": last_stream_id,
        }
