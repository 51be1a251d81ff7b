"""The health, ready and status commands against a real HTTP server of the health app."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from replicator import cli
from replicator.config import ConfigError, load_config
from replicator.health import create_app
from replicator.health_cli import resolve_port
from replicator.lease import FOREVER
from replicator.status import LoadState, SlotState, StatusBlock, StreamState
from tests.servers import free_port


def ready_block() -> StatusBlock:
    status = StatusBlock.create()
    status.set_cache_version("cv42")
    state = status.globals
    state.started_at = time.time() - 125
    state.redis_ok = 1
    state.lease_valid_until = FOREVER
    state.stream_state = StreamState.READY
    state.connections = 1
    state.last_message_at = time.time() - 2
    state.cursor, state.last_stream_id = b"1000-0", b"1200-3"
    state.flags_loaded, state.flags_count = 1, 4
    state.companies_loaded = state.users_loaded = 1
    state.load_state, state.load_generation = LoadState.COMPLETE, 1
    state.load_started_at, state.load_finished_at = time.time() - 30, time.time() - 20
    state.companies_total = state.companies_done = 10
    state.users_total = state.users_done = 20
    for index, role in enumerate(("supervisor", "health", "ingest", "company-0", "flags")):
        slot = status.claim(index, role)
        slot.state = SlotState.RUNNING
        slot.pid = 1000 + index
    status.slot(3).received, status.slot(3).applied = 12, 11
    status.slot(3).restarts = 1
    return status


@pytest.fixture()
def status() -> StatusBlock:
    return ready_block()


@pytest.fixture()
def port(status: StatusBlock) -> Iterator[int]:
    """Serve the health app for ``status`` on a free loopback port."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, create_app(status.snapshot), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(timeout=5)


def run(*argv: str) -> int:
    return cli.main(list(argv))


def test_health_cli_ready_service(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    codes = {name: run(name, "--port", str(port)) for name in ("health", "ready", "status")}
    out = capsys.readouterr().out

    assert codes == {"health": 0, "ready": 0, "status": 0}
    assert f"Replicator on 127.0.0.1:{port} is healthy (cache version cv42)." in out
    assert f"Replicator on 127.0.0.1:{port} is ready (cache version cv42)." in out


def test_health_cli_not_ready(
    status: StatusBlock, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status.globals.stream_state = StreamState.DISCONNECTED
    status.globals.stream_reason = b"connection lost"
    status.globals.users_loaded = 0
    status.globals.users_done = 5

    health = run("health", "--port", str(port))
    ready = run("ready", "--port", str(port))
    out = capsys.readouterr().out

    assert health == 0
    assert ready == 1
    assert "is not ready (HTTP 503)" in out
    assert "datastream disconnected" in out
    assert "users loading 5/20" in out
    assert "reason: connection lost" in out


def test_health_cli_unhealthy(
    status: StatusBlock, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status.slot(2).heartbeat = time.monotonic() - 100

    code = run("health", "--port", str(port))
    out = capsys.readouterr().out

    assert code == 1
    assert "is not healthy (HTTP 503)" in out
    assert "ingest silent for" in out


def test_health_cli_absent_service(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()

    codes = [run(name, "--port", str(port)) for name in ("health", "ready", "status")]
    err = capsys.readouterr().err

    assert codes == [1, 1, 1]
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"No replicator responds on 127.0.0.1:{port}/health")
    assert "connection refused" in lines[0]


def test_health_cli_status_summary(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    run("status", "--port", str(port))
    out = capsys.readouterr().out

    assert "healthy, ready, Redis reachable, cache version cv42, up 2m5s." in out
    assert re.search(
        r"Datastream: ready, 1 connection, 0 reconnects, last message 2\.\ds ago\.", out
    )
    assert "Replay cursor: 1000-0 (newest stream id read: 1200-3)." in out
    assert "Bulk load: complete, generation 1, companies 10/10 loaded, users 20/20 loaded" in out
    assert "took 10s" in out
    assert "Flags: loaded, 4 in the last snapshot." in out
    message_lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[6:10]}
    assert message_lines["TYPE"] == ["RECEIVED", "APPLIED", "SKIPPED", "DROPPED"]
    assert message_lines["company"] == ["12", "11", "0", "0"]
    assert message_lines["flags"] == ["0", "0", "0", "0"]
    process_lines = {line.split()[0]: line.split() for line in out.splitlines()[-5:]}
    assert process_lines["company-0"][1:3] == ["running", "1003"]
    assert process_lines["company-0"][4] == "1"
    assert process_lines["health"][3] == "-"


def test_health_cli_not_the_replicator(capsys: pytest.CaptureFixture[str]) -> None:
    from flask import Flask

    other = Flask("other")
    other.add_url_rule("/health", "health", lambda: "plain text")
    server = make_server("127.0.0.1", 0, other)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        code = run("health", "--port", str(server.server_port))
    finally:
        server.shutdown()
        thread.join(timeout=5)

    assert code == 1
    assert "not the replicator's JSON" in capsys.readouterr().err


def test_health_cli_invalid_port_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEALTH_PORT", raising=False)
    monkeypatch.setenv("PORT", "eighty")

    code = run("health")

    assert code == 2
    assert "Invalid PORT='eighty'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "dotenv"),
    [
        ({}, ""),
        ({"PORT": "5000"}, ""),
        ({"HEALTH_PORT": "6000", "PORT": "5000"}, ""),
        ({"HEALTH_PORT": "", "PORT": "5000"}, ""),
        ({"HEALTH_PORT": " 7000 "}, ""),
        ({}, "HEALTH_PORT=7100\n"),
        ({"PORT": "5000"}, "HEALTH_PORT=7100\n"),
        ({"HEALTH_PORT": "7200"}, "HEALTH_PORT=7100\nPORT=5000\n"),
        ({}, "PORT=5100\n"),
    ],
)
def test_resolve_port_matches_service(environ: dict[str, str], dotenv: str, tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(dotenv)
    service = load_config({**environ, "SCHEMATIC_API_KEY": "key-1234"}, str(path))

    assert resolve_port(None, environ, str(path)) == service.health_port


def test_resolve_port_errors(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("")

    assert resolve_port(9100, {"PORT": "x"}, str(path)) == 9100
    with pytest.raises(ConfigError, match="PORT='x'"):
        resolve_port(None, {"PORT": "x"}, str(path))
    with pytest.raises(ConfigError, match="HEALTH_PORT='70000'"):
        resolve_port(None, {"HEALTH_PORT": "70000"}, str(path))
    with pytest.raises(ConfigError, match="--port 0"):
        resolve_port(0, {}, str(path))


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "1e308", "3601"])
def test_health_cli_invalid_timeout(
    port: int, timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("ready", "--port", str(port), "--timeout", timeout)
    err = capsys.readouterr().err

    assert code == 2
    assert f"Invalid --timeout {timeout}:" in err
    assert "Traceback" not in err


def test_health_cli_fractional_timeout(port: int) -> None:
    assert run("ready", "--port", str(port), "--timeout", "0.5") == 0
