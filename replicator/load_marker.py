"""The load marker: one key that shows whether Redis still contains what the loader wrote.

From the start of a bulk load the key contains an in-progress value, ``loading:`` with the
load's generation and a random part, so it exists whenever a load has started. When
the load completes, one script replaces that value with the cache version, but only if
the key still contains it. A key that vanished or changed meanwhile means Redis lost
data during the load, so the load does not count. A later start skips the load only when
the marker contains the cache version. The marker is a single key, so it works on a
cluster.
"""

from __future__ import annotations

import secrets
from typing import Any

from replicator import keys

IN_PROGRESS_PREFIX = "loading:"

#: Returns 1 after it swapped ARGV[1] for ARGV[2], 2 when the key already contains
#: ARGV[2] (a retried call that had swapped it), and 0 otherwise.
COMPLETE_LUA = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
if current == ARGV[2] then
  return 2
end
return 0
"""


def in_progress_value(generation: str) -> str:
    """Return the marker's value for load ``generation``, with a random part unique to it."""
    return f"{IN_PROGRESS_PREFIX}{generation}:{secrets.token_hex(8)}"


#: Sets KEYS[1] to ARGV[1] and returns the value it replaced (nil when there was none).
BEGIN_LUA = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
return previous
"""


class LoadMarker:
    """Writes the marker at the start and at the end of a load, on one client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._begin = client.register_script(BEGIN_LUA)
        self._complete = client.register_script(COMPLETE_LUA)

    def begin(self, generation: str) -> tuple[str, bool]:
        """Mark a load as running; return the value written and whether a marker was there."""
        value = in_progress_value(generation)
        previous = self._begin(keys=[keys.LOAD_MARKER_KEY], args=[value])
        return value, previous is not None

    def complete(self, value: str, version: str) -> bool:
        """Write ``version`` if the marker still contains ``value``, and return whether it did."""
        return bool(self._complete(keys=[keys.LOAD_MARKER_KEY], args=[value, version]))
