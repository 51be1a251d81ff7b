"""systemd service notifications (the sd_notify protocol), without libsystemd.

A unit with ``Type=notify`` sets ``NOTIFY_SOCKET`` to the path of an AF_UNIX datagram
socket, or to ``@name`` for a socket in the abstract namespace. The service sends
newline-separated ``KEY=value`` assignments there: ``READY=1`` when start-up is done,
``STATUS=...`` for ``systemctl status``, ``STOPPING=1`` when the shutdown begins.
Without ``NOTIFY_SOCKET`` nothing is sent.

The supervisor sends ``READY=1`` once ``/ready`` would return 200, so a unit ordered
after this one starts only when Redis contains a complete copy. No other process of the
service inherits NOTIFY_SOCKET.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from replicator import logs
from replicator.health import health_body
from replicator.status import StatusBlock

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25


def socket_address(value: str) -> str:
    """Turn a ``NOTIFY_SOCKET`` value into an address for ``socket.connect``.

    A leading ``@`` names a socket in Linux's abstract namespace, whose address
    starts with a NUL byte.
    """
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; return whether it was sent.

    Returns False when the variable is unset. A failed send is logged, not raised,
    because the service works the same without systemd.
    """
    value = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not value:
        return False

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(socket_address(value))
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        logs.log_every(
            logger,
            "sd-notify",
            60.0,
            logging.WARNING,
            "Sending %r to NOTIFY_SOCKET %r failed: %s.",
            message,
            value,
            exc,
        )
        return False
    return True


def status_line(snapshot: dict[str, Any], body: dict[str, Any]) -> str:
    """Describe the service's state in one line for ``STATUS=``.

    Counts are left out, so the line changes only when a state changes.
    """
    if snapshot["shutting_down"]:
        return "Stopping."
    if body["ready"]:
        return f"Ready: cache version {snapshot['cache_version']}."

    stream = snapshot["stream"]
    datastream = stream["state"]
    if stream["reason"] and datastream != "ready":
        datastream += f" ({stream['reason']})"
    parts = [
        f"datastream {datastream}",
        f"bulk load {snapshot['load']['state']}",
        "flags " + ("loaded" if snapshot["flags"]["loaded"] else "loading"),
        "Redis " + body["components"]["redis"],
    ]
    if body["status"] != "healthy":
        parts.append(body["components"]["processes"])
    if body["components"]["writer_lease"] != "held":
        parts.append("writer lease " + body["components"]["writer_lease"])
    return "Not ready: " + ", ".join(parts) + "."


class ReadinessNotifier(threading.Thread):
    """Thread that sends ``STATUS=`` on each change of the status block and ``READY=1`` once."""

    def __init__(
        self,
        status: StatusBlock,
        environ: Mapping[str, str] | None = None,
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        super().__init__(name="sd-notify", daemon=True)
        self.status = status
        self.environ = dict(os.environ if environ is None else environ)
        self.interval_s = interval_s
        self.ready_sent = False
        self.last_line = ""

    def run(self) -> None:
        while not self.status.globals.shutting_down:
            self.check()
            time.sleep(self.interval_s)

    def check(self) -> None:
        """Send what changed since the last check."""
        snapshot = self.status.snapshot()
        if snapshot["shutting_down"]:
            return  # The supervisor sends STOPPING=1 itself.

        body = health_body(snapshot)
        lines = []
        if body["ready"] and not self.ready_sent:
            lines.append("READY=1")
        line = status_line(snapshot, body)
        if line != self.last_line:
            lines.append("STATUS=" + line)
        if lines and notify("\n".join(lines), self.environ):
            self.ready_sent = self.ready_sent or body["ready"]
            self.last_line = line


#: NOTIFY_SOCKET of this process, kept after :func:`start_readiness_notifier` removed it
#: from the environment.
_notify_socket = ""


def start_readiness_notifier(status: StatusBlock) -> ReadinessNotifier | None:
    """Start a :class:`ReadinessNotifier` when systemd asked for notifications.

    Removes NOTIFY_SOCKET from the environment first, so that processes forked later do
    not inherit it: gunicorn would send its own READY=1 as soon as it listens. Call this
    before the children are forked.
    """
    global _notify_socket
    _notify_socket = os.environ.pop("NOTIFY_SOCKET", "") or _notify_socket
    if not _notify_socket:
        return None
    notifier = ReadinessNotifier(status, {"NOTIFY_SOCKET": _notify_socket})
    notifier.start()
    return notifier


def notify_stopping() -> bool:
    """Tell systemd that the graceful shutdown has begun."""
    environ = {"NOTIFY_SOCKET": _notify_socket} if _notify_socket else None
    return notify("STOPPING=1\nSTATUS=Stopping: draining the queues.", environ)
