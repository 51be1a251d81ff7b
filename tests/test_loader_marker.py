"""How the loader ends a load and resumes, given what happened to the load marker.

A loader is built against the session's own redis-server; its load steps that talk to
the API or the workers are not used here.
"""

from __future__ import annotations

import queue
import time

import pytest
import redis

from replicator import keys
from replicator.config import load_config
from replicator.lease import FOREVER
from replicator.loader import DataLost, Loader, LoaderSpec
from replicator.status import LoadState, StatusBlock
from tests.servers import RedisServer

VERSION = "abcd1234"


def make_loader(server: RedisServer) -> Loader:
    config = load_config(
        {
            "SCHEMATIC_API_KEY": "loader-test",
            "SCHEMATIC_API_URL": "http://127.0.0.1:9",
            "REDIS_URL": server.url,
        }
    )
    status = StatusBlock.create()
    status.globals.lease_valid_until = FOREVER
    status.claim(1, "loader")
    spec = LoaderSpec(config, VERSION, status, 1, {}, queue.Queue())
    return Loader(spec)


def start_load(loader: Loader) -> None:
    """What the start of a load does to the marker and the status block."""
    loader.started_at = loader.status.globals.load_started_at = time.time()
    loader.marker_value, _ = loader.marker.begin("1")
    loader.status.globals.marker_seen_at = time.time()


def test_load_completes_with_its_marker_kept(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    loader = make_loader(redis_server)
    start_load(loader)

    started_at = loader.started_at
    loader._complete_marker()
    loader._finish(LoadState.COMPLETE, "test")

    assert redis_client.get(keys.LOAD_MARKER_KEY) == VERSION.encode()
    assert loader.status.globals.marker_lost_in_load == 0
    assert loader.status.globals.complete_load_started_at == started_at


def test_flushed_marker_fails_the_load(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    loader = make_loader(redis_server)
    start_load(loader)
    redis_client.flushall()

    with pytest.raises(DataLost):
        loader._complete_marker()

    assert redis_client.get(keys.LOAD_MARKER_KEY) is None
    assert loader.status.globals.marker_lost_in_load == loader.started_at


def test_reported_loss_fails_the_load(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    loader = make_loader(redis_server)
    start_load(loader)
    loader.status.globals.data_lost_at = time.time()

    with pytest.raises(DataLost):
        loader._complete_marker()
    with pytest.raises(DataLost):
        loader._tick()

    # Reported already, so the probe needs no second report; the marker stays unfinished.
    assert loader.status.globals.marker_lost_in_load == 0
    assert redis_client.get(keys.LOAD_MARKER_KEY) == loader.marker_value.encode()


def test_resume_needs_the_version_marker(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    loader = make_loader(redis_server)
    redis_client.set(loader.config.replay_cursor_key, "1700000000000-0")
    redis_client.set(keys.LOAD_MARKER_KEY, "loading:3:abc")
    unfinished = loader._resume()
    redis_client.set(keys.LOAD_MARKER_KEY, VERSION)

    resumed = loader._resume()

    assert not unfinished
    assert resumed
    assert loader.status.globals.marker_seen_at > 0


def test_no_resume_after_unrepaired_loss(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    loader = make_loader(redis_server)
    redis_client.set(loader.config.replay_cursor_key, "1700000000000-0")
    redis_client.set(keys.LOAD_MARKER_KEY, VERSION)
    state = loader.status.globals
    state.complete_load_started_at = time.time() - 10
    state.data_lost_at = time.time()

    resumed = loader._resume()

    assert not resumed
    assert state.marker_seen_at == 0


def test_marker_gone_before_load_start_is_found(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    loader = make_loader(redis_server)
    start_load(loader)
    loader._complete_marker()
    loader._finish(LoadState.COMPLETE, "test")
    # Flushed after the probe's last round and before the next load starts.
    redis_client.flushall()

    loader._begin("reload")

    state = loader.status.globals
    assert state.marker_lost_in_load > state.data_lost_at
    assert redis_client.get(keys.LOAD_MARKER_KEY) == loader.marker_value.encode()


def test_first_load_into_empty_redis_finds_no_loss(redis_server: RedisServer) -> None:
    loader = make_loader(redis_server)

    loader._begin("initial load")

    assert loader.status.globals.marker_lost_in_load == 0
