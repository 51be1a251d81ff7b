"""FrameReader over a real socket pair: lengths, splits, fragments, timeouts, bad frames."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import websocket
from websocket._socket import recv as socket_recv

from replicator.frame_reader import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    FrameReader,
)


def frame(payload: bytes, opcode: int = OPCODE_TEXT, final: bool = True, first: int = 0) -> bytes:
    """Encode a server frame; ``first`` adds bits to the first byte (reserved bits)."""
    head = (0x80 if final else 0) | opcode | first
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", head, size) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", head, 126, size) + payload
    return struct.pack("!BBQ", head, 127, size) + payload


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    client.settimeout(2.0)
    yield server, client
    server.close()
    client.close()


def send_in_background(server: socket.socket, data: bytes) -> threading.Thread:
    """Send ``data`` from a thread, because it may not fit in the socket buffer."""
    sender = threading.Thread(target=server.sendall, args=(data,), daemon=True)
    sender.start()
    return sender


def reader_for(client: socket.socket) -> FrameReader:
    return FrameReader(lambda size: socket_recv(client, size))


def test_reads_every_length_encoding(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 65535, b"w" * 65536, b"v" * 200_000]
    sender = send_in_background(server, b"".join(frame(payload) for payload in payloads))
    reader = reader_for(client)

    for payload in payloads:
        assert reader.read() == (OPCODE_TEXT, payload)
    assert not reader.has_buffered_data()
    sender.join(2.0)


def test_frames_split_at_every_byte(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    stream = frame(b'{"a":1}') + frame(b"b" * 300, OPCODE_BINARY) + frame(b"c" * 70_000)
    # Each read returns one byte, as if every byte arrived in its own TCP segment.
    reader = FrameReader(lambda size: socket_recv(client, 1))
    sender = send_in_background(server, stream)

    assert reader.read() == (OPCODE_TEXT, b'{"a":1}')
    assert reader.read() == (OPCODE_BINARY, b"b" * 300)
    assert reader.read() == (OPCODE_TEXT, b"c" * 70_000)
    sender.join(2.0)


def test_buffered_data_reports_next_frame(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    server.sendall(frame(b"one") + frame(b"two"))
    reader = reader_for(client)

    assert reader.read() == (OPCODE_TEXT, b"one")
    assert reader.has_buffered_data()
    assert reader.read() == (OPCODE_TEXT, b"two")
    assert not reader.has_buffered_data()


def test_fragments_join_around_control_frames(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    server.sendall(
        frame(b"ab", OPCODE_TEXT, final=False)
        + frame(b"ping!", OPCODE_PING)
        + frame(b"cd", 0x0, final=False)
        + frame(b"", OPCODE_PONG)
        + frame(b"ef", 0x0)
        + frame(b"\x03\xe8", OPCODE_CLOSE)
    )
    reader = reader_for(client)

    assert reader.read() == (OPCODE_PING, b"ping!")
    assert reader.read() == (OPCODE_PONG, b"")
    assert reader.read() == (OPCODE_TEXT, b"abcdef")
    assert reader.read() == (OPCODE_CLOSE, b"\x03\xe8")


def test_timeout_mid_frame_keeps_bytes(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.settimeout(0.05)
    encoded = frame(b"p" * 1000)
    reader = reader_for(client)

    server.sendall(encoded[:1])
    with pytest.raises(websocket.WebSocketTimeoutException):
        reader.read()
    server.sendall(encoded[1:600])
    with pytest.raises(websocket.WebSocketTimeoutException):
        reader.read()
    server.sendall(encoded[600:])

    assert reader.read() == (OPCODE_TEXT, b"p" * 1000)


def test_end_of_stream_mid_frame_is_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    server.sendall(frame(b"q" * 500)[:100])
    server.shutdown(socket.SHUT_WR)
    reader = reader_for(client)

    with pytest.raises(websocket.WebSocketConnectionClosedException):
        reader.read()


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (bytes([0x81, 0x80 | 3]) + b"mask" + b"abc", "masked"),
        (frame(b"x", first=0x40), "reserved bits"),
        (frame(b"x", opcode=0x3), "reserved opcode 0x3"),
        (frame(b"x", opcode=0xB), "reserved opcode 0xb"),
        (frame(b"p" * 126, OPCODE_PING), "126 bytes"),
        (frame(b"", OPCODE_PING, final=False), "fragmented a control frame"),
        (frame(b"x", 0x0), "continuation frame"),
        (frame(b"a", final=False) + frame(b"b"), "new message began"),
        (struct.pack("!BBQ", 0x81, 127, 1 << 63), "above 2**63"),
    ],
)
def test_protocol_violations_raise(
    pair: tuple[socket.socket, socket.socket], stream: bytes, reason: str
) -> None:
    server, client = pair
    server.sendall(stream)
    reader = reader_for(client)

    with pytest.raises(websocket.WebSocketProtocolException) as error:
        reader.read()

    assert reason in str(error.value)
