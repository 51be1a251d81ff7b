"""Describe the machine and the software versions a benchmark ran with."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LIBRARIES = (
    "redis",
    "hiredis",
    "websocket-client",
    "aiohttp",
    "orjson",
    "flask",
    "gunicorn",
    "requests",
    "py-spy",
)


def _first_line_with(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def _command_output(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError as error:
        return f"unavailable ({error})"
    return done.stdout.strip() or done.stderr.strip()


def machine() -> dict[str, Any]:
    """CPU model, CPU count, RAM and kernel of this machine."""
    mem_kib = _first_line_with("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_gib": int(mem_kib) / (1024 * 1024) if mem_kib.isdigit() else None,
        "kernel": platform.release(),
        "os": _os_name(),
    }


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, Any]:
    """Python, redis-server, the key libraries and the git commit of this checkout."""
    commit = _command_output("git", "-C", str(REPO), "rev-parse", "HEAD")
    dirty = _command_output(
        "git", "-C", str(REPO), "status", "--porcelain", "--", ".", ":!docs/benchmarks.md"
    )
    return {
        "python": platform.python_version(),
        "redis_server": _command_output("redis-server", "--version"),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "git_commit": commit,
        "git_dirty": bool(dirty),
    }
