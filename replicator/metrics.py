"""Prometheus metrics rendered from a status block snapshot, for the health app's /metrics.

Every value comes from :meth:`StatusBlock.snapshot`, so rendering never touches Redis
or the network. A fresh registry with one custom collector renders each request; there
is no global registry state. Labels take only values fixed by the configuration
(process roles, entity types, state names), so the number of series stays constant.

Counters are the status block's own counters. A restarted process starts its slot's
counters at zero again (queue accounting and the restart count excepted), which
Prometheus treats as a counter reset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from replicator import __version__
from replicator.cursor import parse_stream_id
from replicator.health import NO_HEARTBEAT_ROLES, health_body
from replicator.status import (
    BATCH_SIZE_BUCKETS,
    WRITE_SECONDS_BUCKETS,
    CircuitState,
    LoadState,
    StreamState,
)

#: Media type of the text format version 0.0.4, which ``generate_latest`` writes and every
#: Prometheus server reads. prometheus-client 0.26 names version 1.0.0 in CONTENT_TYPE_LATEST.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "schematic_replicator_"

#: Entity types of the workers. A worker's role is its type, plus ``-<shard>`` for companies
#: and users.
ENTITY_TYPES = ("company", "user", "flags")
#: Entity types of the bulk load, with the resource name of their status block fields.
LOADED_ENTITY_TYPES = (("company", "companies"), ("user", "users"))
MESSAGE_COUNTERS = ("received", "applied", "skipped", "dropped")

Snapshot = dict[str, Any]


def render_metrics(snapshot: Snapshot, now: float | None = None) -> bytes:
    """Render ``snapshot`` in the Prometheus text format; ``now`` is wall-clock seconds."""
    registry = CollectorRegistry(auto_describe=False)
    clock = time.time if now is None else lambda: now
    registry.register(SnapshotCollector(lambda: snapshot, clock))
    return generate_latest(registry)


class SnapshotCollector(Collector):
    """Collector that builds every metric family from one snapshot per scrape."""

    def __init__(
        self, read_status: Callable[[], Snapshot], clock: Callable[[], float] = time.time
    ) -> None:
        self.read_status = read_status
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        snapshot = self.read_status()
        now = self.clock()
        yield from service_families(snapshot)
        yield from datastream_families(snapshot, now)
        yield from message_families(snapshot)
        yield from worker_families(snapshot)
        yield from histogram_families(snapshot)
        yield from load_families(snapshot, now)
        yield from process_families(snapshot)


def entity_type_of(role: str) -> str | None:
    """Return the entity type a worker role writes (``company-3`` is ``company``), else None."""
    if role == "flags":
        return "flags"
    kind, _, shard = role.partition("-")
    if kind in ("company", "user") and shard.isdigit():
        return kind
    return None


def worker_slots(snapshot: Snapshot) -> list[Snapshot]:
    return [slot for slot in snapshot["processes"] if entity_type_of(slot["role"])]


def slots_by_type(snapshot: Snapshot) -> dict[str, list[Snapshot]]:
    grouped: dict[str, list[Snapshot]] = {kind: [] for kind in ENTITY_TYPES}
    for slot in worker_slots(snapshot):
        grouped[str(entity_type_of(slot["role"]))].append(slot)
    return grouped


def role_slot(snapshot: Snapshot, role: str) -> Snapshot | None:
    return next((slot for slot in snapshot["processes"] if slot["role"] == role), None)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, documentation, value=value)


def _enum(name: str, documentation: str, current: str, names: Iterable[str]) -> Metric:
    """Build a gauge with one ``state`` label per known state: 1 for the current one, else 0."""
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=["state"])
    for state in names:
        family.add_metric([state], 1.0 if state == current else 0.0)
    return family


def service_families(snapshot: Snapshot) -> Iterator[Metric]:
    body = health_body(snapshot)
    yield InfoMetricFamily(
        PREFIX + "build", "Version of the replicator.", value={"version": __version__}
    )
    yield InfoMetricFamily(
        PREFIX + "cache_version",
        "Cache version in every Redis key the replicator writes; /ready returns it to the SDKs.",
        value={"cache_version": snapshot["cache_version"]},
    )
    yield _gauge("start_time_seconds", "Unix time the service started.", snapshot["started_at"])
    yield _gauge("healthy", "1 when /health would return 200.", float(body["status"] == "healthy"))
    yield _gauge("ready", "1 when /ready would return 200.", float(body["ready"]))
    yield _gauge(
        "shutting_down", "1 once the graceful shutdown started.", float(snapshot["shutting_down"])
    )
    yield _gauge(
        "redis_up", "1 when the last PING of Redis succeeded.", float(snapshot["redis_ok"])
    )


def datastream_families(snapshot: Snapshot, now: float) -> Iterator[Metric]:
    stream = snapshot["stream"]
    yield _enum(
        "datastream_state",
        "Datastream connection state: 1 for the current state.",
        stream["state"],
        StreamState.NAMES.values(),
    )
    if stream["last_message_at"]:
        yield _gauge(
            "datastream_last_message_age_seconds",
            "Seconds since the last datastream message arrived; absent before the first one.",
            max(0.0, now - stream["last_message_at"]),
        )
    yield _counter(
        "datastream_connections_total", "Datastream connections opened.", stream["connections"]
    )
    yield _counter(
        "datastream_reconnects_total",
        "Datastream connections opened after a lost one.",
        stream["reconnects"],
    )
    yield from _ingest_families(snapshot)
    lag = replay_lag_seconds(stream["last_stream_id"], stream["cursor"])
    if lag is not None:
        yield _gauge(
            "replay_cursor_lag_seconds",
            "Stream time between the newest message read and the saved replay cursor.",
            lag,
        )


def _ingest_families(snapshot: Snapshot) -> Iterator[Metric]:
    ingest = role_slot(snapshot, "ingest") or {"received": 0, "skipped": 0}
    yield _counter(
        "datastream_frames_received_total",
        "Frames the ingest process read off the datastream.",
        ingest["received"],
    )
    yield _counter(
        "datastream_frames_skipped_total",
        "Frames the ingest process skipped: invalid, or replayed duplicates.",
        ingest["skipped"],
    )


def replay_lag_seconds(last_stream_id: str, cursor: str) -> float | None:
    """Return how far the cursor trails the newest stream id, from their ``<ms>`` parts.

    Returns None while either id is missing or not in ``<ms>-<seq>`` form.
    """
    newest, saved = parse_stream_id(last_stream_id), parse_stream_id(cursor)
    if newest is None or saved is None:
        return None
    return max(0, newest[0] - saved[0]) / 1000.0


def message_families(snapshot: Snapshot) -> Iterator[Metric]:
    grouped = slots_by_type(snapshot)
    for counter in MESSAGE_COUNTERS:
        family = CounterMetricFamily(
            PREFIX + f"messages_{counter}_total",
            f"Changes the workers of each entity type {counter} (stream messages and "
            "bulk-load records).",
            labels=["entity_type"],
        )
        for kind, slots in grouped.items():
            family.add_metric([kind], sum(slot[counter] for slot in slots))
        yield family

    loader = role_slot(snapshot, "loader") or {"applied": 0, "skipped": 0}
    yield _counter(
        "bulk_load_records_sent_total",
        "Records the loader read from the REST API and sent to the workers.",
        loader["applied"],
    )
    yield _counter(
        "bulk_load_records_invalid_total",
        "Records from the REST API that the loader skipped as invalid.",
        loader["skipped"],
    )


def worker_families(snapshot: Snapshot) -> Iterator[Metric]:
    slots = worker_slots(snapshot)
    depth = GaugeMetricFamily(
        PREFIX + "queue_depth_messages", "Changes waiting in a worker's queue.", labels=["role"]
    )
    errors = CounterMetricFamily(
        PREFIX + "redis_errors_total", "Failed Redis writes of a worker.", labels=["role"]
    )
    breaker = GaugeMetricFamily(
        PREFIX + "circuit_breaker_state",
        "Redis circuit breaker of a worker: 1 for the current state.",
        labels=["role", "state"],
    )
    for slot in slots:
        depth.add_metric([slot["role"]], slot["queue_depth"])
        errors.add_metric([slot["role"]], slot["redis_errors"])
        for state in CircuitState.NAMES.values():
            breaker.add_metric([slot["role"], state], float(slot["breaker_state"] == state))
    yield from (depth, errors, breaker)


def cumulative_buckets(counts: Iterable[int], bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    """Turn per-bucket counts (one per bound, then an overflow bucket) into ``le`` buckets."""
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        total += count
        buckets.append((floatToGoString(bound), float(total)))
    return buckets


def summed_counts(slots: list[Snapshot], field: str, size: int) -> list[int]:
    sums = [0] * size
    for slot in slots:
        for index, count in enumerate(slot[field][:size]):
            sums[index] += count
    return sums


def histogram_families(snapshot: Snapshot) -> Iterator[Metric]:
    batches = HistogramMetricFamily(
        PREFIX + "batch_size_messages",
        "Changes per Redis pipeline a worker wrote.",
        labels=["entity_type"],
    )
    writes = HistogramMetricFamily(
        PREFIX + "redis_write_seconds",
        "Duration of a worker's successful Redis pipeline write.",
        labels=["entity_type"],
    )
    for kind, slots in slots_by_type(snapshot).items():
        sizes = summed_counts(slots, "batch_size_counts", len(BATCH_SIZE_BUCKETS) + 1)
        batches.add_metric(
            [kind],
            cumulative_buckets(sizes, BATCH_SIZE_BUCKETS),
            sum(slot["batch_items"] for slot in slots),
        )
        seconds = summed_counts(slots, "write_seconds_counts", len(WRITE_SECONDS_BUCKETS) + 1)
        writes.add_metric(
            [kind],
            cumulative_buckets(seconds, WRITE_SECONDS_BUCKETS),
            sum(slot["write_seconds_sum"] for slot in slots),
        )
    yield from (batches, writes)


def load_families(snapshot: Snapshot, now: float) -> Iterator[Metric]:
    load = snapshot["load"]
    flags = snapshot["flags"]
    yield _enum(
        "bulk_load_state",
        "Bulk load: 1 for the current state.",
        load["state"],
        LoadState.NAMES.values(),
    )
    yield _gauge("bulk_load_generation", "Number of the latest bulk load.", load["generation"])
    duration = bulk_load_seconds(load["started_at"], load["finished_at"], now)
    if duration is not None:
        yield _gauge(
            "bulk_load_duration_seconds",
            "Duration of the latest bulk load, or its time so far while it runs.",
            duration,
        )
    yield from _progress_families(load)
    loaded = GaugeMetricFamily(
        PREFIX + "entities_loaded",
        "1 once every entity of the type has been loaded.",
        labels=["entity_type"],
    )
    for kind, resource in LOADED_ENTITY_TYPES:
        loaded.add_metric([kind], float(load[f"{resource}_loaded"]))
    loaded.add_metric(["flags"], float(flags["loaded"]))
    yield loaded
    yield _gauge("flags", "Flags in the last flags snapshot.", flags["count"])


def _progress_families(load: Snapshot) -> Iterator[Metric]:
    done = GaugeMetricFamily(
        PREFIX + "bulk_load_done_records",
        "Records of the latest bulk load sent to the workers so far.",
        labels=["entity_type"],
    )
    expected = GaugeMetricFamily(
        PREFIX + "bulk_load_expected_records",
        "Record count the REST API reported at the start of the latest bulk load.",
        labels=["entity_type"],
    )
    for kind, resource in LOADED_ENTITY_TYPES:
        done.add_metric([kind], load[f"{resource}_done"])
        expected.add_metric([kind], load[f"{resource}_total"])
    yield from (done, expected)


def bulk_load_seconds(started_at: float, finished_at: float, now: float) -> float | None:
    """Return the latest load's duration, its running time so far, or None before any load."""
    if not started_at:
        return None
    end = finished_at if finished_at >= started_at else now
    return max(0.0, end - started_at)


def process_families(snapshot: Snapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        PREFIX + "process_up", "1 while the process is running.", labels=["role"]
    )
    heartbeat = GaugeMetricFamily(
        PREFIX + "process_heartbeat_age_seconds",
        "Seconds since the process last showed it is alive.",
        labels=["role"],
    )
    restarts = CounterMetricFamily(
        PREFIX + "process_restarts_total",
        "Times the supervisor restarted the process.",
        labels=["role"],
    )
    for slot in snapshot["processes"]:
        role = slot["role"]
        up.add_metric([role], float(slot["state"] == "running"))
        if slot["heartbeat_age_s"] is not None and role not in NO_HEARTBEAT_ROLES:
            heartbeat.add_metric([role], slot["heartbeat_age_s"])
        restarts.add_metric([role], slot["restarts"])
    yield from (up, heartbeat, restarts)
