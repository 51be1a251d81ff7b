"""EntityApplier against a real redis-server: folding, lookups, deletes, loads, sweeps."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import redis

from replicator import keys, records
from workers.entities import EntityApplier
from workers.lookups import LookupMemory
from workers.writer import Writer

VERSION = "testver1"


def company(company_id: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": company_id,
        "account_id": "acct",
        "environment_id": "env",
        "keys": {"domain": f"{company_id}.example"},
    }
    record.update(fields)
    return record


def stream(
    op: str, entity_id: str, data: Any, stream_id: str = "1-0"
) -> tuple[str, str, str, bytes]:
    frame = {
        "entity_type": "rulesengine.Company",
        "message_type": op,
        "entity_id": entity_id,
        "stream_id": stream_id,
        "data": data,
    }
    return (op, entity_id, stream_id, orjson.dumps(frame))


def load(record: dict[str, Any], generation: str = "1") -> tuple[str, str, str, bytes]:
    normalized = records.normalize_company(record)
    return ("load", record["id"], generation, records.encode(normalized))


def make_applier(client: redis.Redis, ttl_s: float = 0) -> EntityApplier:
    return EntityApplier("company", VERSION, Writer(client, ttl_s))


def stored(client: redis.Redis, company_id: str) -> dict[str, Any] | None:
    raw = client.get(keys.record_key("company", VERSION, company_id))
    return None if raw is None else orjson.loads(raw)


def lookup(client: redis.Redis, name: str, value: str) -> bytes | None:
    result = client.get(keys.lookup_key("company", VERSION, name, value))
    return None if result is None else bytes(result)


def test_full_writes_record_and_lower_cased_lookups(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)

    outcome = applier.apply([stream("full", "c1", company("c1", keys={"Domain": "Acme.COM"}))])

    assert outcome.applied == 1
    assert outcome.acks == ["1-0"]
    assert stored(redis_client, "c1")["keys"] == {"Domain": "Acme.COM"}
    assert lookup(redis_client, "domain", "acme.com") == b'"c1"'


def test_partial_merges_into_stored_record(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", credit_balances={"a": 1.0}))])

    applier.apply(
        [stream("partial", "c1", {"keys": {"crm": "X1"}, "credit_balances": {"b": 2}}, "2-0")]
    )

    record = stored(redis_client, "c1")
    assert record["keys"] == {"domain": "c1.example", "crm": "X1"}
    assert record["credit_balances"] == {"a": 1.0, "b": 2}
    assert lookup(redis_client, "crm", "x1") == b'"c1"'


def test_partial_for_unknown_entity_is_skipped(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    applier = make_applier(redis_client)

    with caplog.at_level(logging.INFO, logger="workers.entities"):
        outcome = applier.apply([stream("partial", "ghost", {"keys": {"a": "b"}})])

    skips = [record for record in caplog.records if "ghost" in record.getMessage()]
    assert outcome.skipped == 1
    assert outcome.acks == ["1-0"]
    assert stored(redis_client, "ghost") is None
    assert [record.levelno for record in skips] == [logging.INFO]
    assert "invalid" not in skips[0].getMessage()


def test_key_change_removes_stale_lookup(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", keys={"domain": "old.io"}))])

    applier.apply([stream("full", "c1", company("c1", keys={"domain": "new.io"}), "2-0")])

    assert lookup(redis_client, "domain", "old.io") is None
    assert lookup(redis_client, "domain", "new.io") == b'"c1"'


def test_delete_removes_record_and_stored_lookups(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", keys={"domain": "a.io", "crm": "7"}))])

    # The delete message names only one key; the stored record knows both.
    applier.apply([stream("delete", "c1", {"id": "c1", "keys": {"domain": "a.io"}}, "2-0")])

    assert stored(redis_client, "c1") is None
    assert lookup(redis_client, "domain", "a.io") is None
    assert lookup(redis_client, "crm", "7") is None


def test_moved_lookup_survives_old_owner_cleanup(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", keys={"domain": "shared.io"}))])
    # Another shard hands the domain to c2 before c1's stale lookup is removed.
    redis_client.set(keys.lookup_key("company", VERSION, "domain", "shared.io"), b'"c2"')

    applier.apply([stream("full", "c1", company("c1", keys={"domain": "mine.io"}), "2-0")])

    assert lookup(redis_client, "domain", "shared.io") == b'"c2"'


def test_delete_then_partial_in_one_batch_stays_deleted(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1"))])

    outcome = applier.apply(
        [
            stream("delete", "c1", {"id": "c1", "keys": {}}, "2-0"),
            stream("partial", "c1", {"keys": {"x": "y"}}, "3-0"),
        ]
    )

    assert stored(redis_client, "c1") is None
    assert outcome.skipped == 1
    assert outcome.acks == ["2-0", "3-0"]


def test_invalid_full_is_skipped_without_touching_others(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)

    outcome = applier.apply(
        [
            stream("full", "bad", {"id": "bad", "keys": ["not", "a", "map"]}),
            stream("full", "good", company("good"), "2-0"),
        ]
    )

    assert outcome.skipped == 1
    assert outcome.applied == 1
    assert stored(redis_client, "bad") is None
    assert stored(redis_client, "good") is not None


def test_ttl_applies_to_record_and_lookups(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client, ttl_s=90)

    applier.apply([stream("full", "c1", company("c1"))])

    record_ttl = redis_client.pttl(keys.record_key("company", VERSION, "c1"))
    lookup_ttl = redis_client.pttl(keys.lookup_key("company", VERSION, "domain", "c1.example"))
    assert 0 < record_ttl <= 90_000
    assert 0 < lookup_ttl <= 90_000


def test_load_skips_entity_the_stream_touched(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.begin("1")
    applier.apply([stream("full", "c1", company("c1", base_plan_id="plan_new"))])

    applier.apply([load(company("c1", base_plan_id="plan_old")), load(company("c2"))])

    assert stored(redis_client, "c1")["base_plan_id"] == "plan_new"
    assert stored(redis_client, "c2") is not None


def test_repeated_load_keeps_first_copy(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.begin("1")

    first = applier.apply([load(company("c1", base_plan_id="plan_a"))])
    again = applier.apply([load(company("c1", base_plan_id="plan_b"))])

    assert first.applied == 1
    assert again.applied == 0
    assert again.skipped == 1
    assert stored(redis_client, "c1")["base_plan_id"] == "plan_a"


def test_parked_partial_applies_on_top_of_later_load(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.begin("1")

    parked = applier.apply([stream("partial", "c1", {"keys": {"crm": "late"}})])
    applier.apply([load(company("c1"))])

    assert parked.skipped == 0
    assert stored(redis_client, "c1")["keys"] == {"domain": "c1.example", "crm": "late"}
    assert lookup(redis_client, "crm", "late") == b'"c1"'


def test_settled_set_kept_only_during_load(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)

    applier.apply([stream("full", "c1", company("c1"))])
    outside = len(applier.settled)
    applier.begin("1")
    applier.apply([stream("full", "c2", company("c2"), "2-0")])
    during = ("c1" in applier.settled, "c2" in applier.settled, len(applier.settled))
    applier.end("1")

    assert outside == 0
    assert during == (False, True, 1)
    assert len(applier.settled) == 0


def test_sweep_deletes_untouched_entity_only(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "old", company("old")), stream("full", "new", company("new"))])
    applier.begin("2")
    applier.apply([stream("full", "new", company("new", base_plan_id="p"), "3-0")])

    applier.apply([("sweep", "old", "2", b""), ("sweep", "new", "2", b"")])

    assert stored(redis_client, "old") is None
    assert lookup(redis_client, "domain", "old.example") is None
    assert stored(redis_client, "new") is not None


def test_sweep_lookup_removes_only_lookups_the_record_lacks(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1"))])
    orphan = keys.lookup_key("company", VERSION, "domain", "gone.example")
    redis_client.set(orphan, b'"c1"')
    live = keys.lookup_key("company", VERSION, "domain", "c1.example")

    applier.apply(
        [("sweep_lookup", "c1", "1", orphan.encode()), ("sweep_lookup", "c1", "1", live.encode())]
    )

    assert redis_client.get(orphan) is None
    assert redis_client.get(live) == b'"c1"'


def test_partial_during_load_waits_for_fresh_record(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", base_plan_id="stale", keys={"a": "1"}))])
    applier.begin("2")

    # Merged into the stale stored copy, this partial would make the load skip the fresh one.
    applier.apply([stream("partial", "c1", {"keys": {"b": "2"}}, "2-0")])
    still_stale = stored(redis_client, "c1")
    applier.apply([load(company("c1", base_plan_id="fresh", keys={"a": "1"}), "2")])

    assert still_stale["base_plan_id"] == "stale"
    assert stored(redis_client, "c1")["base_plan_id"] == "fresh"
    assert stored(redis_client, "c1")["keys"] == {"a": "1", "b": "2"}


def test_full_during_load_discards_older_parked_partial(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.begin("1")

    applier.apply([stream("partial", "c1", {"keys": {"old": "x"}}, "1-0")])
    applier.apply([stream("full", "c1", company("c1", keys={"new": "y"}), "2-0")])
    applier.apply([load(company("c1", keys={"rest": "z"}))])

    assert stored(redis_client, "c1")["keys"] == {"new": "y"}
    assert applier.parked_count == 0


class FailingOnceWriter(Writer):
    """Fails the first batch write after it was armed, as a Redis outage would."""

    armed = False

    def write_batch(self, *args: Any, **kwargs: Any) -> None:
        if self.armed:
            self.armed = False
            raise redis.ConnectionError("simulated outage")
        super().write_batch(*args, **kwargs)


class RecordsFirstWriter(Writer):
    """Writes the records and lookups of the armed batch but not its deletes, then fails.

    A cluster pipeline can end this way when the shard of a stale lookup fails and the
    shard of the record accepts the write.
    """

    armed = False

    def write_batch(self, values: Any, deletes: Any, conditional_deletes: Any) -> None:
        if not self.armed:
            super().write_batch(values, deletes, conditional_deletes)
            return
        self.armed = False
        super().write_batch(values, deletes, [])
        raise redis.ConnectionError("simulated failure of the lookup's shard")


def test_retried_partial_deletes_renamed_lookup(redis_client: redis.Redis) -> None:
    writer = RecordsFirstWriter(redis_client, 0)
    applier = EntityApplier("company", VERSION, writer)
    applier.apply([stream("full", "c1", company("c1", keys={"crm": "A"}))])
    rename = [stream("partial", "c1", {"keys": {"crm": "B"}}, "2-0")]

    writer.armed = True
    with pytest.raises(redis.ConnectionError):
        applier.apply(rename)
    applier.apply(rename)  # The worker retries the same batch.

    assert stored(redis_client, "c1")["keys"] == {"crm": "B"}
    assert lookup(redis_client, "crm", "B") == b'"c1"'
    assert lookup(redis_client, "crm", "A") is None
    assert applier.unconfirmed == {}


def test_remembered_lookups_survive_a_failed_write(redis_client: redis.Redis) -> None:
    writer = FailingOnceWriter(redis_client, 0)
    applier = EntityApplier("company", VERSION, writer)
    applier.apply([stream("full", "c1", company("c1", keys={"domain": "one.io"}))])
    rename = [stream("full", "c1", company("c1", keys={"domain": "two.io"}), "2-0")]

    writer.armed = True
    with pytest.raises(redis.ConnectionError):
        applier.apply(rename)
    applier.apply(rename)  # The worker retries the same batch.

    assert lookup(redis_client, "domain", "one.io") is None
    assert lookup(redis_client, "domain", "two.io") == b'"c1"'


def test_full_after_full_uses_remembered_lookups(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", keys={"domain": "a.io"}))])
    reads: list[list[str]] = []
    original = applier.writer.get_many
    applier.writer.get_many = lambda keys: reads.append(list(keys)) or original(keys)  # type: ignore[method-assign]

    applier.apply([stream("full", "c1", company("c1", keys={"domain": "b.io"}), "2-0")])

    assert reads == [[]]
    assert lookup(redis_client, "domain", "a.io") is None
    assert lookup(redis_client, "domain", "b.io") == b'"c1"'


def test_rename_after_lookup_sweep_deletes_old_lookup(redis_client: redis.Redis) -> None:
    # The sweep checks a lookup that the record still has, so the worker keeps it. A later
    # rename of that key must still delete it, without reading the record back.
    applier = make_applier(redis_client)
    original_keys = {"domain": "a.io", "crm": "0015"}
    applier.apply([stream("full", "c1", company("c1", keys=original_keys))])
    crm = keys.lookup_key("company", VERSION, "crm", "0015")
    applier.begin("2")
    applier.apply([("sweep_lookup", "c1", "2", crm.encode())])
    applier.end("2")
    after_sweep = lookup(redis_client, "crm", "0015")

    rename = {"domain": "a.io", "crm": "crm-changed"}
    applier.apply([stream("full", "c1", company("c1", keys=rename), "3-0")])

    assert after_sweep == b'"c1"'
    assert lookup(redis_client, "crm", "0015") is None
    assert lookup(redis_client, "crm", "crm-changed") == b'"c1"'


def test_parked_key_change_deletes_page_lookup(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.memory = LookupMemory(max_entities=1)
    applier.apply([stream("full", "c1", company("c1", keys={"crm": "A"}))])
    applier.begin("2")

    # The page was read before this change, so the loaded record still has crm A.
    applier.apply([stream("partial", "c1", {"keys": {"crm": "B"}}, "2-0")])
    # A change to another entity pushes c1 out of the worker's lookup memory.
    applier.apply([stream("full", "c2", company("c2"), "3-0")])
    forgotten = applier.memory.get("c1") is None
    applier.apply([load(company("c1", keys={"crm": "A"}), "2")])

    assert forgotten
    assert stored(redis_client, "c1")["keys"] == {"crm": "B"}
    assert lookup(redis_client, "crm", "A") is None
    assert lookup(redis_client, "crm", "B") == b'"c1"'


def test_abort_applies_parked_partials(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.apply([stream("full", "c1", company("c1", keys={"crm": "A"}))])
    applier.begin("2")
    applier.apply([stream("partial", "c1", {"keys": {"crm": "B"}}, "2-0")])
    parked = stored(redis_client, "c1")

    released = applier.abort("2")
    outcome = applier.apply(released)

    assert parked["keys"] == {"crm": "A"}
    assert outcome.applied == 1
    assert outcome.acks == []
    assert stored(redis_client, "c1")["keys"] == {"crm": "B"}
    assert lookup(redis_client, "crm", "A") is None
    assert applier.parked_count == 0
    assert applier.generation == ""


def test_abort_of_other_generation_is_ignored(redis_client: redis.Redis) -> None:
    applier = make_applier(redis_client)
    applier.begin("3")
    applier.apply([stream("partial", "c1", {"keys": {"crm": "B"}})])

    released = applier.abort("2")

    assert released == []
    assert applier.parked_count == 1
    assert applier.generation == "3"


def test_missed_entity_load_deletes_stored_lookup(redis_client: redis.Redis) -> None:
    # A worker of a new turn remembers nothing of c1, which is stored with domain o.io.
    make_applier(redis_client).apply([stream("full", "c1", company("c1", keys={"domain": "o.io"}))])
    applier = make_applier(redis_client)
    applier.begin("2")
    # The pages missed c1, so the sweep checked its lookup (which the stored record still
    # has) and then loaded c1 from GET /companies/c1.
    old = keys.lookup_key("company", VERSION, "domain", "o.io")
    applier.apply([("sweep_lookup", "c1", "2", old.encode())])
    applier.memory.forget("c1")
    missed = load(company("c1", keys={"domain": "n.io"}), "2")
    applier.apply([("load_missed", *missed[1:])])
    applier.end("2")

    assert stored(redis_client, "c1")["keys"] == {"domain": "n.io"}
    assert lookup(redis_client, "domain", "n.io") == b'"c1"'
    assert lookup(redis_client, "domain", "o.io") is None
