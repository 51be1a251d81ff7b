"""Apply the flags snapshot and single-flag changes to Redis.

One flags worker exists, so snapshots and single-flag changes are applied strictly
in arrival order. A snapshot replaces the whole set: flags it does not name are
deleted, also when it is empty.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from replicator import keys, records
from replicator.logs import log_every
from replicator.router import Change
from replicator.status import StatusBlock
from workers.entities import Outcome
from workers.writer import Writer

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000


class FlagsApplier:
    """Writes flags; remembers each flag id's key so a rename or an id-only delete works."""

    def __init__(self, version: str, writer: Writer, status: StatusBlock) -> None:
        self.version = version
        self.writer = writer
        self.status = status
        self.key_by_id: dict[str, str] = {}

    def apply(self, changes: list[Change]) -> Outcome:
        outcome = Outcome()
        for op, _, stream_id, payload in changes:
            if stream_id:
                outcome.acks.append(stream_id)
            try:
                data = _frame_data(payload)
            except ValueError as exc:
                self._skip(outcome, op, stream_id, f"undecodable payload: {exc}")
                continue
            self._apply_one(op, data, stream_id, outcome)
        return outcome

    def _apply_one(self, op: str, data: Any, stream_id: str, outcome: Outcome) -> None:
        if op == "snapshot":
            self._snapshot(data, outcome)
        elif op == "full":
            self._upsert(data, stream_id, outcome)
        elif op == "partial":
            self._patch(data, stream_id, outcome)
        elif op == "delete":
            self._delete(data, stream_id, outcome)
        else:
            self._skip(outcome, op, stream_id, "unknown operation")

    # Snapshot ----------------------------------------------------------------------

    def _snapshot(self, data: Any, outcome: Outcome) -> None:
        if not isinstance(data, list):
            self._skip(outcome, "snapshot", "", f"data is {type(data).__name__}, not a list")
            return

        kept: set[str] = set()
        pipe = self.writer.pipeline()
        for item in data:
            flag_key = self._queue_snapshot_flag(pipe, item, outcome)
            if flag_key:
                kept.add(flag_key)
        pipe.execute()
        outcome.applied += 1

        removed = self._delete_missing(kept)
        self._publish_snapshot(len(kept))
        logger.info("Applied flags snapshot: %d flags written, %d removed.", len(kept), removed)

    def _queue_snapshot_flag(self, pipe: Any, item: Any, outcome: Outcome) -> str:
        try:
            flag = records.normalize_flag(item)
        except records.InvalidRecord as exc:
            # The snapshot as a whole still counts as one applied change.
            self._skip(outcome, "snapshot", "", str(exc), count=False)
            # Keep the stored copy of a flag we cannot read rather than delete it.
            return _raw_flag_key(self.version, item)
        key = keys.flag_key(self.version, flag["key"])
        self.writer.set(pipe, key, records.encode(flag))
        self.key_by_id[flag["id"]] = key
        return key

    def _delete_missing(self, kept: set[str]) -> int:
        pattern = keys.flag_pattern(self.version)
        stale = [key for key in _scan(self.writer.client, pattern) if key not in kept]
        pipe = self.writer.pipeline()
        for key in stale:
            pipe.delete(key)
        pipe.execute()
        self.key_by_id = {fid: key for fid, key in self.key_by_id.items() if key in kept}
        return len(stale)

    def _publish_snapshot(self, count: int) -> None:
        state = self.status.globals
        state.flags_count = count
        state.flags_snapshot_at = time.time()
        state.flags_loaded = 1

    # Single flags ------------------------------------------------------------------

    def _upsert(self, data: Any, stream_id: str, outcome: Outcome) -> None:
        try:
            flag = records.normalize_flag(data)
        except records.InvalidRecord as exc:
            self._skip(outcome, "full", stream_id, str(exc))
            return
        self._write_flag(flag)
        outcome.applied += 1

    def _patch(self, data: Any, stream_id: str, outcome: Outcome) -> None:
        if not isinstance(data, dict):
            self._skip(outcome, "partial", stream_id, "data is not an object")
            return
        stored = self._stored_flag(data)
        try:
            flag = records.normalize_flag({**(stored or {}), **data})
        except records.InvalidRecord as exc:
            self._skip(outcome, "partial", stream_id, str(exc))
            return
        self._write_flag(flag)
        outcome.applied += 1

    def _delete(self, data: Any, stream_id: str, outcome: Outcome) -> None:
        key = self._key_of(data)
        if not key:
            self._skip(outcome, "delete", stream_id, "neither a known id nor a key")
            return
        self.writer.client.delete(key)
        if isinstance(data, dict):
            self.key_by_id.pop(str(data.get("id")), None)
        outcome.applied += 1

    def _write_flag(self, flag: dict[str, Any]) -> None:
        key = keys.flag_key(self.version, flag["key"])
        pipe = self.writer.pipeline()
        self.writer.set(pipe, key, records.encode(flag))
        old_key = self.key_by_id.get(flag["id"])
        if old_key and old_key != key:
            pipe.delete(old_key)  # The flag's key was renamed.
        pipe.execute()
        self.key_by_id[flag["id"]] = key

    def _stored_flag(self, data: dict[str, Any]) -> dict[str, Any] | None:
        key = self._key_of(data)
        raw = self.writer.client.get(key) if key else None
        if raw is None:
            return None
        try:
            stored = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return stored if isinstance(stored, dict) else None

    def _key_of(self, data: Any) -> str:
        if not isinstance(data, dict):
            return ""
        if isinstance(data.get("key"), str) and data["key"]:
            return keys.flag_key(self.version, data["key"])
        return self.key_by_id.get(str(data.get("id")), "")

    def _skip(
        self, outcome: Outcome, op: str, stream_id: str, reason: str, count: bool = True
    ) -> None:
        outcome.skipped += count
        reason = reason.rstrip(".")
        log_every(
            logger,
            f"skip:flags:{op}",
            10.0,
            logging.WARNING,
            "Skipped invalid flag %s change (stream id %r): %s.",
            op,
            stream_id,
            reason,
        )


def _frame_data(payload: bytes) -> Any:
    frame = orjson.loads(payload)
    return frame.get("data") if isinstance(frame, dict) else None


def _raw_flag_key(version: str, item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("key"), str) and item["key"]:
        return keys.flag_key(version, item["key"])
    return ""


def _scan(client: Any, pattern: str) -> list[str]:
    found = []
    for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        found.append(key.decode("utf-8") if isinstance(key, bytes) else key)
    return found
