from __future__ import annotations

import pytest

from replicator.pages import OverlapFilter, PagePlan, overlap_for


def drain(plan: PagePlan, sizes: dict[int, int]) -> list[tuple[int, int]]:
    requests = []
    while not plan.finished:
        request = plan.next_request()
        assert request is not None
        requests.append((request.offset, request.limit))
        plan.page_done(request, sizes.get(request.offset, 0))
    return requests


def source(total: int, page_size: int) -> dict[int, int]:
    """Page sizes a source of ``total`` entities returns, for every possible offset."""
    return {offset: max(0, min(page_size, total - offset)) for offset in range(total + 1)}


@pytest.mark.parametrize(("page_size", "overlap"), [(1, 0), (2, 1), (19, 1), (40, 2), (100, 5)])
def test_overlap_is_small_fraction(page_size: int, overlap: int) -> None:
    assert overlap_for(page_size) == overlap


def test_plan_covers_count_in_pages() -> None:
    plan = PagePlan("companies", 100, 250)

    requests = drain(plan, {0: 100, 95: 100, 190: 60})

    assert requests == [(0, 100), (95, 100), (190, 100)]


def test_pages_overlap_by_five_percent() -> None:
    plan = PagePlan("companies", 100, 1000)

    requests = drain(plan, source(1000, 100))

    offsets = [offset for offset, _ in requests]
    assert offsets[:4] == [0, 95, 190, 285]
    assert {limit for _, limit in requests} == {100}


@pytest.mark.parametrize(
    ("total", "planned"),
    [(1, 1), (99, 1), (100, 1), (101, 2), (194, 2), (195, 2), (196, 3), (290, 3), (291, 4)],
)
def test_planned_pages_reach_the_count(total: int, planned: int) -> None:
    plan = PagePlan("companies", 100, total)

    assert plan.planned == planned
    last_end = (plan.planned - 1) * plan.step + plan.page_size
    assert last_end >= total


@pytest.mark.parametrize("total", [0, 1, 94, 95, 96, 100, 189, 190, 191, 195, 196, 1000])
def test_pages_return_every_entity(total: int) -> None:
    plan = PagePlan("companies", 100, total)

    requests = drain(plan, source(total, 100))

    covered = set()
    for offset, limit in requests:
        covered.update(range(offset, min(offset + limit, total)))
    assert covered == set(range(total))
    assert sum(1 for offset, _ in requests if offset >= total) <= 1


def test_plan_extends_while_last_page_is_full() -> None:
    plan = PagePlan("users", 10, 20)

    requests = drain(plan, {0: 10, 9: 10, 18: 10, 27: 10, 36: 4})

    assert [offset for offset, _ in requests] == [0, 9, 18, 27, 36]


def test_plan_stops_after_short_last_page() -> None:
    plan = PagePlan("users", 10, 25)

    requests = drain(plan, {0: 10, 9: 10, 18: 7})

    assert len(requests) == 3


def test_page_indices_follow_offsets() -> None:
    plan = PagePlan("users", 20, 60)
    indices = []
    while (request := plan.next_request()) is not None:
        indices.append((request.index, request.offset))

    assert indices == [(0, 0), (1, 19), (2, 38), (3, 57)]


def test_page_size_one_steps_by_one() -> None:
    plan = PagePlan("users", 1, 3)

    requests = drain(plan, {0: 1, 1: 1, 2: 1})

    assert requests == [(0, 1), (1, 1), (2, 1), (3, 1)]


def test_plan_empty_source() -> None:
    plan = PagePlan("users", 100, 0)

    assert plan.finished
    assert plan.next_request() is None


def test_overlap_counts_shared_entity_once() -> None:
    overlap = OverlapFilter()

    first = overlap.new_items(0, ["a", "b", "c"])
    second = overlap.new_items(1, ["c", "d"])

    assert first == [True, True, True]
    assert second == [False, True]


def test_filter_accepts_pages_out_of_order() -> None:
    overlap = OverlapFilter()

    later = overlap.new_items(2, ["e", "f"])
    earlier = overlap.new_items(0, ["a", "b"])
    middle = overlap.new_items(1, ["b", "c", "e"])

    assert sum(later) + sum(earlier) + sum(middle) == 5
    assert middle == [False, True, False]


def test_items_without_id_always_count() -> None:
    overlap = OverlapFilter()

    overlap.new_items(0, ["a", None])
    second = overlap.new_items(1, [None, "a"])

    assert second == [True, False]


def test_overlap_filter_forgets_enclosed_pages() -> None:
    overlap = OverlapFilter()

    for index in range(50):
        overlap.new_items(index, [f"id{index}", f"id{index + 1}"])

    assert overlap.pages_held == 1


def test_filter_forgets_pages_out_of_order() -> None:
    overlap = OverlapFilter()

    for index in (3, 1, 0, 2, 5, 4):
        overlap.new_items(index, [f"id{index}"])

    assert overlap.pages_held == 1


def test_failed_page_counts_nothing() -> None:
    overlap = OverlapFilter()

    overlap.new_items(0, ["a"])
    assert overlap.new_items(1, []) == []
    assert overlap.new_items(2, ["a"]) == [True]
