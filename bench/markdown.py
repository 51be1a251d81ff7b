"""Markdown tables and number formats shared by the sections of the results page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Return the lines of a Markdown table; numbers in ``rows`` must be formatted."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def rate(value: float | None) -> str:
    """Format a rate with thousands separators and no decimals."""
    if _missing(value):
        return "n/a"
    assert value is not None
    return f"{round(value):,}"  # round() returns an int, which has no "-0"


def ms(value: float | None) -> str:
    """Format milliseconds with one decimal."""
    return "n/a" if _missing(value) else f"{value:,.1f}"


def pct(value: float | None) -> str:
    return "n/a" if _missing(value) else f"{value:.0f} %"


def seconds(value: float | None) -> str:
    return "n/a" if _missing(value) else f"{value:,.1f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if _missing(ours) or _missing(theirs) or not theirs:
        return "n/a"
    assert ours is not None and theirs is not None
    return f"{ours / theirs:.2f}x"


def met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[value]


def code(text: str) -> str:
    return f"`{text}`"


def env_text(env: dict[str, str]) -> str:
    """Settings as ``NAME=value`` pairs in code spans, or a note that none were set."""
    if not env:
        return "none (the replicator's defaults)"
    return ", ".join(code(f"{name}={value}") for name, value in sorted(env.items()))


def cpu_rows(cpu_percent: dict[str, float], applied_rate: float | None) -> list[list[str]]:
    """Rows of process, % of one core and CPU microseconds per change, idle ones left out."""
    rows = []
    for name, share in cpu_percent.items():
        if share < 1.0:
            continue
        per_change = f"{share / 100 * 1e6 / applied_rate:,.0f}" if applied_rate else "n/a"
        rows.append([name, pct(share), per_change])
    return rows
