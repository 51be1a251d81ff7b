from __future__ import annotations

from replicator.pages import PagePlan


def drain(plan: PagePlan, sizes: dict[int, int]) -> list[tuple[int, int]]:
    requests = []
    while not plan.finished:
        request = plan.next_request()
        assert request is not None
        requests.append((request.offset, request.limit))
        plan.page_done(request, sizes.get(request.offset, 0))
    return requests


def test_plan_covers_count_in_pages() -> None:
    plan = PagePlan("companies", 100, 250)

    requests = drain(plan, {0: 100, 100: 100, 200: 50})

    assert requests == [(0, 100), (100, 100), (200, 100)]


def test_plan_extends_while_last_page_is_full() -> None:
    plan = PagePlan("users", 10, 20)

    requests = drain(plan, {0: 10, 10: 10, 20: 10, 30: 4})

    assert [offset for offset, _ in requests] == [0, 10, 20, 30]


def test_plan_stops_after_short_last_page() -> None:
    plan = PagePlan("users", 10, 25)

    requests = drain(plan, {0: 10, 10: 10, 20: 5})

    assert len(requests) == 3


def test_plan_empty_source() -> None:
    plan = PagePlan("users", 100, 0)

    assert plan.finished
    assert plan.next_request() is None
