"""Write docs/benchmarks.md from the results of one run of bench/run_all.py."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

from bench import markdown as md
from bench.report_load import bulk_section, profiles_section
from bench.report_stream import freshness_section, health_section, throughput_section
from bench.targets import missed


def _header(results: dict[str, Any]) -> list[str]:
    kind = "a quick smoke run (`--quick`)" if results["quick"] else "a full run"
    lines = [
        "# Benchmarks",
        "",
        "How fast and how fresh the replicator keeps Redis, and what it costs to run: "
        "stream throughput, freshness, bulk load and health latency, measured on one "
        "machine with `python bench/run_all.py`, which wrote this page. Nothing here "
        "asserts a time; compare runs on the same machine only.",
        "",
        f"This page comes from {kind} that started {run_started(results)} UTC and took "
        f"{results['duration_s'] / 60:.1f} minutes.",
        "",
    ]
    if results["quick"]:
        lines += [
            "> A quick run uses short windows and small datasets: its numbers only show "
            "that the benchmarks work. Run without `--quick` for the numbers.",
            "",
        ]
    lines += [
        "> The machine was shared with other work while this ran, so the numbers are "
        "noisy. Each table gives the 1-minute load average and the share of CPU busy "
        "on the whole machine (all processes, not only the benchmark's) during the "
        "measurement.",
        "",
    ]
    return lines


def _targets(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Targets",
        "",
        "Targets for this 2-core machine; each is checked against the number measured below.",
        "",
    ]
    rows = [
        [target["name"], target["goal"], target["measured"], md.met(target["met"])]
        for target in results["targets"]
    ]
    return lines + md.table(["target", "goal", "measured", "result"], rows)


def _environment(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    versions = results["versions"]
    commit = versions["git_commit"] + (
        " (with uncommitted changes)" if versions["git_dirty"] else ""
    )
    rows = [
        ["CPU", f"{machine['cpu_model']}, {machine['cpus']} CPUs, {machine['cpus_usable']} usable"],
        ["RAM", f"{machine['ram_gib']:.1f} GiB"],
        ["kernel", f"Linux {machine['kernel']}"],
        ["OS", machine["os"]],
        ["Python", versions["python"]],
        ["redis-server", versions["redis_server"]],
        ["git commit", md.code(commit)],
    ]  # fmt: skip
    rows += [[name, version] for name, version in versions["libraries"].items()]
    return ["## Machine and versions", "", *md.table(["", ""], rows)]


def _commands(results: dict[str, Any]) -> list[str]:
    options = results["options"]
    lines = [
        "## How to run",
        "",
        "```sh",
        results["command"],
        "```",
        "",
        "Every benchmark starts its own servers on free loopback ports and stops them afterwards:",
        "",
        "- redis-server: `redis-server --port <port> --bind 127.0.0.1 --save '' "
        "--appendonly no`, plus `--notify-keyspace-events K$` for freshness.",
        "- the simulator: `replicator.simulator.Simulator` in a process of its own "
        "(bench/sim_process.py) for the stream benchmarks, and "
        "`python -m replicator simulate` for the bulk load.",
        "- the replicator: `python -m replicator` with `SCHEMATIC_API_URL`, "
        "`SCHEMATIC_API_KEY`, `REDIS_URL` and `HEALTH_PORT` pointing at those servers, "
        "`LOG_LEVEL=info`, `ASYNC_LOADER_RATE_LIMIT_RPS=0`, and the settings each section "
        "names.",
    ]
    if "throughput" in results:
        lines.append(f"- the ceiling: `{results['throughput']['ceiling']['command']}`.")
        lines.append(f"- the naive baseline: `{results['throughput']['naive']['command']}`.")
    lines += [
        "",
        "Windows and sizes of this run: "
        + ", ".join(f"{name} {value}" for name, value in options.items())
        + ".",
        "",
    ]
    return lines


def _errors(results: dict[str, Any]) -> list[str]:
    errors = results.get("errors", {})
    if not errors:
        return []
    lines = ["## Failures", "", "These parts of the run failed; their sections are missing.", ""]
    for name, trace in errors.items():
        last = trace.strip().splitlines()[-1] if trace.strip() else "no message"
        lines.append(f"- {name}: `{last}`")
    return [*lines, ""]


NOTES = Path(__file__).resolve().parent / "notes.md"
#: First line of bench/notes.md: the start of the run the notes were written for.
_NOTES_RUN = re.compile(r"<!-- run started: ([0-9-]+ [0-9:]+) UTC -->")


def run_started(results: dict[str, Any]) -> str:
    """Return the start of a run as the page shows it, e.g. ``2026-12-04 17:09``."""
    started = datetime.datetime.fromtimestamp(results["started_at"], datetime.timezone.utc)
    return f"{started:%Y-%m-%d %H:%M}"


def _notes(results: dict[str, Any]) -> list[str]:
    """Include bench/notes.md, the written reading of a run, and state which run it reads.

    The notes are written by hand after a run. When they name another run than the one
    whose numbers the page shows, the page warns about it.
    """
    if not NOTES.exists():
        return []
    text = NOTES.read_text(encoding="utf-8")
    match = _NOTES_RUN.search(text)
    body = _NOTES_RUN.sub("", text).strip()
    lines = ["## What bounds the missed targets", ""]
    if match is None or match.group(1) != run_started(results):
        written_for = f"the run started {match.group(1)} UTC" if match else "another run"
        lines += [
            f"> These notes were written for {written_for}, not for the run on this page: "
            "check them against the numbers above.",
            "",
        ]
    return [*lines, body, ""]


def render(results: dict[str, Any]) -> str:
    """Return the whole page for ``results``."""
    lines = _header(results) + _errors(results) + _targets(results)
    if "throughput" in results:
        lines += throughput_section(results["throughput"])
    if "freshness" in results:
        lines += freshness_section(results["freshness"])
    if "bulk_load" in results:
        lines += bulk_section(results["bulk_load"])
    if "throughput" in results:
        lines += health_section(results["throughput"])
    lines += _notes(results)
    lines += profiles_section(results.get("profiles", {}), missed(results["targets"]))
    lines += _environment(results) + _commands(results)
    return "\n".join(lines).rstrip() + "\n"


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results), encoding="utf-8")
