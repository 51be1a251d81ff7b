from __future__ import annotations

import redis

from replicator.cleanup import DELETE_BATCH, delete_other_versions

CURRENT = "cur12345"


def test_cleanup_deletes_only_other_versions(redis_client: redis.Redis) -> None:
    kept = [
        f"schematic:flags:{CURRENT}:beta",
        f"schematic:company:{CURRENT}:comp_1",
        f"schematic:company:{CURRENT}:domain:acme.io",
        f"schematic:user:{CURRENT}:user_1",
        "schematic:datastream:replay_cursor",
        "schematic:datastream:writer_lock",
        "schematic:credit-lease:comp_1",
        "schematic:flags:no-tail",
        "other:company:old:comp_1",
    ]
    stale = [
        "schematic:flags:old00001:beta",
        "schematic:company:old00001:comp_1",
        "schematic:company:old00001:domain:acme.io",
        "schematic:user:fde6dba2:user_1",
    ]
    for key in kept + stale:
        redis_client.set(key, b"x")

    deleted = delete_other_versions(redis_client, CURRENT)

    assert deleted == {"old00001": 3, "fde6dba2": 1}
    for key in kept:
        assert redis_client.exists(key), key
    for key in stale:
        assert not redis_client.exists(key), key


def test_cleanup_deletes_in_batches(redis_client: redis.Redis) -> None:
    total = DELETE_BATCH * 2 + 7
    pipe = redis_client.pipeline(transaction=False)
    for index in range(total):
        pipe.set(f"schematic:company:old00001:comp_{index}", b"x")
    pipe.execute()

    deleted = delete_other_versions(redis_client, CURRENT)

    assert deleted["old00001"] == total
    assert redis_client.dbsize() == 0
