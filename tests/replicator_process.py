"""Run the replicator as a real subprocess, the way an operator runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import requests

from tests.servers import free_port


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


class ReplicatorProcess:
    """``python -m replicator`` with a given environment, its log kept in a file."""

    def __init__(self, api_url: str, api_key: str, redis_url: str, **env: str) -> None:
        self.health_port = free_port()
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SCHEMATIC_", "REDIS_", "HEALTH_", "CACHE_"))
        }
        self.env.update(
            {
                "SCHEMATIC_API_KEY": api_key,
                "SCHEMATIC_API_URL": api_url,
                "REDIS_URL": redis_url,
                "HEALTH_HOST": "127.0.0.1",
                "HEALTH_PORT": str(self.health_port),
                "LOG_LEVEL": "debug",
                "ASYNC_LOADER_RATE_LIMIT_RPS": "0",
            }
        )
        self.env.update(env)
        # The file outlives this object on purpose: a failing test prints it.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="replicator-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def start(self) -> ReplicatorProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "replicator"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tempfile.gettempdir(),
        )
        return self

    def get(self, path: str) -> requests.Response | None:
        try:
            return requests.get(self.base_url + path, timeout=2)
        except requests.RequestException:
            return None

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            self._check_alive()
            response = self.get("/ready")
            return response.json() if response is not None and response.ok else None

        return wait_until(ready, timeout_s, "the replicator's /ready to return 200")

    def status(self) -> dict[str, Any]:
        found = self.try_status()
        assert found is not None, "the health server did not answer /status"
        return found

    def try_status(self) -> dict[str, Any] | None:
        """The /status details, or None while the health server does not answer."""
        self._check_alive()
        response = self.get("/status")
        return None if response is None else response.json()["details"]

    def load_state(self) -> str:
        found = self.try_status()
        return "" if found is None else str(found["load"]["state"])

    def wait_cursor(self, stream_id: str, timeout_s: float = 20.0) -> None:
        """Wait until everything up to ``stream_id`` is written to Redis."""
        wait_until(
            lambda: self.status()["stream"]["cursor"] == stream_id,
            timeout_s,
            f"the replay cursor to reach {stream_id}",
        )

    def stop(self, timeout_s: float = 40.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(f"the replicator did not stop within {timeout_s}s") from None

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"the replicator exited with {self.process.returncode}:\n{self.output()[-4000:]}"
            )
