"""REDIS_DIAL_TIMEOUT, REDIS_READ_TIMEOUT, REDIS_WRITE_TIMEOUT and REDIS_MAX_RETRIES
take effect on real sockets.

Every peer is a socket this test opens on 127.0.0.1: a listener whose accept queue is
full (a connect never completes), a listener that accepts and never replies, and a
proxy in front of a real redis-server that can stop reading. The only bound on time
is the pytest timeout, which turns a hang into a failure.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from replicator.config import load_config
from replicator.exits import EXIT_REDIS
from replicator.redis_conn import create_client
from replicator.redis_settings import RedisConfig
from tests.replicator_process import ReplicatorProcess
from tests.servers import RedisServer

pytestmark = pytest.mark.timeout(60)

#: Large enough to fill the socket buffers of both ends of a loopback connection.
LARGE_VALUE = b"x" * (64 * 1024 * 1024)


def redis_config(port: int, **env: str) -> RedisConfig:
    return load_config(
        {"SCHEMATIC_API_KEY": "key-for-tests", "REDIS_ADDR": f"127.0.0.1:{port}", **env}
    ).redis


class SilentServer:
    """A listener that reads what arrives and never replies; it counts connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="silent-server", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._sockets.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self._sockets:
            connection.close()


class FullBacklog:
    """A listener that never accepts, with its accept queue already full.

    Linux drops a SYN for a full accept queue, so a new connect hangs until the
    client's own timeout.
    """

    FILLERS = 3

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self._fillers = [self._fill() for _ in range(self.FILLERS)]

    def _fill(self) -> socket.socket:
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", self.port))
        return filler

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self.listener.close()


class StallingProxy:
    """Forwards to a real Redis until ``stall``; then stops reading from the client."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.stalled = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="stalling-proxy", daemon=True).start()

    def stall(self) -> None:
        self.stalled.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self.stalled.is_set():
                data = source.recv(65536)
                if not data:
                    return
                sink.sendall(data)
        # Stalled: keep the connection open and read nothing more.

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture()
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture()
def full_backlog() -> Iterator[FullBacklog]:
    listener = FullBacklog()
    yield listener
    listener.close()


def test_read_timeout_raises(silent_server: SilentServer) -> None:
    config = redis_config(
        silent_server.port,
        REDIS_READ_TIMEOUT="300ms",
        REDIS_WRITE_TIMEOUT="300ms",
        REDIS_MAX_RETRIES="0",
    )
    client = create_client(config)
    try:
        with pytest.raises(redis.TimeoutError, match="Timeout reading"):
            client.ping()
    finally:
        client.close()
    assert silent_server.accepted == 1


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_max_retries_counted(silent_server: SilentServer, retries: int) -> None:
    config = redis_config(
        silent_server.port,
        REDIS_READ_TIMEOUT="200ms",
        REDIS_WRITE_TIMEOUT="200ms",
        REDIS_MAX_RETRIES=str(retries),
    )
    client = create_client(config)
    try:
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        client.close()
    # Each attempt times out, drops its connection and opens a new one.
    assert silent_server.accepted == retries + 1


def test_dial_timeout_raises(full_backlog: FullBacklog) -> None:
    config = redis_config(full_backlog.port, REDIS_DIAL_TIMEOUT="300ms", REDIS_MAX_RETRIES="0")
    client = create_client(config)
    try:
        with pytest.raises(redis.TimeoutError, match="Timeout connecting"):
            client.ping()
    finally:
        client.close()


def test_write_timeout_raises(redis_server: RedisServer) -> None:
    proxy = StallingProxy(redis_server.port)
    config = redis_config(
        proxy.port,
        REDIS_READ_TIMEOUT="300ms",
        REDIS_WRITE_TIMEOUT="500ms",
        REDIS_MAX_RETRIES="0",
    )
    client = create_client(config)
    try:
        assert client.ping() is True
        proxy.stall()
        with pytest.raises(redis.TimeoutError, match="Timeout writing"):
            client.set("replicator-write-timeout-test", LARGE_VALUE)
    finally:
        client.close()
        proxy.close()


def start_service(port: int, **env: str) -> ReplicatorProcess:
    process = ReplicatorProcess("http://127.0.0.1:9", "timeout-test-key", "", **env)
    process.env["REDIS_ADDR"] = f"127.0.0.1:{port}"
    return process.start()


def exit_code(process: ReplicatorProcess) -> int:
    assert process.process is not None
    return process.process.wait(timeout=45)


def test_service_read_timeout_exits(silent_server: SilentServer) -> None:
    process = start_service(
        silent_server.port,
        REDIS_READ_TIMEOUT="300ms",
        REDIS_WRITE_TIMEOUT="300ms",
        REDIS_MAX_RETRIES="2",
    )
    assert exit_code(process) == EXIT_REDIS
    output = process.output()
    assert "Redis self-test failed at PING" in output
    assert "Timeout reading" in output
    assert silent_server.accepted == 3


def test_service_dial_timeout_exits(full_backlog: FullBacklog) -> None:
    process = start_service(full_backlog.port, REDIS_DIAL_TIMEOUT="300ms", REDIS_MAX_RETRIES="1")
    assert exit_code(process) == EXIT_REDIS
    output = process.output()
    assert "Redis self-test failed at PING" in output
    assert "Timeout connecting" in output
