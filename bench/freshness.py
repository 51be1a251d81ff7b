"""Benchmark 2: freshness, the delay from a change's send to its record in Redis.

The simulator stamps each burst message with ``time.time_ns()`` when its connection
writes it to the socket (``Service.send_times``). A separate listener process stamps
each keyspace ``set`` event of a company record key when it reads it. Each event is
matched to the latest send of the same company id not later than the event; the
delay is the difference. Each burst uses as many distinct companies as it has
messages, so every company is sent once per burst and the match is unambiguous.

Before the bursts, the benchmark SETs calibration keys itself and times their events
the same way: that delay is the listener's own share of every measured delay.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.keyspace_listener import NOTIFY_ARGS, KeyspaceListener
from bench.stack import Stack, load_average, running_stack
from bench.stats import percentile
from bench.throughput import BurstRun, describe, run_burst
from replicator import keys

logger = logging.getLogger(__name__)

#: Batch settings that trade Redis round trips for a shorter wait before each write.
TUNED_ENV = {"BATCH_SIZE": "100", "BATCH_TIMEOUT": "2ms"}
CONFIGS: tuple[tuple[str, dict[str, str]], ...] = (("default", {}), ("tuned", TUNED_ENV))

_CALIBRATION_ID = "comp_calibration-"
_CALIBRATION_PAUSE_S = 0.005
_LATE_EVENT_NS = 1_000_000_000


@dataclass
class FreshnessOptions:
    """Rates and window of the freshness bursts."""

    rates: tuple[int, ...] = (1000, 5000)
    window_s: float = 10.0
    calibration_probes: int = 200


def _delay_summary(delays_ms: list[float]) -> dict[str, Any]:
    return {
        "events": len(delays_ms),
        "p50_ms": percentile(delays_ms, 50),
        "p99_ms": percentile(delays_ms, 99),
        "max_ms": max(delays_ms, default=float("nan")),
    }


def calibrate(client: redis.Redis, version: str, probes: int) -> dict[str, int]:
    """SET ``probes`` calibration record keys, one every 5 ms; return key -> send ns."""
    sent: dict[str, int] = {}
    for number in range(probes):
        key = keys.company_key(version, f"{_CALIBRATION_ID}{number}")
        sent[key] = time.time_ns()
        client.set(key, b"{}")
        time.sleep(_CALIBRATION_PAUSE_S)
    client.delete(*sent)
    return sent


def calibration_delays(sent: dict[str, int], events: list[tuple[str, int]]) -> list[float]:
    """Delays in ms from each calibration SET to its first event."""
    seen: dict[str, int] = {}
    for key, at in events:
        if key in sent and key not in seen:
            seen[key] = at
    return [(seen[key] - sent[key]) / 1e6 for key in seen]


def burst_delays(
    run: BurstRun, sends: dict[str, int], events: list[tuple[str, int]], until_ns: int
) -> tuple[list[float], int]:
    """Match each record event from the burst's start to ``until_ns`` to the latest
    earlier send of the same company.

    Return the delays in ms, and the number of events read before their company's send
    stamp, which have no delay to give.
    """
    by_company: dict[str, list[int]] = {}
    for stream_id, company_id in zip(run.burst.stream_ids, run.burst.company_ids, strict=True):
        sent = sends.get(stream_id)
        if sent is not None:
            by_company.setdefault(company_id, []).append(sent)
    for send_list in by_company.values():
        send_list.sort()

    first_ns = run.burst.started_ns
    delays = []
    early = 0
    for key, at in events:
        if not first_ns <= at < until_ns:
            continue
        times = by_company.get(key.rsplit(":", 1)[1])
        if not times:
            continue
        position = bisect.bisect_right(times, at)
        if position:
            delays.append((at - times[position - 1]) / 1e6)
        else:
            early += 1  # The simulator stamped the send after Redis already had it.
    return delays, early


def _bursts(stack: Stack, options: FreshnessOptions) -> list[tuple[int, BurstRun, dict[str, int]]]:
    runs = []
    for rate in options.rates:
        count = int(rate * options.window_s)
        run = run_burst(stack, count, rate, pool_size=count)
        runs.append((rate, run, stack.simulator.send_times(run.burst.stream_ids)))
        logger.info("Freshness burst at %d/s applied at %.0f/s.", rate, run.applied_rate)
    return runs


def run_config(
    name: str, env: dict[str, str], options: FreshnessOptions, work_dir: Path
) -> dict[str, Any]:
    """Measure every rate of ``options`` with one replicator started with ``env``."""
    log_path = work_dir / f"freshness-{name}-replicator.log"
    load_before = load_average()
    with running_stack(env, log_path, redis_args=NOTIFY_ARGS) as stack:
        version = str(stack.replicator.status()["cache_version"])
        listener = KeyspaceListener(stack.redis.port, keys.company_key(version, "comp_*"))
        listener.start()
        try:
            calibration = calibrate(stack.client, version, options.calibration_probes)
            runs = _bursts(stack, options)
        finally:
            events = listener.stop()
        settings = {key: value for key, value in stack.env.items() if key in env}
    rates = []
    for number, (rate, run, sends) in enumerate(runs):
        # The next burst reuses the same company ids: its events belong to it.
        if number + 1 < len(runs):
            until_ns = runs[number + 1][1].burst.started_ns
        else:
            until_ns = int(run.done_at * 1e9) + _LATE_EVENT_NS
        delays, early = burst_delays(run, sends, events, until_ns)
        summary = _delay_summary(delays)
        summary.update(rate=rate, sent=len(sends), early=early, burst=describe(run))
        rates.append(summary)
    return {
        "name": name,
        "env": settings,
        "load_before": load_before,
        "calibration": _delay_summary(calibration_delays(calibration, events)),
        "rates": rates,
    }


def run(options: FreshnessOptions, work_dir: Path) -> dict[str, Any]:
    """Run benchmark 2 with the default batch settings and with TUNED_ENV."""
    return {
        "configs": [run_config(name, env, options, work_dir) for name, env in CONFIGS],
        "load_after": load_average(),
    }
