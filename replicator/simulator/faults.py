"""Fault injection: broken connections, failing REST pages, malformed frames, auth rejection.

Every method is thread-safe and may be called from tests, from the command line's
scheduled faults and from the admin endpoint. Connection faults apply to every open
connection unless a connection id is given, and return how many connections they hit.
Invalid parameters raise ValueError, which the admin endpoint returns as HTTP 400.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar

from replicator.simulator import malformed
from replicator.simulator.config import AUTH_REJECT_STYLES
from replicator.simulator.connections import Hub
from replicator.simulator.protocol import RELOAD_ENTITY_TYPE
from replicator.simulator.service import Service
from replicator.simulator.stream import control_message, raw_message

logger = logging.getLogger(__name__)

T = TypeVar("T")
LoopRunner = Callable[[Callable[[], T]], T]

#: Maximum length of a close reason in UTF-8 bytes, so that it fits a close frame
#: (RFC 6455, section 5.5).
MAX_CLOSE_REASON_BYTES = 123
#: Longer parameter texts are logged as their length.
_SHOWN_CHARS = 200
_CLOSE_CODES = frozenset([*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)])


def check_close_code(code: object) -> None:
    """Raise ValueError unless ``code`` is a close code that a server may send.

    RFC 6455 and the IANA close code registry define 1000 to 1003 and 1007 to 1014.
    1004 is reserved, 1005, 1006 and 1015 must never be sent, 1016 to 2999 are kept for
    the protocol, and 3000 to 4999 are for libraries and applications.
    """
    if _is_integer(code) and code in _CLOSE_CODES:
        return
    raise ValueError(
        f"Invalid close code {code!r}: expected 1000 to 1003, 1007 to 1014 or 3000 to 4999."
    )


def check_times(times: object) -> None:
    """Raise ValueError unless ``times`` is None (until cleared) or an integer >= 1."""
    if times is None or (_is_integer(times) and times >= 1):
        return
    raise ValueError(
        f"Invalid times {times!r}: expected an integer >= 1, or null to repeat until cleared."
    )


def check_seconds(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a finite number of seconds >= 0."""
    if _is_number(value) and math.isfinite(value) and value >= 0:
        return
    raise ValueError(f"Invalid {name} {value!r}: expected a number of seconds >= 0.")


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_offset(offset: object) -> None:
    if offset is None or (_is_integer(offset) and offset >= 0):
        return
    raise ValueError(f"Invalid offset {offset!r}: expected an integer >= 0, or null for any.")


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
        check_close_code(code)
        if not isinstance(reason, str) or len(reason.encode()) > MAX_CLOSE_REASON_BYTES:
            raise ValueError(
                f"Invalid reason {reason!r}: expected a text of at most "
                f"{MAX_CLOSE_REASON_BYTES} UTF-8 bytes."
            )

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

    def send_raw(self, frame: str | bytes, stream_id: bool = False) -> str | int:
        """Send ``frame`` in a WebSocket text frame exactly as given, JSON or not.

        Without ``stream_id`` the frame goes at once to every open connection, is not kept
        for replay, and the result is the number of connections. With ``stream_id`` the
        next stream id replaces each ``@@stream_id@@`` in the frame, which is then
        published like a change: it goes to every connection that subscribed to anything,
        it is kept for replay, and the result is the stream id. The truth never changes.
        Bytes are sent unchanged, even when they are not valid UTF-8.
        """
        if not isinstance(frame, (str, bytes)):
            raise ValueError(f"Invalid frame {frame!r}: expected a text.")
        if not isinstance(stream_id, bool):
            raise ValueError(f"Invalid stream_id {stream_id!r}: expected true or false.")
        if stream_id:
            return malformed.send_raw_change(self._service, frame)

        message = raw_message(frame)

        def send_all() -> int:
            targets = self._hub.targets(None)
            for connection in targets:
                connection.send(message)
            return len(targets)

        count = int(self._run_in_loop(send_all))
        logger.info("Fault: sent a raw frame of length %d to %d connections.", len(frame), count)
        return count

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
        check_times(times)
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
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"Invalid status {status!r}: expected an HTTP error, 400 to 599.")
        _check_offset(offset)
        check_times(times)
        if retry_after_s is not None:
            check_seconds("retry_after_s", retry_after_s)
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
        _check_offset(offset)
        check_times(times)
        check_seconds("delay_s", delay_s)
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
        logger.info("Injecting fault %r with %r.", kind, _shown(arguments))
        return method(**arguments)


def _shown(arguments: dict[str, Any]) -> dict[str, Any]:
    """Replace long texts, such as a raw frame, by their length for the log."""
    return {
        name: f"<{len(value)} characters>"
        if isinstance(value, (str, bytes)) and len(value) > _SHOWN_CHARS
        else value
        for name, value in arguments.items()
    }


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
    "raw": ("send_raw", {}),
}


def required_parameters(kind: str) -> list[str]:
    """Return the parameters that fault ``kind`` needs beyond its defaults."""
    method_name, defaults = FAULT_KINDS[kind]
    parameters = inspect.signature(getattr(Faults, method_name)).parameters.values()
    return [
        parameter.name
        for parameter in parameters
        if parameter.name != "self"
        and parameter.default is inspect.Parameter.empty
        and parameter.name not in defaults
    ]
