"""The Prometheus exposition of the status block, parsed back with prometheus-client."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from replicator.health import create_app
from replicator.lease import FOREVER
from replicator.metrics import (
    CONTENT_TYPE,
    cumulative_buckets,
    entity_type_of,
    render_metrics,
    replay_lag_seconds,
)
from replicator.status import (
    BATCH_SIZE_BUCKETS,
    WRITE_SECONDS_BUCKETS,
    CircuitState,
    LoadState,
    SlotState,
    StatusBlock,
    StreamState,
    observe,
)

NOW = 1_700_000_000.0
ROLES = ("supervisor", "health", "flags", "company-0", "user-0", "company-1", "loader", "ingest")


def filled_block() -> StatusBlock:
    """A status block as a busy, ready service would have it."""
    status = StatusBlock.create()
    status.set_cache_version("v1abc")
    state = status.globals
    state.started_at = NOW - 100
    state.redis_ok = 1
    state.lease_valid_until = FOREVER
    state.stream_state = StreamState.READY
    state.connections, state.reconnects = 3, 2
    state.last_message_at = NOW - 4
    state.cursor, state.last_stream_id = b"1700000000000-5", b"1700000002500-0"
    state.flags_loaded, state.flags_count = 1, 6
    state.load_state, state.load_generation = LoadState.COMPLETE, 2
    state.load_started_at, state.load_finished_at = NOW - 50, NOW - 38
    state.companies_loaded = state.users_loaded = 1
    state.companies_total, state.companies_done = 60, 60
    state.users_total, state.users_done = 80, 79
    for index, role in enumerate(ROLES):
        slot = status.claim(index, role)
        slot.state = SlotState.RUNNING
    fill_workers(status)
    return status


def fill_workers(status: StatusBlock) -> None:
    company0, user0, company1 = status.slot(3), status.slot(4), status.slot(5)
    company0.received, company0.applied, company0.skipped = 10, 9, 1
    company1.received, company1.applied, company1.dropped = 5, 4, 1
    user0.received, user0.applied = 7, 7
    company0.enqueued_stream, company0.enqueued_load, company0.dequeued = 8, 12, 15
    company1.redis_errors = 4
    company1.breaker_state = CircuitState.OPEN
    for slot, sizes in ((company0, (1, 3, 5)), (company1, (2, 700))):
        for size in sizes:
            observe(slot.batch_size_counts, BATCH_SIZE_BUCKETS, size)
            slot.batch_items += size
    for seconds in (0.0004, 0.003, 2.0):
        observe(company0.write_seconds_counts, WRITE_SECONDS_BUCKETS, seconds)
        company0.write_seconds_sum += seconds
    status.slot(7).received, status.slot(7).skipped = 30, 2  # ingest
    status.slot(6).applied, status.slot(6).skipped = 139, 1  # loader
    status.slot(4).restarts = 2


def parse(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def scrape(status: StatusBlock) -> dict[str, Any]:
    return parse(render_metrics(status.snapshot(), now=NOW).decode("utf-8"))


def value(families: dict[str, Any], name: str, sample: str = "", **labels: str) -> float:
    family = families["schematic_replicator_" + name]
    sample_name = "schematic_replicator_" + (sample or name)
    matches = [s for s in family.samples if s.name == sample_name and s.labels == labels]
    assert len(matches) == 1, f"{sample_name}{labels}: {family.samples}"
    return float(matches[0].value)


def series(families: dict[str, Any]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    samples: list[Sample] = [s for family in families.values() for s in family.samples]
    return {(s.name, tuple(sorted(s.labels.items()))) for s in samples}


def test_metrics_service_and_stream() -> None:
    families = scrape(filled_block())

    assert value(families, "cache_version_info", cache_version="v1abc") == 1
    assert value(families, "start_time_seconds") == NOW - 100
    assert value(families, "ready") == 1
    assert value(families, "healthy") == 1
    assert value(families, "redis_up") == 1
    assert value(families, "datastream_state", state="ready") == 1
    assert value(families, "datastream_state", state="connecting") == 0
    assert value(families, "datastream_last_message_age_seconds") == 4
    assert value(families, "datastream_connections", "datastream_connections_total") == 3
    assert value(families, "datastream_reconnects", "datastream_reconnects_total") == 2
    assert value(families, "datastream_frames_received", "datastream_frames_received_total") == 30
    assert value(families, "replay_cursor_lag_seconds") == 2.5


def test_metrics_messages_summed_by_entity_type() -> None:
    families = scrape(filled_block())

    def messages(counter: str, kind: str) -> float:
        name = f"messages_{counter}"
        return value(families, name, name + "_total", entity_type=kind)

    assert messages("received", "company") == 15
    assert messages("applied", "company") == 13
    assert messages("skipped", "company") == 1
    assert messages("dropped", "company") == 1
    assert messages("received", "user") == 7
    assert messages("received", "flags") == 0
    assert value(families, "bulk_load_records_sent", "bulk_load_records_sent_total") == 139


def test_metrics_workers_by_role() -> None:
    families = scrape(filled_block())

    assert value(families, "queue_depth_messages", role="company-0") == 5
    assert value(families, "redis_errors", "redis_errors_total", role="company-1") == 4
    assert value(families, "circuit_breaker_state", role="company-1", state="open") == 1
    assert value(families, "circuit_breaker_state", role="company-1", state="closed") == 0
    assert value(families, "circuit_breaker_state", role="user-0", state="closed") == 1
    depth = families["schematic_replicator_queue_depth_messages"]
    roles = {s.labels["role"] for s in depth.samples}
    assert roles == {"flags", "company-0", "company-1", "user-0"}


def test_metrics_histograms_are_cumulative() -> None:
    families = scrape(filled_block())
    name = "batch_size_messages"

    def bucket(le: str) -> float:
        return value(families, name, name + "_bucket", entity_type="company", le=le)

    assert bucket("1.0") == 1
    assert bucket("2.0") == 2
    assert bucket("5.0") == 4
    assert bucket("500.0") == 4
    assert bucket("1000.0") == 5
    assert bucket("+Inf") == 5
    assert value(families, name, name + "_count", entity_type="company") == 5
    assert value(families, name, name + "_sum", entity_type="company") == 711
    assert value(families, name, name + "_count", entity_type="flags") == 0

    write = "redis_write_seconds"
    assert value(families, write, write + "_bucket", entity_type="company", le="0.0005") == 1
    assert value(families, write, write + "_bucket", entity_type="company", le="1.0") == 2
    assert value(families, write, write + "_count", entity_type="company") == 3
    assert value(families, write, write + "_sum", entity_type="company") == pytest.approx(2.0034)


def test_metrics_bulk_load_and_flags() -> None:
    families = scrape(filled_block())

    assert value(families, "bulk_load_state", state="complete") == 1
    assert value(families, "bulk_load_state", state="running") == 0
    assert value(families, "bulk_load_generation") == 2
    assert value(families, "bulk_load_duration_seconds") == 12
    assert value(families, "bulk_load_done_records", entity_type="user") == 79
    assert value(families, "bulk_load_expected_records", entity_type="user") == 80
    assert value(families, "entities_loaded", entity_type="company") == 1
    assert value(families, "entities_loaded", entity_type="flags") == 1
    assert value(families, "flags") == 6


def test_metrics_processes() -> None:
    status = filled_block()
    status.slot(5).state = SlotState.EXITED
    families = scrape(status)

    assert value(families, "process_up", role="ingest") == 1
    assert value(families, "process_up", role="company-1") == 0
    assert value(families, "process_restarts", "process_restarts_total", role="user-0") == 2
    ages = families["schematic_replicator_process_heartbeat_age_seconds"].samples
    assert {s.labels["role"] for s in ages} == set(ROLES) - {"health"}
    assert all(0 <= s.value < 60 for s in ages)
    assert value(families, "healthy") == 1  # An exited child is being restarted.


def test_metrics_running_load_and_missing_values() -> None:
    status = StatusBlock.create()
    status.globals.load_state = LoadState.RUNNING
    status.globals.load_started_at = NOW - 7
    status.globals.cursor = b"not-an-id"
    families = scrape(status)

    assert value(families, "bulk_load_duration_seconds") == 7
    assert value(families, "ready") == 0
    assert "schematic_replicator_replay_cursor_lag_seconds" not in families
    assert "schematic_replicator_datastream_last_message_age_seconds" not in families


def test_metrics_series_stay_fixed() -> None:
    status = filled_block()
    before = series(scrape(status))

    status.globals.cursor = b"1700000009999-1"
    status.globals.stream_state = StreamState.DISCONNECTED
    status.globals.stream_reason = b"connection reset"
    status.slot(3).last_error = b"Redis write failed: timeout"
    status.slot(3).breaker_state = CircuitState.HALF_OPEN
    after = series(scrape(status))

    assert before == after
    assert all(name.startswith("schematic_replicator_") for name, _ in after)
    assert not any("cursor" in dict(labels) for _, labels in after)


def test_metrics_route_content_type() -> None:
    client = create_app(filled_block().snapshot).test_client()

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.content_type == CONTENT_TYPE
    families = parse(response.get_data(as_text=True))
    assert value(families, "ready") == 1
    assert value(families, "datastream_last_message_age_seconds") > time.time() - NOW


def test_metrics_helpers() -> None:
    assert entity_type_of("company-12") == "company"
    assert entity_type_of("user-0") == "user"
    assert entity_type_of("flags") == "flags"
    assert entity_type_of("loader") is None
    assert entity_type_of("company-x") is None
    assert replay_lag_seconds("2000-0", "500-9") == 1.5
    assert replay_lag_seconds("500-0", "2000-0") == 0
    assert replay_lag_seconds("2000-0", "") is None
    assert cumulative_buckets([1, 0, 2], (1.0, 2.5)) == [("1.0", 1), ("2.5", 1), ("+Inf", 3)]
