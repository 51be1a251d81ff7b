"""The :class:`Simulator`: the service plus its server thread, mutation stream and faults."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from replicator.simulator.burst import BurstResult, build_pool, run_burst
from replicator.simulator.config import SimulatorConfig, check_rate
from replicator.simulator.connections import ConnectionInfo, Hub
from replicator.simulator.faults import Faults
from replicator.simulator.mutations import MutationStream
from replicator.simulator.server import build_app
from replicator.simulator.service import Service
from replicator.simulator.stream import Message

logger = logging.getLogger(__name__)

T = TypeVar("T")
_START_TIMEOUT_S = 30.0
_LOOP_CALL_TIMEOUT_S = 30.0
_CLOSE_TIMEOUT_S = 2.0


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(
            error.errno,
            f"Cannot listen on {host}:{port}: {error.strerror}; "
            "choose another --port or stop what uses it.",
        ) from error
    sock.listen(128)
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Simulator(Service):
    """A simulated Schematic service: datastream WebSocket and REST API on one port.

    ``start()`` returns once the server listens; it runs on its own thread with its own
    event loop. Every change method is synchronous and thread-safe.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(config)
        self.hub = Hub()
        self.faults = Faults(self, self.hub, self._run_in_loop)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id = 0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._abrupt_stop = False
        self._startup_error: BaseException | None = None
        self._mutations: MutationStream | None = None
        self._pending: deque[Message] = deque()
        self._drain_scheduled = False

    @property
    def base_url(self) -> str:
        """The URL of the REST API; the datastream is at ``<base_url>/datastream``."""
        host = self.config.host
        netloc_host = f"[{host}]" if ":" in host else host
        return f"http://{netloc_host}:{self.port}"

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Every WebSocket connection so far, open or closed, oldest first."""
        return list(self.hub.history)

    # Lifecycle.

    def start(self) -> Simulator:
        """Start serving; return once the port listens. Starts mutations when rate > 0."""
        if self._thread is not None or self._ready.is_set():
            raise RuntimeError("This simulator was already started; create a new one.")
        sock = _listening_socket(self.config.host, self.config.port)
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(
            target=self._thread_main, args=(sock,), name="simulator-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise TimeoutError(f"The simulator did not start within {_START_TIMEOUT_S}s.")
        if self._startup_error is not None:
            raise RuntimeError("The simulator failed to start.") from self._startup_error
        logger.info(
            "Simulator listening on %s (datastream at %s/datastream).",
            self.base_url,
            self.base_url.replace("http", "ws", 1),
        )
        if not _is_loopback(self.config.host):
            logger.warning(
                "Simulator listens on %r, which is not a loopback address: other "
                "hosts can reach it with the API key.",
                self.config.host,
            )
        if self.config.rate > 0:
            self.start_mutations(self.config.rate)
        return self

    def stop(self, abrupt: bool = False) -> None:
        """Stop mutations and the server; connections get close code 1001 (or a reset)."""
        self.stop_mutations()
        if self._loop is None or self._thread is None or self._stopping is None:
            return
        self._abrupt_stop = abrupt
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=_START_TIMEOUT_S)
        self._loop = None
        logger.info("Simulator stopped after publishing %d changes.", self.seq)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as error:  # reported to start(), which re-raises it
            self._startup_error = error
            self._ready.set()
            logger.exception("The simulator server thread failed.")

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._stopping = asyncio.Event()
        runner = web.AppRunner(build_app(self, self.hub, self.faults), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self.dispatch = self._dispatch
        self._ready.set()
        await self._stopping.wait()

        self.dispatch = None
        await self._close_connections()
        await runner.cleanup()

    async def _close_connections(self) -> None:
        connections = list(self.hub.open.values())
        if self._abrupt_stop:
            for connection in connections:
                connection.reset()
            return
        closing = []
        for connection in connections:
            connection.info.close_code = 1001
            closing.append(connection.ws.close(code=1001, message=b"simulator stopping"))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*closing, return_exceptions=True), _CLOSE_TIMEOUT_S
            )

    # Event-loop plumbing.

    def _dispatch(self, message: Message) -> None:
        # Called with the service lock held, so the pending queue is in stream order. One
        # loop callback drains every message queued before it runs.
        self._pending.append(message)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            assert self._loop is not None
            if threading.get_ident() == self._loop_thread_id:
                self._loop.call_soon(self._drain_pending)
            else:
                self._loop.call_soon_threadsafe(self._drain_pending)

    def _drain_pending(self) -> None:
        # Clear the flag first: a message appended while draining either gets drained
        # here or schedules the next drain.
        self._drain_scheduled = False
        pending = self._pending
        fanout = self.hub.fanout
        while pending:
            fanout(pending.popleft())

    def _run_in_loop(self, function: Callable[[], T]) -> T:
        """Run a function on the event loop and return its result, from any thread."""
        if self._loop is None or threading.get_ident() == self._loop_thread_id:
            return function()

        async def call() -> T:
            return function()

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        return future.result(_LOOP_CALL_TIMEOUT_S)

    # Mutations, bursts and statistics.

    def start_mutations(self, rate: float) -> None:
        """Start (or restart) the live change generator at ``rate`` changes per second.

        Raises ValueError unless ``rate`` is a finite number >= 0; 0 only stops it.
        """
        check_rate(rate)
        self.stop_mutations()
        if rate <= 0:
            return
        self._mutations = MutationStream(self, rate, self.config.seed)
        self._mutations.start()

    def stop_mutations(self) -> None:
        """Stop the live change generator, if it runs."""
        if self._mutations is not None:
            self._mutations.stop()
            self._mutations = None

    def burst(self, count: int, rate: float = 0.0, pool_size: int = 1000) -> BurstResult:
        """Publish ``count`` pre-built company ``full`` changes; block until all are published.

        ``rate`` is messages per second, 0 for as fast as the clients take them. The send
        time of each stream id lands in ``send_times`` when a connection sends it.
        """
        check_rate(rate)
        if self._loop is None:
            raise RuntimeError("Start the simulator before a burst.")
        pool = build_pool(self, min(pool_size, count))
        future = asyncio.run_coroutine_threadsafe(
            run_burst(self, self.hub, pool, count, rate), self._loop
        )
        return future.result()

    def stats(self) -> dict[str, Any]:
        """Return counters for a periodic log line."""
        with self.lock:
            published = dict(self.published)
            last = self.last_stream_id
        history = self.hub.history
        return {
            "published": published,
            "last_stream_id": last,
            "open_connections": sum(1 for info in history if info.open),
            "connections": len(history),
            "messages_sent": sum(info.messages_sent for info in history),
            "companies": self.count("company"),
            "users": self.count("user"),
            "flags": len(self.state.flags),
            "time": time.time(),
        }
