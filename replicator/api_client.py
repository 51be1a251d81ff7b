"""The Schematic REST client used by the loader: counts and pages of companies and users.

Retries 408, 429, 5xx and connection failures with backoff, honouring
``Retry-After`` (seconds or an HTTP date); a 401 or 403 raises ApiAuthError at once.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from typing import Any
from urllib.parse import quote

import orjson
import requests

from replicator import __version__
from replicator.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
RETRY_BASE_S = 1.0
RETRY_CAP_S = 60.0
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """A REST call failed for good (after its retries)."""


class ApiAuthError(ApiError):
    """The API rejected the API key."""


class RateLimiter:
    """Token bucket shared by the loader's fetch threads; ``rate`` 0 means no limit."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)


class ApiClient:
    """REST calls with retries, a rate limit and a circuit breaker.

    The breaker opens after ``breaker_threshold`` calls in a row failed for good (each
    after its retries); while it is open, calls fail at once for ``breaker_timeout_s``
    instead of adding load to an API that is down.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        retries: int,
        rate_limit_rps: float,
        breaker_threshold: int = 5,
        breaker_timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.limiter = RateLimiter(rate_limit_rps)
        self.breaker = CircuitBreaker(breaker_threshold, breaker_timeout_s)
        self._breaker_lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers.update(
            {
                "X-Schematic-Api-Key": api_key,
                "Accept": "application/json",
                "User-Agent": f"schematic-datastream-replicator/{__version__}",
            }
        )

    def count(self, resource: str) -> int:
        """Return the number of ``resource`` ("companies" or "users")."""
        body = self._get(f"/{resource}/count", {})
        data = body.get("data") if isinstance(body, dict) else None
        count = data.get("count") if isinstance(data, dict) else None
        if not isinstance(count, int) or count < 0:
            raise ApiError(f"GET /{resource}/count returned no valid count: {body!r:.200}")
        return count

    def page(self, resource: str, limit: int, offset: int) -> list[Any]:
        """Return one page of ``resource`` items in the API's own shape."""
        body = self._get(f"/{resource}", {"limit": limit, "offset": offset})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ApiError(f"GET /{resource} offset {offset} returned no list: {body!r:.200}")
        return data

    def item(self, resource: str, entity_id: str) -> dict[str, Any] | None:
        """Return one item of ``resource`` in the API's own shape, or None on a 404."""
        path = f"/{resource}/{quote(entity_id, safe='')}"
        body = self._get(path, {}, missing_ok=True)
        if body is None:
            return None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError(f"GET {path} returned no item: {body!r:.200}")
        return data

    def close(self) -> None:
        self.session.close()

    def _get(self, path: str, params: dict[str, int], missing_ok: bool = False) -> Any:
        with self._breaker_lock:
            wait_s = self.breaker.wait_time()
        if wait_s > 0:
            raise ApiError(
                f"GET {path} not sent: the API circuit is open for another {wait_s:.0f}s "
                f"after {self.breaker.failures} failed calls"
            )
        try:
            body = self._get_with_retries(path, params, missing_ok)
        except ApiAuthError:
            raise
        except ApiError:
            with self._breaker_lock:
                if self.breaker.failure():
                    logger.error(
                        "The API circuit opened after %d failed calls; no call for %.0fs.",
                        self.breaker.failures,
                        self.breaker.timeout_s,
                    )
            raise
        with self._breaker_lock:
            self.breaker.success()
        return body

    def _get_with_retries(self, path: str, params: dict[str, int], missing_ok: bool = False) -> Any:
        attempt = 0
        while True:
            self.limiter.acquire()
            delay, reason = self._try_get(path, params, attempt, missing_ok)
            if delay is None:
                return reason
            attempt += 1
            if attempt > self.retries:
                raise ApiError(f"GET {path} {params} failed after {attempt} attempts: {reason}")
            logger.warning(
                "GET %s %s failed (%s); retry %d of %d in %.1fs.",
                path,
                params,
                reason,
                attempt,
                self.retries,
                delay,
            )
            time.sleep(delay)

    def _try_get(
        self, path: str, params: dict[str, int], attempt: int, missing_ok: bool = False
    ) -> tuple[float | None, Any]:
        """One attempt: ``(None, body)`` on success, ``(delay, reason)`` to retry."""
        try:
            response = self.session.get(
                self.base_url + path, params=params, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
            )
        except requests.RequestException as exc:
            return _backoff_delay(attempt), f"request failed: {exc}"

        status = response.status_code
        if status in (401, 403):
            raise ApiAuthError(f"GET {path} answered HTTP {status}: check SCHEMATIC_API_KEY")
        if status == 404 and missing_ok:
            return None, None
        if status in RETRYABLE_STATUS:
            return _retry_after(response) or _backoff_delay(attempt), f"HTTP {status}"
        if status != 200:
            raise ApiError(f"GET {path} {params} answered HTTP {status}: {response.text[:200]}")
        try:
            return None, orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            return _backoff_delay(attempt), f"invalid JSON body ({exc})"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value), RETRY_CAP_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), RETRY_CAP_S)


def _backoff_delay(attempt: int) -> float:
    delay = min(RETRY_BASE_S * 2**attempt, RETRY_CAP_S)
    return delay * random.uniform(0.9, 1.1)
