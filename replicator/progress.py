"""Progress of a bulk load: logged at INFO every few seconds and kept in the status block."""

from __future__ import annotations

import logging
import time

from replicator.status import StatusBlock

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 5.0


class Progress:
    """Reads the loader's done/total counters from the status block and reports them."""

    def __init__(self, status: StatusBlock) -> None:
        self.status = status
        self.started = time.monotonic()
        self.next_log = self.started + LOG_INTERVAL_S

    def counts(self) -> tuple[int, int]:
        state = self.status.globals
        done = state.companies_done + state.users_done
        total = state.companies_total + state.users_total
        return done, total

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now < self.next_log:
            return
        self.next_log = now + LOG_INTERVAL_S
        done, total = self.counts()
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        remaining = (total - done) / rate if rate > 0 and total > done else 0.0
        logger.info(
            "Bulk load: %d of %d entities (%.0f%%), %.0f per second, about %.0fs left.",
            done,
            total,
            100.0 * done / total if total else 100.0,
            rate,
            remaining,
        )

    def log_final(self) -> None:
        done, total = self.counts()
        elapsed = time.monotonic() - self.started
        logger.info("Bulk load wrote %d entities (source count %d) in %.1fs.", done, total, elapsed)
