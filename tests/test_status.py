from __future__ import annotations

import queue

from replicator.children import build_topology
from replicator.config import Config
from replicator.controls import request_reload
from replicator.status import MAX_SLOTS, LoadState, StatusBlock


def test_largest_topology_fits_the_slots() -> None:
    status = StatusBlock.create()

    topology = build_topology(Config(api_key="k", num_workers=64), "v1", status)

    slots = [child.slot_index for child in topology.children]
    assert len(topology.children) == 2 * 64 + 3
    assert max(slots) < MAX_SLOTS
    assert len(set(slots)) == len(slots)


def test_longest_cache_version_is_kept_whole() -> None:
    status = StatusBlock.create()
    version = "v" * 64

    status.set_cache_version(version)

    assert status.snapshot()["cache_version"] == version


def test_claim_keeps_restarts_and_resets_counters() -> None:
    status = StatusBlock.create()
    slot = status.claim(3, "company-0")
    slot.restarts = 2
    slot.applied = 10
    slot.enqueued_stream = 5

    again = status.claim(3, "company-0")

    assert again.restarts == 2
    assert again.applied == 0
    assert again.enqueued_stream == 0


def test_reload_request_shows_pending_until_loaded() -> None:
    status = StatusBlock.create()
    status.globals.load_state = LoadState.COMPLETE
    control: queue.Queue[tuple[str, str]] = queue.Queue()

    request_reload(control, status, "the datastream sent reload")

    load = status.snapshot()["load"]
    assert control.get_nowait() == ("reload", "the datastream sent reload")
    assert load["state"] == "pending"
    assert load["reason"] == "the datastream sent reload"
