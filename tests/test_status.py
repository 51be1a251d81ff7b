from __future__ import annotations

from replicator.children import build_topology
from replicator.config import Config
from replicator.status import MAX_SLOTS, StatusBlock


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
