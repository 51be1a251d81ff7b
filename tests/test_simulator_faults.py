"""Fault injection of the simulator, over real sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import websocket

from replicator.simulator import Simulator
from tests.simulator_helpers import API_KEY, StreamClient, rest, running, wait_until


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    with running(companies=20, users=20, flags=5) as simulator:
        yield simulator


def _subscribed(simulator: Simulator) -> StreamClient:
    client = StreamClient(simulator)
    client.subscribe_all()
    return client


def _admin(simulator: Simulator, body: object, key: str | None = API_KEY) -> requests.Response:
    headers = {"X-Schematic-Api-Key": key} if key else {}
    return requests.post(
        simulator.base_url + "/_simulator/faults", json=body, headers=headers, timeout=10
    )


@pytest.mark.parametrize("code", [1000, 1001])
def test_fault_clean_close(simulator: Simulator, code: int) -> None:
    client = _subscribed(simulator)

    assert simulator.faults.close(code) == 1
    opcode, frame = client.ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == code
    wait_until(lambda: not simulator.connections[-1].open, what="the server to record the close")
    assert simulator.connections[-1].close_code == code


def test_fault_reset_no_close_frame(simulator: Simulator) -> None:
    client = _subscribed(simulator)

    assert simulator.faults.reset() == 1
    with pytest.raises((ConnectionResetError, websocket.WebSocketConnectionClosedException)):
        client.ws.recv_data_frame(True)
    wait_until(lambda: not simulator.connections[-1].open)
    assert simulator.connections[-1].close_code == 1006


def test_fault_stall_until_cleared(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    simulator.faults.stall()
    client.ws.ping(b"are you there")
    sid = simulator.patch_company(simulator.catalog.entity_id("comp", 0), {"traits": []})
    wait_until(lambda: simulator.connections[-1].pings == 1, what="the ping to arrive")

    client.ws.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.ws.recv_data_frame(True)
    assert simulator.connections[-1].pongs == 0
    assert simulator.faults.clear_stall() == 1
    client.ws.settimeout(10)
    assert client.receive()["stream_id"] == sid


def test_fault_server_error_on_page(simulator: Simulator) -> None:
    simulator.faults.fail_page("/companies", offset=10, status=500, times=2)

    assert rest(simulator, "/companies", limit=10, offset=0).status_code == 200
    first = rest(simulator, "/companies", limit=10, offset=10)
    assert first.status_code == 500
    assert "Simulated failure 500" in first.json()["error"]
    assert rest(simulator, "/companies", limit=10, offset=10).status_code == 500
    assert rest(simulator, "/companies", limit=10, offset=10).status_code == 200


def test_fault_rate_limit_retry_after(simulator: Simulator) -> None:
    simulator.faults.rate_limit_page("/users/count", retry_after_s=3)
    limited = rest(simulator, "/users/count")

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert rest(simulator, "/users/count").status_code == 200


def test_fault_slow_page(simulator: Simulator) -> None:
    simulator.faults.slow_page("/users", offset=0, delay_s=0.3)
    started = time.monotonic()
    response = rest(simulator, "/users", limit=5, offset=0)

    assert response.status_code == 200
    assert len(response.json()["data"]) == 5
    assert time.monotonic() - started >= 0.29  # a lower bound: the page waited its delay
    assert simulator.faults.take_page_fault("/users", 0) is None


def test_fault_reload_message(simulator: Simulator) -> None:
    client = _subscribed(simulator)

    assert simulator.faults.send_reload() == 1
    assert client.receive() == {
        "entity_type": "rulesengine.Companies",
        "message_type": "reload",
        "entity_id": None,
        "data": None,
    }


def test_fault_invalid_json(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    before = simulator.truth()
    sid = simulator.faults.send_invalid_json()
    text = client.receive_text()

    assert f'"stream_id":"{sid}"' in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert simulator.truth() == {**before, "last_stream_id": sid}


@pytest.mark.parametrize(
    "inject, check",
    [
        ("send_wrong_types", lambda m: isinstance(m["data"]["keys"], list)),
        ("send_unknown_entity_type", lambda m: m["entity_type"] == "rulesengine.Plan"),
        ("send_unknown_message_type", lambda m: m["message_type"] == "upsert"),
        ("send_unknown_partial", lambda m: m["message_type"] == "partial"),
        ("send_missing_id", lambda m: "id" not in m["data"] and m["entity_id"]),
    ],
)
def test_fault_malformed_frames(
    simulator: Simulator, inject: str, check: Callable[[dict[str, object]], bool]
) -> None:
    client = _subscribed(simulator)
    before = simulator.truth()
    sid = getattr(simulator.faults, inject)()
    message = client.receive()

    assert message["stream_id"] == sid
    assert check(message)
    assert simulator.truth() == {**before, "last_stream_id": sid}


def test_fault_unknown_partial_id_absent(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    simulator.faults.send_unknown_partial()
    message = client.receive()

    assert simulator.company(message["entity_id"]) is None


def test_fault_huge_frame(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    before = simulator.truth()
    sid = simulator.faults.send_huge_frame()
    message = client.receive()
    padding = message["data"].pop("simulator_padding")

    assert len(padding) >= 20 * 1024 * 1024
    assert message["stream_id"] == sid
    assert message["data"] == simulator.company(message["entity_id"])
    assert simulator.truth() == {**before, "last_stream_id": sid}


@pytest.mark.parametrize("style", ["close", "http"])
def test_fault_auth_rejection_on_demand(simulator: Simulator, style: str) -> None:
    simulator.faults.reject_auth(style, times=1)
    if style == "http":
        with pytest.raises(websocket.WebSocketBadStatusException):
            StreamClient(simulator)
    else:
        _opcode, frame = StreamClient(simulator).ws.recv_data_frame(True)
        assert int.from_bytes(frame.data[:2], "big") == 4001

    assert simulator.connections[-1].authorized
    assert simulator.connections[-1].rejected == style
    assert StreamClient(simulator).subscribe_all()[0]["data"] == {"subscribed": True}


def test_fault_auth_rejection_until_cleared(simulator: Simulator) -> None:
    simulator.faults.reject_auth("http", times=None)
    for _ in range(3):
        with pytest.raises(websocket.WebSocketBadStatusException):
            StreamClient(simulator)
    simulator.faults.clear_auth_rejection()

    assert StreamClient(simulator).subscribe_all()[0]["data"] == {"subscribed": True}


def test_fault_admin_endpoint(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    response = _admin(simulator, {"kind": "reload"})

    assert response.status_code == 200
    assert response.json() == {"ok": True, "kind": "reload", "result": 1}
    assert client.receive()["message_type"] == "reload"
    assert _admin(simulator, {"kind": "reload"}, key="wrong").status_code == 401


def test_fault_admin_page_parameters(simulator: Simulator) -> None:
    response = _admin(simulator, {"kind": "http-500", "path": "/users", "offset": 0})

    assert response.status_code == 200
    assert rest(simulator, "/users", offset=0).status_code == 500
    assert rest(simulator, "/companies", offset=0).status_code == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"kind": "meteor"}, "Unknown fault 'meteor'"),
        ({"kind": "reset", "colour": "red"}, "Invalid parameters for fault 'reset'"),
        ({"kind": "http-500", "status": 200}, "Invalid status 200"),
        (["reset"], "Invalid body"),
    ],
)
def test_fault_admin_rejects_bad_body(simulator: Simulator, body: object, fragment: str) -> None:
    response = _admin(simulator, body)

    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_fault_abrupt_stop_resets() -> None:
    with running() as simulator:
        client = _subscribed(simulator)
        simulator.stop(abrupt=True)
        with pytest.raises((ConnectionResetError, websocket.WebSocketConnectionClosedException)):
            client.ws.recv_data_frame(True)


def test_fault_stop_closes_going_away() -> None:
    with running() as simulator:
        client = _subscribed(simulator)
        port = simulator.port
        simulator.stop()
        opcode, frame = client.ws.recv_data_frame(True)

        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1001
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"kind": "close", "code": 999}, "Invalid close code 999"),
        ({"kind": "close", "code": 1005}, "Invalid close code 1005"),
        ({"kind": "close", "code": 2000}, "Invalid close code 2000"),
        ({"kind": "close", "code": 5000}, "Invalid close code 5000"),
        ({"kind": "close", "code": "1000"}, "Invalid close code '1000'"),
        ({"kind": "close", "code": 1000, "reason": "x" * 124}, "at most 123 UTF-8 bytes"),
        ({"kind": "http-500", "times": -1}, "Invalid times -1"),
        ({"kind": "http-500", "times": 0}, "Invalid times 0"),
        ({"kind": "http-500", "times": 1.5}, "Invalid times 1.5"),
        ({"kind": "http-500", "offset": -10}, "Invalid offset -10"),
        ({"kind": "http-429", "retry_after_s": -1}, "Invalid retry_after_s -1"),
        ({"kind": "slow-page", "delay_s": -0.5}, "Invalid delay_s -0.5"),
        ({"kind": "slow-page", "delay_s": "2"}, "Invalid delay_s '2'"),
        ({"kind": "slow-page", "times": -1}, "Invalid times -1"),
        ({"kind": "auth-http", "times": -1}, "Invalid times -1"),
    ],
)
def test_fault_admin_rejects_bad_values(simulator: Simulator, body: object, fragment: str) -> None:
    client = _subscribed(simulator)
    response = _admin(simulator, body)

    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert simulator.faults.take_page_fault("/companies", 0) is None
    assert simulator.faults.take_auth_rejection() is None
    assert simulator.connections[-1].open
    client.close()


@pytest.mark.parametrize(
    "inject",
    [
        lambda faults: faults.close(999),
        lambda faults: faults.close(1015),
        lambda faults: faults.close(True),
        lambda faults: faults.fail_page("/users", times=-1),
        lambda faults: faults.fail_page("/users", retry_after_s=float("nan")),
        lambda faults: faults.rate_limit_page("/users", retry_after_s=-1),
        lambda faults: faults.slow_page("/users", delay_s=-1),
        lambda faults: faults.slow_page("/users", delay_s=float("inf")),
        lambda faults: faults.reject_auth("close", times=0),
        lambda faults: faults.send_raw(42),
        lambda faults: faults.send_raw("no placeholder", stream_id=True),
        lambda faults: faults.send_raw(b"no placeholder", stream_id=True),
    ],
)
def test_fault_api_rejects_bad_values(
    simulator: Simulator, inject: Callable[[object], object]
) -> None:
    with pytest.raises(ValueError, match=r"^Invalid "):
        inject(simulator.faults)
    assert simulator.faults.take_page_fault("/users", 0) is None
    assert simulator.faults.take_auth_rejection() is None


@pytest.mark.parametrize("code", [1003, 1007, 1014, 3000, 4999])
def test_fault_close_codes_accepted(simulator: Simulator, code: int) -> None:
    client = _subscribed(simulator)

    assert simulator.faults.close(code, reason="r" * 123) == 1
    _opcode, frame = client.ws.recv_data_frame(True)
    assert int.from_bytes(frame.data[:2], "big") == code


def test_fault_times_until_cleared(simulator: Simulator) -> None:
    simulator.faults.fail_page("/users/count", times=None)

    for _ in range(3):
        assert rest(simulator, "/users/count").status_code == 500
    simulator.faults.clear_pages()
    assert rest(simulator, "/users/count").status_code == 200


def test_fault_raw_frame_to_every_connection(simulator: Simulator) -> None:
    subscribed = _subscribed(simulator)
    silent = StreamClient(simulator)
    before = simulator.last_stream_id

    assert simulator.faults.send_raw("not json {") == 2
    assert subscribed.receive_text() == "not json {"
    assert silent.receive_text() == "not json {"
    assert simulator.last_stream_id == before


def test_fault_raw_bytes_sent_unchanged(simulator: Simulator) -> None:
    client = _subscribed(simulator)

    assert simulator.faults.send_raw(b"\xff\xfe not UTF-8") == 1
    opcode, data = client.ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_TEXT
    assert data == b"\xff\xfe not UTF-8"


def test_fault_raw_frame_with_stream_id(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    before_id = simulator.patch_company(simulator.catalog.entity_id("comp", 0), {"traits": []})
    client.receive()
    before_truth = simulator.truth()
    frame = '{"entity_type":"rulesengine.Plan","stream_id":"@@stream_id@@","again":"@@stream_id@@"}'
    sid = simulator.faults.send_raw(frame, stream_id=True)
    message = client.receive()

    assert isinstance(sid, str)
    assert message == {"entity_type": "rulesengine.Plan", "stream_id": sid, "again": sid}
    assert simulator.last_stream_id == sid
    assert simulator.truth() == {**before_truth, "last_stream_id": sid}
    replayed, _ = simulator.replay(before_id)
    assert replayed is not None
    assert [m.stream_id for m in replayed] == [sid]


def test_fault_raw_bytes_with_stream_id(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    sid = simulator.faults.send_raw(b"\xff@@stream_id@@", stream_id=True)
    _opcode, data = client.ws.recv_data()

    assert isinstance(sid, str)
    assert data == b"\xff" + sid.encode()


def test_fault_admin_raw(simulator: Simulator) -> None:
    client = _subscribed(simulator)
    plain = _admin(simulator, {"kind": "raw", "frame": "hello"})
    received = client.receive_text()
    with_id = _admin(simulator, {"kind": "raw", "frame": "id=@@stream_id@@", "stream_id": True})

    assert plain.status_code == 200
    assert plain.json() == {"ok": True, "kind": "raw", "result": 1}
    assert received == "hello"
    assert with_id.status_code == 200
    assert client.receive_text() == "id=" + with_id.json()["result"]
    assert with_id.json()["result"] == simulator.last_stream_id


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"kind": "raw"}, "Invalid parameters for fault 'raw'"),
        ({"kind": "raw", "frame": 5}, "Invalid frame 5"),
        ({"kind": "raw", "frame": "x", "stream_id": "yes"}, "Invalid stream_id 'yes'"),
        ({"kind": "raw", "frame": "x", "stream_id": True}, "placeholder '@@stream_id@@'"),
    ],
)
def test_fault_admin_raw_rejects(simulator: Simulator, body: object, fragment: str) -> None:
    response = _admin(simulator, body)

    assert response.status_code == 400
    assert fragment in response.json()["error"]
