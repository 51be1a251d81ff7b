"""Small process helpers for the children the supervisor forks."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import signal

PR_SET_PDEATHSIG = 1
#: Container allocations, minus deallocations, between two young-generation garbage
#: collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 10_000


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies.

    Without it, a supervisor killed with SIGKILL would leave its children running.
    Returns False where prctl is unavailable.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def tune_gc() -> None:
    """Exempt every object alive now from garbage collection and collect less often.

    A worker allocates dozens of dicts and lists per change and keeps some of them for
    a while. With the defaults, the collections that those trigger rescan every object
    of the imported modules, which took about a quarter of a company worker's CPU
    (bench/hot_paths.py). Records decoded from JSON form no reference cycles, so
    collecting less often keeps only the rare cyclic garbage a little longer.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
