"""Classify datastream frames and pick the worker queue that owns each one.

The ingest calls :func:`route` for every text frame it reads. Routing looks only
at the envelope; the worker that receives the frame parses its ``data``.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import orjson

COMPANY = "company"
USER = "user"
FLAGS = "flags"

ENTITY_TYPES = {
    "rulesengine.Company": COMPANY,
    "rulesengine.User": USER,
}
SUBSCRIPTION_TYPES = ("rulesengine.Companies", "rulesengine.Users")
CHANGE_TYPES = ("full", "partial", "delete")

#: A change for a worker: (op, entity_id, token, payload). See docs/architecture.md.
Change = tuple[str, str, str, bytes]


class BadFrame(ValueError):
    """A frame that is not a datastream message; it is logged, counted and skipped."""


class Route(NamedTuple):
    """Where one frame goes (a named tuple: one is built per frame, on the hot path).

    ``action`` is one of ``worker`` (put ``change`` on the queue of ``kind`` and
    ``shard``), ``reload``, ``confirmation``, ``error``, ``ignore`` or ``invalid``.
    ``stream_id`` is the frame's stream id or ``""``.
    """

    action: str
    kind: str = ""
    shard: int = 0
    change: Change | None = None
    stream_id: str = ""
    entity_type: str = ""
    message_type: str = ""
    entity_id: str = ""
    detail: str = ""


def shard_for(entity_id: str, shard_count: int) -> int:
    """Return the shard that owns ``entity_id``; stable across processes and restarts."""
    return zlib.crc32(entity_id.encode("utf-8")) % shard_count


_DATA_KEY = b',"data":'
_PREFIX_FIELDS = frozenset(("entity_type", "message_type", "entity_id", "stream_id"))


def _decode_prefix(raw: bytes) -> dict[str, Any] | None:
    """Decode only the envelope fields written before ``data``, when all are there.

    Routing needs four short fields, while ``data`` is most of a frame. When the server
    writes ``data`` last, as the datastream does, the text before it is a complete
    JSON object once closed with ``}``; a ``,"data":`` sequence cannot occur earlier,
    inside a string, because quotes in strings are escaped. Anything else returns None
    and the whole frame is decoded. The worker decodes ``data`` and skips it if invalid.
    """
    position = raw.find(_DATA_KEY)
    if position < 0:
        return None
    try:
        prefix = orjson.loads(raw[:position] + b"}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(prefix, dict) or not prefix.keys() >= _PREFIX_FIELDS:
        return None
    return prefix


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """Decode a frame's envelope and check its field types."""
    message = _decode_prefix(raw)
    if message is None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadFrame(f"invalid JSON ({exc})") from None

    if not isinstance(message, dict):
        raise BadFrame(f"expected a JSON object, got {type(message).__name__}")
    if _usual_envelope(message):
        return message

    for field in ("entity_type", "message_type"):
        if not isinstance(message.get(field), str):
            raise BadFrame(f"field {field!r} must be a string, got {message.get(field)!r:.60}")

    for field in ("entity_id", "stream_id"):
        value = message.get(field)
        if value is not None and not isinstance(value, str):
            raise BadFrame(f"field {field!r} must be a string or null, got {value!r:.60}")

    return message


def _usual_envelope(message: dict[str, Any]) -> bool:
    """Tell whether the envelope has the field types of every valid change message."""
    entity_id = message.get("entity_id")
    stream_id = message.get("stream_id")
    return (
        type(message.get("entity_type")) is str
        and type(message.get("message_type")) is str
        and (entity_id is None or type(entity_id) is str)
        and (stream_id is None or type(stream_id) is str)
    )


def route(raw: bytes, shard_count: int) -> Route:
    """Decide where the frame ``raw`` goes; never raises for bad input."""
    try:
        message = parse_envelope(raw)
    except BadFrame as exc:
        return Route("invalid", detail=str(exc))

    entity_type = message["entity_type"]
    message_type = message["message_type"]
    stream_id = message.get("stream_id") or ""
    entity_id = message.get("entity_id")
    kind = ENTITY_TYPES.get(entity_type)
    if kind is not None and entity_id and message_type in CHANGE_TYPES:
        # The common case, a company or user change, built without the helpers below.
        change: Change = (message_type, entity_id, stream_id, raw)
        shard = shard_for(entity_id, shard_count)
        return Route("worker", kind, shard, change, stream_id, entity_type, message_type, entity_id)
    base: dict[str, Any] = {
        "stream_id": stream_id,
        "entity_type": entity_type,
        "message_type": message_type,
    }

    if message_type == "reload":
        return Route("reload", **base)
    if message_type == "error":
        return Route("error", detail=_error_text(_full_data(raw, message)), **base)
    if entity_type in SUBSCRIPTION_TYPES:
        return Route("confirmation", **base)
    if entity_type == "rulesengine.Flags":
        return _route_flags_snapshot(raw, message_type, base)
    if entity_type == "rulesengine.Flag":
        return _route_flag(raw, message_type, base)
    if entity_type in ENTITY_TYPES:
        return _route_entity(raw, message, shard_count, base)
    return Route("invalid", detail=f"unknown entity type {entity_type!r:.60}", **base)


def _route_flags_snapshot(raw: bytes, message_type: str, base: dict[str, Any]) -> Route:
    if message_type != "full":
        return Route("ignore", detail="flags snapshot messages other than full", **base)
    change: Change = ("snapshot", "", base["stream_id"], raw)
    return Route("worker", kind=FLAGS, change=change, **base)


def _route_flag(raw: bytes, message_type: str, base: dict[str, Any]) -> Route:
    if message_type not in CHANGE_TYPES:
        return Route("invalid", detail=f"unknown message type {message_type!r:.40}", **base)
    change: Change = (message_type, "", base["stream_id"], raw)
    return Route("worker", kind=FLAGS, change=change, **base)


def _route_entity(
    raw: bytes, message: dict[str, Any], shard_count: int, base: dict[str, Any]
) -> Route:
    kind = ENTITY_TYPES[base["entity_type"]]
    message_type = base["message_type"]
    entity_id = message.get("entity_id") or _data_id(_full_data(raw, message))
    if message_type not in CHANGE_TYPES:
        detail = f"unknown message type {message_type!r:.40}"
        return Route("invalid", detail=detail, entity_id=entity_id or "", **base)

    if not entity_id:
        return Route("invalid", detail="no entity_id and no data.id", **base)

    change: Change = (message_type, entity_id, base["stream_id"], raw)
    shard = shard_for(entity_id, shard_count)
    return Route("worker", kind=kind, shard=shard, change=change, entity_id=entity_id, **base)


def _full_data(raw: bytes, message: dict[str, Any]) -> Any:
    """``data`` of the frame, decoding the whole frame if only its envelope was."""
    if "data" in message:
        return message["data"]
    try:
        full = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return full.get("data") if isinstance(full, dict) else None


def _data_id(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        return str(data["id"])
    return ""


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        return f"{data.get('error')!r:.200} keys={data.get('keys')!r:.120}"
    return f"{data!r:.200}"
