"""The Procfile, the Dockerfile, the Compose file and the systemd unit, checked as files.

tests/test_operations.py runs the commands read here against a live service.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from replicator.config import Config
from replicator.durations import parse_duration
from tests.deploy_files import (
    COMPOSE_FILE,
    REPO,
    SERVICE_SCRIPT,
    UNIT_FILE,
    command_path,
    console_scripts,
    docker_cmd,
    docker_healthcheck,
    dockerfile_arguments,
    procfile_command,
    scripts_directory,
    unit_exec_start,
    unit_settings,
)


def test_service_script_is_the_cli() -> None:
    assert console_scripts()[SERVICE_SCRIPT] == "replicator.cli:main"
    assert os.access(os.path.join(scripts_directory(), SERVICE_SCRIPT), os.X_OK)


def test_dockerfile_commands() -> None:
    assert docker_cmd() == [SERVICE_SCRIPT]
    assert docker_healthcheck() == [SERVICE_SCRIPT, "health"]


def test_dockerfile_stages_and_user() -> None:
    stages = dockerfile_arguments("FROM")
    runs = " ".join(dockerfile_arguments("RUN"))

    assert len(stages) == 2
    assert stages[0].endswith(" AS builder")
    assert "pip wheel" in runs
    assert "--uid 65532 --gid 65532" in runs
    assert "--no-index --find-links /wheels" in runs
    assert dockerfile_arguments("USER") == ["65532:65532"]
    assert dockerfile_arguments("EXPOSE") == ["8090"]
    assert dockerfile_arguments("STOPSIGNAL") == ["SIGTERM"]


def test_dockerignore_keeps_secrets_out() -> None:
    patterns = (REPO / ".dockerignore").read_text().splitlines()

    assert ".env" in patterns
    assert "**/.env" in patterns
    assert ".git" in patterns


def test_compose_runs_the_image_command() -> None:
    text = COMPOSE_FILE.read_text()
    replicator = text[text.index("\n  replicator:") :]

    assert "dockerfile: docker/Dockerfile" in replicator
    assert "\n    command:" not in replicator
    assert "\n    healthcheck:" not in replicator
    assert "init: true" in replicator
    assert "REDIS_URL: redis://127.0.0.1:6379/0" in replicator


def run_procfile_with_stub(tmp_path: Path, **env: str) -> dict[str, str]:
    """Run the web command with a stub service script that prints its environment."""
    stub = tmp_path / SERVICE_SCRIPT
    stub.write_text('#!/bin/sh\necho "HEALTH_HOST=$HEALTH_HOST"\necho "HEALTH_PORT=$HEALTH_PORT"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        ["/bin/sh", "-c", procfile_command("web")],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_procfile_web_listens_on_port(tmp_path: Path) -> None:
    plain = run_procfile_with_stub(tmp_path, PORT="5123")
    overridden = run_procfile_with_stub(tmp_path, PORT="5123", HEALTH_PORT="9999")
    chosen_host = run_procfile_with_stub(tmp_path, PORT="5123", HEALTH_HOST="127.0.0.1")

    assert plain == {"HEALTH_HOST": "0.0.0.0", "HEALTH_PORT": "5123"}
    assert overridden["HEALTH_PORT"] == "5123"
    assert chosen_host["HEALTH_HOST"] == "127.0.0.1"
    assert procfile_command("web").endswith(f"exec {SERVICE_SCRIPT}")


def test_unit_file_settings() -> None:
    settings = unit_settings()
    stop_s = parse_duration(settings["TimeoutStopSec"][-1])

    assert settings["Type"] == ["notify"]
    assert os.path.basename(unit_exec_start()[0]) == SERVICE_SCRIPT
    assert len(unit_exec_start()) == 1
    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings["KillMode"] == ["mixed"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["User"][0] not in ("root", "0")
    assert settings["EnvironmentFile"][0].startswith("/etc/")
    assert stop_s >= Config().shutdown_timeout_s + 10


def test_unit_file_passes_systemd_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; .ci/run installs the systemd package")
    # verify checks that ExecStart exists, so the copy runs this environment's script.
    script = os.path.join(scripts_directory(), SERVICE_SCRIPT)
    unit = tmp_path / UNIT_FILE.name
    text = UNIT_FILE.read_text().replace(unit_exec_start()[0], script)
    unit.write_text(text)

    result = subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": command_path(), "SYSTEMD_LOG_COLOR": "0"},
    )

    assert f"ExecStart={script}" in text
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr, result.stderr
    assert unit.name not in result.stdout, result.stdout
