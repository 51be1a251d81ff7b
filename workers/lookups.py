"""What a worker remembers of the lookup keys it wrote, to skip reading records back.

Finding the stale lookups of a ``full`` change needs the lookups of the stored record.
Within a turn this worker is the only writer of its entities, so the lookups it wrote
last are the stored ones, and the worker can skip reading and decoding the record. The
memory is bounded (least recently used entries go first) and dies with the process:
a new turn starts with an empty one and reads records back again.
"""

from __future__ import annotations

from collections import OrderedDict

#: Entities remembered per worker: about 300 bytes each with three lookups.
MAX_ENTITIES = 20_000


class LookupMemory:
    def __init__(self, max_entities: int = MAX_ENTITIES) -> None:
        self.max_entities = max_entities
        self._entries: OrderedDict[str, frozenset[str]] = OrderedDict()

    def get(self, entity_id: str) -> frozenset[str] | None:
        lookups = self._entries.get(entity_id)
        if lookups is not None:
            self._entries.move_to_end(entity_id)
        return lookups

    def remember(self, entity_id: str, lookups: frozenset[str]) -> None:
        self._entries[entity_id] = lookups
        self._entries.move_to_end(entity_id)
        if len(self._entries) > self.max_entities:
            self._entries.popitem(last=False)

    def forget(self, entity_id: str) -> None:
        self._entries.pop(entity_id, None)

    def __len__(self) -> int:
        return len(self._entries)
