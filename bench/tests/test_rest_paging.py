from __future__ import annotations

import math

from bench.rest_paging import PagingResult, report


def test_paging_result_rates() -> None:
    result = PagingResult("company", 20_000, 2.0, 1.5, 0.1)

    assert result.per_s == 10_000.0
    assert math.isclose(result.cpu_us_per_entity, 75.0)
    assert math.isclose(result.system_us_per_entity, 5.0)


def test_paging_result_empty_is_nan() -> None:
    result = PagingResult("user", 0, 0.0, 0.0, 0.0)

    assert math.isnan(result.per_s)
    assert math.isnan(result.cpu_us_per_entity)


def test_report_adds_both_kinds() -> None:
    lines = report(
        [
            PagingResult("company", 1000, 1.0, 0.08, 0.004),
            PagingResult("user", 1000, 0.5, 0.03, 0.001),
        ]
    ).splitlines()

    assert len(lines) == 4
    assert lines[1].split()[:2] == ["company", "1000"]
    assert lines[3].split() == ["both", "2000", "1.50", "1,333", "55.0", "2.5"]
