"""The simulator in a child process of its own, driven over a pipe.

A benchmark needs the simulator's burst API and its send times, but the simulator must
not share a CPU-bound interpreter with the code that measures: the child has its own
pid, its own GIL and its own CPU account. The parent sends ``(command, arguments)``
tuples and receives one reply each; a reply is ``("ok", value)`` or ``("error", text)``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

logger = logging.getLogger(__name__)

API_KEY = "bench-key"
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 20.0


@dataclass
class Burst:
    """One published burst: stream ids, the company id of each, and its timing."""

    stream_ids: list[str]
    company_ids: list[str]
    started_ns: int
    finished_ns: int


class SimulatorProcess:
    """Start, drive and stop a :class:`Simulator` that runs in a spawned child."""

    def __init__(self, companies: int, users: int, flags: int = 20) -> None:
        self.settings = {
            "api_key": API_KEY,
            "companies": companies,
            "users": users,
            "flags": flags,
            "retention": 1000,
        }
        self.port = 0
        self.pid = 0
        self._pipe: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimulatorProcess:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=_child_main, args=(theirs, self.settings), name="bench-simulator"
        )
        self._process.start()
        self._pipe = ours
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not ours.poll(0.1):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"The simulator process did not start within {_START_TIMEOUT_S:.0f} s; "
                    "its error is above."
                )
        self.port, self.pid = self._reply()
        return self

    def burst(self, count: int, rate: float, pool_size: int = 1000) -> Burst:
        """Publish ``count`` company changes at ``rate`` per second (0: full speed); block."""
        self.send_burst(count, rate, pool_size)
        return self.wait_burst()

    def send_burst(self, count: int, rate: float, pool_size: int = 1000) -> None:
        """Start a burst; collect it with :meth:`wait_burst`."""
        self._send("burst", count, rate, pool_size)

    def burst_done(self, timeout_s: float = 0.0) -> bool:
        assert self._pipe is not None
        return self._pipe.poll(timeout_s)

    def wait_burst(self) -> Burst:
        return Burst(*self._reply())

    def send_times(self, stream_ids: list[str]) -> dict[str, int]:
        """Return the ``time.time_ns()`` send time of each of ``stream_ids`` that was sent."""
        self._send("send_times", stream_ids)
        return dict(self._reply())

    def stop(self) -> None:
        if self._process is None:
            return
        if self._pipe is not None and self._process.is_alive():
            with contextlib.suppress(OSError):  # the child already closed its end
                self._pipe.send(("stop", ()))
        self._process.join(_STOP_TIMEOUT_S)
        if self._process.is_alive():
            logger.warning("The simulator pid %d did not stop; killing it.", self._process.pid)
            self._process.kill()
            self._process.join(_STOP_TIMEOUT_S)
        self._process = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, command: str, *args: Any) -> None:
        assert self._pipe is not None, "Start the simulator process first."
        self._pipe.send((command, args))

    def _reply(self) -> Any:
        assert self._pipe is not None
        status, value = self._pipe.recv()
        if status != "ok":
            raise RuntimeError(f"The simulator process failed: {value}")
        return value


def _child_main(pipe: Connection, settings: dict[str, Any]) -> None:
    from replicator.simulator import Simulator, SimulatorConfig

    logging.basicConfig(level=logging.WARNING)
    try:
        simulator = Simulator(SimulatorConfig(**settings)).start()
    except Exception:  # reported to the parent, which raises it
        pipe.send(("error", traceback.format_exc()))
        return
    pipe.send(("ok", (simulator.port, os.getpid())))
    try:
        _serve_commands(pipe, simulator)
    finally:
        simulator.stop()


def _serve_commands(pipe: Connection, simulator: Any) -> None:
    while True:
        try:
            command, args = pipe.recv()
        except EOFError:
            return
        if command == "stop":
            return
        try:
            pipe.send(("ok", _run_command(simulator, command, args)))
        except Exception:  # reported to the parent, which raises it
            pipe.send(("error", traceback.format_exc()))


def _run_command(simulator: Any, command: str, args: tuple[Any, ...]) -> Any:
    if command == "burst":
        return _burst(simulator, *args)
    if command == "send_times":
        times = simulator.send_times
        return [(stream_id, times[stream_id]) for stream_id in args[0] if stream_id in times]
    raise ValueError(f"Unknown simulator command {command!r}; expected burst or send_times.")


def _burst(simulator: Any, count: int, rate: float, pool_size: int) -> tuple[Any, ...]:
    # The burst pool contains companies 0 .. size-1, built by make_burst_company, whose id
    # is catalog.entity_id("comp", index); position i of the burst uses pool[i % size].
    size = max(1, min(pool_size, count))
    pool_ids = [simulator.catalog.entity_id("comp", index) for index in range(size)]
    result = simulator.burst(count, rate=rate, pool_size=pool_size)
    company_ids = [pool_ids[position % size] for position in range(count)]
    return result.stream_ids, company_ids, result.started_ns, result.finished_ns
