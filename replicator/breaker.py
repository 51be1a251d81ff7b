"""A circuit breaker for Redis writes.

After ``threshold`` consecutive failures the breaker opens: no write is attempted for
``timeout_s``, so a Redis that is down or overloaded is not hammered. Then one write
is tried (half-open); success closes the breaker, failure opens it again. The batch
that failed is kept and retried, never dropped.
"""

from __future__ import annotations

import time

from replicator.status import CircuitState


class CircuitBreaker:
    def __init__(self, threshold: int, timeout_s: float) -> None:
        self.threshold = threshold
        self.timeout_s = timeout_s
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0

    def wait_time(self) -> float:
        """Seconds until the next attempt may be made (0 means now)."""
        if self.state != CircuitState.OPEN:
            return 0.0
        remaining = self.opened_at + self.timeout_s - time.monotonic()
        if remaining <= 0:
            self.state = CircuitState.HALF_OPEN
            return 0.0
        return remaining

    def success(self) -> None:
        self.state = CircuitState.CLOSED
        self.failures = 0

    def failure(self) -> bool:
        """Record a failure; True when it opened the breaker."""
        self.failures += 1
        if self.state == CircuitState.HALF_OPEN or self.failures >= self.threshold:
            opened = self.state != CircuitState.OPEN
            self.state = CircuitState.OPEN
            self.opened_at = time.monotonic()
            return opened
        return False
