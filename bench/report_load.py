"""Sections of the results page for the bulk load and for the profiles of missed targets."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from bench import markdown as md
from bench.proc_sampler import MEASURING
from bench.targets import BULK_RATE_MIN, MIB

#: The profile phase that explains each target.
PROFILE_OF_TARGET = {
    "throughput": "throughput",
    "health": "health",
    "freshness": "freshness",
    "bulk": "bulk",
    "memory": "bulk",
}
_CORE_BOUND = 85.0
_MACHINE_BOUND = 90.0


def _size_rows(sizes: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for entry in sizes:
        rows.append(
            [
                f"{entry['size']:,} + {entry['size']:,}",
                md.seconds(entry["ready_s"]),
                md.seconds(entry["load_s"]),
                md.rate(entry["entities_per_s"]),
                f"{entry['peak_rss_mib'] * MIB:,.0f}",
                f"{entry['peak_pss_mib'] * MIB:,.0f}",
                str(entry["processes"]),
                f"{entry['redis_used_memory_mib'] * MIB:,.0f}",
                md.pct(entry["machine_busy_percent"]),
                f"{entry['load_before']:.2f} / {entry['load_after']:.2f}",
            ]
        )
    return rows


def _cpu_per_entity(entry: dict[str, Any], names: list[str]) -> float:
    """Return the CPU microseconds per loaded entity of the named processes together."""
    share = sum(entry["cpu_percent"].get(name, 0.0) for name in names)
    return share / 100 * entry["ready_s"] * 1e6 / entry["entities"]


def bulk_bound(entry: dict[str, Any]) -> str:
    """Explain in one paragraph, from the CPU samples, what limits the load rate."""
    cpu = entry["cpu_percent"]
    simulator = cpu.get("simulator", 0.0)
    loader = cpu.get("loader", 0.0)
    replicator_names = [name for name in cpu if name not in ("simulator", MEASURING)]
    sim_us = _cpu_per_entity(entry, ["simulator"])
    own_us = _cpu_per_entity(entry, replicator_names)
    text = (
        f"Over the {entry['size']:,} + {entry['size']:,} load the simulator used "
        f"{simulator:.0f} % of one core and the loader {loader:.0f} %; the machine's CPUs "
        f"were {entry['machine_busy_percent']:.0f} % busy. Per loaded entity the simulator "
        f"spent {sim_us:,.0f} µs of CPU and the replicator's processes together "
        f"{own_us:,.0f} µs, so {BULK_RATE_MIN:,.0f} entities/s would need "
        f"{BULK_RATE_MIN * sim_us / 1e6:.1f} cores for the simulator and "
        f"{BULK_RATE_MIN * own_us / 1e6:.1f} for the replicator."
    )
    if simulator >= _CORE_BOUND and simulator >= loader:
        return text + " The simulator, one core busy, is the bottleneck."
    if loader >= _CORE_BOUND:
        return text + " The loader, one core busy, is the bottleneck."
    if entry["machine_busy_percent"] >= _MACHINE_BOUND:
        return text + (
            " Neither process filled a core, but together they kept the machine busy: the "
            "load is bound by the machine's CPU, shared by the simulator and the replicator."
        )
    return text + (
        " No process filled a core and the machine had idle CPU: the load waits on page "
        "round trips; more requests in flight may help."
    )


def _growth(sizes: list[dict[str, Any]]) -> str:
    if len(sizes) < 2:
        return ""
    small, large = sizes[0], sizes[-1]
    factor = large["size"] / small["size"]
    grown = (large["peak_pss_mib"] - small["peak_pss_mib"]) * MIB
    per_entity = grown * 1e6 / (large["entities"] - small["entities"])
    return (
        f"With {factor:.0f} times the entities, the peak PSS sum changed by {grown:+,.0f} MB "
        f"({small['peak_pss_mib'] * MIB:,.0f} -> {large['peak_pss_mib'] * MIB:,.0f} MB), "
        f"{per_entity:,.0f} bytes per additional entity: memory that grows with the dataset."
    )


def _memory_rows(sizes: list[dict[str, Any]]) -> list[list[str]]:
    """Return peak PSS rows per process and size; none for results recorded without it."""
    if not all("peak_pss_mib_by_process" in entry for entry in sizes):
        return []
    names = list(sizes[-1]["peak_pss_mib_by_process"])
    rows = []
    for name in names:
        peaks = [entry["peak_pss_mib_by_process"].get(name, 0.0) * MIB for entry in sizes]
        rows.append([name, *(f"{peak:,.0f}" for peak in peaks)])
    return rows


def _memory_lines(sizes: list[dict[str, Any]]) -> list[str]:
    rows = _memory_rows(sizes)
    if not rows:
        return []
    headers = ["process", *(f"{entry['size']:,} + {entry['size']:,}" for entry in sizes)]
    return [
        "Peak PSS of each process (MB), whenever it came; the sum of these peaks can "
        "exceed the peak of the sum:",
        "",
        *md.table(headers, rows),
    ]


def bulk_section(result: dict[str, Any]) -> list[str]:
    sizes = result["sizes"]
    lines = ["## 3. Bulk load", ""]
    lines += [
        f"Replicator settings: {md.env_text(result['env'])}; every other setting is the "
        f"default. The simulator serves N companies, N users and {result['flags']} flags "
        f"from its own process (`{result['simulate_command']}`). The clock runs from the "
        "start of `python -m replicator` against an empty redis-server to the first 200 "
        "response from `/ready` (polled every 0.1 s); the load column is the loader's own "
        "start-to-finish time from `/status`. Memory is summed over the supervisor and "
        "every descendant, sampled every 0.25 s from `/proc/<pid>/status` (VmRSS) and "
        "`/proc/<pid>/smaps_rollup` (Pss). Forked processes share pages, which the RSS "
        "sum counts once per process. PSS divides each shared page among the processes "
        "that map it, so the PSS sum is the memory the replicator really holds. MB are "
        "10^6 bytes.",
        "",
    ]
    lines += md.table(
        ["companies + users", "to /ready (s)", "load (s)", "entities /s", "peak RSS sum MB",
         "peak PSS sum MB", "processes", "Redis used_memory MB", "machine CPU busy",
         "load avg before / after"],
        _size_rows(sizes),
    )  # fmt: skip
    lines += [_growth(sizes), ""]
    lines += _memory_lines(sizes)

    largest = sizes[-1]
    lines += ["CPU per process during the largest load:", ""]
    lines += md.table(
        ["process", "CPU (% of one core)", "CPU µs per entity"],
        md.cpu_rows(largest["cpu_percent"], largest["entities_per_s"]),
    )
    lines += [
        bulk_bound(largest),
        "",
        "`health (child)` is the gunicorn worker, which serves the benchmark's `/ready` "
        "polls. `benchmark (measuring)`, where listed, is the process that runs the "
        "benchmark: it samples /proc every 0.25 s and polls `/ready`.",
        "",
    ]
    return lines


def _profile_table(summary: dict[str, Any]) -> list[str]:
    rows = []
    for own, total in zip_longest(summary["self"][:6], summary["total"][:6]):
        rows.append(
            [
                md.code(own[0]) if own else "",
                md.pct(own[1]) if own else "",
                md.code(total[0]) if total else "",
                md.pct(total[1]) if total else "",
            ]
        )
    return md.table(["innermost frame", "share", "own function on the stack", "share"], rows)


def profiles_section(profiles: dict[str, Any], missed: set[str]) -> list[str]:
    lines = ["## Profiles of the missed targets", ""]
    phases = sorted({PROFILE_OF_TARGET[key] for key in missed})
    if not phases:
        return [*lines, "Every measured target was met; nothing was profiled.", ""]
    lines += [
        "py-spy 0.4 recorded each busy process for 10 s at 100 samples/s (`py-spy record "
        "-p PID -d 10 -r 100 --gil -f raw -o FILE`), in a separate run under the same "
        "load unless noted. With `--gil` a sample is taken only from the thread that "
        "holds the GIL, so the samples show where the process spends Python time, C "
        "extensions that keep the GIL included (orjson, hiredis). Sleeps, waits and "
        "system calls release the GIL and are left out. *GIL held* is the share of the "
        "10 s with a sample. User and system CPU come from /proc over the same window, "
        "and system time is mostly socket and pipe I/O. Each table ranks the innermost "
        "frames of the samples, in any code. Next to them it ranks the replicator's and "
        "simulator's own functions by the share of samples that have them anywhere on "
        "the stack, without the start-up chain that every forked process carries.",
        "",
    ]
    for phase in phases:
        lines += _phase_lines(phase, profiles.get(phase))
        if phase == "bulk" and "memory" in missed:
            lines += [
                "The memory target is missed too. A CPU profile does not show memory: "
                "section 3 gives how the peak PSS grows with the dataset and, when the run "
                "recorded it, the peak of each process.",
                "",
            ]
    return lines


def _phase_lines(phase: str, processes: dict[str, Any] | None) -> list[str]:
    lines = [f"### {phase}", ""]
    if phase == "bulk":
        lines += ["Recorded during the measured load of the largest size, 20 s in.", ""]
    if not processes:
        return [*lines, "No profile was recorded (py-spy missing or failed).", ""]
    ordered = sorted(processes.items(), key=lambda item: -item[1]["gil_percent"])
    for label, summary in ordered:
        lines += [
            f"`{label}`: GIL held {summary['gil_percent']:.0f} % of the time; CPU "
            f"{md.pct(summary.get('user_percent'))} user and "
            f"{md.pct(summary.get('system_percent'))} system (of one core).",
            "",
        ]
        if summary["self"]:
            lines += _profile_table(summary)
    return lines
