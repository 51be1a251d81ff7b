"""One log pipe per child process, read by the supervisor.

Each child formats and redacts its own records, then writes them to a pipe of its
own. A thread in the supervisor reads that pipe and writes whole records to the
supervisor's stream, so lines of different processes never interleave. A child that is
killed in the middle of a write can only cut short its own last record: no lock is
shared between processes, so no other process can be left waiting on it.

A record goes through the pipe as chunks of at most ``PIPE_BUF`` bytes, which the
kernel writes atomically. Each chunk starts with the writer's pid, the payload length
and a flag for the record's last chunk. Processes forked by the child itself (such as
gunicorn's worker in the health server) inherit the pipe, and the pid keeps their
records apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import struct
import threading
import time

from replicator import logs

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!IHB")
_CHUNK = select.PIPE_BUF - _HEADER.size
_READ_SIZE = 65536
_DRAIN_WAIT_S = 5.0

#: Read ends open in the supervisor. A new child closes its inherited copies.
_open_read_fds: set[int] = set()
_readers: list[threading.Thread] = []


class ChildLogChannel:
    """A pipe from one child to the supervisor's log stream.

    Create it in the supervisor right before the fork, then call :meth:`attach_child`
    in the child and :meth:`attach_parent` in the supervisor.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        _open_read_fds.add(self.read_fd)

    def attach_child(self) -> None:
        """Send every record of this process through the channel from now on."""
        for fd in _open_read_fds:
            _close_quietly(fd)
        _open_read_fds.clear()

        root = logging.getLogger()
        source = logs.stream_handler()
        handler = ChannelHandler(self.write_fd)
        if source is not None:
            handler.setFormatter(source.formatter)
            for record_filter in source.filters:
                handler.addFilter(record_filter)
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)

    def attach_parent(self, name: str) -> None:
        """Close the supervisor's write end and start reading the child's records."""
        _close_quietly(self.write_fd)
        reader = threading.Thread(
            target=_copy_records, args=(self.read_fd,), name=f"log-{name}", daemon=True
        )
        reader.start()
        _readers[:] = [thread for thread in _readers if thread.is_alive()]
        _readers.append(reader)


def drain(timeout_s: float = _DRAIN_WAIT_S) -> None:
    """Wait until the records of every exited child are written.

    A reader stops at end of file, once its child and everything that child forked have
    exited. Readers still running after ``timeout_s`` in all are left behind.
    """
    deadline = time.monotonic() + timeout_s
    for reader in list(_readers):
        reader.join(max(0.0, deadline - time.monotonic()))


class ChannelHandler(logging.Handler):
    """Writes each formatted record to a channel's pipe in atomic chunks."""

    def __init__(self, write_fd: int) -> None:
        super().__init__()
        self.write_fd = write_fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.format(record).encode("utf-8", "backslashreplace")
            for frame in encode_frames(os.getpid(), data):
                os.write(self.write_fd, frame)
        except OSError:
            # The supervisor is gone; this process is about to be stopped too.
            pass
        except Exception:
            self.handleError(record)


def encode_frames(pid: int, data: bytes) -> list[bytes]:
    """Split one record into chunks that each fit one atomic pipe write."""
    pieces = [data[start : start + _CHUNK] for start in range(0, len(data), _CHUNK)] or [b""]
    last = len(pieces) - 1
    return [
        _HEADER.pack(pid, len(piece), index == last) + piece for index, piece in enumerate(pieces)
    ]


class FrameDecoder:
    """Reassembles records from the chunks of one pipe, keeping writers apart by pid."""

    def __init__(self) -> None:
        self._buffer = b""
        self._parts: dict[int, list[bytes]] = {}

    def feed(self, data: bytes) -> list[str]:
        """Add bytes read from the pipe; return the records they completed."""
        self._buffer += data
        records = []
        while len(self._buffer) >= _HEADER.size:
            pid, length, last = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            self._parts.setdefault(pid, []).append(self._buffer[_HEADER.size : end])
            self._buffer = self._buffer[end:]
            if last:
                records.append(b"".join(self._parts.pop(pid)).decode("utf-8", "replace"))
        return records

    def unfinished(self) -> int:
        """Count the records cut short, e.g. by a writer killed in the middle of one."""
        return len(self._parts) + (1 if self._buffer else 0)


def _copy_records(read_fd: int) -> None:
    decoder = FrameDecoder()
    try:
        while True:
            data = os.read(read_fd, _READ_SIZE)
            if not data:
                break
            for text in decoder.feed(data):
                logs.write_formatted(text)
    finally:
        _open_read_fds.discard(read_fd)
        _close_quietly(read_fd)

    if decoder.unfinished():
        logger.warning(
            "A child process stopped in the middle of writing a log record, "
            "so the rest of that record is lost."
        )


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
