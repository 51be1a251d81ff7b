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
    """Serialise a record returned by a ``normalize_*`` function as compact UTF-8 JSON.

    Normalisation already rejected NaN and infinities, which orjson would write as
    ``null``, so they are not looked for again here. Raises InvalidRecord for anything
    orjson cannot encode, such as a non-string map key.
    """
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


def _list_normalizer(item: Normalizer, strings: bool = False) -> Normalizer:
    """Normalise a list with ``item``; ``strings`` marks lists of plain strings, which
    are copied as they are when every element already is one."""

    def normalize_list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _FieldError(value, "a list")
        if strings and all(type(element) is str for element in value):
            return value[:]

        result: list[Any] = []
        append = result.append
        index = 0
        try:
            for element in value:
                if element is not None:
                    append(item(element))
                index += 1
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


# Each record normaliser is generated as Python source from the schema, once at import:
# a straight sequence of field checks with the common case (the right type) inline runs
# about three times faster than looping over a plan of closures, and this is the hot path
# of every worker. Values of an unexpected type go to the scalar converters above, which
# accept what they can and raise _FieldError for the rest.
_FAST_CHECKS = {
    schema.STRING: "type(value) is str",
    schema.ENUM: "type(value) is str",
    schema.INT64: "type(value) is int and -9223372036854775808 <= value <= 9223372036854775807",
    schema.FLOAT: "type(value) is float and value - value == 0.0",
    schema.BOOL: "value is True or value is False",
    schema.DATETIME: "type(value) is str and _is_rfc3339(value)",
}
_SLOW_CONVERTERS = {
    schema.STRING: "_to_string",
    schema.ENUM: "_to_string",
    schema.INT64: "_to_int64",
    schema.FLOAT: "_to_float",
    schema.BOOL: "_to_bool",
    schema.DATETIME: "_to_datetime",
}


def _record_source(name: str, fields: list[Field], namespace: dict[str, Any]) -> str:
    lines = [
        "def normalize_record(data):",
        "    if not isinstance(data, dict):",
        f"        raise _FieldError(data, {f'an object ({name})'!r})",
        "    get = data.get",
        "    result = {}",
        "    field = ''",
        "    try:",
    ]
    for index, field in enumerate(fields):
        lines += _field_source(index, field, namespace)
    lines += [
        "    except _FieldError as error:",
        "        error.segments.append('.' + field)",
        "        raise",
        "    return result",
    ]
    return "\n".join(lines)


def _default_source(index: int, field: Field, namespace: dict[str, Any]) -> str:
    """Python source of a field's default: a literal where one is safe, else a call."""
    kind = field.type.kind
    if field.nullable:
        return "None"
    if kind == schema.LIST:
        return "[]"
    if kind == schema.MAP:
        return "{}"
    if kind in _SCALARS:
        return repr(_SCALARS[kind][1])
    default_name = f"_default_{index}"
    namespace[default_name] = _default_factory(field)
    return f"{default_name}()"


def _field_source(index: int, field: Field, namespace: dict[str, Any]) -> list[str]:
    key = repr(field.name)
    lines = [
        f"        field = {key}",
        f"        value = get({key})",
        "        if value is None:",
        f"            result[{key}] = {_default_source(index, field, namespace)}",
    ]
    kind = field.type.kind
    if kind in _FAST_CHECKS:
        lines += [
            f"        elif {_FAST_CHECKS[kind]}:",
            f"            result[{key}] = value",
            "        else:",
            f"            result[{key}] = {_SLOW_CONVERTERS[kind]}(value)",
        ]
    else:
        normalizer_name = f"_normalize_{index}"
        namespace[normalizer_name] = _compile(field.type)
        lines += ["        else:", f"            result[{key}] = {normalizer_name}(value)"]
    return lines


def _record_normalizer(name: str, fields: list[Field]) -> Normalizer:
    namespace: dict[str, Any] = {
        "_FieldError": _FieldError,
        "_is_rfc3339": _is_rfc3339,
        "_to_string": _to_string,
        "_to_int64": _to_int64,
        "_to_float": _to_float,
        "_to_bool": _to_bool,
        "_to_datetime": _to_datetime,
    }
    source = _record_source(name, fields, namespace)
    exec(compile(source, f"<normalizer of {name}>", "exec"), namespace)
    normalizer: Normalizer = namespace["normalize_record"]
    return normalizer


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
        strings = field_type.element.kind in (schema.STRING, schema.ENUM)
        return _list_normalizer(_compile(field_type.element), strings)
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
        _compiled_records[name] = _record_normalizer(name, list(schema.RECORDS[name]))
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
