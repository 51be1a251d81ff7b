"""The simulated service's state and its change API, without any thread or socket.

Every change follows the same steps under one lock: apply it to the truth, take the next
stream id, serialise the message once, keep it in the retained window and hand it to
the fan-out. Because of the lock, the truth, the stream order and the window agree at
every moment. A dump or a REST page never shows a change that was not published, and
clients receive changes in the order the truth applied them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from replicator.simulator.api_shapes import item
from replicator.simulator.catalog import build_catalog
from replicator.simulator.config import SimulatorConfig
from replicator.simulator.dataset import Dataset, load_dataset, parse_dataset
from replicator.simulator.partials import merge
from replicator.simulator.rest_pages import PageEncoder
from replicator.simulator.stream import (
    ENTITY_TYPES,
    ROUTE_FLAG,
    Message,
    RetainedWindow,
    StreamClock,
    change_frame,
    control_message,
    format_stream_id,
    parse_stream_id,
)
from replicator.simulator.truth import Truth

logger = logging.getLogger(__name__)

Record = dict[str, Any]
_LABELS = {"company": "Company", "user": "User"}
#: Largest number of companies plus users that truth() builds as one dict.
MAX_IN_MEMORY_ENTITIES = 200_000


def _encode(value: Any, description: str) -> tuple[Any, str]:
    """Return an independent copy of a JSON value and its encoded text."""
    try:
        data = orjson.dumps(value)
    except TypeError as error:
        raise ValueError(
            f"Invalid {description}: it cannot be encoded as JSON ({error})."
        ) from error
    return orjson.loads(data), data.decode()


def _require_text(record: Any, field: str, description: str) -> str:
    value = record.get(field) if isinstance(record, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"Invalid {description}: it needs a non-empty string {field!r}, got {value!r}."
        )
    return value


class Service:
    """Truth, stream and change API of one simulated Schematic environment."""

    def __init__(self, config: SimulatorConfig) -> None:
        config.validate()
        self.config = config
        self.catalog = build_catalog(config.seed)
        dataset = self._dataset(config)
        if dataset is None:
            self.state = Truth.generated(self.catalog, config.companies, config.users, config.flags)
            floor = None
        else:
            self.state = Truth.loaded(self.catalog, dataset)
            floor = parse_stream_id(dataset.last_stream_id)
        self.page_encoders = {
            kind: PageEncoder(kind, self.state.table(kind).source, self.catalog)
            for kind in ("company", "user")
        }
        self.clock = StreamClock(floor)
        self.window = RetainedWindow(config.retention, floor or self.clock.last)
        self._last_id = format_stream_id(floor) if floor else None
        self.lock = threading.RLock()
        self.seq = 0
        self.published: Counter[str] = Counter()
        self.captured_events = 0  # SDK events received on POST /batch
        self.send_times: dict[str, int] = {}
        self.dispatch: Callable[[Message], None] | None = None

    @staticmethod
    def _dataset(config: SimulatorConfig) -> Dataset | None:
        if config.dataset is not None:
            return parse_dataset(config.dataset)
        if config.dataset_path is not None:
            return load_dataset(config.dataset_path)
        return None

    # Publication. The caller holds self.lock.

    def publish(
        self,
        route: str,
        message_type: str,
        entity_id: str | None,
        data_json: str,
        entity_type: str | None = None,
        track: bool = False,
        render: Callable[[str], str | bytes] | None = None,
        parts: tuple[str, str] | None = None,
    ) -> Message:
        """Give a change the next stream id, retain it and hand it to the fan-out.

        ``render``, when given, builds the whole frame from the stream id; the malformed
        frames of fault injection use it. ``parts`` is the frame before and after the
        stream id, already encoded; bursts use it.
        """
        key = self.clock.next()
        stream_id = format_stream_id(key)
        self.seq += 1
        frame: str | bytes
        if parts is not None:
            frame = parts[0] + stream_id + parts[1]
        elif render is not None:
            frame = render(stream_id)
        else:
            frame = change_frame(
                entity_type or ENTITY_TYPES[route], message_type, entity_id, stream_id, data_json
            )
        message = Message(self.seq, stream_id, key, route, frame, track)
        self._last_id = stream_id
        self.window.append(message)
        self.published[message_type] += 1
        if self.dispatch is not None:
            self.dispatch(message)
        return message

    @property
    def last_stream_id(self) -> str | None:
        """The id of the last change the truth includes, or None before the first one.

        A simulator started from a dump returns the dump's id until it publishes a change.
        """
        with self.lock:
            return self._last_id

    # Companies and users.

    def upsert(self, kind: str, record: Record) -> str:
        """Create or replace a ``company`` or ``user``; return the stream id."""
        entity_id = _require_text(record, "id", f"{kind} record")
        stored, data_json = _encode(record, f"{kind} record")
        with self.lock:
            self.state.table(kind).put(stored)
            return self.publish(kind, "full", entity_id, data_json).stream_id

    def _current(self, kind: str, entity_id: str) -> Record:
        record = self.state.table(kind).get(entity_id)
        if record is None:
            raise KeyError(
                f"{_LABELS[kind]} {entity_id!r} does not exist; "
                f"create it with upsert_{kind}() first."
            )
        return record

    def patch(self, kind: str, entity_id: str, fields: Record) -> str:
        """Merge a partial into a ``company`` or ``user``; return the stream id."""
        if not isinstance(fields, dict) or not fields:
            raise ValueError(
                f"Invalid partial for {kind} {entity_id!r}: expected a non-empty dict of fields."
            )
        partial, data_json = _encode(fields, f"partial for {kind} {entity_id!r}")
        with self.lock:
            merged = merge(kind, self._current(kind, entity_id), partial)
            self.state.table(kind).put(merged)
            return self.publish(kind, "partial", entity_id, data_json).stream_id

    def delete(self, kind: str, entity_id: str) -> str:
        """Delete a ``company`` or ``user``; return the stream id."""
        with self.lock:
            record = self._current(kind, entity_id)
            self.state.table(kind).remove(entity_id)
            return self.publish(kind, "delete", entity_id, orjson.dumps(record).decode()).stream_id

    def rename_key(self, kind: str, entity_id: str, key_name: str, new_value: str) -> str:
        """Set one key of a ``company`` or ``user``; publish the whole record as ``full``."""
        with self.lock:
            current = self._current(kind, entity_id)
            keys = {**(current.get("keys") or {}), key_name: new_value}
            return self.upsert(kind, {**current, "keys": keys})

    def upsert_company(self, record: Record) -> str:
        """Create or replace a company; publishes a ``full`` message.

        The simulator does not check that the company's keys are unused by other companies:
        a caller that creates companies chooses unique keys.
        """
        return self.upsert("company", record)

    def patch_company(self, company_id: str, fields: Record) -> str:
        """Merge fields into a company; publishes a ``partial`` carrying only ``fields``."""
        return self.patch("company", company_id, fields)

    def delete_company(self, company_id: str) -> str:
        """Delete a company; publishes a ``delete`` carrying the whole record."""
        return self.delete("company", company_id)

    def rename_company_key(self, company_id: str, key_name: str, new_value: str) -> str:
        """Set one key of a company to a new value; publishes a ``full`` message.

        A full message lets a client see which lookup keys the company no longer has.
        """
        return self.rename_key("company", company_id, key_name, new_value)

    def upsert_user(self, record: Record) -> str:
        """Create or replace a user; publishes a ``full`` message."""
        return self.upsert("user", record)

    def patch_user(self, user_id: str, fields: Record) -> str:
        """Merge fields into a user; publishes a ``partial`` carrying only ``fields``."""
        return self.patch("user", user_id, fields)

    def delete_user(self, user_id: str) -> str:
        """Delete a user; publishes a ``delete`` carrying the whole record."""
        return self.delete("user", user_id)

    def rename_user_key(self, user_id: str, key_name: str, new_value: str) -> str:
        """Set one key of a user to a new value; publishes a ``full`` message."""
        return self.rename_key("user", user_id, key_name, new_value)

    # Flags.

    def upsert_flag(self, flag: Record, message_type: str = "full") -> str:
        """Create or replace a flag; publishes a ``full`` (or ``partial``) with the whole flag."""
        key = _require_text(flag, "key", "flag")
        _require_text(flag, "id", "flag")
        if message_type not in ("full", "partial"):
            raise ValueError(f"Invalid message_type {message_type!r}: expected full or partial.")
        stored, data_json = _encode(flag, "flag")
        with self.lock:
            self.state.flags[key] = stored
            return self.publish(ROUTE_FLAG, message_type, None, data_json).stream_id

    def delete_flag(self, flag_key: str) -> str:
        """Delete a flag; publishes a ``delete`` carrying the whole flag."""
        with self.lock:
            flag = self.state.flags.pop(flag_key, None)
            if flag is None:
                raise KeyError(f"Flag {flag_key!r} does not exist; create it with upsert_flag().")
            return self.publish(ROUTE_FLAG, "delete", None, orjson.dumps(flag).decode()).stream_id

    # Reading.

    def _copy(self, record: Record | None) -> Record | None:
        return None if record is None else orjson.loads(orjson.dumps(record))

    def company(self, company_id: str) -> Record | None:
        """Return a copy of a company's current record, or None."""
        with self.lock:
            return self._copy(self.state.companies.get(company_id))

    def user(self, user_id: str) -> Record | None:
        """Return a copy of a user's current record, or None."""
        with self.lock:
            return self._copy(self.state.users.get(user_id))

    def flag(self, flag_key: str) -> Record | None:
        """Return a copy of a flag's current record, or None."""
        with self.lock:
            return self._copy(self.state.flags.get(flag_key))

    def count(self, kind: str) -> int:
        """Return the number of live companies or users."""
        with self.lock:
            return self.state.table(kind).count()

    def page_items(self, kind: str, offset: int, limit: int) -> list[Record]:
        """Return one REST page of companies or users in the API's item shape."""
        with self.lock:
            records = self.state.table(kind).page(offset, limit)
        return [item(kind, record) for record in records]

    def page_refs(self, kind: str, offset: int, limit: int) -> list[Record | int]:
        """Return the entities of one REST page as references (see ``EntityTable.page_refs``)."""
        with self.lock:
            return self.state.table(kind).page_refs(offset, limit)

    def page_body(self, kind: str, offset: int, limit: int) -> list[bytes]:
        """Return the body of one REST page of companies or users, in chunks to send in order."""
        return self.page_encoders[kind].page(self.page_refs(kind, offset, limit), offset, limit)

    def one_item(self, kind: str, entity_id: str) -> Record | None:
        """Return one company or user in the API's item shape, or None when it is absent."""
        with self.lock:
            record = self.state.table(kind).get(entity_id)
        return None if record is None else item(kind, record)

    def flags_snapshot(self) -> tuple[Message, int]:
        """Return the ``rulesengine.Flags`` snapshot and the seq of the last change it includes."""
        with self.lock:
            flags = list(self.state.flags.values())
            return control_message("rulesengine.Flags", "full", flags), self.seq

    def replay(self, replay_from: Any) -> tuple[list[Message] | None, int]:
        """Return the retained changes after an id (None: a reload is needed) and the last seq."""
        key = parse_stream_id(replay_from)
        with self.lock:
            found = None if key is None else self.window.after(key)
            return found, self.seq

    def truth(self) -> dict[str, Any]:
        """Return the whole truth in the dataset format, in memory.

        Raises RuntimeError above MAX_IN_MEMORY_ENTITIES companies and users together,
        where dump_truth() streams the same content to a file instead.
        """
        with self.lock:
            total = self.state.companies.count() + self.state.users.count()
            if total > MAX_IN_MEMORY_ENTITIES:
                raise RuntimeError(
                    f"The truth has {total} companies and users, more than "
                    f"{MAX_IN_MEMORY_ENTITIES} to build in memory; use dump_truth(path)."
                )
            snapshot = self.state.snapshot()
            last = self.last_stream_id
        return snapshot.as_dict(last)

    def dump_truth(self, path: str) -> str | None:
        """Write the truth to a dataset file and return the last stream id it includes."""
        with self.lock:
            snapshot = self.state.snapshot()
            last = self.last_stream_id
        temporary = f"{path}.tmp-{os.getpid()}"
        with open(temporary, "wb") as handle:
            snapshot.write(handle, last)
        os.replace(temporary, path)
        logger.info("Wrote the truth to %r at stream id %r.", path, last)
        return last
