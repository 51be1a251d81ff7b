from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from bench import report, targets

SAMPLE = Path(__file__).parent / "data" / "quick_results.json"


def _sample() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return results


def test_targets_cover_every_benchmark() -> None:
    evaluated = targets.evaluate(_sample())
    keys = [target["key"] for target in evaluated]
    assert keys == ["throughput", "health", "freshness", "bulk", "memory"]
    memory = evaluated[-1]
    assert memory["met"] is None  # a quick run does not load 1,000,000 + 1,000,000
    assert "missed" not in memory["measured"]


def test_render_has_every_section() -> None:
    page = report.render(_sample())
    for heading in (
        "# Benchmarks",
        "## Targets",
        "## 1. Stream throughput",
        "## 2. Freshness",
        "## 3. Bulk load",
        "## 4. Health under load",
        "## Profiles of the missed targets",
        "## Machine and versions",
        "## How to run",
    ):
        assert heading in page, heading
    assert "quick smoke run" in page
    assert "not available" in page  # /metrics returns 404


def test_render_lists_failures_without_sections() -> None:
    results = {key: value for key, value in _sample().items() if key not in ("throughput",)}
    results["errors"] = {"throughput": "Traceback ...\nTimeoutError: no cursor"}
    results["targets"] = targets.evaluate(results)
    page = report.render(results)
    assert "## Failures" in page
    assert "TimeoutError: no cursor" in page
    assert "## 1. Stream throughput" not in page
    assert "## 4. Health under load" not in page


def test_render_flags_notes_of_other_run() -> None:
    results = _sample()
    results["started_at"] = 0.0
    page = report.render(results)
    assert "## What bounds the missed targets" in page
    assert "not for the run on this page" in page


def test_render_notes_of_same_run() -> None:
    results = _sample()
    match = report._NOTES_RUN.search(report.NOTES.read_text(encoding="utf-8"))
    assert match is not None
    started = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M")
    results["started_at"] = started.replace(tzinfo=datetime.timezone.utc).timestamp() + 30
    page = report.render(results)
    assert "## What bounds the missed targets" in page
    assert "not for the run on this page" not in page
    assert "<!-- run started:" not in page
