"""A bare WebSocket server on 127.0.0.1 that sends pre-encoded frames as fast as it can.

It serves one connection: it accepts the upgrade, sends every frame of a byte string
built before the connection, then a close frame, and discards what the client sends.
The frames are encoded once, so the server costs almost no CPU per frame and the
process that reads them is what a benchmark measures.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
from collections.abc import Iterable

#: Fixed GUID of RFC 6455, section 1.3, appended to the client's key.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEADER_END = b"\r\n\r\n"
_CLOSE_NORMAL = b"\x88\x02\x03\xe8"  # A close frame with status 1000.
_SERVE_TIMEOUT_S = 600.0
#: Wait for the client to hang up after the close frame. websocket-client replies to a
#: server's close frame without closing its socket, which then stays open until the
#: client object is garbage-collected, so the wait is short.
_LINGER_S = 2.0


def encode_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """Encode one unmasked, final server frame (text by default)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def encode_frames(payloads: Iterable[bytes]) -> bytes:
    """Concatenate the text frames of ``payloads``."""
    return b"".join(encode_frame(payload) for payload in payloads)


def accept_key(client_key: bytes) -> bytes:
    """Return the Sec-WebSocket-Accept value for the client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(client_key + _ACCEPT_GUID).digest())


def listen() -> socket.socket:
    """Bind a listening socket on a free loopback port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


def serve_once(server: socket.socket, frames: bytes) -> None:
    """Serve one client: handshake, send ``frames`` and a close frame, then hang up."""
    server.settimeout(_SERVE_TIMEOUT_S)
    connection, _ = server.accept()
    with connection:
        connection.settimeout(_SERVE_TIMEOUT_S)
        _handshake(connection)
        reader = threading.Thread(target=_discard, args=(connection,), daemon=True)
        reader.start()
        connection.sendall(frames)
        connection.sendall(_CLOSE_NORMAL)
        connection.shutdown(socket.SHUT_WR)
        reader.join(_LINGER_S)


def _handshake(connection: socket.socket) -> None:
    request = b""
    while _HEADER_END not in request:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionError("the client closed the connection during the upgrade")
        request += chunk
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if not key:
        raise ConnectionError("the upgrade request has no Sec-WebSocket-Key header")
    connection.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
    )


def _discard(connection: socket.socket) -> None:
    try:
        while connection.recv(65536):
            pass
    except OSError:
        return
