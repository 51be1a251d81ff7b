"""Run the replicator's benchmarks and write docs/benchmarks.md.

    python bench/run_all.py                    # everything, about 20 minutes
    python bench/run_all.py --quick            # short windows, small datasets
    python bench/run_all.py --bench freshness  # one benchmark (repeatable)

Each benchmark starts its own redis-server, simulator and replicator on free loopback
ports and stops them afterwards. Raw results, logs and py-spy profiles go to the work
directory; ``--from-json`` renders the page again from a saved results file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# Subprocesses (python -m replicator, the simulator) must import this checkout too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    part for part in (str(REPO), os.environ.get("PYTHONPATH", "")) if part
)

from bench import bulk_load, freshness, machine, profile_runs, report, targets, throughput  # noqa: E402

logger = logging.getLogger("bench.run_all")

BENCHMARKS = ("throughput", "freshness", "bulk-load")
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"


def build_options(quick: bool, profile: bool) -> dict[str, Any]:
    """Options of every benchmark, full or quick; ``profile`` lets the bulk load record
    py-spy profiles during its largest size."""
    if quick:
        return {
            "throughput": throughput.ThroughputOptions(
                step_s=3.0,
                full_speed_count=20_000,
                warmup_count=2_000,
                fractions=(0.5, 1.0, 1.3),
                max_steps=5,
                ceiling_requests=50_000,
                naive_count=5_000,
            ),
            "freshness": freshness.FreshnessOptions(window_s=3.0, calibration_probes=100),
            "bulk-load": bulk_load.BulkLoadOptions(sizes=(10_000, 50_000), profile=profile),
        }
    return {
        "throughput": throughput.ThroughputOptions(full_speed_count=60_000, naive_count=20_000),
        "freshness": freshness.FreshnessOptions(),
        "bulk-load": bulk_load.BulkLoadOptions(profile=profile),
    }


def describe_options(options: dict[str, Any], selected: list[str]) -> dict[str, str]:
    """Describe the windows and sizes of a run, for the page."""
    described = {}
    if "throughput" in selected:
        stream = options["throughput"]
        described["throughput step window"] = f"{stream.step_s:g} s"
        described["full-speed burst"] = f"{stream.full_speed_count:,} changes"
        described["naive burst"] = f"{stream.naive_count:,} changes"
        described["redis-benchmark requests"] = f"{stream.ceiling_requests:,}"
    if "freshness" in selected:
        fresh = options["freshness"]
        described["freshness window"] = f"{fresh.window_s:g} s per rate"
    if "bulk-load" in selected:
        sizes = options["bulk-load"].sizes
        described["bulk-load sizes"] = " and ".join(f"{size:,}" for size in sizes)
    return described


def _run_benchmark(
    name: str, results: dict[str, Any], key: str, call: Callable[[], dict[str, Any]]
) -> None:
    logger.info("Running the %s benchmark.", name)
    try:
        results[key] = call()
    except Exception as error:  # recorded on the page; the other benchmarks still run
        logger.error("The %s benchmark failed: %s", name, error)
        results.setdefault("errors", {})[name] = traceback.format_exc()


def run_benchmarks(
    selected: list[str], quick: bool, profile: bool, work_dir: Path
) -> dict[str, Any]:
    options = build_options(quick, profile)
    results: dict[str, Any] = {
        "started_at": time.time(),
        "quick": quick,
        "command": " ".join(["python", "bench/run_all.py", *sys.argv[1:]]),
        "machine": machine.machine(),
        "versions": machine.versions(),
        "options": describe_options(options, selected),
        "work_dir": str(work_dir),
    }
    calls = {
        "throughput": ("throughput", lambda: throughput.run(options["throughput"], work_dir)),
        "freshness": ("freshness", lambda: freshness.run(options["freshness"], work_dir)),
        "bulk-load": ("bulk_load", lambda: bulk_load.run(options["bulk-load"], work_dir)),
    }
    for name in selected:
        key, call = calls[name]
        _run_benchmark(name, results, key, call)
        save(results, work_dir)
    return results


def profile_missed(results: dict[str, Any], work_dir: Path) -> None:
    """Profile the benchmarks whose targets were missed, in separate runs."""
    missed = targets.missed(results["targets"])
    profiles: dict[str, Any] = {}
    if "bulk_load" in results:
        profiles["bulk"] = results["bulk_load"]["sizes"][-1].pop("profiles", {})
    stream = results.get("throughput", {})
    if missed & {"throughput", "health"} and stream:
        full_rate = stream["full_speed"]["applied_rate"]
        health_rate = stream.get("highest_sustained")
        profiles.update(profile_runs.profile_stream(missed, full_rate, health_rate, work_dir))
    rate = profile_runs.freshness_missed_rate(results.get("freshness", {}))
    if "freshness" in missed and rate:
        profiles["freshness"] = profile_runs.profile_freshness(rate, work_dir)
    results["profiles"] = profiles


def save(results: dict[str, Any], work_dir: Path) -> Path:
    path = work_dir / "results.json"
    path.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="short windows and small datasets, a smoke run"
    )
    parser.add_argument(
        "--bench",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable; default: all). Health runs with throughput",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="do not profile the missed targets"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="page to write (docs/benchmarks.md)"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="directory for results.json, logs and profiles (a new temp dir)",
    )
    parser.add_argument(
        "--from-json", type=Path, metavar="FILE", help="only render the page from a results.json"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.from_json is not None:
        report.write(json.loads(args.from_json.read_text(encoding="utf-8")), args.output)
        logger.info("Wrote %s from %s.", args.output, args.from_json)
        return 0

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="replicator-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    selected = [name for name in BENCHMARKS if not args.bench or name in args.bench]
    results = run_benchmarks(selected, args.quick, not args.no_profile, work_dir)
    results["targets"] = targets.evaluate(results)
    if not args.no_profile:
        try:
            profile_missed(results, work_dir)
        except Exception as error:  # the measured results still get their page
            logger.error("Profiling failed: %s", error)
            results.setdefault("errors", {})["profiling"] = traceback.format_exc()
    results["duration_s"] = time.time() - results["started_at"]
    path = save(results, work_dir)
    report.write(results, args.output)
    logger.info("Wrote %s; raw results, logs and profiles are in %s.", args.output, path.parent)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
