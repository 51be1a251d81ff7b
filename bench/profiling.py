"""Record py-spy profiles of running processes and summarise their hottest frames.

Profiles are recorded with ``--gil``: py-spy samples only the thread that holds the
GIL. A sample is therefore Python work, including C extensions that keep the GIL
such as orjson and hiredis. Sleeps, waits and blocking system calls release the GIL
and are left out. ``-f raw`` writes one line per distinct stack: the frames from the
outermost to the innermost, separated by ``;``, then the number of samples. The CPU
time of each process over the same window comes from /proc, split into user and
system time, because the system calls that py-spy leaves out (socket and pipe I/O)
show up there.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.proc_sampler import cpu_times

logger = logging.getLogger(__name__)

RATE_HZ = 100
_TOP = 8
#: Packages whose functions the cumulative ranking shows: the product and its simulator.
OWN_CODE = ("replicator/", "workers/")
#: Files of the start-up chain that every forked child has on its stack.
START_CHAIN = (
    "replicator/__main__.py",
    "replicator/cli.py",
    "replicator/supervisor.py",
    "replicator/turn.py",
    "replicator/children.py",
    "workers/process.py",
)
_ATTEMPTS = 3
_QUICK_FAILURE_S = 2.0


def py_spy() -> str | None:
    """Return the py-spy executable next to this Python, or on the PATH."""
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def record_command(binary: str, pid: int, duration_s: float, output: Path) -> list[str]:
    return [
        binary, "record", "-p", str(pid), "-d", str(int(duration_s)), "-r", str(RATE_HZ),
        "--gil", "-f", "raw", "-o", str(output),
    ]  # fmt: skip


def record(pids: dict[str, int], duration_s: float, out_dir: Path) -> dict[str, Path]:
    """Profile every ``label: pid`` at the same time; return label -> raw output file.

    py-spy sometimes fails at once to read the interpreter version of a process; such
    a recording is started again, up to three attempts in all.
    """
    binary = py_spy()
    if binary is None:
        logger.warning("py-spy is not installed; no profile recorded.")
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {label: out_dir / f"{label}.raw.txt" for label in pids}
    running = {
        label: _start(binary, pid, duration_s, outputs[label]) for label, pid in pids.items()
    }
    for attempt in range(_ATTEMPTS):
        failed = _wait_all(running)
        if not failed or attempt + 1 == _ATTEMPTS:
            break
        running = {
            label: _start(binary, pids[label], duration_s, outputs[label]) for label in failed
        }
    return {label: path for label, path in outputs.items() if path.exists()}


def _start(
    binary: str, pid: int, duration_s: float, output: Path
) -> tuple[subprocess.Popen[bytes], float]:
    command = record_command(binary, pid, duration_s, output)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, time.monotonic()


def _wait_all(running: dict[str, tuple[subprocess.Popen[bytes], float]]) -> list[str]:
    """Wait for every recording; return the labels that failed quickly enough to retry."""
    failed = []
    for label, (process, started) in running.items():
        _, error = process.communicate()
        if process.returncode == 0:
            continue
        message = error.decode(errors="replace").strip().splitlines()[:1]
        logger.warning("py-spy failed on %r: %s", label, message[0] if message else "no output")
        if time.monotonic() - started < _QUICK_FAILURE_S:
            failed.append(label)
    return failed


def _own_frame(frame: str) -> bool:
    location = frame.partition(" (")[2]
    return location.startswith(OWN_CODE) and not location.startswith(START_CHAIN)


def summarise(path: Path, duration_s: float) -> dict[str, Any]:
    """Return the share of time with the GIL held and the hottest frames.

    ``self`` ranks innermost frames of any code. ``total`` ranks the functions of the
    product (``OWN_CODE``, without the start-up chain) by the samples that have them
    anywhere on the stack. Both give percentages of all samples.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if _own_frame(frame):
                total[frame] += count
    return {
        "gil_percent": 100 * samples / (duration_s * RATE_HZ),
        "self": _shares(own, samples),
        "total": _shares(total, samples),
    }


def _shares(counter: Counter[str], samples: int) -> list[list[Any]]:
    return [[frame, 100 * count / samples] for frame, count in counter.most_common(_TOP)]


def profile(pids: dict[str, int], duration_s: float, out_dir: Path) -> dict[str, Any]:
    """Record all ``pids`` for ``duration_s``; return the summary and CPU time of each."""
    before = {label: cpu_times(pid) for label, pid in pids.items()}
    started = time.monotonic()
    outputs = record(pids, duration_s, out_dir)
    elapsed = time.monotonic() - started
    summaries = {}
    for label, path in outputs.items():
        summary = summarise(path, duration_s)
        first, last = before[label], cpu_times(pids[label])
        if first is not None and last is not None:
            summary["user_percent"] = 100 * (last[0] - first[0]) / elapsed
            summary["system_percent"] = 100 * (last[1] - first[1]) / elapsed
        summaries[label] = summary
    return summaries
