from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.redis_fixtures import TlsFiles, make_tls_files, start_tls_redis, stop_and_remove
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


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and certificates, made once per test module."""
    return make_tls_files(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def tls_server(tls_files: TlsFiles) -> Iterator[RedisServer]:
    """A TLS-only redis-server that requires a client certificate."""
    server = start_tls_redis(tls_files.ca_cert, tls_files.server_cert, tls_files.server_key)
    yield server
    stop_and_remove(server)
