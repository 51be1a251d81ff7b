"""A thread of the supervisor that watches Redis: reachable, and still holding our data.

Every few seconds it PINGs Redis, or every primary of a cluster (``redis_ok`` in the
status block, which /ready needs), and, once a bulk load completed, checks that the
load marker is still there. A missing marker means Redis lost what we wrote (FLUSHALL, or a restart
without persistence): the probe records the time, which turns /ready to 503, and
asks the supervisor for a full reload.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from replicator import keys, redis_conn
from replicator.config import Config
from replicator.lease import lease_valid
from replicator.status import LoadState, StatusBlock

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 2.0
#: The probe gives up on a command after this long and does not retry it, so /ready
#: turns 503 within seconds when Redis stops answering.
PROBE_TIMEOUT_S = 1.0


class RedisProbe(threading.Thread):
    def __init__(
        self, config: Config, status: StatusBlock, on_data_loss: Callable[[], None]
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

    def run(self) -> None:
        while True:
            ok = self._ping()
            if ok and self._data_expected() and not self._marker_present():
                self._report_loss()
            time.sleep(PROBE_INTERVAL_S)

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

    def _data_expected(self) -> bool:
        state = self.status.globals
        if not lease_valid(self.status) or state.load_state != LoadState.COMPLETE:
            return False
        # A loss already reported stays reported until a load completes after it.
        return state.data_lost_at <= state.load_finished_at

    # NOTE: In cluster mode the marker is one key on one shard, so a shard that restarts
    # empty is noticed only when it owns the marker's slot.
    def _marker_present(self) -> bool:
        try:
            return bool(self.client.exists(keys.LOAD_MARKER_KEY))
        except redis_conn.REDIS_ERRORS:
            return True  # Unknown: the next probe asks again.

    def _report_loss(self) -> None:
        self.status.globals.data_lost_at = time.time()
        logger.error(
            "The load marker %r is gone: Redis lost the replicated data (FLUSHALL or a "
            "restart without persistence).",
            keys.LOAD_MARKER_KEY,
        )
        self.on_data_loss()
