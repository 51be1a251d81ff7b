"""The Redis probe's loss detection: a missing marker, a loss found by a load.

The probe runs one check at a time here, against a redis-server each test starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from replicator import keys
from replicator.config import load_config
from replicator.lease import FOREVER
from replicator.probe import RedisProbe
from replicator.status import StatusBlock
from tests.redis_fixtures import stop_and_remove
from tests.servers import RedisServer, start_redis

# The probe against a real server ---------------------------------------------------


class Losses:
    """Collects what the probe reports, as the supervisor's callback would receive it."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


@pytest.fixture()
def server() -> Iterator[RedisServer]:
    started = start_redis()
    yield started
    stop_and_remove(started)


def make_probe(server: RedisServer, losses: Losses) -> RedisProbe:
    config = load_config({"SCHEMATIC_API_KEY": "probe-test", "REDIS_URL": server.url})
    status = StatusBlock.create()
    status.globals.lease_valid_until = FOREVER
    status.globals.redis_ok = 1
    return RedisProbe(config, status, losses)


def admin(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port)


def test_missing_marker_during_load_reported_once(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)
    client = admin(server)
    client.set(keys.LOAD_MARKER_KEY, "loading:1:abc")
    probe.status.globals.marker_seen_at = time.time()

    probe.check()
    client.flushall()
    probe.check()
    probe.check()

    assert len(losses.reasons) == 1
    assert "load marker is gone" in losses.reasons[0]
    assert probe.status.globals.data_lost_at > probe.status.globals.marker_seen_at
    client.close()


def test_marker_not_expected_before_loader(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)

    probe.check()

    assert losses.reasons == []
    assert probe.status.globals.data_lost_at == 0


def test_marker_written_again_is_watched_again(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)
    state = probe.status.globals
    client = admin(server)
    client.set(keys.LOAD_MARKER_KEY, "loading:1:abc")
    state.marker_seen_at = time.time()
    client.flushall()
    probe.check()
    first = list(losses.reasons)

    client.set(keys.LOAD_MARKER_KEY, "loading:2:def")  # The reload's start.
    state.marker_seen_at = time.time()
    probe.check()
    client.flushall()
    probe.check()

    assert len(first) == 1
    assert len(losses.reasons) == 2
    client.close()


def test_loss_found_by_load_reported_once(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)
    state = probe.status.globals
    state.data_lost_at = 100.0
    state.marker_lost_in_load = 50.0  # That load ran when the loss at 100 was reported.
    probe.check()
    reported_already = list(losses.reasons)

    state.marker_lost_in_load = time.time()
    probe.check()
    probe.check()

    assert reported_already == []
    assert len(losses.reasons) == 1
    assert "bulk load" in losses.reasons[0]


def test_unreachable_redis_is_no_loss(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)
    client = admin(server)
    client.set(keys.LOAD_MARKER_KEY, "loading:1:abc")
    client.close()
    probe.status.globals.marker_seen_at = time.time()
    probe.check()

    server.stop()
    started = time.monotonic()
    probe.check()
    elapsed = time.monotonic() - started

    assert probe.status.globals.redis_ok == 0
    assert losses.reasons == []
    assert elapsed < 3.0
