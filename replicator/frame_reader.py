"""Read the datastream's WebSocket frames (RFC 6455) with little Python work per frame.

websocket-client parses every frame through several Python objects and method calls,
which cost the ingest more CPU than routing the message. This reader takes large
chunks off the socket and cuts each frame out of them with a few byte operations. It
handles only what a server sends to a client: unmasked frames, without extensions.
The handshake, pings, pongs and closes still go through websocket-client.

A frame that breaks the protocol (masked, reserved bits or opcodes, an invalid
control frame, a continuation that continues nothing) raises
``websocket.WebSocketProtocolException``. After such a frame the position of the next
frame on the connection is not certain, so the caller drops the connection.
"""

from __future__ import annotations

from collections.abc import Callable

import websocket

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
DATA_OPCODES = (OPCODE_TEXT, OPCODE_BINARY)
CONTROL_OPCODES = (OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG)

#: Bytes asked of the socket per read: about forty 1.6 KB change messages. A frame cut
#: across two reads costs one copy of its first part, and nothing else is copied.
READ_CHUNK = 65536
#: RFC 6455, section 5.5: a control frame carries at most 125 bytes.
MAX_CONTROL_PAYLOAD = 125


class FrameReader:
    """Reader of the messages and control frames in the bytes that ``recv`` returns.

    ``recv(size)`` returns up to ``size`` bytes, or raises websocket-client's timeout
    and connection-closed exceptions. A timeout in the middle of a frame loses nothing:
    the bytes read so far stay buffered for the next call.
    """

    def __init__(self, recv: Callable[[int], bytes], chunk: int = READ_CHUNK) -> None:
        self._recv = recv
        self._chunk = chunk
        self._buffer = b""
        self._position = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def has_buffered_data(self) -> bool:
        """Tell whether bytes of a next frame were already read off the socket."""
        return self._position < len(self._buffer)

    def read(self) -> tuple[int, bytes]:
        """Return the next message, with its fragments joined, or the next control frame.

        The result is ``(opcode, payload)``: a text or binary message, or a close, ping
        or pong frame, which may arrive between the fragments of a message.
        """
        while True:
            opcode, final, payload = self._read_frame()
            if opcode in DATA_OPCODES and final and not self._fragments:
                return opcode, payload
            if opcode in CONTROL_OPCODES:
                _check_control(final, payload)
                return opcode, payload
            message = self._add_fragment(opcode, final, payload)
            if message is not None:
                return message

    def _add_fragment(self, opcode: int, final: bool, payload: bytes) -> tuple[int, bytes] | None:
        if opcode == OPCODE_CONTINUATION:
            if not self._fragments:
                raise _protocol_error("a continuation frame arrived outside a fragmented message")
        elif opcode in DATA_OPCODES:
            if self._fragments:
                raise _protocol_error("a new message began before the fragmented one ended")
            self._fragment_opcode = opcode
        else:
            raise _protocol_error(f"the server sent a frame with reserved opcode {opcode:#x}")

        self._fragments.append(payload)
        if not final:
            return None
        message = b"".join(self._fragments)
        self._fragments = []
        return self._fragment_opcode, message

    def _read_frame(self) -> tuple[int, bool, bytes]:
        """Read one frame; the buffer only moves past it once all of it is there."""
        self._fill(2)
        buffer, start = self._buffer, self._position
        first, second = buffer[start], buffer[start + 1]
        if first & 0x70:
            raise _protocol_error(f"the server set reserved bits {first & 0x70:#x}")
        if second & 0x80:
            raise _protocol_error("the server sent a masked frame")

        length = second & 0x7F
        header = 2
        if length == 126:
            header = 4
            self._fill(header)
            buffer, start = self._buffer, self._position
            length = int.from_bytes(buffer[start + 2 : start + 4], "big")
        elif length == 127:
            header = 10
            self._fill(header)
            buffer, start = self._buffer, self._position
            length = int.from_bytes(buffer[start + 2 : start + 10], "big")
            if length >> 63:
                raise _protocol_error("the server sent a frame length above 2**63 - 1")

        end = start + header + length
        if end > len(buffer):
            self._fill(header + length)
            buffer, start = self._buffer, self._position
            end = start + header + length
        self._position = end
        return first & 0x0F, bool(first & 0x80), buffer[start + header : end]

    def _fill(self, size: int) -> None:
        """Read until ``size`` bytes from the current position are buffered.

        The parts are joined once, so a large frame costs one copy, and whatever was
        read before a timeout stays buffered.
        """
        missing = size - (len(self._buffer) - self._position)
        if missing <= 0:
            return
        parts = [self._buffer[self._position :]]
        try:
            while missing > 0:
                chunk = self._recv(max(self._chunk, missing))
                parts.append(chunk)
                missing -= len(chunk)
        finally:
            self._buffer = b"".join(parts)
            self._position = 0


def _check_control(final: bool, payload: bytes) -> None:
    if not final:
        raise _protocol_error("the server fragmented a control frame")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise _protocol_error(
            f"the server sent a control frame of {len(payload)} bytes, above the 125 allowed"
        )


def _protocol_error(reason: str) -> websocket.WebSocketProtocolException:
    return websocket.WebSocketProtocolException(f"Invalid WebSocket frame: {reason}.")
