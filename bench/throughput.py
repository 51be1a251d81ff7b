"""Benchmark 1 (stream throughput) and benchmark 4 (health under load).

The simulator publishes bursts of company ``full`` changes (three keys, about 1.5 KB)
and the replicator applies them. "Applied" comes from the replicator's ``/status``:
``details.stream.cursor`` is the newest stream id whose change, and every earlier one,
is in Redis. Polling it during a burst gives the applied position over time.

A rate R counts as sustained when a burst at R held for the step window:

1. is applied at no less than 95 % of R, from the first scheduled send to the moment
   the cursor reaches the burst's last stream id, and
2. has a backlog (messages scheduled by then minus messages applied) that grows by
   less than 5 % of R per second over the second half of the window, by least-squares
   slope. This shows the replicator keeps pace at the end and not only at the start.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import comparisons
from bench.health_probe import ProbeProcess, summarise
from bench.proc_sampler import Watch
from bench.sim_process import Burst
from bench.stack import Stack, load_average, running_stack, stream_key
from bench.stats import slope

logger = logging.getLogger(__name__)

#: Settings of the replicator for this benchmark. BATCH_SIZE and BATCH_TIMEOUT let a
#: worker write hundreds of changes per pipeline. The larger queue keeps the ingest
#: from waiting on a full shard while a worker writes.
TUNED_ENV = {
    "BATCH_SIZE": "200",
    "BATCH_TIMEOUT": "20ms",
    "NUM_WORKERS": "2",
    "COMPANY_CHANNEL_SIZE": "2000",
}

APPLIED_SHARE = 0.95
BACKLOG_GROWTH_SHARE = 0.05
#: How often the cursor is read from /status while a burst is published, and after.
#: Each read is a request that the health server's worker serves.
_SAMPLE_INTERVAL_S = 0.1
_DRAIN_POLL_S = 0.05
_DRAIN_TIMEOUT_S = 180.0


@dataclass
class ThroughputOptions:
    """Sizes and durations of one throughput run."""

    step_s: float = 10.0
    full_speed_count: int = 100_000
    warmup_count: int = 5_000
    fractions: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0, 1.15, 1.3)
    max_steps: int = 9
    ceiling_requests: int = 200_000
    naive_count: int = 30_000
    health_interval_s: float = 0.02


@dataclass
class BurstRun:
    """A burst, the cursor samples taken while it was applied, and the CPU it used."""

    burst: Burst
    samples: list[tuple[float, str]]
    done_at: float
    watch: Watch
    load: float

    @property
    def started(self) -> float:
        return self.burst.started_ns / 1e9

    @property
    def applied_rate(self) -> float:
        return len(self.burst.stream_ids) / (self.done_at - self.started)


def run_burst(stack: Stack, count: int, rate: float, pool_size: int = 1000) -> BurstRun:
    """Publish a burst and poll the cursor until the replicator has applied all of it."""
    roots = {
        "replicator": stack.supervisor_pid,
        "simulator": stack.simulator.pid,
        "redis-server": _redis_pid(stack),
    }
    samples: list[tuple[float, str]] = []
    with Watch(roots, stack.roles()) as watch:
        stack.simulator.send_burst(count, rate, pool_size)
        while not stack.simulator.burst_done(_SAMPLE_INTERVAL_S):
            samples.append((time.time(), stack.cursor()))
        burst = stack.simulator.wait_burst()
        last = stream_key(burst.stream_ids[-1])
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while stream_key(samples[-1][1] if samples else "") < last:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"The replicator did not apply a burst of {count} within "
                    f"{_DRAIN_TIMEOUT_S:.0f} s of its end; see its log."
                )
            time.sleep(_DRAIN_POLL_S)
            samples.append((time.time(), stack.cursor()))
    return BurstRun(burst, samples, samples[-1][0], watch, load_average())


def _redis_pid(stack: Stack) -> int:
    assert stack.redis.process is not None
    return stack.redis.process.pid


def describe(run: BurstRun) -> dict[str, Any]:
    """Return the numbers every burst reports: rate, window, CPU per process, load."""
    count = len(run.burst.stream_ids)
    published_s = (run.burst.finished_ns - run.burst.started_ns) / 1e9
    return {
        "count": count,
        "published_s": published_s,
        "applied_s": run.done_at - run.started,
        "applied_rate": run.applied_rate,
        "key_writes_per_s": 4 * run.applied_rate,
        "cpu_percent": run.watch.cpu_percent(),
        "machine_busy_percent": 100 * run.watch.machine_busy,
        "load": run.load,
    }


def evaluate_step(run: BurstRun, rate: float) -> dict[str, Any]:
    """Apply the two conditions of a sustained rate to one stepped burst."""
    keys = [stream_key(stream_id) for stream_id in run.burst.stream_ids]
    count = len(keys)
    window_s = count / rate
    backlog = []
    for at, cursor in run.samples:
        elapsed = at - run.started
        if window_s / 2 <= elapsed <= window_s:
            scheduled = min(count, rate * elapsed)
            backlog.append((elapsed, scheduled - bisect.bisect_right(keys, stream_key(cursor))))
    growth = slope(backlog)
    result = describe(run)
    result.update(
        offered=rate,
        window_s=window_s,
        lag_s=run.done_at - (run.started + window_s),
        backlog_growth_per_s=growth,
        max_backlog=max((value for _, value in backlog), default=float("nan")),
    )
    result["sustained"] = bool(
        result["applied_rate"] >= APPLIED_SHARE * rate
        and not math.isnan(growth)  # too few samples fell in the second half
        and growth < BACKLOG_GROWTH_SHARE * rate
    )
    return result


def ladder(full_speed_rate: float, fractions: tuple[float, ...]) -> list[float]:
    """Offered rates to try, ascending: fractions of the full-speed rate, rounded."""
    return sorted({_round_rate(full_speed_rate * share) for share in fractions})


def _round_rate(value: float) -> float:
    return max(250.0, round(value / 250) * 250)


def _step(stack: Stack, rate: float, options: ThroughputOptions) -> dict[str, Any]:
    step = evaluate_step(run_burst(stack, int(rate * options.step_s), rate), rate)
    logger.info(
        "Offered %.0f/s: applied %.0f/s, backlog growth %.0f/s, sustained %s.",
        rate,
        step["applied_rate"],
        step["backlog_growth_per_s"],
        step["sustained"],
    )
    return step


def step_rates(stack: Stack, options: ThroughputOptions, full_rate: float) -> list[dict[str, Any]]:
    """Step up until a rate is not sustained, then try once between the last sustained
    rate and that one.

    The steps are the ladder, then 15 % more each time while every rate is sustained,
    up to ``max_steps``. With no rate sustained, half the lowest rate is tried.
    """
    steps: list[dict[str, Any]] = []
    planned = ladder(full_rate, options.fractions)
    while len(steps) < options.max_steps:
        if len(steps) < len(planned):
            rate = planned[len(steps)]
        else:
            rate = _round_rate(steps[-1]["offered"] * 1.15)
        steps.append(_step(stack, rate, options))
        if not steps[-1]["sustained"]:
            break
    passed = [step["offered"] for step in steps if step["sustained"]]
    failed = steps[-1]["offered"] if not steps[-1]["sustained"] else None
    if passed and failed is not None:
        middle = _round_rate((max(passed) + failed) / 2)
        if max(passed) < middle < failed:
            steps.append(_step(stack, middle, options))
    elif not passed:
        steps.append(_step(stack, _round_rate(steps[0]["offered"] / 2), options))
    return sorted(steps, key=lambda step: step["offered"])


def health_under_load(stack: Stack, rate: float, options: ThroughputOptions) -> dict[str, Any]:
    """Run one more burst at ``rate`` while a separate process probes the health server."""
    probe = ProbeProcess(stack.replicator.base_url, options.step_s, options.health_interval_s)
    probe.start()
    run = run_burst(stack, int(rate * options.step_s), rate)
    result = evaluate_step(run, rate)
    return {"rate": rate, "burst": result, "paths": summarise(probe.result())}


def run(options: ThroughputOptions, work_dir: Path) -> dict[str, Any]:
    """Run benchmark 1 with its ceiling and naive baseline, and benchmark 4."""
    result: dict[str, Any] = {
        "env": TUNED_ENV,
        "step_s": options.step_s,
        "fractions": list(options.fractions),
        "load_before": load_average(),
    }
    log_path = work_dir / "throughput-replicator.log"
    with running_stack(TUNED_ENV, log_path) as stack:
        result["redis_args"] = stack.redis_args
        run_burst(stack, options.warmup_count, 0)
        full_run = run_burst(stack, options.full_speed_count, 0)
        full = describe(full_run)
        result["full_speed"] = full
        logger.info("Full speed: %.0f changes/s applied.", full["applied_rate"])
        steps = step_rates(stack, options, full["applied_rate"])
        result["steps"] = steps
        sustained = [step["offered"] for step in steps if step["sustained"]]
        result["highest_sustained"] = max(sustained, default=None)
        if sustained:
            result["health"] = health_under_load(stack, max(sustained), options)
        result["record_bytes"] = comparisons.record_size(stack, full_run.burst.company_ids[0])
        result["ceiling"] = comparisons.redis_benchmark(
            stack.redis.port, result["record_bytes"], options.ceiling_requests
        )
    result["naive"] = comparisons.naive_baseline(options.naive_count, work_dir)
    result["load_after"] = load_average()
    return result
