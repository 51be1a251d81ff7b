"""Measure how fast the simulator serves REST pages of generated companies and users.

The simulator runs in a child process of its own (:class:`SimulatorProcess`), so its
CPU time is read from ``/proc/<pid>/stat`` apart from the clients'. Client threads in
this process fetch ``GET /companies?limit=100&offset=N``, then the same for users, until
every entity has been fetched once. Each thread takes the next offset that no thread has
fetched. The result of each kind gives the wall-clock rate and the simulator's CPU time
per entity.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import orjson
import requests

from bench.proc_sampler import cpu_times
from bench.sim_process import API_KEY, SimulatorProcess

PATHS = {"company": "/companies", "user": "/users"}
_TIMEOUT_S = 60.0


@dataclass
class PagingResult:
    """One kind fetched page by page: how many entities, in what time, at what CPU cost."""

    kind: str
    entities: int
    wall_s: float
    simulator_cpu_s: float
    simulator_system_s: float

    @property
    def per_s(self) -> float:
        return self.entities / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def cpu_us_per_entity(self) -> float:
        return self.simulator_cpu_s * 1e6 / self.entities if self.entities else float("nan")

    @property
    def system_us_per_entity(self) -> float:
        return self.simulator_system_s * 1e6 / self.entities if self.entities else float("nan")


def _fetch_pages(url: str, offsets: itertools.count[int], total: int, page: int) -> int:
    fetched = 0
    with requests.Session() as session:
        session.headers["X-Schematic-Api-Key"] = API_KEY
        for offset in offsets:
            if offset >= total:
                return fetched
            limit = min(page, total - offset)
            response = session.get(
                url, params={"limit": limit, "offset": offset}, timeout=_TIMEOUT_S
            )
            response.raise_for_status()
            fetched += len(orjson.loads(response.content)["data"])
    return fetched


def fetch_all(url: str, total: int, clients: int, page: int = 100) -> int:
    """Fetch ``total`` entities from ``url`` in pages with ``clients`` threads; return the count."""
    offsets = itertools.count(0, page)  # In CPython, next() on a count is atomic
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda: counts.append(_fetch_pages(url, offsets, total, page)))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def _cpu_s(pid: int) -> tuple[float, float]:
    """Return the (user + system, system) CPU seconds of a process."""
    used = cpu_times(pid)
    if used is None:
        raise RuntimeError(f"The simulator process {pid} exited during the measurement.")
    return used[0] + used[1], used[1]


def measure_kind(
    simulator: SimulatorProcess, kind: str, entities: int, clients: int
) -> PagingResult:
    """Fetch every entity of a kind once and return the rate and the simulator's CPU time."""
    url = simulator.base_url + PATHS[kind]
    fetch_all(url, min(entities, 1000), clients)  # warm the server and the connections
    cpu_before, system_before = _cpu_s(simulator.pid)
    started = time.perf_counter()
    fetched = fetch_all(url, entities, clients)
    wall_s = time.perf_counter() - started
    if fetched != entities:
        raise RuntimeError(f"Fetched {fetched} {kind} entities, expected {entities}.")
    cpu_after, system_after = _cpu_s(simulator.pid)
    return PagingResult(
        kind, entities, wall_s, cpu_after - cpu_before, system_after - system_before
    )


def measure(entities: int, clients: int) -> list[PagingResult]:
    """Start a simulator with ``entities`` companies and users and page through both."""
    with SimulatorProcess(companies=entities, users=entities, flags=0) as simulator:
        return [measure_kind(simulator, kind, entities, clients) for kind in PATHS]


def report(results: list[PagingResult]) -> str:
    """Format results as a small table, with a line for both kinds together."""
    both = PagingResult(
        "both",
        sum(r.entities for r in results),
        sum(r.wall_s for r in results),
        sum(r.simulator_cpu_s for r in results),
        sum(r.simulator_system_s for r in results),
    )
    header = f"{'kind':<10}{'entities':>10}{'seconds':>10}{'per s':>10}"
    lines = [header + f"{'CPU µs/entity':>16}{'of it system':>14}"]
    for result in [*results, both]:
        lines.append(
            f"{result.kind:<10}{result.entities:>10}{result.wall_s:>10.2f}"
            f"{result.per_s:>10,.0f}{result.cpu_us_per_entity:>16.1f}"
            f"{result.system_us_per_entity:>14.1f}"
        )
    return "\n".join(lines)
