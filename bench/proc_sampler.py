"""Sample memory and CPU of a process tree from /proc, on a background thread.

Every second the sampler lists the root and all its descendants (by parent pid in
/proc/<pid>/stat). Every interval it reads VmRSS from /proc/<pid>/status, Pss from
/proc/<pid>/smaps_rollup and utime + stime from /proc/<pid>/stat of each, and keeps
the sums, the peak PSS of each process and the per-process CPU counters. RSS counts
shared pages (forked children share the parent's) once per process, so the RSS sum
overstates. PSS splits each shared page between the processes that map it, so the PSS
sum is the tree's real share of memory.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
#: Seconds between two listings of a tree; a process that starts in between is missed
#: for at most this long.
LISTING_INTERVAL_S = 1.0


@dataclass
class TreeSample:
    """Memory of the whole tree at one moment, in KiB."""

    at: float
    processes: int
    rss_kib: int
    pss_kib: int


@dataclass
class CpuWindow:
    """CPU seconds of one pid between two moments."""

    first_s: float
    last_s: float

    @property
    def used_s(self) -> float:
        return self.last_s - self.first_s


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:  # the process exited between listing and reading
        return ""


def _stat_fields(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/stat")
    # The command name is in parentheses and may contain spaces: split after it.
    return text[text.rfind(")") + 2 :].split() if text else []


def cpu_times(pid: int) -> tuple[float, float] | None:
    """Return (user, system) CPU seconds of ``pid``, or None when it is gone."""
    fields = _stat_fields(pid)
    if not fields:
        return None
    return int(fields[11]) / _TICKS_PER_S, int(fields[12]) / _TICKS_PER_S


def cpu_seconds(pid: int) -> float | None:
    """Return user plus system CPU seconds of ``pid``, or None when it is gone."""
    times = cpu_times(pid)
    return None if times is None else times[0] + times[1]


def _kib_field(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def descendants(root: int) -> list[int]:
    """Return ``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid != root or os.path.exists(f"/proc/{root}"):
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class TreeSampler:
    """Samples the tree under ``root`` every ``interval_s`` until stopped."""

    root: int
    interval_s: float = 0.25
    from_zero: bool = False
    samples: list[TreeSample] = field(default_factory=list)
    cpu: dict[int, CpuWindow] = field(default_factory=dict)
    #: The largest PSS seen of each process, whenever it was.
    peak_pss_kib: dict[int, int] = field(default_factory=dict)
    _known: list[int] = field(default_factory=list)
    _next_listing: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def _pids(self) -> list[int]:
        # Listing the tree reads every /proc/<pid>/stat on the machine, which costs more
        # than the samples themselves; between listings the known pids are reused.
        now = time.monotonic()
        if now >= self._next_listing:
            self._known = descendants(self.root)
            self._next_listing = now + LISTING_INTERVAL_S
        return [pid for pid in self._known if os.path.exists(f"/proc/{pid}")]

    def sample(self) -> None:
        rss = pss = 0
        pids = self._pids()
        for pid in pids:
            rss += _kib_field(_read(f"/proc/{pid}/status"), "VmRSS:")
            own_pss = _kib_field(_read(f"/proc/{pid}/smaps_rollup"), "Pss:")
            pss += own_pss
            self.peak_pss_kib[pid] = max(own_pss, self.peak_pss_kib.get(pid, 0))
            self._note_cpu(pid)
        self.samples.append(TreeSample(time.time(), len(pids), rss, pss))

    def _note_cpu(self, pid: int) -> None:
        used = cpu_seconds(pid)
        if used is None:
            return
        window = self.cpu.get(pid)
        if window is None:
            # A process that appears after the first sample started inside the window.
            baseline = used if not self.samples and not self.from_zero else 0.0
            self.cpu[pid] = CpuWindow(baseline, used)
        else:
            window.last_s = used

    @property
    def peak_rss_mib(self) -> float:
        return max((s.rss_kib for s in self.samples), default=0) / 1024

    @property
    def peak_pss_mib(self) -> float:
        return max((s.pss_kib for s in self.samples), default=0) / 1024

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds each pid used while sampled (first sample to last)."""
        return {pid: window.used_s for pid, window in self.cpu.items()}


@dataclass
class MachineCpu:
    """Busy share of all CPUs of the machine between :meth:`start` and :meth:`stop`.

    It counts every process on the machine, the benchmark's and any other work.
    """

    busy: int = 0
    total: int = 0

    @staticmethod
    def _ticks() -> tuple[int, int]:
        fields = [int(value) for value in _read("/proc/stat").splitlines()[0].split()[1:9]]
        idle = fields[3] + fields[4]  # idle and iowait
        return sum(fields) - idle, sum(fields)

    def start(self) -> MachineCpu:
        self.busy, self.total = self._ticks()
        return self

    def stop(self) -> float:
        """Return the busy fraction, 0 to 1, since :meth:`start`."""
        busy, total = self._ticks()
        elapsed = total - self.total
        return (busy - self.busy) / elapsed if elapsed > 0 else float("nan")


class Watch:
    """CPU of named process trees and of the whole machine over one ``with`` block.

    ``roots`` maps a label to the root pid of a tree. ``roles`` names single pids inside
    a tree, and a pid without a role is counted under its tree's label. The CPU of
    the trees named in ``from_zero`` counts from each process's start, for trees that
    start with the window.
    """

    def __init__(
        self,
        roots: dict[str, int],
        roles: dict[int, str] | None = None,
        from_zero: tuple[str, ...] = (),
    ) -> None:
        self.samplers = {
            label: TreeSampler(pid, from_zero=label in from_zero) for label, pid in roots.items()
        }
        self.roles = roles or {}
        self.machine = MachineCpu()
        self.machine_busy = float("nan")
        self.started = self.wall_s = 0.0
        self.own_cpu_s = 0.0

    def __enter__(self) -> Watch:
        for sampler in self.samplers.values():
            sampler.sample()
            sampler.start()
        self.machine.start()
        self.started = time.monotonic()
        self.own_cpu_s = -_own_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.monotonic() - self.started
        self.own_cpu_s += _own_cpu_s()
        self.machine_busy = self.machine.stop()
        for sampler in self.samplers.values():
            sampler.stop()

    def cpu_percent(self) -> dict[str, float]:
        """Return CPU use per label in percent of one core, busiest first."""
        used: dict[str, float] = {}
        for label, sampler in self.samplers.items():
            for pid, seconds in sampler.cpu_by_pid().items():
                name = self.roles.get(pid, label)
                used[name] = used.get(name, 0.0) + seconds
        used[MEASURING] = self.own_cpu_s
        wall = self.wall_s or float("nan")
        shares = {name: 100 * seconds / wall for name, seconds in used.items()}
        return dict(sorted(shares.items(), key=lambda item: -item[1]))

    def peak_pss_mib(self, label: str) -> dict[str, float]:
        """Return the peak PSS of each process of one tree in MiB, by role, largest first."""
        peaks: dict[str, float] = {}
        for pid, kib in self.samplers[label].peak_pss_kib.items():
            name = self.roles.get(pid, label)
            peaks[name] = peaks.get(name, 0.0) + kib / 1024
        return dict(sorted(peaks.items(), key=lambda item: -item[1]))


#: Label of the benchmark's own process, whose threads do the sampling and polling.
MEASURING = "benchmark (measuring)"


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system
