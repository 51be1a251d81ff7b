"""The Flask health app: /health, /ready, /status and /metrics, from the status block only.

It never touches Redis or the network, so it answers fast even when they hang.
The body of /ready is an API: Schematic SDKs in replicator mode read ``ready`` and
``cache_version`` from it, and learn the version only from a 200 response.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, json

#: A process whose heartbeat is older than this counts as hung.
HEARTBEAT_TIMEOUT_S = 15.0

#: Roles without a heartbeat of their own: the app's liveness is that it answers.
NO_HEARTBEAT_ROLES = ("health",)

StatusReader = Callable[[], dict[str, Any]]


def create_app(read_status: StatusReader) -> Flask:
    app = Flask("replicator.health")

    @app.route("/health")
    def health() -> Response:
        snapshot = read_status()
        body = health_body(snapshot)
        return _json(body, 200 if body["status"] == "healthy" else 503)

    @app.route("/ready")
    def ready() -> Response:
        body = health_body(read_status())
        return _json(body, 200 if body["ready"] else 503)

    @app.route("/status")
    def status() -> Response:
        snapshot = read_status()
        return _json({**health_body(snapshot), "details": snapshot}, 200)

    @app.route("/metrics")
    def metrics() -> Response:
        # Imported here because replicator.metrics imports this module.
        from replicator.metrics import CONTENT_TYPE, render_metrics

        return Response(render_metrics(read_status()), status=200, content_type=CONTENT_TYPE)

    return app


def health_body(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The shared body of /health and /ready."""
    stream = snapshot["stream"]
    load = snapshot["load"]
    flags = snapshot["flags"]
    stale = stale_processes(snapshot)
    lease = snapshot["lease"]
    recovering = _recovering_from_data_loss(snapshot)

    components = {
        "datastream": _datastream_component(stream["state"], load, flags),
        "redis": "connected" if snapshot["redis_ok"] else "unreachable",
        "flags": "loaded" if flags["loaded"] else "loading",
        "companies": _load_component(
            load["companies_loaded"], load["companies_done"], load["companies_total"]
        ),
        "users": _load_component(load["users_loaded"], load["users_done"], load["users_total"]),
        "processes": _processes_component(stale, exited_processes(snapshot)),
        "writer_lease": _lease_component(lease),
    }
    if recovering:
        components["datastream"] = "reloading after Redis lost the data"
    ready = (
        stream["state"] == "ready"
        and flags["loaded"]
        and load["companies_loaded"]
        and load["users_loaded"]
        and snapshot["redis_ok"]
        and lease["held"]
        and not recovering
        and not snapshot["shutting_down"]
        and not stale
        and not exited_processes(snapshot)
    )
    return {
        "status": "healthy" if not stale else "unhealthy",
        "ready": bool(ready),
        "connected": stream["state"] in ("connected", "ready"),
        "components": components,
        "cache_version": snapshot["cache_version"],
        "reason": _reason(snapshot, lease),
        "timestamp": datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }


def stale_processes(snapshot: dict[str, Any]) -> list[str]:
    """Roles whose heartbeat is too old: hung processes, which /health reports.

    An exited child is not one of them: the supervisor restarts it (its heartbeat is
    the supervisor's own), so a liveness probe must not kill the service meanwhile.
    """
    stale = []
    for process in snapshot["processes"]:
        role = process["role"]
        if process["state"] in ("running", "starting") and role not in NO_HEARTBEAT_ROLES:
            age = process["heartbeat_age_s"]
            if age is not None and age > HEARTBEAT_TIMEOUT_S:
                stale.append(f"{role} silent for {age:.0f}s")
    return stale


def exited_processes(snapshot: dict[str, Any]) -> list[str]:
    """Roles that exited and are waiting for the supervisor to restart them."""
    return [p["role"] for p in snapshot["processes"] if p["state"] == "exited"]


def _processes_component(stale: list[str], exited: list[str]) -> str:
    if stale:
        return "unhealthy: " + ", ".join(stale)
    if exited:
        return "restarting: " + ", ".join(exited)
    return "ok"


def _recovering_from_data_loss(snapshot: dict[str, Any]) -> bool:
    """Tell whether Redis lost data that no complete load and flags snapshot restored yet.

    Only a load that started after the loss restores it, because one that was running
    when it happened wrote part of its records before. Once restored, the loss stays
    repaired through later reloads and a start that resumed from the cursor.
    """
    lost_at = snapshot["data_lost_at"]
    if not lost_at:
        return False
    reloaded = snapshot["load"]["complete_load_started_at"] > lost_at
    return not (reloaded and snapshot["flags"]["snapshot_at"] > lost_at)


def _lease_component(lease: dict[str, Any]) -> str:
    if lease["held"]:
        return "held"
    if lease["standby"]:
        return f"standby: held by {lease['holder']}"
    return "not held"


def _reason(snapshot: dict[str, Any], lease: dict[str, Any]) -> str:
    if lease["standby"]:
        return "standing by: another replicator holds the writer lease"
    if not lease["held"] and not snapshot["redis_ok"]:
        return "Redis is unreachable, so the writer lease cannot be taken"
    stream = snapshot["stream"]
    return str(stream["reason"]) if stream["state"] != "ready" else ""


def _datastream_component(state: str, load: dict[str, Any], flags: dict[str, Any]) -> str:
    if state == "ready":
        loaded = flags["loaded"] and load["companies_loaded"] and load["users_loaded"]
        return "ready" if loaded else "connected_loading"
    return state


def _load_component(loaded: bool, done: int, total: int) -> str:
    if loaded:
        return "loaded"
    return f"loading {done}/{total}"


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
