"""The mutation stream, the dump of the truth, bursts and the partial merge rules."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from replicator.simulator import Simulator
from replicator.simulator.partials import merge, merge_company, merge_user
from tests.simulator_helpers import StreamClient, running, stream_key, wait_until

Record = dict[str, Any]


def _apply(state: dict[str, Any], message: Record) -> None:
    """Apply one change message to a dataset-format state, as a replicator would."""
    kind = {
        "rulesengine.Company": "companies",
        "rulesengine.User": "users",
        "rulesengine.Flag": "flags",
    }[message["entity_type"]]
    table = state[kind]
    data = message["data"]
    if kind == "flags":
        if message["message_type"] == "delete":
            table.pop(data["key"])
        else:
            table[data["key"]] = data
    elif message["message_type"] == "full":
        table[message["entity_id"]] = data
    elif message["message_type"] == "partial":
        entity = "company" if kind == "companies" else "user"
        table[message["entity_id"]] = merge(entity, table[message["entity_id"]], data)
    else:
        table.pop(message["entity_id"])


def _indexed(dataset: dict[str, Any]) -> dict[str, Any]:
    return {
        "flags": {f["key"]: f for f in dataset["flags"]},
        "companies": {c["id"]: c for c in dataset["companies"]},
        "users": {u["id"]: u for u in dataset["users"]},
    }


def _run_mutations(simulator: Simulator, client: StreamClient, changes: int) -> list[Record]:
    simulator.start_mutations(1000)
    wait_until(lambda: simulator.seq >= changes, what=f"{changes} changes")
    simulator.stop_mutations()
    last = simulator.last_stream_id
    return client.receive_until(lambda m: m.get("stream_id") == last)


def test_mutations_reflected_in_dump(tmp_path: Path) -> None:
    with running(companies=60, users=60, flags=10) as simulator:
        start = _indexed(simulator.truth())
        client = StreamClient(simulator)
        client.subscribe_all()
        messages = _run_mutations(simulator, client, 400)
        for message in messages:
            _apply(start, message)
        path = tmp_path / "dump.json"
        last = simulator.dump_truth(str(path))
        dumped = json.loads(path.read_text())

    assert last == messages[-1]["stream_id"]
    assert dumped["last_stream_id"] == last
    assert _indexed(dumped) == start
    assert dumped == simulator.truth()


def test_mutations_mix_and_sizes() -> None:
    with running(companies=80, users=80, flags=10) as simulator:
        client = StreamClient(simulator)
        client.subscribe_all()
        messages = _run_mutations(simulator, client, 600)
        kinds = {(m["entity_type"], m["message_type"]) for m in messages}

        assert {("rulesengine.Company", t) for t in ("full", "partial", "delete")} <= kinds
        assert {("rulesengine.User", t) for t in ("full", "partial", "delete")} <= kinds
        assert ("rulesengine.Flag", "full") in kinds or ("rulesengine.Flag", "partial") in kinds
        assert 60 <= simulator.count("company") <= 100
        assert 60 <= simulator.count("user") <= 100
        assert 5 <= len(simulator.state.flags) <= 15
        partial_fields = {
            next(iter(m["data"]))
            for m in messages
            if m["message_type"] == "partial" and "Company" in m["entity_type"]
        }
        assert partial_fields == {"traits", "metrics", "keys", "credit_balances"}


def test_mutations_keep_keys_unique() -> None:
    with running(companies=50, users=50, flags=5) as simulator:
        client = StreamClient(simulator)
        client.subscribe_all()
        _run_mutations(simulator, client, 500)
        truth = simulator.truth()

    for section in ("companies", "users"):
        lookups = [
            (name, value.lower())
            for record in truth[section]
            for name, value in record["keys"].items()
        ]
        assert len(lookups) == len(set(lookups)), section


def test_mutations_stream_ids_increase() -> None:
    with running(companies=30, users=30, flags=5) as simulator:
        client = StreamClient(simulator)
        client.subscribe_all()
        messages = _run_mutations(simulator, client, 300)
        keys = [stream_key(m["stream_id"]) for m in messages if "stream_id" in m]

    assert len(keys) >= 300
    assert all(a < b for a, b in itertools.pairwise(keys))


def test_dump_reloads_as_dataset(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    with running(companies=20, users=20, flags=5) as simulator:
        simulator.delete_company(simulator.catalog.entity_id("comp", 0))
        last = simulator.patch_user(simulator.catalog.entity_id("user", 1), {"traits": []})
        simulator.dump_truth(str(path))
        truth = simulator.truth()

    with running(dataset_path=str(path)) as restarted:
        client = StreamClient(restarted)
        client.request("rulesengine.Companies", replay_from=last)

        assert restarted.truth() == truth
        assert restarted.last_stream_id == last
        assert client.receive()["data"] == {"subscribed": True}
        assert restarted.connections[-1].reloads == 0


def test_burst_sends_and_records_times() -> None:
    with running(companies=50, users=0, flags=0) as simulator:
        client = StreamClient(simulator)
        client.request("rulesengine.Companies")
        client.receive()
        result = simulator.burst(500, pool_size=20)
        received = client.receive_many(500)

        assert [m["stream_id"] for m in received] == result.stream_ids
        wait_until(lambda: all(s in simulator.send_times for s in result.stream_ids))
        assert all(len(m["data"]["keys"]) == 3 for m in received)
        assert 1300 <= len(json.dumps(received[0], separators=(",", ":"))) <= 1800
        assert simulator.company(received[-1]["entity_id"]) == received[-1]["data"]


def test_burst_at_rate_publishes_all() -> None:
    with running(companies=10, users=0, flags=0) as simulator:
        result = simulator.burst(50, rate=500.0)

        assert len(result.stream_ids) == 50
        assert result.publish_rate > 0
        assert simulator.seq == 50


def test_merge_company_rules() -> None:
    base: Record = {
        "id": "c",
        "keys": {"a": "1"},
        "credit_balances": {"x": 1.0, "y": 2.0},
        "metrics": [
            {
                "event_subtype": "e",
                "period": "all_time",
                "month_reset": "first_of_month",
                "value": 1,
            }
        ],
        "traits": [{"value": "t"}],
        "plan_ids": ["p"],
        "subscription": {"id": "s"},
        "entitlements": [
            {
                "feature_id": "f",
                "credit_id": "x",
                "credit_remaining": 1.0,
                "credit_total": 9,
                "credit_used": 8,
                "event_name": "e",
                "usage": 1,
            }
        ],
    }
    original = json.loads(json.dumps(base))
    merged = merge_company(
        base,
        {
            "keys": {"b": "2"},
            "credit_balances": {"x": 5.0},
            "plan_ids": [],
            "unknown": 1,
            "subscription": None,
            "metrics": {
                "event_subtype": "e",
                "period": "all_time",
                "month_reset": "first_of_month",
                "value": 7,
            },
        },
    )

    assert base == original
    assert merged["keys"] == {"a": "1", "b": "2"}
    assert merged["credit_balances"] == {"x": 5.0, "y": 2.0}
    assert merged["metrics"] == [
        {"event_subtype": "e", "period": "all_time", "month_reset": "first_of_month", "value": 7}
    ]
    assert merged["plan_ids"] == []
    assert merged["subscription"] is None
    assert "unknown" not in merged
    assert merged["entitlements"][0]["credit_remaining"] == 5.0
    assert merged["entitlements"][0]["usage"] == 7
    assert merged["entitlements"][0]["credit_total"] == 9


def test_merge_company_appends_metric() -> None:
    base: Record = {"id": "c", "metrics": None, "keys": None}
    new_metric = {
        "event_subtype": "e",
        "period": "current_day",
        "month_reset": "billing_cycle",
        "value": 3,
    }
    merged = merge_company(base, {"metrics": [new_metric], "keys": None})

    assert merged["metrics"] == [new_metric]
    assert merged["keys"] is None


def test_merge_company_entitlements_given() -> None:
    base: Record = {"id": "c", "entitlements": [{"credit_id": "x", "credit_remaining": 1}]}
    merged = merge_company(base, {"credit_balances": {"x": 4}, "entitlements": []})

    assert merged["entitlements"] == []
    assert merged["credit_balances"] == {"x": 4}


def test_merge_user_rules() -> None:
    base: Record = {"id": "u", "keys": {"email": "a@b"}, "traits": [], "rules": []}
    merged = merge_user(
        base, {"keys": {"slack_id": "U1"}, "traits": [{"value": "v"}], "metrics": []}
    )

    assert merged == {
        "id": "u",
        "keys": {"email": "a@b", "slack_id": "U1"},
        "traits": [{"value": "v"}],
        "rules": [],
    }
