"""FlagsApplier against a real redis-server."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from replicator import keys
from replicator.status import StatusBlock
from workers.flags import FlagsApplier
from workers.writer import Writer

VERSION = "testver1"


def flag(flag_id: str, key: str, default: bool = False, **fields: Any) -> dict[str, Any]:
    return {
        "id": flag_id,
        "account_id": "acct",
        "environment_id": "env",
        "key": key,
        "default_value": default,
        "rules": [],
        **fields,
    }


def frame(op: str, data: Any, stream_id: str = "") -> tuple[str, str, str, bytes]:
    entity_type = "rulesengine.Flags" if op == "snapshot" else "rulesengine.Flag"
    message_type = "full" if op == "snapshot" else op
    body = {"entity_type": entity_type, "message_type": message_type, "data": data}
    if stream_id:
        body["stream_id"] = stream_id
    return (op, "", stream_id, orjson.dumps(body))


def make_applier(client: redis.Redis) -> tuple[FlagsApplier, StatusBlock]:
    status = StatusBlock.create()
    return FlagsApplier(VERSION, Writer(client, 0), status), status


def stored_keys(client: redis.Redis) -> set[str]:
    return {key.decode() for key in client.scan_iter(match=keys.flag_pattern(VERSION))}


def test_snapshot_writes_flags_and_reports_loaded(redis_client: redis.Redis) -> None:
    applier, status = make_applier(redis_client)

    applier.apply([frame("snapshot", [flag("f1", "Beta-Feature"), flag("f2", "other")])])

    assert stored_keys(redis_client) == {
        keys.flag_key(VERSION, "beta-feature"),
        keys.flag_key(VERSION, "other"),
    }
    stored = orjson.loads(redis_client.get(keys.flag_key(VERSION, "beta-feature")))
    assert stored["key"] == "Beta-Feature"
    assert status.globals.flags_loaded == 1
    assert status.globals.flags_count == 2


def test_snapshot_removes_flags_it_does_not_name(redis_client: redis.Redis) -> None:
    applier, _ = make_applier(redis_client)
    applier.apply([frame("snapshot", [flag("f1", "a"), flag("f2", "b")])])

    applier.apply([frame("snapshot", [flag("f2", "b")])])

    assert stored_keys(redis_client) == {keys.flag_key(VERSION, "b")}


def test_empty_snapshot_removes_every_flag(redis_client: redis.Redis) -> None:
    applier, status = make_applier(redis_client)
    applier.apply([frame("snapshot", [flag("f1", "a")])])

    applier.apply([frame("snapshot", [])])

    assert stored_keys(redis_client) == set()
    assert status.globals.flags_loaded == 1


def test_snapshot_keeps_stored_copy_of_invalid_flag(redis_client: redis.Redis) -> None:
    applier, _ = make_applier(redis_client)
    applier.apply([frame("snapshot", [flag("f1", "a")])])

    outcome = applier.apply([frame("snapshot", [{"id": "f1", "key": "a", "rules": "oops"}])])

    assert outcome.skipped == 0
    assert outcome.applied == 1
    assert stored_keys(redis_client) == {keys.flag_key(VERSION, "a")}


def test_snapshot_counts_as_one_change(redis_client: redis.Redis) -> None:
    applier, _ = make_applier(redis_client)

    outcome = applier.apply(
        [frame("snapshot", [flag("f1", "a"), flag("f2", "b"), flag("f3", "c")])]
    )

    assert outcome.applied == 1
    assert outcome.skipped == 0
    assert len(stored_keys(redis_client)) == 3


def test_single_flag_upsert_partial_and_delete(redis_client: redis.Redis) -> None:
    applier, _ = make_applier(redis_client)
    key = keys.flag_key(VERSION, "a")

    applier.apply([frame("full", flag("f1", "a"), "1-0")])
    applier.apply([frame("partial", {"id": "f1", "key": "a", "default_value": True}, "2-0")])
    patched = orjson.loads(redis_client.get(key))
    outcome = applier.apply([frame("delete", {"id": "f1"}, "3-0")])

    assert patched["default_value"] is True
    assert patched["environment_id"] == "env"
    assert redis_client.get(key) is None
    assert outcome.acks == ["3-0"]


def test_flag_key_rename_removes_old_key(redis_client: redis.Redis) -> None:
    applier, _ = make_applier(redis_client)
    applier.apply([frame("full", flag("f1", "old-name"), "1-0")])

    applier.apply([frame("full", flag("f1", "new-name"), "2-0")])

    assert stored_keys(redis_client) == {keys.flag_key(VERSION, "new-name")}


def test_delete_of_unknown_flag_id_is_skipped(redis_client: redis.Redis) -> None:
    applier, _ = make_applier(redis_client)

    outcome = applier.apply([frame("delete", {"id": "never-seen"}, "1-0")])

    assert outcome.skipped == 1
    assert outcome.acks == ["1-0"]
