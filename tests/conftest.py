from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.servers import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server started for this test session only."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture()
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's own redis-server, emptied before each test.

    Flushing is safe because the tests started this server themselves.
    """
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    client.flushall()
    yield client
    client.close()
