"""The benchmark's WebSocket server encodes frames that the ingest's reader decodes."""

from __future__ import annotations

import socket
import threading

from websocket._socket import recv as socket_recv

from bench import frame_server
from replicator.frame_reader import OPCODE_TEXT, FrameReader


def test_encoded_frames_read_back() -> None:
    payloads = [b"", b"a" * 125, b"b" * 126, b"c" * 70_000]
    server, client = socket.socketpair()
    client.settimeout(2.0)
    sender = threading.Thread(
        target=server.sendall, args=(frame_server.encode_frames(payloads),), daemon=True
    )
    sender.start()
    reader = FrameReader(lambda size: socket_recv(client, size))
    try:
        for payload in payloads:
            assert reader.read() == (OPCODE_TEXT, payload)
    finally:
        sender.join(2.0)
        server.close()
        client.close()


def test_accept_key_matches_rfc_example() -> None:
    # The sample handshake of RFC 6455, as MDN's Sec-WebSocket-Accept page shows it.
    assert frame_server.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
