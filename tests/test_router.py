from __future__ import annotations

import orjson

from replicator import router


def frame(**fields: object) -> bytes:
    return orjson.dumps(fields)


def test_route_company_change_goes_to_owning_shard() -> None:
    raw = frame(
        entity_type="rulesengine.Company",
        message_type="full",
        entity_id="comp_1",
        stream_id="10-0",
        data={"id": "comp_1"},
    )

    route = router.route(raw, 4)

    assert route.action == "worker"
    assert route.kind == router.COMPANY
    assert route.shard == router.shard_for("comp_1", 4)
    assert route.change == ("full", "comp_1", "10-0", raw)
    assert route.stream_id == "10-0"


def test_route_uses_data_id_without_entity_id() -> None:
    raw = frame(
        entity_type="rulesengine.User",
        message_type="delete",
        stream_id="1-1",
        data={"id": "user_9", "keys": {}},
    )

    route = router.route(raw, 2)

    assert route.action == "worker"
    assert route.kind == router.USER
    assert route.entity_id == "user_9"


def test_route_rejects_entity_change_without_any_id() -> None:
    raw = frame(
        entity_type="rulesengine.Company",
        message_type="partial",
        stream_id="1-2",
        data={"traits": []},
    )

    route = router.route(raw, 2)

    assert route.action == "invalid"
    assert "entity_id" in route.detail
    assert route.stream_id == "1-2"


def test_route_flags_snapshot_and_single_flag() -> None:
    snapshot = frame(entity_type="rulesengine.Flags", message_type="full", data=[])
    single = frame(
        entity_type="rulesengine.Flag", message_type="delete", stream_id="5-0", data={"key": "f"}
    )

    snapshot_route = router.route(snapshot, 3)
    single_route = router.route(single, 3)

    assert snapshot_route.kind == router.FLAGS
    assert snapshot_route.change is not None
    assert snapshot_route.change[0] == "snapshot"
    assert single_route.kind == router.FLAGS
    assert single_route.change == ("delete", "", "5-0", single)


def test_route_special_messages() -> None:
    cases = {
        frame(entity_type="rulesengine.Companies", message_type="reload"): "reload",
        frame(entity_type="rulesengine.Users", message_type="full", data={}): "confirmation",
        frame(
            entity_type="rulesengine.Company", message_type="error", data={"error": "nope"}
        ): "error",
        frame(entity_type="rulesengine.Flags", message_type="partial", data=[]): "ignore",
    }
    for raw, action in cases.items():
        assert router.route(raw, 2).action == action, raw


def test_route_invalid_frames() -> None:
    cases = [
        b"{not json",
        b"[1, 2]",
        frame(entity_type=5, message_type="full"),
        frame(entity_type="rulesengine.Company", message_type="full", entity_id=7),
        frame(entity_type="rulesengine.Plan", message_type="full", data={}),
        frame(entity_type="rulesengine.Company", message_type="upsert", entity_id="c"),
    ]
    for raw in cases:
        route = router.route(raw, 2)
        assert route.action == "invalid", raw
        assert route.detail, raw


def test_shard_for_is_stable_and_in_range() -> None:
    shards = {router.shard_for(f"comp_{i}", 5) for i in range(200)}

    assert shards == set(range(5))
    assert router.shard_for("comp_42", 5) == router.shard_for("comp_42", 5)


def test_envelope_before_data_is_read_without_data() -> None:
    raw = (
        b'{"entity_type":"rulesengine.Company","message_type":"partial","entity_id":"c1",'
        b'"stream_id":"9-1","data":{"keys":{"domain":"x,\\"data\\":y"}}}'
    )

    envelope = router.parse_envelope(raw)
    route = router.route(raw, 2)

    assert "data" not in envelope
    assert envelope["entity_id"] == "c1"
    assert route.action == "worker"
    assert route.change == ("partial", "c1", "9-1", raw)


def test_envelope_in_any_order_falls_back_to_full_decode() -> None:
    raw = frame(
        data={"id": "c2"}, stream_id="3-0", entity_type="rulesengine.Company", message_type="delete"
    )

    route = router.route(raw, 2)

    assert route.action == "worker"
    assert route.entity_id == "c2"


def test_invalid_data_reaches_the_worker_to_be_skipped_there() -> None:
    raw = (
        b'{"entity_type":"rulesengine.Company","message_type":"full","entity_id":"c3",'
        b'"stream_id":"4-0","data":{not json}}'
    )

    route = router.route(raw, 2)

    assert route.action == "worker"
    assert route.stream_id == "4-0"


def test_route_entity_change_fills_every_field() -> None:
    raw = frame(
        entity_type="rulesengine.User",
        message_type="partial",
        entity_id="user_3",
        stream_id="7-2",
        data={"traits": []},
    )

    route = router.route(raw, 3)

    assert route == router.Route(
        action="worker",
        kind=router.USER,
        shard=router.shard_for("user_3", 3),
        change=("partial", "user_3", "7-2", raw),
        stream_id="7-2",
        entity_type="rulesengine.User",
        message_type="partial",
        entity_id="user_3",
        detail="",
    )


def test_route_entity_change_with_null_stream_id() -> None:
    raw = frame(
        entity_type="rulesengine.Company",
        message_type="delete",
        entity_id="c9",
        stream_id=None,
        data={"id": "c9"},
    )

    route = router.route(raw, 2)

    assert route.action == "worker"
    assert route.stream_id == ""
    assert route.change == ("delete", "c9", "", raw)
