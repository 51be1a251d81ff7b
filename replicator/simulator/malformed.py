"""Malformed change frames for fault injection.

Each frame takes a stream id like any change and goes into the retained window, but none
of them changes the truth: a client that rejects them, or applies the valid parts, ends
up with what the simulator holds. Frames about a company use the first live company.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from replicator.simulator.service import Service
from replicator.simulator.stream import ROUTE_ANY, ROUTE_COMPANY

COMPANY = "rulesengine.Company"
HUGE_FRAME_BYTES = 20 * 1024 * 1024
#: Placeholder that send_raw_change() replaces with the stream id.
STREAM_ID_PLACEHOLDER = "@@stream_id@@"
_missing_ids = itertools.count(1)


def _some_company(service: Service) -> dict[str, Any]:
    """Return the first live company; the caller holds the service lock."""
    companies = service.state.companies
    if companies.count() == 0:
        raise RuntimeError("This fault needs at least one company; create one first.")
    record = companies.get(companies.id_at(0))
    assert record is not None
    return record


def _envelope(entity_type: str, message_type: str, entity_id: str | None, stream_id: str) -> str:
    head = orjson.dumps(
        {
            "entity_type": entity_type,
            "message_type": message_type,
            "entity_id": entity_id,
            "stream_id": stream_id,
        }
    ).decode()
    return head[:-1]


def send_invalid_json(service: Service) -> str:
    """Publish a company ``full`` frame cut off in the middle of its data."""
    with service.lock:
        record = _some_company(service)
        data = orjson.dumps(record).decode()
        company_id = str(record["id"])

        def render(stream_id: str) -> str:
            return _envelope(COMPANY, "full", company_id, stream_id) + ',"data":' + data[:20]

        return service.publish(ROUTE_COMPANY, "full", company_id, "", render=render).stream_id


def send_wrong_types(service: Service) -> str:
    """Publish a company ``full`` whose ``keys`` is a list of pairs instead of an object."""
    with service.lock:
        record = _some_company(service)
        broken = {**record, "keys": [[name, value] for name, value in record["keys"].items()]}
        return service.publish(
            ROUTE_COMPANY, "full", str(record["id"]), orjson.dumps(broken).decode()
        ).stream_id


def send_unknown_entity_type(service: Service) -> str:
    """Publish a ``full`` message of an entity type that does not exist."""
    with service.lock:
        data = orjson.dumps({"id": "plan_simulated", "name": "Simulated plan"}).decode()
        return service.publish(
            ROUTE_ANY, "full", None, data, entity_type="rulesengine.Plan"
        ).stream_id


def send_unknown_message_type(service: Service) -> str:
    """Publish a company message whose message type is ``upsert``, which does not exist."""
    with service.lock:
        record = _some_company(service)
        return service.publish(
            ROUTE_COMPANY, "upsert", str(record["id"]), orjson.dumps(record).decode()
        ).stream_id


def send_unknown_partial(service: Service) -> str:
    """Publish a company ``partial`` for an id that does not exist."""
    with service.lock:
        missing_id = f"comp_missing{next(_missing_ids)}"
        while service.state.companies.get(missing_id) is not None:
            missing_id = f"comp_missing{next(_missing_ids)}"
        data = orjson.dumps({"keys": {"domain": f"{missing_id}.example.com"}}).decode()
        return service.publish(ROUTE_COMPANY, "partial", missing_id, data).stream_id


def send_missing_id(service: Service) -> str:
    """Publish a company ``full`` whose record has no ``id`` (the envelope keeps entity_id)."""
    with service.lock:
        record = _some_company(service)
        without_id = {name: value for name, value in record.items() if name != "id"}
        return service.publish(
            ROUTE_COMPANY, "full", str(record["id"]), orjson.dumps(without_id).decode()
        ).stream_id


def send_huge_frame(service: Service, size_bytes: int = HUGE_FRAME_BYTES) -> str:
    """Publish a valid company ``full`` for an existing company, padded with an unknown field.

    The record is the company's current one, so the truth does not change. The padding is
    ``size_bytes`` characters in a field that no record type defines.
    """
    with service.lock:
        record = _some_company(service)
        data = orjson.dumps(record).decode()
        padded = f'{data[:-1]},"simulator_padding":"{"x" * size_bytes}"}}'
        return service.publish(ROUTE_COMPANY, "full", str(record["id"]), padded).stream_id


def send_raw_change(service: Service, frame: str | bytes) -> str:
    """Publish ``frame`` as it is, with the next stream id in place of each placeholder.

    The frame goes to every connection that subscribed to anything and is retained for
    replay like any change. Raises ValueError when the frame has no placeholder.
    """
    if isinstance(frame, str):
        if STREAM_ID_PLACEHOLDER not in frame:
            raise ValueError(_missing_placeholder())

        def render(stream_id: str) -> str | bytes:
            return frame.replace(STREAM_ID_PLACEHOLDER, stream_id)

    else:
        placeholder = STREAM_ID_PLACEHOLDER.encode()
        if placeholder not in frame:
            raise ValueError(_missing_placeholder())

        def render(stream_id: str) -> str | bytes:
            return frame.replace(placeholder, stream_id.encode())

    with service.lock:
        return service.publish(ROUTE_ANY, "raw", None, "", render=render).stream_id


def _missing_placeholder() -> str:
    return (
        f"Invalid frame for stream_id=True: it needs the placeholder "
        f"{STREAM_ID_PLACEHOLDER!r} where the stream id goes."
    )
