"""A thread of the supervisor that watches Redis: reachable, and still holding our data.

Every few seconds it PINGs Redis, or every primary of a cluster (``redis_ok`` in the
status block, which /ready needs). Then it looks for three signs that Redis lost what
we wrote:

- a primary reports a ``run_id`` other than the one the probe saw there before: that
  server restarted, and the writes it had not persisted yet may be gone (all of them
  without persistence). A primary at an address not seen before (a failover) is no
  restart;
- the load marker is gone, while this replicator holds the writer lease and the loader
  wrote or read the marker after the last reported loss (FLUSHALL, or a restart
  without persistence), during a load as well as after one;
- the loader found at the end of a load that the marker no longer held the value it
  wrote at the start.

A loss records the time, which turns /ready to 503 until a load that started after it
completes, and requests a full reload with a fresh datastream connection from the
supervisor. Each loss is reported once: a missing marker counts again only after a
load wrote it anew.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from redis.exceptions import NoPermissionError, ResponseError

from replicator import keys, redis_conn
from replicator.config import Config
from replicator.lease import lease_valid
from replicator.status import StatusBlock

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 2.0
#: The probe gives up on a command after this long and does not retry it, so /ready
#: turns 503 within seconds when Redis stops answering.
PROBE_TIMEOUT_S = 1.0


class RunIds:
    """The ``run_id`` last seen at each primary's address, to tell a restart from a failover."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def observe(self, current: dict[str, str]) -> list[str]:
        """Remember ``current`` and return the addresses whose server restarted since.

        An address that is no longer a primary is forgotten, so a node that returns as a
        primary after a failover back counts as new, whatever its run_id.
        """
        restarted = [
            address
            for address, run_id in sorted(current.items())
            if self.known.get(address, run_id) != run_id
        ]
        self.known = dict(current)
        return restarted


class RedisProbe(threading.Thread):
    def __init__(
        self, config: Config, status: StatusBlock, on_data_loss: Callable[[str], None]
    ) -> None:
        super().__init__(name="redis-probe", daemon=True)
        probe_settings = dataclasses.replace(
            config.redis,
            read_timeout_s=min(config.redis.read_timeout_s, PROBE_TIMEOUT_S),
            write_timeout_s=min(config.redis.write_timeout_s, PROBE_TIMEOUT_S),
            dial_timeout_s=min(config.redis.dial_timeout_s, PROBE_TIMEOUT_S),
            max_retries=0,
        )
        self.client = redis_conn.create_client(probe_settings)
        self.status = status
        self.on_data_loss = on_data_loss
        self.run_ids = RunIds()
        self._info_warned = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.check()
            self._stop_event.wait(PROBE_INTERVAL_S)

    def stop(self) -> None:
        self._stop_event.set()

    def check(self) -> None:
        """Probe once: PING, then report a data loss if there is a sign of one."""
        ok = self._ping()
        restarted = self._restarted() if ok else ""
        loss = restarted or self._loss_found_by_loader()
        if not loss and ok:
            loss = self._marker_missing()
        if loss:
            self._report_loss(loss)

    def _ping(self) -> bool:
        try:
            redis_conn.ping(self.client)
            ok = 1
        except redis_conn.REDIS_ERRORS:
            ok = 0
        if ok != self.status.globals.redis_ok:
            level = logging.INFO if ok else logging.ERROR
            logger.log(level, "Redis is %s.", "reachable again" if ok else "unreachable")
        self.status.globals.redis_ok = ok
        return bool(ok)

    def _restarted(self) -> str:
        try:
            current = redis_conn.primary_run_ids(self.client)
        except ResponseError as exc:
            # Other errors (CLUSTERDOWN, TRYAGAIN) are passed over, so the next round retries.
            denied = isinstance(exc, NoPermissionError) or "unknown command" in str(exc).lower()
            if denied and not self._info_warned:
                self._info_warned = True
                logger.warning(
                    "INFO failed (%s), so a restart of Redis that loses recent writes "
                    "goes unnoticed. Allow INFO for the replicator's Redis user, and do not "
                    "rename or disable the command.",
                    exc,
                )
            return ""
        except redis_conn.REDIS_ERRORS:
            return ""  # The result is unknown, so the next round tries again.
        restarted = self.run_ids.observe(current)
        if not restarted:
            return ""
        return (
            f"Redis at {', '.join(restarted)} restarted (new run_id) and may have lost "
            "the writes it had not persisted"
        )

    def _loss_found_by_loader(self) -> str:
        state = self.status.globals
        # A loss reported while that load ran needs no second report.
        if state.marker_lost_in_load <= state.data_lost_at:
            return ""
        return "a bulk load found the load marker missing or changed: Redis lost data"

    # NOTE: In cluster mode the marker is one key on one shard. A primary that restarts
    # is noticed by its run_id wherever it is, but a FLUSHALL sent to a single primary is
    # noticed only when that primary owns the marker's slot.
    def _marker_missing(self) -> str:
        state = self.status.globals
        # Read before the marker: the loader sets it only after the marker exists.
        seen_at = state.marker_seen_at
        if not lease_valid(self.status) or seen_at <= state.data_lost_at:
            return ""
        try:
            if self.client.exists(keys.LOAD_MARKER_KEY):
                return ""
        except redis_conn.REDIS_ERRORS:
            return ""  # The result is unknown, so the next round tries again.
        return (
            "the load marker is gone: Redis lost the replicated data (FLUSHALL, or a "
            "restart without persistence)"
        )

    def _report_loss(self, cause: str) -> None:
        self.status.globals.data_lost_at = time.time()
        if lease_valid(self.status):
            action = "reloading everything"
        else:
            action = "a full load runs once this replicator takes the writer lease"
        logger.error("Data loss: %s; %s.", cause, action)
        self.on_data_loss(cause)
