"""The Redis probe's loss detection: run_id changes, a missing marker, a loss found by a load.

The probe runs one check at a time here, against a redis-server each test starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import redis
from redis.exceptions import ClusterDownError

from replicator import keys, redis_conn
from replicator.config import load_config
from replicator.lease import FOREVER
from replicator.probe import RedisProbe, RunIds
from replicator.status import StatusBlock
from tests.redis_fixtures import stop_and_remove
from tests.replicator_process import wait_until
from tests.servers import RedisServer, start_redis

# run_id comparison -----------------------------------------------------------------


def test_first_sight_is_no_restart() -> None:
    run_ids = RunIds()

    assert run_ids.observe({"a:1": "x", "b:2": "y"}) == []
    assert run_ids.observe({"a:1": "x", "b:2": "y"}) == []


def test_new_run_id_is_a_restart() -> None:
    run_ids = RunIds()
    run_ids.observe({"a:1": "x", "b:2": "y"})

    restarted = run_ids.observe({"a:1": "x", "b:2": "z"})
    again = run_ids.observe({"a:1": "x", "b:2": "z"})

    assert restarted == ["b:2"]
    assert again == []


def test_failover_address_is_no_restart() -> None:
    run_ids = RunIds()
    run_ids.observe({"a:1": "x", "b:2": "y"})

    after_failover = run_ids.observe({"a:1": "x", "c:3": "w"})
    failed_back = run_ids.observe({"a:1": "x", "b:2": "v"})

    assert after_failover == []
    assert failed_back == []


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


def restart_until_reported(server: RedisServer, probe: RedisProbe, losses: Losses) -> None:
    """Restart the server, then run the probe until it reports a loss."""
    probe.check()
    server.restart()

    def reported() -> bool:
        probe.check()
        return bool(losses.reasons)

    wait_until(reported, 10, "the probe to notice the restart", interval_s=0.2)


def test_restart_is_reported_naming_the_server(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)

    restart_until_reported(server, probe, losses)
    probe.check()
    assert len(losses.reasons) == 1
    assert server.addr in losses.reasons[0]
    assert "restarted" in losses.reasons[0]


def test_restart_noticed_without_the_lease(server: RedisServer) -> None:
    losses = Losses()
    probe = make_probe(server, losses)
    probe.status.globals.lease_valid_until = 0

    restart_until_reported(server, probe, losses)

    assert probe.status.globals.data_lost_at > 0


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


def test_info_denied_warns_once(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    client = admin(server)
    client.acl_setuser(
        "no-info", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all", "-info"]
    )
    client.close()
    config = load_config(
        {
            "SCHEMATIC_API_KEY": "probe-test",
            "REDIS_URL": f"redis://no-info:secret@127.0.0.1:{server.port}/0",
        }
    )
    losses = Losses()
    probe = RedisProbe(config, StatusBlock.create(), losses)

    with caplog.at_level(logging.WARNING, logger="replicator.probe"):
        probe.check()
        probe.check()

    warnings = [record for record in caplog.records if "INFO failed" in record.getMessage()]
    assert len(warnings) == 1
    assert probe.status.globals.redis_ok == 1
    assert losses.reasons == []


def test_info_busy_cluster_does_not_warn(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    losses = Losses()
    probe = make_probe(server, losses)

    def busy(client: Any) -> dict[str, str]:
        raise ClusterDownError("CLUSTERDOWN The cluster is down")

    with (
        caplog.at_level(logging.WARNING, logger="replicator.probe"),
        mock.patch.object(redis_conn, "primary_run_ids", busy),
    ):
        probe.check()

    assert [r for r in caplog.records if "INFO failed" in r.getMessage()] == []
    assert probe._info_warned is False
    assert losses.reasons == []
