"""Datastream protocol conformance of the simulator, over real sockets."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
import websocket

from replicator.simulator import Simulator
from tests.simulator_helpers import (
    API_KEY,
    StreamClient,
    running,
    stream_key,
    wait_until,
    ws_url,
)


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    with running() as simulator:
        yield simulator


def _company_id(simulator: Simulator, index: int) -> str:
    return simulator.catalog.entity_id("comp", index)


def _user_id(simulator: Simulator, index: int) -> str:
    return simulator.catalog.entity_id("user", index)


def test_protocol_records_headers(simulator: Simulator) -> None:
    client = StreamClient(
        simulator,
        extra_headers={
            "X-Schematic-Datastream-Mode": "replicator",
            "X-Schematic-Client": "test-client",
            "X-Schematic-Client-Version": "1.2.3",
            "User-Agent": "pytest",
        },
    )
    client.subscribe_all()
    info = wait_until(lambda: simulator.connections and simulator.connections[-1])

    assert info.headers["X-Schematic-Api-Key"] == API_KEY
    assert info.headers["X-Schematic-Datastream-Mode"] == "replicator"
    assert info.headers["X-Schematic-Client-Version"] == "1.2.3"
    assert "User-Agent" not in info.headers
    assert info.authorized
    assert info.subscriptions == ["rulesengine.Companies", "rulesengine.Users", "rulesengine.Flags"]
    client.close()
    wait_until(lambda: not info.open, what="the connection to close")
    assert info.closed_at is not None


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_protocol_auth_close_4001(simulator: Simulator, key: str | None) -> None:
    client = StreamClient(simulator, key=key)
    opcode, frame = client.ws.recv_data_frame(True)

    assert client.ws.status == 101
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 4001
    info = simulator.connections[-1]
    assert not info.authorized
    assert info.rejected == "close"
    assert info.close_code == 4001


def test_protocol_auth_http_401() -> None:
    with running(auth_reject_style="http") as simulator:
        with pytest.raises(websocket.WebSocketBadStatusException) as raised:
            StreamClient(simulator, key="wrong-key")

        assert raised.value.status_code == 401
        assert simulator.connections[-1].rejected == "http"
        assert StreamClient(simulator).subscribe_all()[0]["data"] == {"subscribed": True}


def test_protocol_three_requests(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    companies, users, flags = client.subscribe_all()

    assert companies == {
        "entity_type": "rulesengine.Companies",
        "message_type": "full",
        "entity_id": None,
        "data": {"subscribed": True},
    }
    assert users["entity_type"] == "rulesengine.Users"
    assert "stream_id" not in users
    assert flags["entity_type"] == "rulesengine.Flags"
    assert flags["message_type"] == "full"
    assert "stream_id" not in flags
    assert {flag["key"] for flag in flags["data"]} == set(simulator.state.flags)


def test_protocol_action_optional(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.ws.send(json.dumps({"data": {"entity_type": "rulesengine.Companies"}}))
    client.ws.send(json.dumps({"data": {"action": "", "entity_type": "rulesengine.Users"}}))

    assert client.receive()["data"] == {"subscribed": True}
    assert client.receive()["entity_type"] == "rulesengine.Users"


def test_protocol_change_messages(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.subscribe_all()
    company_id = _company_id(simulator, 1)
    before = simulator.company(company_id)
    simulator.patch_company(company_id, {"traits": []})
    simulator.delete_company(company_id)
    simulator.patch_user(_user_id(simulator, 2), {"keys": {"slack_id": "U1"}})
    partial, delete, user = client.receive_many(3)

    assert partial["entity_type"] == "rulesengine.Company"
    assert partial["entity_id"] == company_id
    assert partial["data"] == {"traits": []}
    assert delete["message_type"] == "delete"
    assert delete["data"] == {**before, "traits": []}  # type: ignore[dict-item]
    assert user["entity_id"] == _user_id(simulator, 2)
    assert user["data"] == {"keys": {"slack_id": "U1"}}


def test_protocol_stream_ids_increase(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.subscribe_all()
    published = [
        simulator.patch_company(_company_id(simulator, i % 30), {"traits": []}) for i in range(300)
    ]
    received = [m["stream_id"] for m in client.receive_many(300)]

    assert received == published
    keys = [stream_key(stream_id) for stream_id in received]
    assert all(a < b for a, b in itertools.pairwise(keys))


def test_protocol_routes_by_subscription(simulator: Simulator) -> None:
    users_only = StreamClient(simulator)
    users_only.request("rulesengine.Users")
    users_only.receive()
    flags_only = StreamClient(simulator)
    flags_only.request("rulesengine.Flags")
    flags_only.receive()
    flag = next(iter(simulator.state.flags.values()))

    simulator.patch_company(_company_id(simulator, 0), {"traits": []})
    simulator.upsert_flag({**flag, "default_value": not flag["default_value"]})
    user_sid = simulator.patch_user(_user_id(simulator, 0), {"traits": []})

    assert users_only.receive()["stream_id"] == user_sid
    flag_message = flags_only.receive()
    assert flag_message["entity_type"] == "rulesengine.Flag"
    assert flag_message["entity_id"] is None
    assert flag_message["data"]["key"] == flag["key"]


def test_protocol_flag_delete_whole_flag(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.subscribe_all()
    key, flag = next(iter(simulator.state.flags.items()))
    simulator.delete_flag(key)
    message = client.receive()

    assert message["message_type"] == "delete"
    assert message["data"] == flag
    assert simulator.flag(key) is None


def test_protocol_replay_resends_window(simulator: Simulator) -> None:
    first = StreamClient(simulator)
    first.subscribe_all()
    ids = [simulator.patch_company(_company_id(simulator, i), {"traits": []}) for i in range(5)]
    ids.append(simulator.patch_user(_user_id(simulator, 0), {"traits": []}))
    first.receive_many(6)

    second = StreamClient(simulator)
    answers = second.subscribe_all(replay_from=ids[1])
    live_id = simulator.patch_company(_company_id(simulator, 9), {"traits": []})
    replayed = [m for m in answers + second.receive_many(5) if "stream_id" in m]

    assert [m["stream_id"] for m in replayed] == [*ids[2:], live_id]
    assert simulator.connections[-1].replayed == 4
    assert simulator.connections[-1].replay_from == ids[1]


def test_protocol_replay_sends_flags_snapshot(simulator: Simulator) -> None:
    sid = simulator.patch_company(_company_id(simulator, 0), {"traits": []})
    client = StreamClient(simulator)
    messages = client.subscribe_all(replay_from=sid)

    assert [m["entity_type"] for m in messages] == [
        "rulesengine.Companies",
        "rulesengine.Users",
        "rulesengine.Flags",
    ]


def test_protocol_replay_without_snapshot() -> None:
    with running(replay_sends_flags_snapshot=False) as simulator:
        sid = simulator.patch_company(simulator.catalog.entity_id("comp", 0), {"traits": []})
        client = StreamClient(simulator)
        client.request("rulesengine.Flags", replay_from=sid)
        client.request("rulesengine.Companies", replay_from=sid)

        assert client.receive()["entity_type"] == "rulesengine.Companies"
        assert simulator.connections[-1].subscriptions[0] == "rulesengine.Flags"


@pytest.mark.parametrize("replay_from", ["aged-out", "not-an-id", "99999999999999-0"])
def test_protocol_reload_when_not_retained(replay_from: str) -> None:
    with running(retention=3) as simulator:
        ids = [
            simulator.patch_company(simulator.catalog.entity_id("comp", i), {"traits": []})
            for i in range(5)
        ]
        client = StreamClient(simulator)
        client.request(
            "rulesengine.Companies",
            replay_from=ids[0] if replay_from == "aged-out" else replay_from,
        )
        reload, confirmation = client.receive_many(2)

        assert reload == {
            "entity_type": "rulesengine.Companies",
            "message_type": "reload",
            "entity_id": None,
            "data": None,
        }
        assert confirmation["data"] == {"subscribed": True}
        assert simulator.connections[-1].reloads == 1


def test_protocol_replay_at_window_edge() -> None:
    with running(retention=3) as simulator:
        ids = [
            simulator.patch_company(simulator.catalog.entity_id("comp", i), {"traits": []})
            for i in range(5)
        ]
        client = StreamClient(simulator)
        client.request("rulesengine.Companies", replay_from=ids[1])
        replayed = client.receive_many(3)

        assert [m["stream_id"] for m in replayed] == ids[2:]


def test_protocol_ping_pong(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.ws.ping(b"hello")
    opcode, frame = client.ws.recv_data_frame(True)

    assert opcode == websocket.ABNF.OPCODE_PONG
    assert frame.data == b"hello"
    assert simulator.connections[-1].pongs == 1


@pytest.mark.parametrize(
    "request_text, fragment",
    [
        ('{"data":{"action":"start","entity_type":"rulesengine.Plans"}}', "Unknown entity type"),
        (
            '{"data":{"action":"start","entity_type":"rulesengine.Company","keys":{"a":"b"}}}',
            "not served",
        ),
        ('{"data":{"action":"pause","entity_type":"rulesengine.Users"}}', "Invalid action"),
        ("not json", "not JSON"),
        ('{"entity_type":"rulesengine.Users"}', "Invalid request"),
    ],
)
def test_protocol_error_replies(simulator: Simulator, request_text: str, fragment: str) -> None:
    client = StreamClient(simulator)
    client.ws.send(request_text)
    reply = client.receive()

    assert reply["message_type"] == "error"
    assert fragment in reply["data"]["error"]
    assert "stream_id" not in reply


def test_protocol_unknown_type_names_it(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.request("rulesengine.Plans")
    reply = client.receive()

    assert reply["entity_type"] == "rulesengine.Plans"
    assert reply["data"]["entity_type"] == "rulesengine.Plans"


def test_protocol_stop_unsubscribes(simulator: Simulator) -> None:
    client = StreamClient(simulator)
    client.request("rulesengine.Companies")
    client.request("rulesengine.Users")
    client.receive_many(2)
    client.ws.send(json.dumps({"data": {"action": "stop", "entity_type": "rulesengine.Companies"}}))
    wait_until(lambda: len(simulator.connections[-1].requests) == 3)
    simulator.patch_company(_company_id(simulator, 0), {"traits": []})
    user_sid = simulator.patch_user(_user_id(simulator, 0), {"traits": []})

    assert client.receive()["stream_id"] == user_sid


def test_protocol_url_path(simulator: Simulator) -> None:
    assert ws_url(simulator).endswith("/datastream")
    assert ws_url(simulator).startswith("ws://127.0.0.1:")


def test_protocol_zero_retention_reloads() -> None:
    with running(retention=0) as simulator:
        sid = simulator.patch_company(simulator.catalog.entity_id("comp", 0), {"traits": []})
        client = StreamClient(simulator)
        client.request("rulesengine.Companies", replay_from=sid)
        client.request("rulesengine.Users", replay_from="1-0")

        assert simulator.last_stream_id == sid
        assert client.receive()["data"] == {"subscribed": True}
        assert client.receive()["entity_type"] == "rulesengine.Users"
        assert simulator.connections[-1].reloads == 0
