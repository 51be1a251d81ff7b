"""Datastream requests: subscriptions, the flags snapshot, replay and error replies.

A request is a text frame ``{"data": {"action": ..., "entity_type": ..., "replay_from": ...}}``.
A missing or empty action means ``start``; a trailing newline (Go's encoder adds one) is
ignored. Runs on the event loop.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from replicator.simulator.connections import ALL_ROUTES, Connection
from replicator.simulator.service import Service
from replicator.simulator.stream import ROUTE_COMPANY, ROUTE_FLAG, ROUTE_USER, control_message

logger = logging.getLogger(__name__)

FLAGS = "rulesengine.Flags"
SUBSCRIPTIONS = {
    "rulesengine.Companies": ROUTE_COMPANY,
    "rulesengine.Users": ROUTE_USER,
    FLAGS: ROUTE_FLAG,
}
SINGLE_ENTITY_TYPES = ("rulesengine.Company", "rulesengine.User")
RELOAD_ENTITY_TYPE = "rulesengine.Companies"


def _error(connection: Connection, entity_type: Any, text: str) -> None:
    named_type = entity_type if isinstance(entity_type, str) else None
    connection.send(
        control_message(named_type, "error", {"error": text, "entity_type": named_type})
    )


def _parse(connection: Connection, text: str) -> dict[str, Any] | None:
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        connection.info.requests.append(text)
        _error(connection, None, f"Invalid request: not JSON ({text[:80]!r}).")
        return None
    connection.info.requests.append(request)
    data = request.get("data") if isinstance(request, dict) else None
    if not isinstance(data, dict):
        _error(connection, None, 'Invalid request: expected {"data": {"entity_type": ...}}.')
        return None
    return data


def _replay(service: Service, connection: Connection, replay_from: Any) -> None:
    """Queue the retained changes after ``replay_from``, or a reload when they are gone."""
    connection.replay_done = True
    connection.info.replay_from = str(replay_from)
    messages, last_seq = service.replay(replay_from)
    if messages is None:
        connection.info.reloads += 1
        connection.send(control_message(RELOAD_ENTITY_TYPE, "reload", None))
        logger.info(
            "Connection %r asked to replay from %r, which is not retained; sent reload.",
            connection.info.id,
            replay_from,
        )
        return

    already_queued = connection.last_seq
    for message in messages:
        if message.seq > already_queued:
            connection.send(message)
            connection.info.replayed += 1
    connection.floor_seq = max(connection.floor_seq, last_seq)
    connection.routes |= ALL_ROUTES
    logger.info(
        "Connection %r replays %d changes after %r.",
        connection.info.id,
        connection.info.replayed,
        replay_from,
    )


def _send_flags(service: Service, connection: Connection) -> None:
    replaying = connection.replay_done and connection.info.reloads == 0
    if replaying and not service.config.replay_sends_flags_snapshot:
        return
    snapshot, last_seq = service.flags_snapshot()
    connection.flag_floor_seq = last_seq
    connection.send(snapshot)


def handle_request(service: Service, connection: Connection, text: str) -> None:
    """Handle one request frame of a client and queue the replies."""
    data = _parse(connection, text)
    if data is None:
        return
    action = data.get("action") or "start"
    entity_type = data.get("entity_type")
    route = SUBSCRIPTIONS.get(entity_type) if isinstance(entity_type, str) else None

    if action == "stop" and route is not None:
        connection.routes.discard(route)
        logger.info("Connection %r unsubscribed from %r.", connection.info.id, entity_type)
        return
    if action != "start":
        _error(connection, entity_type, f"Invalid action {action!r}: expected start or stop.")
        return
    # NOTE: lookups of one company or user by keys (the SDKs' direct mode) are not
    # simulated; the replicator never sends them.
    if entity_type in SINGLE_ENTITY_TYPES:
        _error(
            connection,
            entity_type,
            f"Lookups of {entity_type} by keys are not served by "
            "the simulator; subscribe to rulesengine.Companies or rulesengine.Users.",
        )
        return
    if route is None:
        _error(
            connection,
            entity_type,
            f"Unknown entity type {entity_type!r}: expected one of {', '.join(SUBSCRIPTIONS)}.",
        )
        return

    replay_from = data.get("replay_from")
    if replay_from is not None and not connection.replay_done:
        _replay(service, connection, replay_from)
    connection.info.subscriptions.append(str(entity_type))
    logger.info(
        "Connection %r subscribed to %r (replay_from=%r).",
        connection.info.id,
        entity_type,
        replay_from,
    )
    connection.routes.add(route)
    if route == ROUTE_FLAG:
        _send_flags(service, connection)
    else:
        connection.send(control_message(entity_type, "full", {"subscribed": True}))
