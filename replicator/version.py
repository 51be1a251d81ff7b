"""The cache version: the segment after ``schematic:<kind>:`` in every Redis key.

The SDKs in replicator mode learn it from ``cache_version`` in the ``/ready`` response, so
any string works as long as the keys and ``/ready`` agree. By default it is derived from the
schema, so it changes when the written shape changes and stays the same otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from replicator import schema
from replicator.schema import Field, FieldType

_OVERRIDE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def schema_version() -> str:
    """Return the cache version derived from ``schema.RECORDS``: 8 lowercase hex digits."""
    return _default_version()


def effective_version(override: str | None) -> str:
    """Return ``override`` when one is given, else ``schema_version()``.

    Raises ValueError when ``override`` is not 1 to 64 characters of ``A-Z a-z 0-9 . _ -``;
    a ``:`` would split the Redis keys at the wrong place.
    """
    if override is None:
        return schema_version()
    if not _OVERRIDE.fullmatch(override):
        raise ValueError(
            f"Invalid cache version {override!r}: use 1 to 64 characters from A-Z, a-z, 0-9, "
            "'.', '_' and '-' (no ':'), or leave it unset to derive it from the schema."
        )
    return override


def version_of(records: Mapping[str, tuple[Field, ...]], roots: tuple[str, ...]) -> str:
    """Return the first 8 hex digits of the SHA-256 of the canonical form of ``records``."""
    return hashlib.sha256(canonical_schema(records, roots)).hexdigest()[:8]


def canonical_schema(records: Mapping[str, tuple[Field, ...]], roots: tuple[str, ...]) -> bytes:
    """Serialise the written shape of the ``roots`` record types.

    Nested record types are expanded in place, so the form contains field names, kinds,
    order, required and nullable flags, and nothing else. Record type names (roots count by
    position), the order of ``records`` and the documented enum values do not count,
    because they do not change what is written. The stdlib JSON encoder with fixed options
    gives the same bytes on every Python version.
    """
    shape = [_record_shape(records, root) for root in roots]
    return json.dumps(shape, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _record_shape(records: Mapping[str, tuple[Field, ...]], name: str) -> list[Any]:
    return [
        [field.name, _type_shape(records, field.type), field.required, field.nullable]
        for field in records[name]
    ]


def _type_shape(records: Mapping[str, tuple[Field, ...]], field_type: FieldType) -> Any:
    if field_type.kind in (schema.LIST, schema.MAP):
        assert field_type.element is not None
        return [field_type.kind, _type_shape(records, field_type.element)]
    if field_type.kind == schema.OBJECT:
        assert field_type.record is not None
        return [field_type.kind, _record_shape(records, field_type.record)]
    return field_type.kind


@functools.cache
def _default_version() -> str:
    return version_of(schema.RECORDS, schema.ROOTS)
