"""The writer lease: only one replicator writes to a Redis at a time.

The lease is a Redis key holding a random token, set with ``SET NX PX`` and renewed
by a script that extends it only while it still holds our token. The supervisor
publishes until when the lease is known to be ours as ``lease_valid_until`` in the
status block, and every process checks it before it writes. So a replicator that
cannot renew stops writing before the key can expire and another one can take over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from replicator.redis_conn import REDIS_ERRORS
from replicator.status import StatusBlock

logger = logging.getLogger(__name__)

#: A lease counts as ours for this fraction of its TTL after the start of a successful
#: renewal, leaving the rest as margin against clock drift and a slow network.
SAFE_FRACTION = 0.8
#: How often a standby tries to take the lease.
STANDBY_RETRY_S = 1.0
#: ``lease_valid_until`` when the lease is disabled: far in the future.
FOREVER = 1e18

RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def make_token() -> str:
    """``<hostname>-<pid>-<32 hex>``, as the original replicator writes it."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(16)}"


def lease_valid(status: StatusBlock) -> bool:
    """Tell whether this replicator may write now."""
    return time.monotonic() < status.globals.lease_valid_until


class Lease:
    def __init__(self, client: Any, key: str, ttl_s: float, status: StatusBlock) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.status = status
        self.token = make_token()
        self._renew = client.register_script(RENEW_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def holder(self) -> str:
        """Return the token of whoever holds the lease, or ``""``."""
        try:
            raw = self.client.get(self.key)
        except REDIS_ERRORS:
            return ""
        return raw.decode("utf-8", "replace") if raw else ""

    def try_acquire(self) -> bool:
        started = time.monotonic()
        try:
            acquired = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except REDIS_ERRORS as exc:
            logger.warning("Could not reach Redis to take the writer lease: %s", exc)
            return False
        if acquired:
            self._confirmed(started)
        return acquired

    def renew(self) -> bool:
        """Extend the lease; False once it is certainly someone else's."""
        started = time.monotonic()
        try:
            result = self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
        except REDIS_ERRORS as exc:
            logger.warning("Could not renew the writer lease, will retry: %s", exc)
            return True
        if result:
            self._confirmed(started)
            return True
        self.status.globals.lease_valid_until = 0.0
        return False

    def release(self) -> None:
        self.status.globals.lease_valid_until = 0.0
        try:
            self._release(keys=[self.key], args=[self.token])
        except REDIS_ERRORS as exc:
            logger.warning("Could not release the writer lease; it expires by itself: %s", exc)

    def _confirmed(self, started: float) -> None:
        self.status.globals.lease_valid_until = started + SAFE_FRACTION * self.ttl_ms / 1000


class LeaseKeeper(threading.Thread):
    """Renews the lease every TTL/3, and notices within a tick when it is no longer ours."""

    TICK_S = 0.25

    def __init__(self, lease: Lease, ttl_s: float) -> None:
        super().__init__(name="lease-keeper", daemon=True)
        self.lease = lease
        self.interval_s = max(ttl_s / 3, 0.2)
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        next_renewal = time.monotonic() + self.interval_s
        while not self._stop_event.wait(self.TICK_S):
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + self.interval_s
                if not self.lease.renew():
                    self._report_loss()
                    self.lost.set()
                    return
            if not lease_valid(self.lease.status):
                logger.warning("Could not renew the writer lease in time; it may be taken over.")
                self.lost.set()
                return

    def _report_loss(self) -> None:
        holder = self.lease.holder()
        if holder:
            logger.warning("The writer lease now belongs to another replicator, %r.", holder)
            return
        # A missing key means the lease expired or Redis lost its data (a restart
        # without persistence, FLUSHALL), not that another replicator took it.
        logger.warning(
            "The writer lease %r is gone: it expired, or Redis lost its data.", self.lease.key
        )
