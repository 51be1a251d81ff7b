"""The ``health``, ``ready`` and ``status`` commands: query the replicator running on this host.

They ask ``http://127.0.0.1:<port>``, where the port is ``--port``, else HEALTH_PORT,
else PORT, else 8090, read from the environment and the ``.env`` file the way the
service reads them (SCHEMATIC_API_KEY is not needed). A container HEALTHCHECK can run
them directly, so the image needs no HTTP client.

Exit status: ``health`` and ``ready`` exit 0 when the endpoint returns 200, and 1 for
any other status or when nothing responds. ``status`` exits 0 whenever the service
responds. All three exit 2 for an invalid port setting or ``--timeout``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from replicator.config import Config, ConfigError
from replicator.env_reader import EnvReader, read_dotenv
from replicator.exits import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK

HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 3.0
#: Maximum --timeout in seconds, far below the values at which a socket timeout overflows.
MAX_TIMEOUT_S = 3600.0

#: Subcommand name, its help text, and the path it requests.
COMMANDS = {
    "health": ("exit 0 when the running service's /health returns 200, else 1", "/health"),
    "ready": ("exit 0 when the running service's /ready returns 200, else 1", "/ready"),
    "status": ("print a summary of the running service's /status", "/status"),
}


class NoResponse(Exception):
    """No response on the health port, or a response that is not the replicator's."""


@dataclass(frozen=True)
class HealthResponse:
    """An HTTP response of the health server with its decoded JSON body."""

    status: int
    body: dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by ``health``, ``ready`` and ``status``."""
    parser.add_argument(
        "--port",
        type=int,
        help="health port of the service on 127.0.0.1 (default: HEALTH_PORT, else PORT, else 8090)",
    )
    parser.add_argument(
        "--timeout",
        default=f"{DEFAULT_TIMEOUT_S:g}",
        help=f"seconds to wait for a response, at most {MAX_TIMEOUT_S:g} "
        f"(default {DEFAULT_TIMEOUT_S:g})",
    )


def resolve_port(
    port: int | None, environ: Mapping[str, str] | None = None, dotenv_path: str | None = None
) -> int:
    """Return ``port``, or the health port the service would use with this environment.

    Raises :class:`ConfigError` for an invalid value, with the service's wording.
    """
    if port is not None:
        if not 1 <= port <= 65535:
            raise ConfigError([f"Invalid --port {port}: expected an integer from 1 to 65535."])
        return port

    file_values, label, problems = read_dotenv(dotenv_path)
    reader = EnvReader(os.environ if environ is None else environ, file_values, label)
    name = "HEALTH_PORT" if reader.raw("HEALTH_PORT") is not None else "PORT"
    resolved = reader.integer(name, Config.health_port, 1, 65535)
    errors = problems + reader.errors
    if errors:
        raise ConfigError(errors)
    return resolved


def resolve_timeout(text: str) -> float:
    """Parse ``--timeout``: seconds greater than 0 and at most :data:`MAX_TIMEOUT_S`.

    Raises :class:`ConfigError` naming the option, because a zero, negative, infinite
    or NaN value would make the socket call fail with a traceback.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise ConfigError(
            [
                f"Invalid --timeout {text}: expected a number of seconds greater than 0 "
                f"and at most {MAX_TIMEOUT_S:g}, such as 3 or 0.5."
            ]
        )
    return seconds


def fetch(port: int, path: str, timeout_s: float) -> HealthResponse:
    """GET ``path`` from the health server; raise :class:`NoResponse` when that fails."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        data = response.read()
    except TimeoutError:
        raise NoResponse(f"no response within {timeout_s:g}s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise NoResponse(_describe_error(exc)) from None
    finally:
        connection.close()

    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise NoResponse(f"HTTP {response.status} with a body that is not the replicator's JSON")
    return HealthResponse(response.status, body)


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def run(args: argparse.Namespace) -> int:
    """Run the ``health``, ``ready`` or ``status`` command named by ``args.command``."""
    try:
        port = resolve_port(args.port)
        timeout_s = resolve_timeout(args.timeout)
    except ConfigError as exc:
        print(f"schematic-datastream-replicator {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    path = COMMANDS[args.command][1]
    try:
        response = fetch(port, path, timeout_s)
    except NoResponse as exc:
        print(
            f"No replicator responds on {HOST}:{port}{path} ({exc}); check that it runs "
            "with the same HEALTH_PORT or PORT.",
            file=sys.stderr,
        )
        return EXIT_FAILURE

    if args.command == "status":
        print(format_status(response.body, port))
        return EXIT_OK
    print(probe_line(args.command, response, port))
    return EXIT_OK if response.status == 200 else EXIT_FAILURE


def probe_line(command: str, response: HealthResponse, port: int) -> str:
    """Format the result of ``health`` or ``ready`` as one line."""
    adjective = "healthy" if command == "health" else "ready"
    where = f"Replicator on {HOST}:{port}"
    if response.status == 200:
        version = response.body.get("cache_version", "")
        return f"{where} is {adjective} (cache version {version})."

    problems = [
        f"{name} {state}"
        for name, state in response.body.get("components", {}).items()
        if state not in GOOD_COMPONENT_STATES
    ]
    reason = response.body.get("reason")
    if reason:
        problems.append(f"reason: {reason}")
    return f"{where} is not {adjective} (HTTP {response.status}): {'; '.join(problems)}."


#: Component values of a /health body that need no mention in a failure line.
GOOD_COMPONENT_STATES = frozenset({"ready", "connected", "loaded", "ok"})


def format_status(body: dict[str, Any], port: int) -> str:
    """Format the ``status`` summary: service, datastream, load, messages, then processes."""
    details = body.get("details", {})
    lines = [
        _service_line(body, details, port),
        _stream_line(details.get("stream", {})),
        _cursor_line(details.get("stream", {})),
        _load_line(details.get("load", {})),
        _flags_line(details.get("flags", {})),
        *_message_lines(details.get("processes", [])),
        *_process_lines(details.get("processes", [])),
    ]
    return "\n".join(lines)


def _service_line(body: dict[str, Any], details: dict[str, Any], port: int) -> str:
    ready = "ready" if body.get("ready") else "not ready"
    started = details.get("started_at") or 0.0
    uptime = f", up {_seconds(time.time() - started)}" if started else ""
    redis_state = "Redis reachable" if details.get("redis_ok") else "Redis unreachable"
    stopping = ", shutting down" if details.get("shutting_down") else ""
    lease = body.get("components", {}).get("writer_lease", "")
    lease_text = f", writer lease {lease}" if lease and lease != "held" else ""
    return (
        f"Replicator on {HOST}:{port}: {body.get('status', 'unknown')}, {ready}, "
        f"{redis_state}, cache version {body.get('cache_version', '')}{uptime}{stopping}"
        f"{lease_text}."
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _stream_line(stream: dict[str, Any]) -> str:
    connections = _count(stream.get("connections", 0), "connection")
    reconnects = _count(stream.get("reconnects", 0), "reconnect")
    line = f"Datastream: {stream.get('state', 'unknown')}, {connections}, {reconnects}"
    last = stream.get("last_message_at") or 0.0
    line += f", last message {_seconds(time.time() - last)} ago" if last else ", no message yet"
    if stream.get("reason"):
        line += f"; reason: {stream['reason']}"
    return line + "."


def _cursor_line(stream: dict[str, Any]) -> str:
    cursor = stream.get("cursor") or "none"
    newest = stream.get("last_stream_id") or "none"
    return f"Replay cursor: {cursor} (newest stream id read: {newest})."


def _load_line(load: dict[str, Any]) -> str:
    line = f"Bulk load: {load.get('state', 'unknown')}, generation {load.get('generation', 0)}"
    for resource in ("companies", "users"):
        done, total = load.get(f"{resource}_done", 0), load.get(f"{resource}_total", 0)
        loaded = " loaded" if load.get(f"{resource}_loaded") else ""
        line += f", {resource} {done}/{total}{loaded}"
    started, finished = load.get("started_at") or 0.0, load.get("finished_at") or 0.0
    if started and finished >= started:
        line += f", took {_seconds(finished - started)}"
    elif started:
        line += f", running for {_seconds(time.time() - started)}"
    if load.get("reason"):
        line += f"; reason: {load['reason']}"
    return line + "."


def _flags_line(flags: dict[str, Any]) -> str:
    state = "loaded" if flags.get("loaded") else "loading"
    return f"Flags: {state}, {flags.get('count', 0)} in the last snapshot."


def _message_lines(processes: list[dict[str, Any]]) -> list[str]:
    """Sum the message counters of the worker slots by entity type."""
    totals = {kind: dict.fromkeys(_COUNTERS, 0) for kind in ("company", "user", "flags")}
    for process in processes:
        counts = totals.get(process.get("role", "").partition("-")[0])
        if counts is None:
            continue
        for name in _COUNTERS:
            counts[name] += int(process.get(name, 0))
    header = "".join(f"{name.upper():>10}" for name in _COUNTERS)
    lines = ["Messages by entity type:", f"  {'TYPE':<8}{header}"]
    for kind, counts in totals.items():
        lines.append(f"  {kind:<8}" + "".join(f"{counts[name]:>10}" for name in _COUNTERS))
    return lines


_COUNTERS = ("received", "applied", "skipped", "dropped")


#: The health server keeps no heartbeat, because a response shows that it is alive.
_NO_HEARTBEAT_ROLES = ("health",)


def _process_lines(processes: list[dict[str, Any]]) -> list[str]:
    lines = [f"  {'ROLE':<12} {'STATE':<9} {'PID':>8} {'HEARTBEAT':>10} {'RESTARTS':>9}"]
    for process in processes:
        age = process.get("heartbeat_age_s")
        if age is None or process.get("role") in _NO_HEARTBEAT_ROLES:
            heartbeat = "-"
        else:
            heartbeat = f"{age:.1f}s"
        lines.append(
            f"  {process.get('role', ''):<12} {process.get('state', ''):<9} "
            f"{process.get('pid', 0):>8} {heartbeat:>10} {process.get('restarts', 0):>9}"
        )
    return ["Processes:", *lines]


def _seconds(value: float) -> str:
    """Format a duration for people: ``0.4s``, ``12s``, ``5m3s``, ``2h10m``."""
    value = max(0.0, value)
    if value < 10:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"
