"""The ``simulate`` command in a real subprocess: serve, then stop on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from tests.servers import free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent
KEY = "cli-key"
STOP_TIMEOUT_S = 20


def _environment(with_key: bool = False) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "SCHEMATIC_API_KEY"}
    environment["PYTHONPATH"] = str(REPO)
    if with_key:
        environment["SCHEMATIC_API_KEY"] = KEY
    return environment


def _simulate(*arguments: str, with_key: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "replicator", "simulate", *arguments],
        cwd=REPO,
        env=_environment(with_key),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    dump = tmp_path / "final.json"
    process = _simulate(
        "--companies",
        "20",
        "--users",
        "20",
        "--flags",
        "5",
        "--rate",
        "50",
        "--port",
        str(port),
        "--dump-on-exit",
        str(dump),
        "--fault",
        "reload@0.5",
        "--stats-interval",
        "0.2",
        "--log-level",
        "DEBUG",
        with_key=True,
    )
    try:
        wait_for_port(port, timeout_s=STOP_TIMEOUT_S)
        yield process, port, dump
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_TIMEOUT_S)


def test_cli_serves_and_stops_on_sigint(served: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, port, dump = served
    headers = {"X-Schematic-Api-Key": KEY}
    count = requests.get(f"http://127.0.0.1:{port}/companies/count", headers=headers, timeout=10)
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/datastream",
        timeout=10,
        header=[f"X-Schematic-Api-Key: {KEY}", "X-Schematic-Client: cli-test"],
    )
    ws.send(json.dumps({"data": {"action": "start", "entity_type": "rulesengine.Companies"}}))
    messages = [json.loads(ws.recv()) for _ in range(3)]
    reload = next(
        m for m in iter(lambda: json.loads(ws.recv()), None) if m["message_type"] == "reload"
    )

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)

    assert count.json()["data"]["count"] >= 1
    assert messages[0]["data"] == {"subscribed": True}
    assert any("stream_id" in m for m in messages[1:])
    assert reload["entity_id"] is None
    assert process.returncode == 0
    assert "Simulator listening on http://127.0.0.1:" in stderr
    assert "'X-Schematic-Client': 'cli-test'" in stderr
    assert KEY not in stderr
    assert "subscribed to 'rulesengine.Companies'" in stderr
    assert "Served '/companies/count'" in stderr
    assert "Published " in stderr
    assert "Received SIGINT" in stderr
    assert json.loads(dump.read_text())["last_stream_id"]


def test_cli_stops_on_sigterm(served: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, _, dump = served
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)

    assert process.returncode == 0
    assert "Received SIGTERM" in stderr
    assert len(json.loads(dump.read_text())["flags"]) >= 1


def test_cli_requires_api_key() -> None:
    process = _simulate("--port", "0")
    _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)

    assert process.returncode == 2
    assert "SCHEMATIC_API_KEY" in stderr
    assert "--api-key" in stderr


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--fault", "meteor@3"], "unknown fault 'meteor'"),
        (["--fault", "reset@soon"], "invalid delay 'soon'"),
        (["--dataset", "/nonexistent/dataset.json"], "Cannot read dataset file"),
        (["--companies", "-5"], "Invalid companies=-5"),
        (["--rate", "inf"], "Invalid rate=inf"),
        (["--rate", "nan"], "Invalid rate=nan"),
        (["--rate", "-1"], "Invalid rate=-1.0"),
        (["--fault", "raw@1"], "fault 'raw' needs frame"),
    ],
)
def test_cli_rejects_bad_options(arguments: list[str], fragment: str) -> None:
    process = _simulate("--port", "0", "--api-key", KEY, *arguments)
    _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)

    assert process.returncode == 2
    assert fragment in stderr


def test_cli_rejects_missing_dump_folder(tmp_path: Path) -> None:
    target = tmp_path / "absent" / "x.json"
    process = _simulate("--port", "0", "--api-key", KEY, "--dump-on-exit", str(target))
    _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)

    assert process.returncode == 2
    assert f"Invalid --dump-on-exit '{target}'" in stderr
    assert "does not exist" in stderr
    assert "Traceback" not in stderr


def test_cli_rejects_dump_to_folder(tmp_path: Path) -> None:
    process = _simulate("--port", "0", "--api-key", KEY, "--dump-on-exit", str(tmp_path))
    _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)

    assert process.returncode == 2
    assert "it is a folder; give a file name" in stderr


def test_cli_dump_failure_at_exit(tmp_path: Path) -> None:
    folder = tmp_path / "removed"
    folder.mkdir()
    port = free_port()
    process = _simulate(
        "--port", str(port), "--api-key", KEY, "--dump-on-exit", str(folder / "x.json")
    )
    try:
        wait_for_port(port, timeout_s=STOP_TIMEOUT_S)
        folder.rmdir()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_TIMEOUT_S)

    assert process.returncode == 1
    assert "Cannot write the truth to" in stderr
    assert "Traceback" not in stderr
