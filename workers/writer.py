"""Redis write helpers shared by the workers and the loader.

A single-node Redis gets one MGET for the records a batch reads and one MSET for
everything it writes, which costs a fraction of one command per key. Redis Cluster
cannot take multi-key commands across slots, so there the same batch is sent as
single-key commands through the cluster pipeline, which routes each to its shard.

The conditional delete is a Lua script. On a single node the pipeline loads it once
and then sends EVALSHA. A cluster pipeline cannot load scripts, and a node that never
saw the script (or a replica promoted after a failover) rejects EVALSHA with NOSCRIPT,
so in cluster mode each conditional delete is sent as EVAL with the script text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from redis.cluster import RedisCluster

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
    """Batch helpers bound to one Redis client and the configured cache TTL."""

    def __init__(self, client: Any, ttl_s: float) -> None:
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
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
        if self.cluster:
            # ClusterPipeline.eval() is not the EVAL command, so queue it by name.
            pipe.execute_command("EVAL", DELETE_IF_EQUALS_LUA, 1, key, value)
        else:
            self._delete_if_equals(keys=[key], args=[value], client=pipe)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read ``keys`` in one round trip (one per shard in a cluster)."""
        if not keys:
            return []
        if self.cluster:
            return list(self.client.mget_nonatomic(keys))
        return list(self.client.mget(keys))

    # NOTE: No WAIT follows a batch, so in a cluster a write the master acknowledged but
    # had not yet replicated is lost if that master crashes and its replica takes over.
    def write_batch(
        self,
        values: dict[str, bytes],
        deletes: Sequence[str],
        conditional_deletes: Iterable[tuple[str, bytes]],
    ) -> None:
        """Apply one batch in one pipeline: the conditional deletes of stale lookups,
        then the deletes of records, then the writes.

        The order makes an interrupted batch safe to replay. Stale lookups are found by
        comparing with the stored record, so they must go before that record changes:
        a batch cut off after its writes would leave them behind for good. A lookup key
        that moves to another entity in the same batch is deleted for its old owner and
        then written for the new one.
        """
        pipe = self.pipeline()
        queued = False
        for key, value in conditional_deletes:
            self.delete_if_equals(pipe, key, value)
            queued = True
        self._queue_deletes(pipe, deletes)
        self._queue_values(pipe, values)
        if queued or values or deletes:
            pipe.execute()

    def _queue_values(self, pipe: Any, values: dict[str, bytes]) -> None:
        if not values:
            return
        if self.ttl_ms or self.cluster:
            for key, value in values.items():
                self.set(pipe, key, value)
        else:
            pipe.mset(values)

    def _queue_deletes(self, pipe: Any, keys: Sequence[str]) -> None:
        if not keys:
            return
        if self.cluster:
            for key in keys:
                pipe.delete(key)
        else:
            pipe.delete(*keys)
