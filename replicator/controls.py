"""Signals the supervisor sends the ingest to make it reconnect.

SIGNAL_REPLAY: reconnect and replay from the committed cursor, because a restarted
worker lost what it had taken off its queue. SIGNAL_RESTART_STREAM: reconnect from
scratch, without a cursor, because Redis lost the replicated data and the flags
snapshot must be sent again.
"""

import signal

SIGNAL_REPLAY = signal.SIGUSR1
SIGNAL_RESTART_STREAM = signal.SIGUSR2
