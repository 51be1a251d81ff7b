"""Read the commands that the Procfile, the Dockerfile and the systemd unit run.

The service tests run exactly these commands, so the files cannot drift from what is
tested even though no container engine or systemd runs them here.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE_FILE = REPO / "docker" / "docker-compose.yml"
PROCFILE = REPO / "Procfile"
UNIT_FILE = REPO / "deploy" / "schematic-datastream-replicator.service"

#: The console script every deployment file runs.
SERVICE_SCRIPT = "schematic-datastream-replicator"


def console_scripts() -> dict[str, str]:
    """Return the ``console_scripts`` entry points of setup.cfg: name to ``module:function``."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip())
    return {name.strip(): target.strip() for name, target in pairs}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return ``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def dockerfile_arguments(instruction: str) -> list[str]:
    """Return the arguments of every occurrence of ``instruction``, in file order."""
    return [args for name, args in dockerfile_instructions() if name == instruction]


def docker_cmd() -> list[str]:
    """Return the image's CMD, which must use the exec (JSON array) form."""
    return list(json.loads(dockerfile_arguments("CMD")[-1]))


def docker_healthcheck() -> list[str]:
    """Return the command of the image's HEALTHCHECK, which must use the exec form."""
    arguments = dockerfile_arguments("HEALTHCHECK")[-1]
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", arguments)
    if match is None:
        raise AssertionError(f"HEALTHCHECK has no exec-form CMD: {arguments!r}")
    return list(json.loads(match.group(1)))


def procfile_command(process: str = "web") -> str:
    """Return the shell command of ``process`` in the Procfile."""
    for line in PROCFILE.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process:
            return command.strip()
    raise AssertionError(f"the Procfile has no {process!r} process")


def unit_settings() -> dict[str, list[str]]:
    """Return every ``Key=value`` of the unit file. A key set several times keeps each value."""
    settings: dict[str, list[str]] = {}
    for raw in UNIT_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def unit_exec_start() -> list[str]:
    return shlex.split(unit_settings()["ExecStart"][-1])


def scripts_directory() -> str:
    """Return the directory of this interpreter's console scripts."""
    return os.path.dirname(sys.executable)


def command_path() -> str:
    """Return PATH for a deployment command, with this environment's scripts first."""
    return os.pathsep.join([scripts_directory(), "/usr/local/bin", "/usr/bin", "/bin"])
