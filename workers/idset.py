"""A compact set of entity ids, for the ids a worker settles during one bulk load.

A load of 1,000,000 entities per type gives each worker about 250,000 ids. As a Python
set of strings they take about 100 bytes each. Here each id is a 64-bit hash in one
flat table that is kept between a quarter and half full: 16 to 32 bytes per id.

NOTE: two ids with the same 64-bit hash count as one, so the second looks settled
although it is not. For 250,000 ids the chance of such a pair is about 2 in 10^9 per
load. The effect is one entity whose loaded copy is skipped until its next change.
"""

from __future__ import annotations

from array import array

_MASK64 = (1 << 64) - 1
_FIRST_SLOTS = 1024


class IdSet:
    """Set of strings stored as their hashes, with open addressing and linear probing."""

    def __init__(self) -> None:
        self._table = array("Q", bytes(8 * _FIRST_SLOTS))
        self._mask = _FIRST_SLOTS - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, entity_id: str) -> bool:
        target = _key(entity_id)
        table, mask = self._table, self._mask
        slot = target & mask
        while True:
            found = table[slot]
            if found == target:
                return True
            if not found:
                return False
            slot = (slot + 1) & mask

    def add(self, entity_id: str) -> None:
        if self._insert(_key(entity_id)):
            self._count += 1
            if 2 * self._count > self._mask:
                self._grow()

    def _insert(self, key: int) -> bool:
        """Put ``key`` in the table; return False when it was there already."""
        table, mask = self._table, self._mask
        slot = key & mask
        while True:
            found = table[slot]
            if found == key:
                return False
            if not found:
                table[slot] = key
                return True
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", bytes(16 * len(old)))
        self._mask = 2 * len(old) - 1
        for key in old:
            if key:
                self._insert(key)


def _key(entity_id: str) -> int:
    # Zero marks an empty slot, so a hash of zero is stored as one.
    return (hash(entity_id) & _MASK64) or 1
