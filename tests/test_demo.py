"""The demo command, run as a user runs it: a subprocess stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
import redis
import requests

from tests.replicator_process import wait_until
from tests.servers import RedisServer, free_port, start_redis


class Demo:
    def __init__(self, **env: str) -> None:
        self.health_port = free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "HEALTH_"))}
        clean.update({"HEALTH_PORT": str(self.health_port), **env})
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 -- read after the process ends
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "replicator",
                "demo",
                "--companies",
                "40",
                "--users",
                "60",
                "--flags",
                "5",
                "--rate",
                "5",
            ],
            env=clean,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def ready(self) -> bool:
        try:
            response = requests.get(f"http://127.0.0.1:{self.health_port}/ready", timeout=1)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


@pytest.fixture()
def own_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


def test_demo_embeds_redis_when_none_answers() -> None:
    demo = Demo(REDIS_ADDR=f"127.0.0.1:{free_port()}")
    try:
        wait_until(demo.ready, 90, "the demo's replicator to be ready", interval_s=0.2)
        wait_until(lambda: "Press Ctrl-C to stop." in demo.output(), 10, "the demo's banner")
    finally:
        code = demo.interrupt()

    output = demo.output()
    assert code == 0, output[-3000:]
    assert "embedded fakeredis server" in output
    assert f"http://127.0.0.1:{demo.health_port}/ready" in output
    assert "redis-cli -h 127.0.0.1 -p" in output
    assert "Demo stopped." in output


def test_demo_embeds_redis_unless_pointed_at_one() -> None:
    demo = Demo()
    try:
        wait_until(demo.ready, 90, "the demo's replicator to be ready", interval_s=0.2)
    finally:
        code = demo.interrupt()

    output = demo.output()
    assert code == 0, output[-3000:]
    assert "embedded fakeredis server" in output
    assert "set REDIS_URL or REDIS_ADDR to use your own Redis" in output


def test_demo_uses_a_redis_that_answers(own_redis: RedisServer) -> None:
    demo = Demo(REDIS_URL=own_redis.url)
    try:
        wait_until(demo.ready, 90, "the demo's replicator to be ready", interval_s=0.2)
        client = redis.Redis(host="127.0.0.1", port=own_redis.port)
        flags = list(client.scan_iter(match="schematic:flags:*"))
        client.close()
    finally:
        code = demo.interrupt()

    output = demo.output()
    assert code == 0, output[-3000:]
    assert f"the Redis at 127.0.0.1:{own_redis.port}" in output
    assert len(flags) == 5


def test_demo_stops_when_replicator_exits(own_redis: RedisServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        demo = Demo(REDIS_URL=own_redis.url, HEALTH_PORT=str(port))
        try:
            # The timeout guards against a hang: a demo still waiting for /ready takes 120 s.
            code = demo.process.wait(timeout=100)
        finally:
            if demo.process.poll() is None:
                demo.interrupt()

    output = demo.output()
    assert code == 1, output[-3000:]
    assert f"is port {port} in use" in output
    assert "The replicator exited with code 1" in output
    assert "is not ready after" not in output


def test_demo_ctrl_c_before_ready(own_redis: RedisServer) -> None:
    # Another writer's lease keeps the demo's replicator standing by, never ready.
    client = redis.Redis(host="127.0.0.1", port=own_redis.port)
    client.set("schematic:datastream:writer_lock", "other-host-1-abc")
    client.close()
    demo = Demo(REDIS_URL=own_redis.url)
    try:
        wait_until(
            lambda: "Standing by: the writer lease is held by" in demo.output(),
            60,
            "the demo's replicator to stand by",
            interval_s=0.2,
        )
    finally:
        demo.process.send_signal(signal.SIGINT)
        # The timeout guards against a hang: a demo still waiting for /ready takes 120 s.
        code = demo.process.wait(timeout=100)

    output = demo.output()
    assert code == 0, output[-3000:]
    assert "Demo stopped." in output
    assert "is not ready after" not in output
    assert "Press Ctrl-C to stop." not in output
