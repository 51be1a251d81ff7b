"""The ingest's read loop over a real socket: bad messages are skipped and counted, a
broken frame ends the connection, and neither moves the replay cursor."""

from __future__ import annotations

import queue
import socket
import struct
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import websocket

from replicator import datastream
from replicator.config import Config
from replicator.dispatch import Outlet
from replicator.ingest import Ingest, IngestSpec
from replicator.router import COMPANY
from replicator.status import StatusBlock

SHARDS = 2


def text_frame(payload: bytes) -> bytes:
    assert len(payload) < 1 << 16
    if len(payload) < 126:
        return struct.pack("!BB", 0x81, len(payload)) + payload
    return struct.pack("!BBH", 0x81, 126, len(payload)) + payload


def change(entity_id: str, stream_id: str) -> bytes:
    return orjson.dumps(
        {
            "entity_type": "rulesengine.Company",
            "message_type": "full",
            "entity_id": entity_id,
            "stream_id": stream_id,
            "data": {"id": entity_id, "keys": {"domain": f"{entity_id}.example"}},
        }
    )


@pytest.fixture
def connected() -> Iterator[tuple[socket.socket, datastream.DatastreamSocket]]:
    server, client = socket.socketpair()
    client.settimeout(2.0)
    ws = datastream.DatastreamSocket(skip_utf8_validation=True)
    ws.sock = client
    ws.connected = True
    yield server, ws
    server.close()
    client.close()


def make_ingest(committed: str = "") -> tuple[Ingest, dict[tuple[str, int], Any]]:
    status = StatusBlock.create()
    status.claim(0, "ingest")
    inboxes: dict[tuple[str, int], Any] = {}
    outlets = {}
    for shard in range(SHARDS):
        inboxes[(COMPANY, shard)] = queue.Queue()
        slot = status.claim(shard + 1, f"company-{shard}")
        outlets[(COMPANY, shard)] = Outlet(inboxes[(COMPANY, shard)], slot, 100)
    config = Config(num_workers=SHARDS)
    ingest = Ingest(IngestSpec(config, status, 0, outlets, queue.Queue(), queue.Queue()))
    ingest.tracker.reset(committed)
    return ingest, inboxes


def delivered(inboxes: dict[tuple[str, int], Any]) -> list[str]:
    stream_ids = []
    for inbox in inboxes.values():
        while not inbox.empty():
            stream_ids.extend(item[2] for item in inbox.get_nowait())
    return sorted(stream_ids)


def test_bad_messages_are_skipped_and_counted(
    connected: tuple[socket.socket, datastream.DatastreamSocket],
) -> None:
    server, ws = connected
    ingest, inboxes = make_ingest()
    server.sendall(
        text_frame(change("c1", "5-0"))
        + text_frame(b"not json {")
        + text_frame(b"\xff\xfe not UTF-8")
        + text_frame(b'{"entity_type": 7, "message_type": "full"}')
        + text_frame(change("c2", "5-1"))
        + text_frame(change("c3", "\u00b2-1"))
        + struct.pack("!BB", 0x88, 2)
        + b"\x03\xe8"
    )

    reason = ingest._read(ws)
    ingest.dispatcher.flush()

    assert reason == "the server closed the connection with code 1000"
    assert ingest.slot.received == 6
    assert ingest.slot.skipped == 3
    # A stream id not in <ms>-<seq> form is tracked as text.
    assert delivered(inboxes) == ["5-0", "5-1", "\u00b2-1"]
    assert ingest.tracker.pending == 3
    assert ingest.tracker.committed == ""


def test_broken_frame_ends_connection_keeping_cursor(
    connected: tuple[socket.socket, datastream.DatastreamSocket],
) -> None:
    server, ws = connected
    ingest, inboxes = make_ingest(committed="4-9")
    masked = struct.pack("!BB", 0x81, 0x80 | 2) + b"mask" + b"{}"
    server.sendall(text_frame(change("c1", "5-0")) + masked + text_frame(change("c2", "5-1")))

    with pytest.raises(websocket.WebSocketProtocolException):
        ingest._read(ws)
    ingest.dispatcher.flush()

    assert ingest.slot.received == 1
    assert delivered(inboxes) == ["5-0"]
    assert ingest.tracker.committed == "4-9"


def test_ping_is_answered_with_pong(
    connected: tuple[socket.socket, datastream.DatastreamSocket],
) -> None:
    server, ws = connected
    ingest, _ = make_ingest()
    server.sendall(struct.pack("!BB", 0x89, 4) + b"beat" + struct.pack("!BB", 0x88, 0))

    ingest._read(ws)
    reply = server.recv(64)

    assert reply[0] == 0x8A  # A final pong frame.
    assert reply[1] == 0x80 | 4  # Masked, as every client frame is, with 4 bytes.
    mask = reply[2:6]
    assert bytes(byte ^ mask[index % 4] for index, byte in enumerate(reply[6:10])) == b"beat"
