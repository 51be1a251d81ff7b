"""Normalise flag, company and user records to the shape in ``schema.py``, and encode them.

A normalised record has exactly the schema's fields, in schema order, at every level, and
validates as stored with the Python SDK 1.4.6 models. The rules also keep every value
decodable by the Go rules-engine structs. NOTE: only the Python SDK is run in the tests.

- Unknown fields are dropped.
- A missing or null required field gets its Go zero value: ``""``, ``0``, ``false``,
  ``[]``, ``{}``, or ``0001-01-01T00:00:00Z`` for a date-time. An optional field gets
  ``null``. ``Company.entitlements`` is always a list.
- The top-level ``id`` (and a flag's ``key``) must be a non-empty string. Nested ids may be
  empty, as in Go.
- int64 fields hold JSON integers. An integral float such as ``1.0`` becomes ``1``. A bool,
  a fraction, a string or a value outside the int64 range is rejected.
- Float fields keep the number as received. An int stays an int and ``100.0`` stays
  ``100.0``, because Python and Go both read either form as a float.
- String fields take strings only, except the values of ``keys``, where an int is turned
  into its decimal string (``42`` -> ``"42"``).
- Date-times must be RFC 3339 with an upper-case ``T`` and ``Z`` or a numeric offset, as Go
  parses them. Valid strings are written unchanged.
- Null items of lists and null values of maps are dropped. For ``credit_postpaid`` that is
  the Go semantics: a null entry turns postpaid off for that credit. Map entries are sorted
  by key, as Go writes them.
- Enum fields take any string, and the known values are documented in the schema only.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from replicator import schema
from replicator.schema import Field, FieldType

Normalizer = Callable[[Any], Any]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_MAX_SHOWN = 80

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:Z|[+-]([0-9]{2}):([0-9]{2}))",
)


class InvalidRecord(ValueError):
    """A record that cannot be written in a shape every SDK reads.

    ``path`` locates the bad value (``company.metrics[2].value``), ``value`` is that value
    and ``expected`` describes the values the field accepts.
    """

    def __init__(self, path: str, value: Any, expected: str) -> None:
        self.path = path
        self.value = value
        self.expected = expected
        super().__init__(f"Invalid value at {path}: {shorten(value)}; expected {expected}.")


def shorten(value: Any) -> str:
    """Return ``repr(value)`` cut to a length that fits in a log line."""
    text = repr(value)
    if len(text) <= _MAX_SHOWN:
        return text
    return text[: _MAX_SHOWN - 3] + "..."


class _FieldError(Exception):
    """Raised inside the normalisers; the path grows while the error propagates."""

    def __init__(self, value: Any, expected: str) -> None:
        super().__init__(expected)
        self.value = value
        self.expected = expected
        self.segments: list[str] = []

    def to_invalid(self, root: str) -> InvalidRecord:
        path = root + "".join(reversed(self.segments))
        return InvalidRecord(path, self.value, self.expected)


def normalize_flag(data: Any) -> dict[str, Any]:
    """Return ``data`` as a flag record; raise InvalidRecord when it cannot be one."""
    record = _normalize_root("flag", _FLAG, data)
    _require_text(record, "flag", "key", data)
    return record


def normalize_company(data: Any) -> dict[str, Any]:
    """Return ``data`` as a company record; raise InvalidRecord when it cannot be one."""
    return _normalize_root("company", _COMPANY, data)


def normalize_user(data: Any) -> dict[str, Any]:
    """Return ``data`` as a user record; raise InvalidRecord when it cannot be one."""
    return _normalize_root("user", _USER, data)


def encode(record: dict[str, Any]) -> bytes:
    """Serialise ``record`` as compact UTF-8 JSON.

    Raises InvalidRecord for NaN or an infinity (orjson would write them as ``null``) and
    for anything else orjson cannot encode, such as a non-string map key.
    """
    _reject_non_finite(record)
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError as error:
        raise InvalidRecord("record", record, f"JSON-encodable values ({error})") from None


def _normalize_root(root: str, normalize: Normalizer, data: Any) -> dict[str, Any]:
    try:
        record: dict[str, Any] = normalize(data)
    except _FieldError as error:
        raise error.to_invalid(root) from None

    _require_text(record, root, "id", data)
    return record


def _require_text(record: dict[str, Any], root: str, name: str, data: dict[str, Any]) -> None:
    if not record[name]:
        raise InvalidRecord(f"{root}.{name}", data.get(name), "a non-empty string")


# Scalars


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _FieldError(value, "a string")


def _to_key_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)
    raise _FieldError(value, "a string (an integer is turned into its decimal form)")


def _to_int64(value: Any) -> int:
    kind = type(value)
    if kind is int and INT64_MIN <= value <= INT64_MAX:
        return int(value)
    if kind is float and value.is_integer() and INT64_MIN <= value <= INT64_MAX:
        return int(value)
    raise _FieldError(value, "an integer in the int64 range (1.0 is accepted as 1)")


def _to_float(value: Any) -> float | int:
    kind = type(value)
    if kind is float and math.isfinite(value):
        return float(value)
    if kind is int:
        return _int_as_float(value)
    raise _FieldError(value, "a finite number")


def _int_as_float(value: int) -> float | int:
    # Ints beyond int64 become floats because orjson encodes at most 64-bit integers.
    if INT64_MIN <= value <= INT64_MAX:
        return value
    try:
        return float(value)
    except OverflowError:
        raise _FieldError(value, "a finite number") from None


def _to_bool(value: Any) -> bool:
    if value is True or value is False:
        return bool(value)
    raise _FieldError(value, "true or false")


def _to_datetime(value: Any) -> str:
    if isinstance(value, str) and _is_rfc3339(value):
        return value
    raise _FieldError(value, "an RFC 3339 date-time such as '2026-07-01T00:00:00Z'")


@functools.lru_cache(maxsize=4096)
def _is_rfc3339(text: str) -> bool:
    # Cached because the same timestamps recur across metrics, entitlements and records.
    match = _RFC3339.fullmatch(text)
    if match is None:
        return False

    year, month, day, hour, minute, second, offset_hours, offset_minutes = match.groups()
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return False

    if offset_hours is None:
        return True
    return int(offset_hours) < 24 and int(offset_minutes) < 60


# Containers


def _list_normalizer(item: Normalizer) -> Normalizer:
    def normalize_list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _FieldError(value, "a list")

        result = []
        for index, element in enumerate(value):
            if element is None:
                continue
            try:
                result.append(item(element))
            except _FieldError as error:
                error.segments.append(f"[{index}]")
                raise
        return result

    return normalize_list


def _map_normalizer(entry: Normalizer) -> Normalizer:
    def normalize_map(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _FieldError(value, "an object")

        result = {}
        for key, element in value.items():
            if not isinstance(key, str):
                raise _FieldError(key, "an object with string keys")
            if element is None:
                continue
            try:
                result[key] = entry(element)
            except _FieldError as error:
                error.segments.append(f"[{key!r}]")
                raise

        if len(result) > 1:
            return dict(sorted(result.items()))
        return result

    return normalize_map


_RecordPlan = tuple[tuple[str, Normalizer, Callable[[], Any]], ...]


def _record_normalizer(name: str, plan: _RecordPlan) -> Normalizer:
    expected = f"an object ({name})"

    def normalize_record(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise _FieldError(data, expected)

        result = {}
        for field_name, normalize, default in plan:
            value = data.get(field_name)
            if value is None:
                result[field_name] = default()
                continue
            try:
                result[field_name] = normalize(value)
            except _FieldError as error:
                error.segments.append("." + field_name)
                raise
        return result

    return normalize_record


# Compilation of the schema into normaliser functions, once at import


_SCALARS: dict[str, tuple[Normalizer, Any]] = {
    schema.STRING: (_to_string, ""),
    schema.ENUM: (_to_string, ""),
    schema.INT64: (_to_int64, 0),
    schema.FLOAT: (_to_float, 0),
    schema.BOOL: (_to_bool, False),
    schema.DATETIME: (_to_datetime, schema.ZERO_TIME),
}

_compiled_records: dict[str, Normalizer] = {}


def _compile(field_type: FieldType) -> Normalizer:
    kind = field_type.kind
    if kind in _SCALARS:
        return _SCALARS[kind][0]
    if kind == schema.LIST:
        assert field_type.element is not None
        return _list_normalizer(_compile(field_type.element))
    if kind == schema.MAP:
        assert field_type.element is not None
        if field_type.element.kind == schema.STRING:
            return _map_normalizer(_to_key_value)
        return _map_normalizer(_compile(field_type.element))
    if kind == schema.OBJECT:
        assert field_type.record is not None
        return _compile_record(field_type.record)
    raise ValueError(f"Unknown field kind {kind!r} in the record schema.")


def _compile_record(name: str) -> Normalizer:
    if name not in _compiled_records:
        plan = tuple((f.name, _compile(f.type), _default_factory(f)) for f in schema.RECORDS[name])
        _compiled_records[name] = _record_normalizer(name, plan)
    return _compiled_records[name]


def _default_factory(field: Field) -> Callable[[], Any]:
    kind = field.type.kind
    if field.nullable:
        return lambda: None
    if kind == schema.LIST:
        return list
    if kind == schema.MAP:
        return dict
    if kind == schema.OBJECT:
        assert field.type.record is not None
        normalize = _compile_record(field.type.record)
        return lambda: normalize({})
    zero = _SCALARS[kind][1]
    return lambda: zero


_FLAG = _compile_record(schema.FLAG)
_COMPANY = _compile_record(schema.COMPANY)
_USER = _compile_record(schema.USER)


# Encoding


def _reject_non_finite(record: dict[str, Any]) -> None:
    pending: list[Any] = [record]
    while pending:
        container = pending.pop()
        values = container.values() if type(container) is dict else container
        for value in values:
            kind = type(value)
            if kind is float:
                if not math.isfinite(value):
                    path = _non_finite_path(record, "record")
                    raise InvalidRecord(path, value, "a finite number")
            elif kind is dict or kind is list:
                pending.append(value)


def _non_finite_path(container: Any, path: str) -> str:
    """Return the path of the first NaN or infinity inside ``container``, or ``""``."""
    items: Any = ()
    if isinstance(container, dict):
        items = ((f".{key}", value) for key, value in container.items())
    elif isinstance(container, list):
        items = ((f"[{index}]", value) for index, value in enumerate(container))
    elif isinstance(container, float) and not math.isfinite(container):
        return path

    for segment, value in items:
        found = _non_finite_path(value, path + segment)
        if found:
            return found
    return ""
