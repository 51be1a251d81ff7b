"""Redis write helpers shared by the workers and the loader."""

from __future__ import annotations

import math
from typing import Any

# Deletes KEYS[1] only while it still holds ARGV[1]. A lookup key can move to another
# entity between our read and our delete (a domain handed from one company to
# another, written by a different worker); the check keeps the new owner's lookup.
DELETE_IF_EQUALS_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Writer:
    """Pipeline helpers bound to one Redis client and the configured cache TTL."""

    def __init__(self, client: Any, ttl_s: float) -> None:
        self.client = client
        self.ttl_ms = math.ceil(ttl_s * 1000) if ttl_s > 0 else 0
        self._delete_if_equals = client.register_script(DELETE_IF_EQUALS_LUA)

    def pipeline(self) -> Any:
        return self.client.pipeline(transaction=False)

    def set(self, pipe: Any, key: str, value: bytes) -> None:
        """Queue a SET, with the cache TTL when one is configured."""
        if self.ttl_ms:
            pipe.set(key, value, px=self.ttl_ms)
        else:
            pipe.set(key, value)

    def delete_if_equals(self, pipe: Any, key: str, value: bytes) -> None:
        """Queue a delete of ``key`` that happens only while it still holds ``value``."""
        self._delete_if_equals(keys=[key], args=[value], client=pipe)
