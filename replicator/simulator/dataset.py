"""Base data of the simulator: generated on demand from a seed, or loaded from a file.

A dataset file is a JSON object with ``flags``, ``companies`` and ``users`` arrays in the
rules-engine shapes. Other top-level keys are ignored, except ``last_stream_id``, which a
dump of the simulator writes and which a restarted simulator accepts as the point its
stream resumes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any, Protocol

import orjson

from replicator.simulator.catalog import Catalog
from replicator.simulator.entities import make_company, make_user
from replicator.simulator.rules import make_flag

Record = dict[str, Any]

MIN_GENERATED = 0
MAX_GENERATED = 10_000_000
_PREFIXES = {"company": "comp", "user": "user", "flag": "flag"}


class DatasetError(ValueError):
    """A dataset file or dict that cannot be served."""


class Source(Protocol):
    """Base entities of one kind, addressed by a dense index."""

    size: int

    def record(self, index: int) -> Record: ...

    def id_of(self, index: int) -> str: ...

    def index_of(self, entity_id: str) -> int | None: ...


class GeneratedSource:
    """Entities made on demand by the seeded generator; nothing is kept in memory."""

    def __init__(self, catalog: Catalog, kind: str, size: int) -> None:
        if not MIN_GENERATED <= size <= MAX_GENERATED:
            raise DatasetError(
                f"Invalid {kind} count {size!r}: expected {MIN_GENERATED} to {MAX_GENERATED}."
            )
        self.catalog = catalog
        self.kind = kind
        self.size = size
        self._prefix = _PREFIXES[kind]

    def record(self, index: int) -> Record:
        return generate(self.catalog, self.kind, index)

    def id_of(self, index: int) -> str:
        return self.catalog.entity_id(self._prefix, index)

    def index_of(self, entity_id: str) -> int | None:
        index = self.catalog.entity_index(self._prefix, entity_id)
        if index is None or index >= self.size:
            return None
        return index


class ListSource:
    """Entities loaded from a dataset, kept as given."""

    def __init__(self, records: list[Record]) -> None:
        self._records = records
        self.size = len(records)
        self._positions = {str(record["id"]): i for i, record in enumerate(records)}

    def record(self, index: int) -> Record:
        return self._records[index]

    def id_of(self, index: int) -> str:
        return str(self._records[index]["id"])

    def index_of(self, entity_id: str) -> int | None:
        return self._positions.get(entity_id)


def generate(catalog: Catalog, kind: str, index: int, revision: int = 0) -> Record:
    """Return generated entity ``index`` of a kind (``flag``, ``company`` or ``user``)."""
    if kind == "company":
        return make_company(catalog, index, revision)
    if kind == "user":
        return make_user(catalog, index, revision)
    return make_flag(catalog, index, revision)


@dataclass
class Dataset:
    """Validated content of a dataset file."""

    flags: list[Record]
    companies: list[Record]
    users: list[Record]
    last_stream_id: str | None = None


def _check_records(section: str, items: Any, identity: str) -> list[Record]:
    if not isinstance(items, list):
        raise DatasetError(
            f"Invalid dataset: {section!r} is {type(items).__name__}, expected an array."
        )
    seen: set[str] = set()
    for position, item in enumerate(items):
        value = item.get(identity) if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            raise DatasetError(
                f"Invalid dataset: {section}[{position}] has no string "
                f"{identity!r}; every record needs a non-empty {identity}."
            )
        if value in seen:
            raise DatasetError(
                f"Invalid dataset: {section}[{position}] repeats {identity} {value!r}."
            )
        seen.add(value)
    return items


def parse_dataset(data: Any) -> Dataset:
    """Validate a dataset object. A DatasetError names the section and record at fault."""
    if not isinstance(data, dict):
        raise DatasetError(
            f"Invalid dataset: the top level is {type(data).__name__}, expected an object "
            "with 'flags', 'companies' and 'users' arrays."
        )
    flags = _check_records("flags", data.get("flags", []), "key")
    companies = _check_records("companies", data.get("companies", []), "id")
    users = _check_records("users", data.get("users", []), "id")
    last = data.get("last_stream_id")
    return Dataset(flags, companies, users, last if isinstance(last, str) else None)


def load_dataset(path: str) -> Dataset:
    """Read and validate a dataset file."""
    try:
        with open(path, "rb") as handle:
            data = orjson.loads(handle.read())
    except OSError as error:
        raise DatasetError(f"Cannot read dataset file {path!r}: {error.strerror}.") from error
    except orjson.JSONDecodeError as error:
        raise DatasetError(f"Dataset file {path!r} is not valid JSON: {error}.") from error
    return parse_dataset(data)


def _write_array(handle: IO[bytes], name: str, records: Iterable[Record]) -> None:
    handle.write(b'"' + name.encode() + b'":[')
    first = True
    for record in records:
        if not first:
            handle.write(b",\n")
        handle.write(orjson.dumps(record))
        first = False
    handle.write(b"]")


def write_dataset(
    handle: IO[bytes],
    flags: Iterable[Record],
    companies: Iterable[Record],
    users: Iterable[Record],
    last_stream_id: str | None,
) -> None:
    """Stream a dataset object to a binary file, one record at a time."""
    handle.write(b"{")
    _write_array(handle, "flags", flags)
    handle.write(b",\n")
    _write_array(handle, "companies", companies)
    handle.write(b",\n")
    _write_array(handle, "users", users)
    handle.write(b',\n"last_stream_id":' + orjson.dumps(last_stream_id) + b"}\n")
