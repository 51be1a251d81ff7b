"""Fault injection: broken connections, failing REST pages, malformed frames, auth rejection.

Every method is thread-safe and may be called from tests, from the command line's
scheduled faults and from the admin endpoint. Connection faults apply to every open
connection unless a connection id is given, and return how many connections they hit.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from replicator.simulator import malformed
from replicator.simulator.config import AUTH_REJECT_STYLES
from replicator.simulator.connections import Hub
from replicator.simulator.protocol import RELOAD_ENTITY_TYPE
from replicator.simulator.service import Service
from replicator.simulator.stream import control_message

logger = logging.getLogger(__name__)

T = TypeVar("T")
LoopRunner = Callable[[Callable[[], T]], T]


@dataclass
class PageFault:
    """A failure or delay for REST requests of one path (and one offset, unless None)."""

    path: str
    offset: int | None
    status: int = 0
    retry_after_s: float | None = None
    delay_s: float = 0.0
    remaining: int | None = 1

    def matches(self, path: str, offset: int | None) -> bool:
        """Return whether a request of ``path`` at ``offset`` is affected."""
        return self.path == path and (self.offset is None or self.offset == offset)


class Faults:
    """Methods that inject every kind of fault the simulator supports."""

    def __init__(self, service: Service, hub: Hub, run_in_loop: LoopRunner[Any]) -> None:
        self._service = service
        self._hub = hub
        self._run_in_loop = run_in_loop
        self._lock = threading.Lock()
        self._pages: list[PageFault] = []
        self._auth: list[list[Any]] = []  # [style, remaining count or None]

    # Connections.

    def close(self, code: int = 1000, reason: str = "", connection_id: int | None = None) -> int:
        """Close connections with a close frame (1000 normal, 1001 going away, 4001...)."""

        def close_all() -> int:
            targets = self._hub.targets(connection_id)
            for connection in targets:
                connection.info.close_code = code
                self._hub.spawn(connection.ws.close(code=code, message=reason.encode()))
            return len(targets)

        count = self._run_in_loop(close_all)
        logger.info("Fault: closed %d connections with code %d.", count, code)
        return int(count)

    def reset(self, connection_id: int | None = None) -> int:
        """Drop connections with a TCP reset and no close frame."""

        def reset_all() -> int:
            targets = self._hub.targets(connection_id)
            for connection in targets:
                connection.reset()
            return len(targets)

        count = self._run_in_loop(reset_all)
        logger.info("Fault: reset %d connections.", count)
        return int(count)

    def stall(self, connection_id: int | None = None) -> int:
        """Stop sending data and pongs on open connections until clear_stall()."""

        def stall_all() -> int:
            targets = self._hub.targets(connection_id)
            for connection in targets:
                connection.stalled = True
            return len(targets)

        count = self._run_in_loop(stall_all)
        logger.info("Fault: stalled %d connections.", count)
        return int(count)

    def clear_stall(self) -> int:
        """Resume every stalled connection; what was queued meanwhile is sent."""

        def resume_all() -> int:
            stalled = [c for c in self._hub.targets(None) if c.stalled]
            for connection in stalled:
                connection.resume()
            return len(stalled)

        return int(self._run_in_loop(resume_all))

    def send_reload(self, connection_id: int | None = None) -> int:
        """Send a ``reload`` message (no stream id) to connections."""

        def reload_all() -> int:
            targets = self._hub.targets(connection_id)
            for connection in targets:
                connection.info.reloads += 1
                connection.send(control_message(RELOAD_ENTITY_TYPE, "reload", None))
            return len(targets)

        return int(self._run_in_loop(reload_all))

    # Authentication.

    def reject_auth(self, style: str = "close", times: int | None = 1) -> None:
        """Reject the next ``times`` connections (None: all until cleared), even with a good key.

        Style ``close`` accepts the upgrade, then closes with 4001. Style ``http`` rejects
        the upgrade with HTTP 401.
        """
        if style not in AUTH_REJECT_STYLES:
            raise ValueError(
                f"Invalid style {style!r}: expected one of {', '.join(AUTH_REJECT_STYLES)}."
            )
        with self._lock:
            self._auth.append([style, times])

    def clear_auth_rejection(self) -> None:
        """Stop rejecting connections that carry the right key."""
        with self._lock:
            self._auth.clear()

    def take_auth_rejection(self) -> str | None:
        """Return the rejection style for a new connection, if a rejection is pending."""
        with self._lock:
            if not self._auth:
                return None
            rule = self._auth[0]
            if rule[1] is not None:
                rule[1] -= 1
                if rule[1] <= 0:
                    self._auth.pop(0)
            return str(rule[0])

    # REST pages.

    def fail_page(
        self,
        path: str,
        offset: int | None = None,
        status: int = 500,
        times: int | None = 1,
        retry_after_s: float | None = None,
    ) -> None:
        """Fail the next ``times`` requests of a path (and offset) with HTTP ``status``."""
        if not 400 <= status <= 599:
            raise ValueError(f"Invalid status {status!r}: expected an HTTP error, 400 to 599.")
        with self._lock:
            self._pages.append(PageFault(path, offset, status, retry_after_s, 0.0, times))

    def rate_limit_page(
        self,
        path: str,
        offset: int | None = None,
        times: int | None = 1,
        retry_after_s: float = 1.0,
    ) -> None:
        """Fail the next ``times`` requests of a path with 429 and ``Retry-After``."""
        self.fail_page(path, offset, 429, times, retry_after_s)

    def slow_page(
        self, path: str, offset: int | None = None, delay_s: float = 2.0, times: int | None = 1
    ) -> None:
        """Delay the next ``times`` requests of a path (and offset) by ``delay_s``."""
        with self._lock:
            self._pages.append(PageFault(path, offset, 0, None, delay_s, times))

    def clear_pages(self) -> None:
        """Drop every pending REST fault."""
        with self._lock:
            self._pages.clear()

    def take_page_fault(self, path: str, offset: int | None) -> PageFault | None:
        """Return the first pending fault for a request and count it as used."""
        with self._lock:
            for rule in self._pages:
                if rule.matches(path, offset):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._pages.remove(rule)
                    return rule
        return None

    # Malformed frames; each returns the stream id it used.

    def send_invalid_json(self) -> str:
        """Publish a frame that is not valid JSON."""
        return malformed.send_invalid_json(self._service)

    def send_wrong_types(self) -> str:
        """Publish a company whose ``keys`` is a list."""
        return malformed.send_wrong_types(self._service)

    def send_unknown_entity_type(self) -> str:
        """Publish a message of an unknown entity type."""
        return malformed.send_unknown_entity_type(self._service)

    def send_unknown_message_type(self) -> str:
        """Publish a company message of an unknown message type."""
        return malformed.send_unknown_message_type(self._service)

    def send_unknown_partial(self) -> str:
        """Publish a partial for a company id that does not exist."""
        return malformed.send_unknown_partial(self._service)

    def send_missing_id(self) -> str:
        """Publish a company record without an id."""
        return malformed.send_missing_id(self._service)

    def send_huge_frame(self, size_bytes: int = malformed.HUGE_FRAME_BYTES) -> str:
        """Publish a valid company ``full`` padded to about ``size_bytes`` (20 MB by default)."""
        return malformed.send_huge_frame(self._service, size_bytes)

    # By name, for the command line and the admin endpoint.

    def inject(self, kind: str, **params: Any) -> Any:
        """Inject a fault by its name in :data:`FAULT_KINDS`, with optional parameters."""
        spec = FAULT_KINDS.get(kind)
        if spec is None:
            raise ValueError(f"Unknown fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}.")
        method_name, defaults = spec
        method = getattr(self, method_name)
        arguments = {**defaults, **params}
        try:
            inspect.signature(method).bind(**arguments)
        except TypeError as error:
            raise ValueError(f"Invalid parameters for fault {kind!r}: {error}.") from error
        logger.info("Injecting fault %r with %r.", kind, arguments)
        return method(**arguments)


#: Fault names for ``--fault`` and the admin endpoint: (method, default parameters).
FAULT_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "close": ("close", {"code": 1000}),
    "close-going-away": ("close", {"code": 1001}),
    "close-unauthorized": ("close", {"code": 4001, "reason": "unauthorized"}),
    "reset": ("reset", {}),
    "stall": ("stall", {}),
    "clear-stall": ("clear_stall", {}),
    "reload": ("send_reload", {}),
    "http-500": ("fail_page", {"path": "/companies", "status": 500}),
    "http-429": ("rate_limit_page", {"path": "/companies"}),
    "slow-page": ("slow_page", {"path": "/companies"}),
    "clear-pages": ("clear_pages", {}),
    "auth-close": ("reject_auth", {"style": "close"}),
    "auth-http": ("reject_auth", {"style": "http"}),
    "clear-auth": ("clear_auth_rejection", {}),
    "invalid-json": ("send_invalid_json", {}),
    "wrong-types": ("send_wrong_types", {}),
    "unknown-entity-type": ("send_unknown_entity_type", {}),
    "unknown-message-type": ("send_unknown_message_type", {}),
    "unknown-partial": ("send_unknown_partial", {}),
    "missing-id": ("send_missing_id", {}),
    "huge-frame": ("send_huge_frame", {}),
}
