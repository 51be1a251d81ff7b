"""The deployment commands against a live service: a real subprocess tree with gunicorn,
a real redis-server and the simulator.

The service is started with exactly the commands of the Dockerfile (CMD and
HEALTHCHECK) and the Procfile, as tests/deploy_files.py reads them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from replicator.simulator import Simulator, SimulatorConfig
from tests.deploy_files import (
    SERVICE_SCRIPT,
    command_path,
    docker_cmd,
    docker_healthcheck,
    procfile_command,
)
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.servers import RedisServer, free_port, start_redis

API_KEY = "operations-key"


class CommandProcess(ReplicatorProcess):
    """The service started by a deployment command instead of ``python -m replicator``."""

    def __init__(self, command: list[str], api_url: str, redis_url: str, **env: str) -> None:
        super().__init__(api_url, API_KEY, redis_url, **env)
        self.command = command
        self.env["PATH"] = command_path()

    def start(self) -> CommandProcess:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tempfile.gettempdir(),
        )
        return self

    def run_tool(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a command such as ``health`` with the service's environment."""
        return subprocess.run(
            list(argv),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tempfile.gettempdir(),
        )


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(api_key=API_KEY, companies=40, users=50, flags=5)) as sim:
        yield sim


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[("schematic_replicator_" + name, tuple(sorted(labels.items())))]


def load_state(service: ReplicatorProcess) -> str | None:
    response = service.get("/status")
    return response.json()["details"]["load"]["state"] if response is not None else None


def test_image_cmd_and_healthcheck(simulator: Simulator, redis_server: RedisServer) -> None:
    service = CommandProcess(docker_cmd(), simulator.base_url, redis_server.url).start()
    healthcheck = docker_healthcheck()
    try:
        wait_until(
            lambda: service.run_tool(*healthcheck).returncode == 0,
            30,
            "the image's HEALTHCHECK to pass",
        )
        version = service.wait_ready()["cache_version"]
        ready = service.run_tool(SERVICE_SCRIPT, "ready")
        status = service.run_tool(SERVICE_SCRIPT, "status")
    finally:
        code = service.stop()
    after_stop = service.run_tool(*healthcheck)

    assert code == 0, service.output()[-3000:]
    assert ready.returncode == 0
    assert f"is ready (cache version {version})" in ready.stdout
    assert status.returncode == 0
    assert f"healthy, ready, Redis reachable, cache version {version}" in status.stdout
    assert "Bulk load: complete" in status.stdout
    assert after_stop.returncode == 1
    absent = f"No replicator responds on 127.0.0.1:{service.health_port}/health"
    assert after_stop.stderr.startswith(absent)
    assert after_stop.stderr.count("\n") == 1


def test_health_commands_not_ready(simulator: Simulator, redis_server: RedisServer) -> None:
    simulator.faults.fail_page("/companies", offset=0, status=500, times=1000)
    service = CommandProcess(
        docker_cmd(),
        simulator.base_url,
        redis_server.url,
        LOADER_PAGE_RETRIES="0",
        LOADER_RETRY_INTERVAL="1h",
    ).start()
    try:
        wait_until(lambda: load_state(service) == "failed", 30, "the bulk load to fail")
        results = {name: service.run_tool(SERVICE_SCRIPT, name) for name in ("health", "ready")}
        status = service.run_tool(SERVICE_SCRIPT, "status")
    finally:
        code = service.stop()

    assert code == 0
    assert results["health"].returncode == 0
    assert results["ready"].returncode == 1
    assert "is not ready (HTTP 503)" in results["ready"].stdout
    assert "companies loading" in results["ready"].stdout
    assert status.returncode == 0
    assert "Bulk load: failed" in status.stdout
    assert "reason: incomplete: pages failed: 1, so nothing is swept" in status.stdout


def test_metrics_after_traffic(simulator: Simulator, redis_server: RedisServer) -> None:
    service = ReplicatorProcess(simulator.base_url, API_KEY, redis_server.url).start()
    try:
        service.wait_ready()
        truth = simulator.truth()
        simulator.burst(30, pool_size=10)
        simulator.upsert_user(truth["users"][0])
        service.wait_cursor(simulator.upsert_flag(truth["flags"][0]))
        response = service.get("/metrics")
    finally:
        code = service.stop()

    assert code == 0
    assert response is not None and response.status_code == 200
    samples = metric_samples(response.text)
    received = "messages_received_total"
    assert sample(samples, received, entity_type="company") >= 40 + 30
    assert sample(samples, received, entity_type="user") >= 50 + 1
    assert sample(samples, received, entity_type="flags") >= 2
    assert sample(samples, "messages_applied_total", entity_type="company") >= 30
    assert sample(samples, "datastream_frames_received_total") >= 32
    assert sample(samples, "datastream_state", state="ready") == 1
    assert sample(samples, "ready") == 1
    assert sample(samples, "bulk_load_state", state="complete") == 1
    assert sample(samples, "bulk_load_done_records", entity_type="company") == 40
    assert sample(samples, "bulk_load_expected_records", entity_type="user") == 50
    assert sample(samples, "batch_size_messages_count", entity_type="company") > 0
    assert sample(samples, "redis_write_seconds_count", entity_type="user") > 0
    assert sample(samples, "replay_cursor_lag_seconds") == 0
    assert sample(samples, "process_up", role="ingest") == 1
    assert sample(samples, "process_up", role="health") == 1


def test_procfile_web_binds_port(simulator: Simulator, redis_server: RedisServer) -> None:
    port = free_port()
    # HEALTH_HOST keeps the test on loopback; without it the Procfile binds 0.0.0.0.
    service = CommandProcess(
        ["/bin/sh", "-c", procfile_command("web")],
        simulator.base_url,
        redis_server.url,
        PORT=str(port),
    )
    configured = service.health_port
    service.health_port = port
    service.start()
    try:
        health = wait_until(lambda: service.get("/health"), 30, f"/health on PORT {port}")
        version = service.wait_ready()["cache_version"]
    finally:
        code = service.stop()

    assert code == 0
    assert configured != port
    assert health.status_code == 200
    assert f"Health server listening on 127.0.0.1:{port}." in service.output()
    assert version


def receive_until(sock: socket.socket, expected: str, timeout_s: float) -> list[str]:
    """Collect datagrams until one contains the line ``expected``; fail after ``timeout_s``."""
    messages: list[str] = []
    sock.settimeout(timeout_s)
    while not any(expected in message.split("\n") for message in messages):
        try:
            messages.append(sock.recv(4096).decode("utf-8"))
        except TimeoutError:
            raise AssertionError(f"no {expected} within {timeout_s}s; got {messages}") from None
    return messages


def test_systemd_ready_and_stopping(simulator: Simulator, redis_server: RedisServer) -> None:
    directory = tempfile.mkdtemp(prefix="sd-")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    service = CommandProcess(
        docker_cmd(), simulator.base_url, redis_server.url, NOTIFY_SOCKET=path
    ).start()
    try:
        starting = receive_until(sock, "READY=1", 60)
        ready = service.get("/ready")
        code = service.stop()
        # The datagrams sent during the shutdown wait in the socket's buffer.
        stopping = receive_until(sock, "STOPPING=1", 5)
    finally:
        service.stop()
        sock.close()
        os.unlink(path)
        os.rmdir(directory)

    assert code == 0
    assert ready is not None
    assert ready.status_code == 200, ready.text
    assert starting[0].startswith("STATUS=Not ready: ")
    assert starting[-1].startswith("READY=1\nSTATUS=Ready: cache version ")
    assert all("READY=1" not in message for message in starting[:-1])
    assert stopping[-1].startswith("STOPPING=1\n")
    assert all("READY=1" not in message for message in stopping)
    assert not any("Gunicorn" in message for message in starting + stopping)
