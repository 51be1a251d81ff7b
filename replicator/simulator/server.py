"""The aiohttp application: the datastream WebSocket, the REST API and the admin endpoints.

Routes, all authenticated by the ``X-Schematic-Api-Key`` header:

- ``GET /datastream``: the WebSocket, without compression or a message size limit. The
  simulator sends pongs itself, so that a stall can withhold them;
- ``GET /companies``, ``/companies/count``, ``/users``, ``/users/count``: REST paging;
- ``GET /companies/{id}``, ``/users/{id}``: one item, or 404 when it does not exist;
- ``POST /batch``: accepts the SDK's event batches and counts them;
- ``POST /_simulator/faults``: inject a fault, body ``{"kind": ..., <parameters>}``;
- ``GET /_simulator/status``: counts, last stream id and connections.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from replicator.simulator.config import (
    AUTH_REJECT_HTTP,
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
)
from replicator.simulator.connections import Connection, Hub
from replicator.simulator.faults import Faults
from replicator.simulator.protocol import handle_request
from replicator.simulator.rest_pages import PageBody
from replicator.simulator.service import Service

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-Schematic-Api-Key"
_SERVICE = web.AppKey("service", Service)
_HUB = web.AppKey("hub", Hub)
_FAULTS = web.AppKey("faults", Faults)
#: Maximum time a page encodes on the event loop before it lets other tasks run.
_ENCODE_SLICE_S = 0.005


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _authorized(request: web.Request) -> bool:
    expected = request.app[_SERVICE].config.api_key.encode()
    received = request.headers.get(API_KEY_HEADER, "").encode("utf-8", "replace")
    return hmac.compare_digest(received, expected)


def _unauthorized() -> web.Response:
    return _json(
        {
            "error": f"Missing or invalid {API_KEY_HEADER} header: send the API key "
            "the simulator was started with."
        },
        status=401,
    )


def _shown_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() != "x-schematic-api-key"}


# WebSocket.


async def _read_loop(service: Service, connection: Connection) -> None:
    ws = connection.ws
    while True:
        message = await ws.receive()
        if message.type == WSMsgType.TEXT:
            handle_request(service, connection, message.data)
        elif message.type == WSMsgType.BINARY:
            handle_request(service, connection, message.data.decode("utf-8", "replace"))
        elif message.type == WSMsgType.PING:
            connection.info.pings += 1
            if not connection.stalled:
                await ws.pong(message.data)
                connection.info.pongs += 1
        elif message.type != WSMsgType.PONG:
            return


async def datastream(request: web.Request) -> web.StreamResponse:
    """Serve one datastream WebSocket connection."""
    service, hub, faults = request.app[_SERVICE], request.app[_HUB], request.app[_FAULTS]
    headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-schematic-")}
    authorized = _authorized(request)
    info = hub.new_info(request.remote or "", headers, authorized)
    style = faults.take_auth_rejection()
    if style is None and not authorized:
        style = service.config.auth_reject_style
    if style == AUTH_REJECT_HTTP:
        info.rejected = style
        logger.info(
            "Rejected connection %r with HTTP 401 (headers %r).", info.id, _shown_headers(headers)
        )
        return _unauthorized()

    ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=0)
    await ws.prepare(request)
    if style is not None:
        info.rejected = style
        info.close_code = 4001
        await ws.close(code=4001, message=b"unauthorized")
        logger.info(
            "Rejected connection %r with close code 4001 (headers %r).",
            info.id,
            _shown_headers(headers),
        )
        return ws

    logger.info(
        "Accepted datastream connection %r from %r with headers %r.",
        info.id,
        info.remote,
        _shown_headers(headers),
    )
    connection = Connection(info, ws, request.transport, service.send_times)
    hub.open[info.id] = connection
    writer = asyncio.create_task(connection.write_loop())
    try:
        await _read_loop(service, connection)
    finally:
        hub.open.pop(info.id, None)
        writer.cancel()
        info.closed_at = time.time()
        if info.close_code is None and ws.close_code is not None:
            info.close_code = int(ws.close_code)
        logger.info(
            "Connection %r closed (code %r) after %d messages.",
            info.id,
            info.close_code,
            info.messages_sent,
        )
    return ws


# REST.


def _integer(request: web.Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        upper = f"to {high}" if high is not None else "or more"
        raise web.HTTPBadRequest(
            text=orjson.dumps(
                {"error": f"Invalid {name}={raw!r}: expected an integer from {low} {upper}."}
            ).decode(),
            content_type="application/json",
        )
    return value


async def _apply_page_fault(request: web.Request, offset: int | None) -> web.Response | None:
    fault = request.app[_FAULTS].take_page_fault(request.path, offset)
    if fault is None:
        return None
    if fault.delay_s:
        await asyncio.sleep(fault.delay_s)
    if not fault.status:
        return None
    headers = {}
    if fault.retry_after_s is not None:
        headers["Retry-After"] = str(max(0, round(fault.retry_after_s)))
    return _json(
        {"error": f"Simulated failure {fault.status} of {request.path}."},
        status=fault.status,
        headers=headers,
    )


async def _encode_in_slices(body: PageBody, refs: list[Any]) -> None:
    """Encode a page's items on the event loop, letting other tasks run every slice.

    A page of 100 companies takes a few milliseconds of CPU. An executor thread would
    hold the GIL for as long, in 5 ms switch intervals, so other tasks would wait as
    much. On a 2-core VM the thread handoff also cost about 0.1 ms per request, and the
    thread's malloc arena faulted its pages in again for every page.
    """
    deadline = time.monotonic() + _ENCODE_SLICE_S
    for ref in refs:
        body.add(ref)
        if time.monotonic() > deadline:
            await asyncio.sleep(0)
            deadline = time.monotonic() + _ENCODE_SLICE_S


async def _send_chunks(request: web.Request, chunks: list[bytes]) -> web.StreamResponse:
    """Send a JSON body given in chunks, with its Content-Length, as one 200 response."""
    response = web.StreamResponse()
    response.content_type = "application/json"
    response.content_length = sum(len(chunk) for chunk in chunks)
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def _list_handler(kind: str) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        if not _authorized(request):
            return _unauthorized()
        limit = _integer(request, "limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
        offset = _integer(request, "offset", 0, 0, None)
        failure = await _apply_page_fault(request, offset)
        if failure is not None:
            return failure

        service = request.app[_SERVICE]
        body = PageBody(service.page_encoders[kind], offset, limit)
        await _encode_in_slices(body, service.page_refs(kind, offset, limit))
        response = await _send_chunks(request, body.finish())
        logger.debug(
            "Served %r offset=%d limit=%d: %d bytes.",
            request.path,
            offset,
            limit,
            response.content_length,
        )
        return response

    return handle


def _item_handler(kind: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        if not _authorized(request):
            return _unauthorized()
        failure = await _apply_page_fault(request, None)
        if failure is not None:
            return failure
        entity_id = request.match_info["entity_id"]
        found = request.app[_SERVICE].one_item(kind, entity_id)
        if found is None:
            return _json({"error": f"No {kind} with id {entity_id!r}."}, status=404)
        logger.debug("Served %r.", request.path)
        return _json({"data": found, "params": {}})

    return handle


def _count_handler(kind: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        if not _authorized(request):
            return _unauthorized()
        failure = await _apply_page_fault(request, None)
        if failure is not None:
            return failure
        count = request.app[_SERVICE].count(kind)
        logger.debug("Served %r: %d.", request.path, count)
        return _json({"data": {"count": count}, "params": {}})

    return handle


# Event capture.


async def capture_events(request: web.Request) -> web.Response:
    """Accept an SDK's event batch (``POST /batch``, as the capture service serves it).

    The simulator keeps only a count: it lets an application under test run its SDK
    against the simulator without retries and errors about a missing capture service.
    """
    if not _authorized(request):
        return _unauthorized()
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _json({"error": "Invalid body: expected a JSON object with an events list."}, 400)
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        return _json({"error": "Invalid body: expected a JSON object with an events list."}, 400)
    request.app[_SERVICE].captured_events += len(events)
    logger.debug("Captured %d SDK events.", len(events))
    return _json({})


# Administration.


async def inject_fault(request: web.Request) -> web.Response:
    """Inject a fault named in the JSON body; parameters are the other body fields."""
    if not _authorized(request):
        return _unauthorized()
    try:
        body = orjson.loads(await request.read())
        kind = body.pop("kind")
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return _json({"error": 'Invalid body: expected {"kind": "<fault>", ...parameters}.'}, 400)
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(None, lambda: request.app[_FAULTS].inject(kind, **body))
    except (ValueError, RuntimeError) as error:
        return _json({"error": str(error)}, status=400)
    return _json({"ok": True, "kind": kind, "result": result})


async def status(request: web.Request) -> web.Response:
    """Return counts, the last stream id and the open connections."""
    if not _authorized(request):
        return _unauthorized()
    service, hub = request.app[_SERVICE], request.app[_HUB]
    return _json(
        {
            "companies": service.count("company"),
            "users": service.count("user"),
            "flags": len(service.state.flags),
            "last_stream_id": service.last_stream_id,
            "published": dict(service.published),
            "captured_events": service.captured_events,
            "connections": [
                {
                    "id": c.info.id,
                    "subscriptions": c.info.subscriptions,
                    "messages_sent": c.info.messages_sent,
                }
                for c in hub.open.values()
            ],
        }
    )


def build_app(service: Service, hub: Hub, faults: Faults) -> web.Application:
    """Build the application that serves one simulated environment."""
    app = web.Application(client_max_size=1024 * 1024)
    app[_SERVICE] = service
    app[_HUB] = hub
    app[_FAULTS] = faults
    app.router.add_get("/datastream", datastream)
    app.router.add_get("/companies", _list_handler("company"))
    app.router.add_get("/companies/count", _count_handler("company"))
    app.router.add_get("/companies/{entity_id}", _item_handler("company"))
    app.router.add_get("/users", _list_handler("user"))
    app.router.add_get("/users/count", _count_handler("user"))
    app.router.add_get("/users/{entity_id}", _item_handler("user"))
    app.router.add_post("/batch", capture_events)
    app.router.add_post("/_simulator/faults", inject_fault)
    app.router.add_get("/_simulator/status", status)
    return app
