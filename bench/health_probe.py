"""Time requests to the health server from a process of its own.

The probe sends one GET every ``interval_s``, taking ``/health``, ``/ready`` and
``/metrics`` in turn, over one keep-alive HTTP connection (a ``requests.Session``),
and records the status code and the wall time of each request, body included.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import requests

from bench.stats import percentile

PATHS = ("/health", "/ready", "/metrics")
_TIMEOUT_S = 5.0


@dataclass
class ProbeResult:
    """Latencies in seconds and status codes per path; -1 stands for a failed request."""

    latencies: dict[str, list[float]]
    statuses: dict[str, dict[int, int]]


def probe(base_url: str, duration_s: float, interval_s: float) -> ProbeResult:
    """Request the health paths in turn for ``duration_s``; return what was measured."""
    latencies: dict[str, list[float]] = {path: [] for path in PATHS}
    statuses: dict[str, dict[int, int]] = {path: {} for path in PATHS}
    session = requests.Session()
    started = time.monotonic()
    turn = 0
    while time.monotonic() - started < duration_s:
        path = PATHS[turn % len(PATHS)]
        before = time.perf_counter()
        try:
            code = session.get(base_url + path, timeout=_TIMEOUT_S).status_code
        except requests.RequestException:
            code = -1
        latencies[path].append(time.perf_counter() - before)
        statuses[path][code] = statuses[path].get(code, 0) + 1
        turn += 1
        next_at = started + turn * interval_s
        time.sleep(max(0.0, next_at - time.monotonic()))
    session.close()
    return ProbeResult(latencies, statuses)


def _child_main(pipe: Connection, base_url: str, duration_s: float, interval_s: float) -> None:
    result = probe(base_url, duration_s, interval_s)
    pipe.send((result.latencies, result.statuses))


class ProbeProcess:
    """:func:`probe` in a spawned child process; :meth:`result` waits for it."""

    def __init__(self, base_url: str, duration_s: float, interval_s: float = 0.02) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(theirs, base_url, duration_s, interval_s),
            name="bench-health-probe",
        )
        self.duration_s = duration_s

    def start(self) -> ProbeProcess:
        self._process.start()
        return self

    def result(self) -> ProbeResult:
        timeout_s = self.duration_s + 60.0
        if not self._pipe.poll(timeout_s):
            self._process.kill()
            raise TimeoutError(f"The health probe sent no result within {timeout_s:.0f} s.")
        latencies, statuses = self._pipe.recv()
        self._process.join(10)
        return ProbeResult(latencies, statuses)


def summarise(result: ProbeResult) -> dict[str, Any]:
    """Return, per path, the request count, status codes and p50/p99/max latency in ms."""
    summary: dict[str, Any] = {}
    for path, values in result.latencies.items():
        milliseconds = [value * 1000 for value in values]
        summary[path] = {
            "requests": len(values),
            "statuses": {str(code): count for code, count in result.statuses[path].items()},
            "p50_ms": percentile(milliseconds, 50),
            "p99_ms": percentile(milliseconds, 99),
            "max_ms": max(milliseconds, default=float("nan")),
        }
    return summary
