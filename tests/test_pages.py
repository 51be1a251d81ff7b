from __future__ import annotations

from replicator.pages import MAX_LIMIT, PagePlan


def drain(plan: PagePlan, returned: int) -> list[tuple[int, int]]:
    requests = []
    while not plan.finished:
        request = plan.next_request()
        assert request is not None
        requests.append((request.offset, request.limit))
        plan.page_done(request, returned if request.index < plan.planned - 1 else 0)
    return requests


def test_plan_covers_count_in_pages() -> None:
    plan = PagePlan("companies", 100, 250, lambda: 0)

    requests = drain(plan, 100)

    assert requests == [(0, 100), (100, 100), (200, 100)]


def test_plan_overlaps_by_deletes_seen_since_start() -> None:
    deletes = [3]
    plan = PagePlan("companies", 100, 300, lambda: deletes[0])

    first = plan.next_request()
    deletes[0] = 5  # two deletes upstream after the first page was requested
    second = plan.next_request()

    assert first is not None and second is not None
    assert (first.offset, first.limit) == (0, 100)
    assert (second.offset, second.limit) == (98, 102)


def test_plan_extends_while_last_page_is_full() -> None:
    plan = PagePlan("users", 10, 20, lambda: 0)
    seen = []
    while not plan.finished:
        request = plan.next_request()
        assert request is not None
        seen.append(request.offset)
        plan.page_done(request, 10 if request.offset < 30 else 4)

    assert seen == [0, 10, 20, 30]


def test_plan_marks_overlap_beyond_max_limit() -> None:
    deletes = [0]
    plan = PagePlan("users", 100, 5000, lambda: deletes[0])
    for _ in range(20):
        plan.next_request()

    deletes[0] = MAX_LIMIT
    request = plan.next_request()

    assert request is not None
    assert request.limit == MAX_LIMIT
    assert plan.overlap_exceeded


def test_plan_empty_source() -> None:
    plan = PagePlan("users", 100, 0, lambda: 0)

    assert plan.finished
    assert plan.next_request() is None
