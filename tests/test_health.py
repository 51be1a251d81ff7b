"""The health app, fed from a real status block."""

from __future__ import annotations

import time

from replicator.health import create_app
from replicator.lease import FOREVER
from replicator.status import LoadState, SlotState, StatusBlock, StreamState


def ready_block() -> StatusBlock:
    status = StatusBlock.create()
    status.set_cache_version("abcd1234")
    state = status.globals
    state.lease_valid_until = FOREVER
    state.redis_ok = 1
    state.stream_state = StreamState.READY
    state.flags_loaded = 1
    state.companies_loaded = 1
    state.users_loaded = 1
    state.load_state = LoadState.COMPLETE
    for index, role in enumerate(("supervisor", "ingest", "company-0")):
        slot = status.claim(index, role)
        slot.state = SlotState.RUNNING
    return status


def test_ready_when_connected_and_loaded() -> None:
    client = create_app(ready_block().snapshot).test_client()

    response = client.get("/ready")

    assert response.status_code == 200
    body = response.get_json()
    assert body["ready"] is True
    assert body["connected"] is True
    assert body["cache_version"] == "abcd1234"
    assert body["components"]["datastream"] == "ready"
    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")


def test_not_ready_until_every_load_completes() -> None:
    for field in ("flags_loaded", "companies_loaded", "users_loaded", "redis_ok"):
        status = ready_block()
        setattr(status.globals, field, 0)
        response = create_app(status.snapshot).test_client().get("/ready")
        assert response.status_code == 503, field
        assert response.get_json()["ready"] is False, field
        assert response.get_json()["cache_version"] == "abcd1234", field


def test_not_ready_while_disconnected_but_healthy() -> None:
    status = ready_block()
    status.globals.stream_state = StreamState.DISCONNECTED
    client = create_app(status.snapshot).test_client()

    ready = client.get("/ready")
    health = client.get("/health")

    assert ready.status_code == 503
    assert ready.get_json()["connected"] is False
    assert ready.get_json()["components"]["datastream"] == "disconnected"
    assert health.status_code == 200


def test_loading_component_shows_progress() -> None:
    status = ready_block()
    status.globals.companies_loaded = 0
    status.globals.companies_done = 40
    status.globals.companies_total = 100

    body = create_app(status.snapshot).test_client().get("/ready").get_json()

    assert body["components"]["companies"] == "loading 40/100"
    assert body["components"]["datastream"] == "connected_loading"


def test_health_fails_on_stale_heartbeat_only() -> None:
    status = ready_block()
    status.slot(1).heartbeat = time.monotonic() - 60
    stale = create_app(status.snapshot).test_client().get("/health")

    status = ready_block()
    status.slot(2).state = SlotState.EXITED
    client = create_app(status.snapshot).test_client()
    exited = client.get("/health")
    exited_ready = client.get("/ready")

    assert stale.status_code == 503
    assert "ingest silent" in stale.get_json()["components"]["processes"]
    # A child being restarted is the supervisor's business, not a reason to kill the
    # service, but nothing is ready while it is down.
    assert exited.status_code == 200
    assert exited.get_json()["components"]["processes"] == "restarting: company-0"
    assert exited_ready.status_code == 503


def test_status_endpoint_carries_process_details() -> None:
    body = create_app(ready_block().snapshot).test_client().get("/status").get_json()

    roles = [process["role"] for process in body["details"]["processes"]]
    assert roles == ["supervisor", "ingest", "company-0"]


def test_standby_is_not_ready_and_says_who_writes() -> None:
    status = ready_block()
    status.globals.lease_valid_until = 0
    status.globals.standby = 1
    status.globals.lease_holder = b"host-a-42-abc"

    response = create_app(status.snapshot).test_client().get("/ready")

    body = response.get_json()
    assert response.status_code == 503
    assert body["components"]["writer_lease"] == "standby: held by host-a-42-abc"
    assert "another replicator" in body["reason"]


def test_not_ready_until_reload_after_data_loss() -> None:
    status = ready_block()
    state = status.globals
    state.complete_load_started_at = 90.0
    state.flags_snapshot_at = 100.0
    state.data_lost_at = 200.0
    client = create_app(status.snapshot).test_client()

    lost = client.get("/ready")
    state.complete_load_started_at = 210.0
    flags_missing = client.get("/ready")
    state.flags_snapshot_at = 240.0
    recovered = client.get("/ready")

    assert lost.status_code == 503
    assert lost.get_json()["components"]["datastream"].startswith("reloading")
    assert flags_missing.status_code == 503
    assert recovered.status_code == 200


def test_load_during_loss_does_not_repair() -> None:
    status = ready_block()
    state = status.globals
    state.complete_load_started_at = 190.0  # That load finished after the loss.
    state.flags_snapshot_at = 240.0
    state.data_lost_at = 200.0
    client = create_app(status.snapshot).test_client()

    overlapping = client.get("/ready")
    state.complete_load_started_at = 245.0
    repaired = client.get("/ready")

    assert overlapping.status_code == 503
    assert repaired.status_code == 200


def test_repair_outlasts_later_loads_and_resumes() -> None:
    status = ready_block()
    state = status.globals
    state.data_lost_at = 200.0
    state.complete_load_started_at = 210.0
    state.flags_snapshot_at = 240.0
    client = create_app(status.snapshot).test_client()

    states = {}
    for load_state in (LoadState.RUNNING, LoadState.FAILED, LoadState.SKIPPED):
        state.load_state = load_state
        states[load_state] = client.get("/ready").status_code

    assert states == {LoadState.RUNNING: 200, LoadState.FAILED: 200, LoadState.SKIPPED: 200}
