"""The API key and the Redis password never show up in output or HTTP bodies.

A service with distinctive secrets goes through a start, traffic, a bulk load, a
datastream reconnect, a Redis outage and a shutdown. Two more starts fail, one on a
wrong Redis password and one on an invalid REDIS_URL. The tests search every log line,
every stderr message and every body of /health, /ready, /status and /metrics for the
secrets, raw and encoded.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from replicator.simulator import Simulator, SimulatorConfig
from tests.deploy_files import SERVICE_SCRIPT, command_path
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.servers import RedisServer, free_port, start_redis

API_KEY = "sk_live_CanaryKey_7Qx2Vb9LmT"
PASSWORD = "Pw:Canary/Zq7#x@9%Leak"
WRONG_PASSWORD = "Wrong:Canary/Pw#42@x%"
ENDPOINTS = ("/health", "/ready", "/status", "/metrics")


def forms(secret: str) -> set[str]:
    """Return the secret as written, percent-encoded in the usual ways, and its tail."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), secret[5:]}


SECRET_FORMS = forms(API_KEY) | forms(PASSWORD) | forms(WRONG_PASSWORD)


def leaks(text: str) -> list[str]:
    return sorted(form for form in SECRET_FORMS if form in text)


def redis_url(password: str, port: int, query: str = "") -> str:
    return f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0{query}"


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = start_redis("--requirepass", PASSWORD)
    yield server
    server.stop()


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(api_key=API_KEY, companies=30, users=40, flags=5)) as sim:
        yield sim


class Collector:
    """Everything the service showed: HTTP bodies and command output."""

    def __init__(self, service: ReplicatorProcess) -> None:
        self.service = service
        self.texts: list[tuple[str, str]] = []

    def bodies(self, moment: str) -> None:
        for path in ENDPOINTS:
            response = self.service.get(path)
            assert response is not None, f"{path} did not answer {moment}"
            self.texts.append((f"{path} {moment}", response.text))

    def status_command(self, moment: str) -> None:
        result = subprocess.run(
            [SERVICE_SCRIPT, "status", "--port", str(self.service.health_port)],
            env={**self.service.env, "PATH": command_path()},
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.texts.append((f"status command {moment}", result.stdout + result.stderr))


def reconnect(simulator: Simulator, service: ReplicatorProcess) -> None:
    before = service.status()["stream"]["reconnects"]
    assert simulator.faults.reset() >= 1
    wait_until(
        lambda: service.status()["stream"]["reconnects"] > before,
        30,
        "the datastream reconnect",
    )
    service.wait_ready()


def redis_outage(simulator: Simulator, service: ReplicatorProcess, server: RedisServer) -> None:
    """Stop Redis, publish a change, wait for the failed write, then bring Redis back."""
    server.stop()
    simulator.upsert_flag(simulator.truth()["flags"][1])
    wait_until(
        lambda: any(p["redis_errors"] for p in service.status()["processes"]),
        30,
        "a failed Redis write",
    )
    wait_until(lambda: not service.status()["redis_ok"], 30, "Redis to count as unreachable")
    server.start()
    service.wait_ready()


def test_secrets_absent_from_running_service(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    service = ReplicatorProcess(
        simulator.base_url,
        API_KEY,
        redis_url(PASSWORD, redis_server.port),
        REDIS_PASSWORD=PASSWORD,
        REDIS_MAX_RETRIES="0",
    ).start()
    seen = Collector(service)
    try:
        service.wait_ready()
        seen.bodies("after the bulk load")
        simulator.burst(20, pool_size=5)
        service.wait_cursor(simulator.upsert_flag(simulator.truth()["flags"][0]))
        reconnect(simulator, service)
        seen.bodies("after a reconnect")
        redis_outage(simulator, service, redis_server)
        seen.bodies("after a Redis outage")
        seen.status_command("after a Redis outage")
    finally:
        code = service.stop()
    output = service.output()

    assert code == 0, output[-3000:]
    assert "Bulk load 1 started" in output
    assert "Redis is unreachable" in output
    assert "sk_l\u2026(" in output  # The start-up summary shows the key masked.
    assert leaks(output) == [], output[-3000:]
    for where, text in seen.texts:
        assert leaks(text) == [], where


def run_failing(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "SCHEMATIC_API_KEY": API_KEY,
        "SCHEMATIC_API_URL": f"http://127.0.0.1:{free_port()}",
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": str(free_port()),
        "LOG_LEVEL": "debug",
    }
    return subprocess.run(
        [sys.executable, "-m", "replicator"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tempfile.gettempdir(),
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_absent_from_failed_starts(redis_server: RedisServer, log_format: str) -> None:
    wrong = run_failing(
        REDIS_URL=redis_url(WRONG_PASSWORD, redis_server.port),
        REDIS_PASSWORD=WRONG_PASSWORD,
        LOG_FORMAT=log_format,
    )
    invalid = run_failing(
        REDIS_URL=redis_url(PASSWORD, redis_server.port, "?ssl_cert_reqs=none"),
        LOG_FORMAT=log_format,
    )

    assert wrong.returncode == 4, wrong.stderr
    assert "Redis self-test failed" in wrong.stderr
    assert "REDIS_PASSWORD" in wrong.stderr
    assert leaks(wrong.stdout + wrong.stderr) == [], wrong.stderr
    assert invalid.returncode == 2, invalid.stderr
    assert "REDIS_URL" in invalid.stderr
    assert leaks(invalid.stdout + invalid.stderr) == [], invalid.stderr


def test_secret_forms_are_searched() -> None:
    client_url = redis_url(PASSWORD, 6379)

    assert leaks(f"connecting to {client_url}") == [quote(PASSWORD, safe="")]
    assert quote(PASSWORD, safe="") != PASSWORD
    assert leaks("key " + API_KEY[5:]) == [API_KEY[5:]]
