"""The performance targets for a 2-core machine, checked against benchmark results."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

THROUGHPUT_MIN = 20_000.0
FRESHNESS_P99_MAX_MS = 25.0
FRESHNESS_RATE = 1000
BULK_RATE_MIN = 20_000.0
BULK_MEMORY_MAX_MB = 400.0
BULK_MEMORY_SIZE = 1_000_000
HEALTH_P99_MAX_MS = 10.0

MIB = 1024 * 1024 / 1e6  # MB per MiB


@dataclass
class Target:
    """One target: what it is, its goal, the measured value and whether it was met."""

    key: str
    name: str
    goal: str
    measured: str
    met: bool | None  # None when the benchmark did not run or measured nothing


def _throughput(result: dict[str, Any]) -> Target:
    best = result.get("highest_sustained")
    measured = f"{best:,.0f} /s" if best else "no rate sustained"
    return Target(
        "throughput",
        "Company changes per second, sustained",
        f">= {THROUGHPUT_MIN:,.0f} /s",
        measured,
        bool(best and best >= THROUGHPUT_MIN),
    )


def _freshness(result: dict[str, Any]) -> Target:
    p99 = None
    for config in result["configs"]:
        for rate in config["rates"]:
            if config["name"] == "default" and rate["rate"] == FRESHNESS_RATE:
                p99 = rate["p99_ms"]
    return Target(
        "freshness",
        f"p99 freshness at {FRESHNESS_RATE:,} /s, default settings",
        f"<= {FRESHNESS_P99_MAX_MS:.0f} ms",
        f"{p99:.1f} ms" if p99 is not None else "not measured",
        None if p99 is None else p99 <= FRESHNESS_P99_MAX_MS,
    )


def _largest(result: dict[str, Any]) -> dict[str, Any]:
    return max(result["sizes"], key=lambda size: size["size"])


def _bulk_rate(result: dict[str, Any]) -> Target:
    largest = _largest(result)
    return Target(
        "bulk",
        f"Bulk load, {largest['size']:,} + {largest['size']:,} entities",
        f">= {BULK_RATE_MIN:,.0f} entities/s",
        f"{largest['entities_per_s']:,.0f} entities/s",
        largest["entities_per_s"] >= BULK_RATE_MIN,
    )


def _bulk_memory(result: dict[str, Any]) -> Target:
    largest = _largest(result)
    pss_mb = largest["peak_pss_mib"] * MIB
    rss_mb = largest["peak_rss_mib"] * MIB
    full_size = largest["size"] >= BULK_MEMORY_SIZE
    return Target(
        "memory",
        f"Peak memory (PSS sum) loading {largest['size']:,} + {largest['size']:,}",
        f"<= {BULK_MEMORY_MAX_MB:.0f} MB at {BULK_MEMORY_SIZE:,} + {BULK_MEMORY_SIZE:,}",
        f"{pss_mb:,.0f} MB (RSS sum {rss_mb:,.0f} MB)",
        (pss_mb <= BULK_MEMORY_MAX_MB) if full_size else None,
    )


def _health(result: dict[str, Any]) -> Target:
    health = result.get("health")
    if not health:
        return Target("health", "Health p99 under load", "<= 10 ms", "not measured", None)
    available = {
        path: values
        for path, values in health["paths"].items()
        if "404" not in values["statuses"] and values["requests"]
    }
    worst = max(values["p99_ms"] for values in available.values())
    paths = ", ".join(f"{path} {values['p99_ms']:.1f} ms" for path, values in available.items())
    return Target(
        "health",
        f"Health p99 at {health['rate']:,.0f} changes/s",
        f"<= {HEALTH_P99_MAX_MS:.0f} ms",
        paths,
        worst <= HEALTH_P99_MAX_MS,
    )


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every target whose benchmark ran, as plain dicts."""
    targets = []
    if "throughput" in results:
        targets += [_throughput(results["throughput"]), _health(results["throughput"])]
    if "freshness" in results:
        targets.append(_freshness(results["freshness"]))
    if "bulk_load" in results:
        targets += [_bulk_rate(results["bulk_load"]), _bulk_memory(results["bulk_load"])]
    return [asdict(target) for target in targets]


def missed(targets: list[dict[str, Any]]) -> set[str]:
    """Keys of the targets that were measured and not met."""
    return {target["key"] for target in targets if target["met"] is False}
