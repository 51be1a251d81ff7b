from __future__ import annotations

from bench.proc_sampler import Watch
from bench.sim_process import Burst
from bench.throughput import BurstRun, evaluate_step, ladder

START_S = 1_000.0


def _burst_run(rate: float, count: int, applied_rate: float) -> BurstRun:
    """A burst of ``count`` messages offered at ``rate`` and applied at ``applied_rate``."""
    stream_ids = [f"{1_000_000 + n}-0" for n in range(count)]
    burst = Burst(stream_ids, ["comp"] * count, int(START_S * 1e9), int(START_S * 1e9))
    samples = []
    elapsed = 0.0
    applied = 0
    while applied < count:
        elapsed += 0.1
        applied = min(count, int(applied_rate * elapsed))
        cursor = stream_ids[applied - 1] if applied else ""
        samples.append((START_S + elapsed, cursor))
    return BurstRun(burst, samples, samples[-1][0], Watch({}), 0.5)


def test_evaluate_step_sustained() -> None:
    step = evaluate_step(_burst_run(1000.0, 10_000, 1000.0), 1000.0)
    assert step["sustained"] is True
    assert step["applied_rate"] > 950.0
    assert abs(step["backlog_growth_per_s"]) < 50.0
    assert step["key_writes_per_s"] == 4 * step["applied_rate"]


def test_evaluate_step_falls_behind() -> None:
    step = evaluate_step(_burst_run(1000.0, 10_000, 800.0), 1000.0)
    assert step["sustained"] is False
    assert step["applied_rate"] < 950.0
    assert step["backlog_growth_per_s"] > 150.0
    assert step["lag_s"] > 2.0


def test_ladder_rounds_and_sorts() -> None:
    assert ladder(6_000.0, (1.0, 0.5, 0.85)) == [3_000.0, 5_000.0, 6_000.0]
    assert ladder(100.0, (0.5,)) == [250.0]
