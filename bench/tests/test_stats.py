from __future__ import annotations

import math

from bench.stats import percentile, slope


def test_percentile_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_empty_is_nan() -> None:
    assert math.isnan(percentile([], 50))


def test_slope_of_line() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == 2.0
    assert slope([(0.0, 4.0), (2.0, 4.0)]) == 0.0


def test_slope_needs_two_x_values() -> None:
    assert math.isnan(slope([(1.0, 2.0)]))
    assert math.isnan(slope([(1.0, 2.0), (1.0, 3.0)]))
