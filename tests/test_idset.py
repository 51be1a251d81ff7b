"""The compact id set: membership, duplicates and growth."""

from __future__ import annotations

from workers.idset import IdSet


def test_members_found_others_not() -> None:
    ids = IdSet()
    for number in range(5000):
        ids.add(f"comp_{number}")

    assert len(ids) == 5000
    assert all(f"comp_{number}" in ids for number in range(5000))
    assert not any(f"user_{number}" in ids for number in range(5000))


def test_adding_twice_counts_once() -> None:
    ids = IdSet()
    ids.add("comp_1")
    ids.add("comp_1")

    assert len(ids) == 1
    assert "comp_1" in ids


def test_empty_set_holds_nothing() -> None:
    ids = IdSet()

    assert len(ids) == 0
    assert "" not in ids
    assert "comp_1" not in ids


def test_growth_keeps_every_member() -> None:
    ids = IdSet()
    added = [f"id-{number}-{number * 7919}" for number in range(100_000)]
    for entity_id in added:
        ids.add(entity_id)

    assert len(ids) == len(added)
    assert all(entity_id in ids for entity_id in added)
    assert "id-100000-0" not in ids
