"""Requests between the processes: reconnect the stream from scratch, run a bulk load.

The supervisor sends SIGNAL_RESTART_STREAM to the ingest when Redis lost the
replicated data: the replay cursor means nothing any more and the flags snapshot must
be sent again, so the ingest drops its cursor and reconnects.
"""

import signal
from typing import Any

from replicator.status import TEXT_CHARS, LoadState, StatusBlock, encode_text

SIGNAL_RESTART_STREAM = signal.SIGUSR2


def request_reload(control: Any, status: StatusBlock, reason: str) -> None:
    """Ask the loader for a full load, and mark the load pending until it starts.

    Until the loader takes the request, /status shows the load as ``pending`` rather
    than as the earlier load's ``complete``.
    """
    state = status.globals
    state.load_state = LoadState.PENDING
    state.load_reason = encode_text(reason, TEXT_CHARS)
    control.put(("reload", reason))
