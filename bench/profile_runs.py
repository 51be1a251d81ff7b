"""Profiled repeats of the benchmarks whose target was missed.

Each phase starts a fresh stack, runs the load that missed its target and records
py-spy profiles of the busy processes for PROFILE_S seconds. Profiling slows the
processes it samples, so these runs are kept apart from the measured ones and give
no numbers for the tables. The bulk load is the exception: its profile is recorded
during the measured load of the largest size (see bulk_load.py), because a second
load of a million companies would take too long.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bench import freshness, profiling, throughput
from bench.health_probe import ProbeProcess
from bench.stack import Stack, running_stack

logger = logging.getLogger(__name__)

PROFILE_S = 10.0
#: Seconds a burst runs before the recording starts, so the profile records steady load.
_LEAD_S = 2.0
_DRAIN_TIMEOUT_S = 300.0
_IDLE_ROLES = ("loader", "flags", "supervisor")


def busy_pids(stack: Stack) -> dict[str, int]:
    """Processes of a stream benchmark worth profiling: all but the idle ones."""
    pids = {
        role: pid
        for pid, role in stack.roles().items()
        if not role.startswith(("user-", *_IDLE_ROLES)) and role != "health"
    }
    pids["simulator"] = stack.simulator.pid
    return pids


def profile_during_burst(
    stack: Stack,
    expected_rate: float,
    publish_rate: float,
    out_dir: Path,
    probe: bool = False,
) -> dict[str, Any]:
    """Publish a burst that outlasts the recording, profile the busy processes, drain.

    ``expected_rate`` is the applied rate measured before, which sizes the burst;
    ``publish_rate`` is the simulator's rate, 0 for full speed.
    """
    seconds = _LEAD_S + PROFILE_S + 2.0
    prober = None
    if probe:
        prober = ProbeProcess(stack.replicator.base_url, seconds).start()
    pids = busy_pids(stack)
    stack.simulator.send_burst(int(expected_rate * seconds), publish_rate)
    time.sleep(_LEAD_S)
    profiles = profiling.profile(pids, PROFILE_S, out_dir)
    burst = stack.simulator.wait_burst()
    stack.wait_applied(burst.stream_ids[-1], _DRAIN_TIMEOUT_S, interval_s=0.1)
    if prober is not None:
        prober.result()
    return profiles


def profile_stream(
    missed: set[str], full_rate: float, health_rate: float | None, work_dir: Path
) -> dict[str, Any]:
    """Profile the throughput run at full speed and, if missed, health under load."""
    results: dict[str, Any] = {}
    log_path = work_dir / "profile-throughput-replicator.log"
    with running_stack(throughput.TUNED_ENV, log_path) as stack:
        throughput.run_burst(stack, 2_000, 0)
        if "throughput" in missed:
            logger.info("Profiling the throughput run at full speed.")
            out_dir = work_dir / "profiles" / "throughput"
            results["throughput"] = profile_during_burst(stack, full_rate, 0, out_dir)
        if "health" in missed and health_rate:
            logger.info("Profiling the health server at %.0f changes/s.", health_rate)
            out_dir = work_dir / "profiles" / "health"
            results["health"] = profile_during_burst(
                stack, health_rate, health_rate, out_dir, probe=True
            )
    return results


def profile_freshness(rate: float, work_dir: Path) -> dict[str, Any]:
    """Profile the default settings at the freshness rate whose p99 missed its target."""
    logger.info("Profiling freshness at %.0f changes/s with default settings.", rate)
    log_path = work_dir / "profile-freshness-replicator.log"
    with running_stack({}, log_path) as stack:
        throughput.run_burst(stack, 1_000, rate)
        return profile_during_burst(stack, rate, rate, work_dir / "profiles" / "freshness")


def freshness_missed_rate(result: dict[str, Any]) -> float | None:
    """Rate of the default configuration's first burst, the one the target applies to."""
    for config in result.get("configs", []):
        if config["name"] == freshness.CONFIGS[0][0] and config["rates"]:
            return float(config["rates"][0]["rate"])
    return None
