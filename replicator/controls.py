"""The signal the supervisor sends the ingest to make it reconnect from scratch.

Redis lost the replicated data, so the replay cursor means nothing any more and the
flags snapshot must be sent again: the ingest drops its cursor and reconnects.
"""

import signal

SIGNAL_RESTART_STREAM = signal.SIGUSR2
