"""Apply company and user changes to Redis, one batch per pipeline.

A batch is folded per entity in arrival order (full, partial, delete, load, sweep),
then each entity gets one write: the record, its lookups, and compare-and-delete of
lookups it no longer has. The previous record is read first, in one pipeline, for
the partial base and for the stale-lookup diff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from replicator import keys, merge, records
from replicator.logs import log_every
from replicator.router import Change
from workers.idset import IdSet
from workers.lookups import LookupMemory
from workers.writer import Writer

logger = logging.getLogger(__name__)

#: Partials parked while a load runs, waiting for the loaded record of their entity.
MAX_PARKED_PARTIALS = 100_000

STREAM_OPS = ("full", "partial", "delete")
#: Returned by _plan_entity when what an entity's stored lookups are is not known.
UNKNOWN = object()
#: Operations that need the stored record, and those that need only its lookups.
NEEDS_RECORD = ("partial", "sweep", "sweep_lookup", "load_missed")
NEEDS_LOOKUPS = ("full", "delete")
CONTROL_OPS = ("begin", "fence", "end", "abort")

Normalizer = Callable[[Any], dict[str, Any]]
Merger = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass
class Outcome:
    """Result of one segment: the stream ids to acknowledge, and counters."""

    acks: list[str] = field(default_factory=list)
    applied: int = 0
    skipped: int = 0
    swept_records: int = 0
    swept_lookups: int = 0


@dataclass
class EntityState:
    """Folded state of one entity within a segment."""

    entity_id: str
    fetched: bool = False
    known_lookups: frozenset[str] | None = None  # stored lookups, when not fetched
    previous_raw: bytes | None = None
    previous: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    changed: bool = False
    message_lookups: set[str] = field(default_factory=set)
    sweep_lookups: list[str] = field(default_factory=list)


class EntityApplier:
    """Writes one entity type (``company`` or ``user``) for one worker shard."""

    def __init__(
        self,
        kind: str,
        version: str,
        writer: Writer,
        first_load_done: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kind = kind
        self.version = version
        self.writer = writer
        self.first_load_done = first_load_done
        self.memory = LookupMemory()
        # Stale lookups of batches that failed, per entity. A failed batch may have written
        # some records (a cluster writes each shard on its own), so its retry reads the new
        # records back and would no longer see what they replaced.
        self.unconfirmed: dict[str, set[str]] = {}
        self.normalize: Normalizer = (
            records.normalize_company if kind == "company" else records.normalize_user
        )
        self.merge: Merger = merge.merge_company if kind == "company" else merge.merge_user
        self.generation = ""
        # Entities the current load must not overwrite: written by a stream change or
        # already loaded in this generation.
        self.settled = IdSet()
        self.parked: dict[str, list[dict[str, Any]]] = {}
        self.parked_count = 0

    # Load protocol -----------------------------------------------------------------

    def begin(self, generation: str) -> None:
        """Start remembering which entities the stream or the load settled."""
        self.generation = generation
        self.settled = IdSet()
        self.parked = {}
        self.parked_count = 0

    def end(self, generation: str) -> int:
        """Forget the load's bookkeeping; return how many parked partials were dropped."""
        if generation != self.generation:
            return 0
        dropped = self.parked_count
        self.begin("")
        return dropped

    def abort(self, generation: str) -> list[Change]:
        """End a load that failed; return its parked partials as changes to apply now.

        Without a complete load, no loaded record is coming, so the partials are merged
        into the stored records as if no load had run. The next load refreshes them.
        """
        if generation != self.generation:
            return []
        released: list[Change] = []
        for entity_id, partials in self.parked.items():
            for data in partials:
                released.append(("partial", entity_id, "", orjson.dumps({"data": data})))
        self.begin("")
        return released

    # Data --------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> Outcome:
        """Fold ``changes`` and write the result in one pipeline; raises on Redis errors."""
        outcome = Outcome()
        operations = self._decode(changes, outcome)
        states = self._fetch(operations)

        for op, entity_id, data, stream_id in operations:
            state = states[entity_id]
            self._fold(state, op, data, stream_id, outcome)

        self._write(states.values())
        return outcome

    def _decode(self, changes: list[Change], outcome: Outcome) -> list[tuple[str, str, Any, str]]:
        operations = []
        for op, entity_id, token, payload in changes:
            stream_id = token if op in STREAM_OPS else ""
            if stream_id:
                outcome.acks.append(stream_id)
            try:
                data = _decode_payload(op, payload)
            except ValueError as exc:
                self._skip(outcome, op, entity_id, stream_id, f"undecodable payload: {exc}")
                continue
            operations.append((op, entity_id, data, stream_id))
        return operations

    def _fetch(self, operations: list[tuple[str, str, Any, str]]) -> dict[str, EntityState]:
        states: dict[str, EntityState] = {}
        for op, entity_id, _, _ in operations:
            state = states.setdefault(entity_id, EntityState(entity_id))
            if op in NEEDS_RECORD:
                state.fetched = True
            elif op in NEEDS_LOOKUPS and not state.fetched:
                state.known_lookups = self.memory.get(entity_id)
                state.fetched = state.known_lookups is None
        for state in states.values():
            if state.fetched:
                state.known_lookups = None
            elif state.known_lookups is None:
                # Only loads: the record is overwritten blindly, and lookups it no longer
                # has are left for the sweep after the load.
                state.known_lookups = self.memory.get(state.entity_id)

        wanted = [state for state in states.values() if state.fetched]
        record_keys = [keys.record_key(self.kind, self.version, s.entity_id) for s in wanted]
        for state, raw in zip(wanted, self.writer.get_many(record_keys), strict=True):
            state.previous_raw = raw
            state.previous = _decode_record(raw)
            state.record = state.previous
        return states

    def _fold(
        self, state: EntityState, op: str, data: Any, stream_id: str, outcome: Outcome
    ) -> None:
        if op == "full":
            self._fold_full(state, data, stream_id, outcome)
        elif op == "partial":
            self._fold_partial(state, data, stream_id, outcome)
        elif op == "delete":
            self._fold_delete(state, data)
            outcome.applied += 1
        elif op in ("load", "load_missed"):
            self._fold_load(state, data, outcome)
        elif op == "sweep":
            self._fold_sweep(state, outcome)
        elif op == "sweep_lookup":
            state.sweep_lookups.append(data)
            outcome.swept_lookups += 1
        else:
            self._skip(outcome, op, state.entity_id, stream_id, "unknown operation")

    def _fold_full(self, state: EntityState, data: Any, stream_id: str, outcome: Outcome) -> None:
        try:
            record = self.normalize(data)
        except records.InvalidRecord as exc:
            self._skip(outcome, "full", state.entity_id, stream_id, str(exc))
            return
        if record["id"] != state.entity_id:
            detail = f"data.id {record['id']!r} differs from entity_id"
            self._skip(outcome, "full", state.entity_id, stream_id, detail)
            return
        self._set(state, record)
        outcome.applied += 1

    def _fold_partial(
        self, state: EntityState, data: Any, stream_id: str, outcome: Outcome
    ) -> None:
        if not isinstance(data, dict):
            self._skip(outcome, "partial", state.entity_id, stream_id, "data is not an object")
            return
        if self._should_park(state):
            self.parked.setdefault(state.entity_id, []).append(data)
            self.parked_count += 1
            return
        if state.record is None:
            # Not invalid: the record may be gone with data Redis lost, which a reload
            # brings back whole, or deleted before this change arrived.
            reason = "no stored record to merge into"
            self._skip(outcome, "partial", state.entity_id, stream_id, reason, logging.INFO)
            return
        try:
            record = self.normalize(self.merge(state.record, data))
        except (records.InvalidRecord, TypeError, ValueError) as exc:
            self._skip(outcome, "partial", state.entity_id, stream_id, str(exc))
            return
        record["id"] = state.entity_id
        self._set(state, record)
        outcome.applied += 1

    def _should_park(self, state: EntityState) -> bool:
        """Tell whether a partial must wait for the entity's loaded record.

        While a load runs, the stored record of an entity the load has not reached yet
        may be stale (the load exists to refresh it), and the entity may not be stored
        at all yet. A partial merged into it would settle the entity and make the load
        skip the fresh copy. So the partial is kept aside and merged into the loaded
        record instead.
        """
        if not self.generation or state.entity_id in self.settled:
            return False
        if self.parked_count < MAX_PARKED_PARTIALS:
            return True
        log_every(
            logger,
            f"parked:{self.kind}",
            60.0,
            logging.WARNING,
            "More than %d partials wait for loaded records; merging the rest into the stored ones.",
            MAX_PARKED_PARTIALS,
        )
        return False

    def _fold_delete(self, state: EntityState, data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("keys"), dict):
            named = {str(k): str(v) for k, v in data["keys"].items() if v is not None}
            state.message_lookups.update(keys.lookup_keys(self.kind, self.version, named))
        state.record = None
        state.changed = True
        self._settle(state.entity_id)

    def _fold_load(self, state: EntityState, data: Any, outcome: Outcome) -> None:
        if state.entity_id in self.settled:
            outcome.skipped += 1  # The stream already wrote a newer copy.
            return
        record = data
        parked = self.parked.pop(state.entity_id, [])
        if parked:
            # The loader counts the page's lookups as written, so the sweep skips them.
            # Lookups that the parked partials replaced are deleted here instead.
            state.message_lookups.update(self._lookups(record))
        for partial in parked:
            self.parked_count -= 1
            try:
                record = self.normalize(self.merge(record, partial))
            except (records.InvalidRecord, TypeError, ValueError) as exc:
                self._skip(outcome, "partial", state.entity_id, "", str(exc))
        record["id"] = state.entity_id
        self._set(state, record)
        outcome.applied += 1

    def _fold_sweep(self, state: EntityState, outcome: Outcome) -> None:
        if state.entity_id in self.settled or state.record is None:
            outcome.skipped += 1
            return
        state.record = None
        state.changed = True
        outcome.applied += 1
        outcome.swept_records += 1

    def _set(self, state: EntityState, record: dict[str, Any]) -> None:
        state.record = record
        state.changed = True
        self._settle(state.entity_id)

    def _settle(self, entity_id: str) -> None:
        if not self.generation:
            return  # No load runs, so nothing reads the set and it would only grow.
        # Partials parked for this entity are older than what settles it now.
        self.parked_count -= len(self.parked.pop(entity_id, ()))
        self.settled.add(entity_id)

    # Writing -----------------------------------------------------------------------

    def _write(self, states: Any) -> None:
        values: dict[str, bytes] = {}
        deletes: list[str] = []
        conditional: list[tuple[str, bytes]] = []
        remembered: list[tuple[str, frozenset[str] | None]] = []
        planned: dict[str, set[str]] = {}
        for state in states:
            after = self._plan_entity(state, values, deletes, conditional, planned)
            if after is not UNKNOWN:
                remembered.append((state.entity_id, after))
        try:
            self.writer.write_batch(values, deletes, conditional)
        except Exception:
            for entity_id, stale in planned.items():
                self.unconfirmed.setdefault(entity_id, set()).update(stale)
            raise

        if self.unconfirmed:
            for entity_id in planned:
                self.unconfirmed.pop(entity_id, None)
        # Only after the write succeeded: a failed batch is retried from what is stored.
        for entity_id, lookups in remembered:
            if lookups is None:
                self.memory.forget(entity_id)
            else:
                self.memory.remember(entity_id, lookups)

    def _plan_entity(
        self,
        state: EntityState,
        values: dict[str, bytes],
        deletes: list[str],
        conditional: list[tuple[str, bytes]],
        planned: dict[str, set[str]],
    ) -> Any:
        """Queue one entity's writes and return the lookups it will have.

        Returns None when the entity is deleted, and UNKNOWN when its stored lookups
        were neither read nor remembered.
        """
        entity_id = state.entity_id
        id_value = keys.lookup_value(entity_id)
        known = state.fetched or state.known_lookups is not None
        if state.fetched:
            previous_lookups = set(self._lookups(state.previous))
        else:
            previous_lookups = set(state.known_lookups or ())
        record_key = keys.record_key(self.kind, self.version, entity_id)

        after: frozenset[str] | None = frozenset(previous_lookups)
        current = self._lookups(state.record)
        if state.changed and state.record is not None:
            values[record_key] = records.encode(state.record)
            # NOTE: Every lookup is rewritten, also an unchanged one. When a key value moves
            # to an entity of another worker that runs ahead, an older change of the first
            # entity can take the lookup back until the next full load.
            for lookup in current:
                values[lookup] = id_value
            stale = (previous_lookups | state.message_lookups) - set(current)
            after = frozenset(current)
        elif state.changed:
            deletes.append(record_key)
            stale = previous_lookups | state.message_lookups
            after = None
        else:
            stale = set()

        if state.sweep_lookups:
            # Only lookups that the record lacks are deleted. The remembered lookups are
            # those of the record, so a sweep leaves them unchanged.
            record_lookups = set(current)
            stale.update(lookup for lookup in state.sweep_lookups if lookup not in record_lookups)
        retried = self.unconfirmed.get(entity_id)
        if retried:
            stale.update(retried - set(current))
        planned[entity_id] = stale
        conditional.extend((lookup, id_value) for lookup in sorted(stale))
        if not known and not state.changed:
            return UNKNOWN
        if not known and after is not None:
            return UNKNOWN  # Written without knowing the old lookups: some may remain.
        return after

    def _lookups(self, record: dict[str, Any] | None) -> list[str]:
        if not record:
            return []
        return keys.lookup_keys(self.kind, self.version, record.get("keys") or {})

    def _skip(
        self,
        outcome: Outcome,
        op: str,
        entity_id: str,
        stream_id: str,
        reason: str,
        level: int = logging.WARNING,
    ) -> None:
        outcome.skipped += 1
        reason = reason.rstrip(".")
        invalid = "invalid " if level >= logging.WARNING else ""
        log_every(
            logger,
            f"skip:{self.kind}:{op}:{level}",
            10.0,
            level,
            "Skipped %s%s %s change for id %r (stream id %r): %s.",
            invalid,
            self.kind,
            op,
            entity_id,
            stream_id,
            reason,
        )


def _decode_payload(op: str, payload: bytes) -> Any:
    if op in STREAM_OPS:
        frame = orjson.loads(payload)
        return frame.get("data") if isinstance(frame, dict) else None
    if op in ("load", "load_missed"):
        return orjson.loads(payload)
    if op == "sweep_lookup":
        return payload.decode("utf-8")
    return None


def _decode_record(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
