"""After a complete load: find what Redis holds that the source no longer has.

The loader remembers a 64-bit hash of every entity id and lookup key it loaded
(8 bytes each, so a million companies with three keys cost about 32 MB), then scans
the record and lookup keys of the current version with SCAN. Records it did not
load are returned as candidates, which the loader checks against the API one by one
before anything is deleted. Lookups it did not write go straight to the worker that
owns the entity they name, which deletes one only when that entity's stored record
lacks it. Workers make the final call on both, because only they know whether the
stream wrote the entity meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from bisect import bisect_left
from collections.abc import Iterator

import orjson

from replicator import keys
from replicator.dispatch import Dispatcher
from replicator.router import shard_for
from workers.writer import Writer

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000


def digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


class SeenSet:
    """A compact set of strings, stored as 64-bit hashes in 256 sorted buckets.

    A hash collision can only make an absent entity look present, which keeps a
    key that should have gone; it never deletes one that should stay. Buckets (by the
    hash's top byte) are sorted one at a time when first searched, so sorting never
    turns more than a 256th of the hashes into Python integers at once.
    """

    BUCKETS = 256

    def __init__(self) -> None:
        self._buckets = [array("Q") for _ in range(self.BUCKETS)]
        self._unsorted = set(range(self.BUCKETS))
        self._count = 0

    def add(self, text: str) -> None:
        value = digest(text)
        bucket = value >> 56
        self._buckets[bucket].append(value)
        self._unsorted.add(bucket)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        value = digest(text)
        bucket = value >> 56
        hashes = self._buckets[bucket]
        if bucket in self._unsorted:
            hashes = self._buckets[bucket] = array("Q", sorted(hashes))
            self._unsorted.discard(bucket)
        index = bisect_left(hashes, value)
        return index < len(hashes) and hashes[index] == value


class Sweeper:
    """Sends ``sweep`` and ``sweep_lookup`` changes for one entity type."""

    def __init__(
        self, writer: Writer, dispatcher: Dispatcher, kind: str, version: str, shards: int
    ) -> None:
        self.writer = writer
        self.client = writer.client
        self.dispatcher = dispatcher
        self.kind = kind
        self.version = version
        self.shards = shards

    def run(self, generation: str, ids: SeenSet, lookups: SeenSet) -> tuple[list[str], int]:
        """Return the ids of records the load did not write, and queue lookup checks;
        the count is of lookups handed to the workers."""
        records: list[str] = []
        lookups_sent = 0
        for batch in self._scan_batches():
            candidates = []
            for key in batch:
                parsed = keys.parse_entity_key(key)
                if parsed is None or parsed.kind != self.kind or parsed.version != self.version:
                    continue
                if parsed.is_record and parsed.entity_id not in ids:
                    records.append(parsed.entity_id)
                elif not parsed.is_record and key not in lookups:
                    candidates.append(key)
            lookups_sent += self._send_lookups(candidates, generation, ids, records)
        self.dispatcher.flush()
        return records, lookups_sent

    def _scan_batches(self) -> Iterator[list[str]]:
        batch: list[str] = []
        pattern = keys.entity_pattern(self.kind, self.version)
        for raw in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
            if len(batch) >= SCAN_COUNT:
                yield batch
                batch = []
        if batch:
            yield batch

    def _send_lookups(
        self, candidates: list[str], generation: str, ids: SeenSet, records: list[str]
    ) -> int:
        if not candidates:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for key in candidates:
            pipe.get(key)
        sent = 0
        invalid = self.writer.pipeline()
        prefix = keys.entity_pattern(self.kind, self.version).rstrip("*")
        for key, raw in zip(candidates, pipe.execute(), strict=True):
            entity_id = _lookup_target(raw)
            if entity_id is not None:
                self._send("sweep_lookup", entity_id, generation, key.encode("utf-8"))
                sent += 1
            elif _is_record(raw):
                # A record whose id contains ':' reads like a lookup key: treat it as a record.
                record_id = key[len(prefix) :]
                if record_id not in ids:
                    records.append(record_id)
            elif raw is not None:
                # Not a JSON string: no SDK can use it, and no entity owns it.
                logger.warning("Deleting lookup key %r: its value %r is not an id.", key, raw[:80])
                self.writer.delete_if_equals(invalid, key, raw)
                sent += 1
        invalid.execute()
        return sent

    def send_sweep(self, entity_id: str, generation: str) -> None:
        """Ask the owning worker to delete a record the API says no longer exists."""
        self._send("sweep", entity_id, generation, b"")

    def _send(self, op: str, entity_id: str, generation: str, payload: bytes) -> None:
        shard = shard_for(entity_id, self.shards)
        self.dispatcher.add(self.kind, shard, (op, entity_id, generation, payload))


def _is_record(raw: bytes | None) -> bool:
    return raw is not None and raw.startswith(b"{")


def _lookup_target(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) and value else None
