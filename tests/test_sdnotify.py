"""systemd notifications, received on a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import pytest

from replicator import sdnotify
from replicator.lease import FOREVER
from replicator.status import LoadState, SlotState, StatusBlock, StreamState


@pytest.fixture()
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and the NOTIFY_SOCKET value that names it."""
    directory = tempfile.mkdtemp(prefix="sd-")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(directory)


def receive_all(sock: socket.socket) -> list[str]:
    """Every datagram already queued on ``sock``."""
    sock.setblocking(False)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode("utf-8"))
    except BlockingIOError:
        pass
    sock.settimeout(5)
    return messages


def starting_block() -> StatusBlock:
    status = StatusBlock.create()
    status.set_cache_version("v9")
    status.globals.redis_ok = 1
    status.globals.lease_valid_until = FOREVER
    status.globals.stream_state = StreamState.CONNECTING
    for index, role in enumerate(("supervisor", "ingest")):
        status.claim(index, role).state = SlotState.RUNNING
    return status


def make_ready(status: StatusBlock) -> None:
    state = status.globals
    state.stream_state = StreamState.READY
    state.flags_loaded = state.companies_loaded = state.users_loaded = 1
    state.load_state = LoadState.COMPLETE


def test_notify_sends_to_path(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket

    sent = sdnotify.notify("STATUS=hello", {"NOTIFY_SOCKET": path})

    assert sent is True
    assert sock.recv(4096) == b"STATUS=hello"


def test_notify_abstract_namespace() -> None:
    name = f"replicator-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)

        sent = sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "@" + name})

        assert sent is True
        assert sock.recv(4096) == b"READY=1"


def test_notify_without_socket_does_nothing() -> None:
    assert sdnotify.notify("READY=1", {}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": ""}) is False


def test_notify_missing_socket_is_not_fatal() -> None:
    missing = os.path.join(tempfile.gettempdir(), f"no-such-notify-{os.getpid()}")

    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": missing}) is False


def test_notifier_ready_only_once_ready(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    status = starting_block()
    notifier = sdnotify.ReadinessNotifier(status, {"NOTIFY_SOCKET": path})

    notifier.check()
    notifier.check()
    before = receive_all(sock)
    make_ready(status)
    notifier.check()
    notifier.check()
    after = receive_all(sock)

    assert len(before) == 1
    assert before[0].startswith("STATUS=Not ready: datastream connecting")
    assert "READY=1" not in before[0]
    assert after == ["READY=1\nSTATUS=Ready: cache version v9."]


def test_notifier_status_on_each_change(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    status = starting_block()
    make_ready(status)
    notifier = sdnotify.ReadinessNotifier(status, {"NOTIFY_SOCKET": path})
    notifier.check()

    status.globals.stream_state = StreamState.DISCONNECTED
    status.globals.stream_reason = b"connection reset by peer"
    notifier.check()
    status.globals.stream_state = StreamState.READY
    notifier.check()
    status.globals.shutting_down = 1
    notifier.check()

    messages = receive_all(sock)
    assert messages[0].startswith("READY=1\n")
    assert messages[1].startswith(
        "STATUS=Not ready: datastream disconnected (connection reset by peer)"
    )
    assert messages[2] == "STATUS=Ready: cache version v9."
    assert len(messages) == 3
    assert not any("READY=1" in message for message in messages[1:])


def test_notifier_thread_stops_at_shutdown(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    status = starting_block()
    make_ready(status)
    notifier = sdnotify.ReadinessNotifier(status, {"NOTIFY_SOCKET": path}, interval_s=0.01)

    notifier.start()
    first = sock.recv(4096).decode("utf-8")
    status.globals.shutting_down = 1
    notifier.join(timeout=5)

    assert first.startswith("READY=1\n")
    assert not notifier.is_alive()


def test_start_notifier_takes_the_socket(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setattr(sdnotify, "_notify_socket", "")
    status = starting_block()

    notifier = sdnotify.start_readiness_notifier(status)
    first = sock.recv(4096).decode("utf-8")
    inherited = os.environ.get("NOTIFY_SOCKET")
    status.globals.shutting_down = 1
    stopping = sdnotify.notify_stopping()
    last = sock.recv(4096).decode("utf-8")

    assert notifier is not None
    notifier.join(timeout=5)
    assert inherited is None
    assert first.startswith("STATUS=Not ready: ")
    assert stopping is True
    assert last.startswith("STOPPING=1\nSTATUS=")


def test_start_notifier_needs_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(sdnotify, "_notify_socket", "")

    assert sdnotify.start_readiness_notifier(starting_block()) is None
    assert sdnotify.notify_stopping() is False
