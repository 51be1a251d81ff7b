"""Redis key names shared with the Schematic SDKs in replicator mode.

Key grammar, with ``V`` the cache version:

- ``schematic:flags:V:<lower(flag key)>``: a flag record.
- ``schematic:company:V:<id>`` and ``schematic:user:V:<id>``: a record (the id keeps its case).
- ``schematic:company:V:<lower(name)>:<lower(value)>``, same for ``user``: a lookup key whose
  value is the record id as a JSON string, quotes included.

Lower-casing is Python ``str.lower()``, as in the Python and Node SDKs. The Go SDK's
``strings.ToLower`` differs for a few non-ASCII letters (``İ``, final ``Σ``), so Go readers
miss lookups of such values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import orjson

PREFIX = "schematic"
FLAGS = "flags"
COMPANY = "company"
USER = "user"
KINDS = (FLAGS, COMPANY, USER)

WRITER_LOCK_KEY = f"{PREFIX}:datastream:writer_lock"
REPLAY_CURSOR_KEY = f"{PREFIX}:datastream:replay_cursor"
#: Contains an in-progress value from the start of a bulk load and the cache version once
#: it completes (see load_marker.py). Its absence means Redis lost the data, and a
#: restart may skip the load only when it contains the current version.
LOAD_MARKER_KEY = f"{PREFIX}:datastream:load_marker"


class EntityKey(NamedTuple):
    """A parsed record or lookup key.

    ``target`` is the record id (for flags, the lower-cased flag key) or, for a lookup key,
    the lower-cased ``(name, value)`` pair.
    """

    kind: str
    version: str
    target: str | tuple[str, str]

    @property
    def is_record(self) -> bool:
        return isinstance(self.target, str)

    @property
    def entity_id(self) -> str:
        """The record id, or ``""`` for a lookup key."""
        return self.target if isinstance(self.target, str) else ""


def flag_key(version: str, key: str) -> str:
    """Return the Redis key of the flag whose ``key`` is given."""
    if not key:
        raise ValueError("Cannot build a Redis key for a flag with an empty key.")
    return f"{PREFIX}:{FLAGS}:{version}:{key.lower()}"


def record_key(kind: str, version: str, entity_id: str) -> str:
    """Return the Redis key of a company or user record; the id is not lower-cased."""
    _check_entity_kind(kind)
    if not entity_id:
        raise ValueError(f"Cannot build a Redis key for a {kind} with an empty id.")
    return f"{PREFIX}:{kind}:{version}:{entity_id}"


def company_key(version: str, company_id: str) -> str:
    """Return the Redis key of a company record."""
    return record_key(COMPANY, version, company_id)


def user_key(version: str, user_id: str) -> str:
    """Return the Redis key of a user record."""
    return record_key(USER, version, user_id)


def lookup_key(kind: str, version: str, name: str, value: str) -> str:
    """Return the lookup key for one entry of a company's or user's ``keys``."""
    _check_entity_kind(kind)
    return f"{PREFIX}:{kind}:{version}:{name.lower()}:{value.lower()}"


def lookup_keys(kind: str, version: str, keys: Mapping[str, str]) -> list[str]:
    """Return the lookup keys of every ``keys`` entry, without duplicates, in entry order.

    Two entries can give one key when they differ only in case (``Domain`` and ``domain``).
    """
    _check_entity_kind(kind)
    prefix = f"{PREFIX}:{kind}:{version}:"
    # The key grammar of lookup_key, inlined: this runs for every record a worker writes.
    result = [f"{prefix}{name.lower()}:{value.lower()}" for name, value in keys.items()]
    return list(dict.fromkeys(result))


def lookup_value(entity_id: str) -> bytes:
    """Return the value stored under a lookup key: the id as a JSON string with quotes.

    The SDKs JSON-decode this value, so a bare id would make every lookup miss.
    """
    return orjson.dumps(entity_id)


def scan_pattern(kind: str, version: str | None = None) -> str:
    """Return the SCAN pattern for every key of ``kind``, or only those of ``version``.

    ``version`` goes into the pattern as is, so it must not contain ``*?[]\\``; versions
    from ``version.effective_version`` never do.
    """
    _check_kind(kind)
    if version is None:
        return f"{PREFIX}:{kind}:*"
    return f"{PREFIX}:{kind}:{version}:*"


def flag_pattern(version: str | None = None) -> str:
    """Return the SCAN pattern for flag keys, of every version or only of ``version``."""
    return scan_pattern(FLAGS, version)


def entity_pattern(kind: str, version: str | None = None) -> str:
    """Return the SCAN pattern for record and lookup keys of a company or user ``kind``."""
    _check_entity_kind(kind)
    return scan_pattern(kind, version)


def parse_entity_key(key: str | bytes) -> EntityKey | None:
    """Split a flag, record or lookup key into its kind, version and target.

    A flag key's tail is the flag key, ``:`` included. For companies and users, a tail
    without ``:`` is a record id, and a tail with ``:`` is a lookup key: the name is the
    text before the first ``:`` and the value is all the rest. So lookup values may contain
    ``:`` but key names may not. The limit: a record id that contains ``:`` parses as a
    lookup key, because the key alone cannot tell the two apart.

    Returns None for any other key (another prefix or kind, an empty version or target,
    bytes that are not UTF-8), because SCAN may return keys that other writers created.
    """
    try:
        text = key.decode() if isinstance(key, bytes) else key
    except UnicodeDecodeError:
        return None

    parts = text.split(":", 3)
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] not in KINDS:
        return None
    _, kind, version, tail = parts
    if not version or not tail:
        return None

    if kind == FLAGS or ":" not in tail:
        return EntityKey(kind, version, tail)

    name, value = tail.split(":", 1)
    return EntityKey(kind, version, (name, value))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown key kind {kind!r}; expected one of {', '.join(KINDS)}.")


def _check_entity_kind(kind: str) -> None:
    if kind not in (COMPANY, USER):
        raise ValueError(f"Unknown entity kind {kind!r}; expected {COMPANY!r} or {USER!r}.")
