"""Two replicators on one Redis: one writes, the other stands by and takes over."""

from __future__ import annotations

import os
import signal
import time

import redis

from tests.faults import (
    assert_converged,
    environment,
    pause,
    ready_status,
    replicator,
    resume,
)
from tests.proxy import Proxy
from tests.replicator_process import wait_until


def test_standby_takes_over_after_the_writer_dies() -> None:
    with environment() as (sim, server):
        first = replicator(sim, server)
        first.wait_ready()
        second = replicator(sim, server)
        try:
            wait_until(
                lambda: (
                    (second.get("/ready") or object()) is not None and ready_status(second) == 503
                ),
                20,
                "the standby's /ready",
            )
            time.sleep(2)
            standby = second.get("/ready").json()
            sim.start_mutations(40)
            time.sleep(1)
            assert first.process is not None
            os.killpg(first.process.pid, signal.SIGKILL)
            second.wait_ready(timeout_s=40)
            assert_converged(sim, server, second)
        finally:
            first.stop()
            code = second.stop()

    assert code == 0
    assert standby["ready"] is False
    assert standby["components"]["writer_lease"].startswith("standby: held by")
    assert "another replicator" in standby["reason"]


def test_partitioned_writer_steps_down_and_standby_takes_over() -> None:
    with environment() as (sim, server):
        proxy = Proxy(server.port)
        cut_off = replicator(
            sim,
            server,
            REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
            REDIS_READ_TIMEOUT="500ms",
            REDIS_DIAL_TIMEOUT="500ms",
            REDIS_MAX_RETRIES="0",
        )
        cut_off.wait_ready()
        other = replicator(sim, server)
        try:
            wait_until(lambda: ready_status(other) == 503, 20, "the standby's /ready")
            sim.start_mutations(40)
            time.sleep(1)
            proxy.cut()
            other.wait_ready(timeout_s=40)
            wait_until(
                lambda: "Lost the writer lease" in cut_off.output(),
                15,
                "the cut-off replicator to step down",
            )
            proxy.restore()
            wait_until(lambda: ready_status(cut_off) == 503, 20, "the old writer to stand by")
            assert_converged(sim, server, other)
        finally:
            cut_off.stop()
            other.stop()
            proxy.close()

    assert "Took the writer lease" in other.output()


def test_lease_lost_to_redis_outage_blames_no_writer() -> None:
    with environment() as (sim, server):
        process = replicator(
            sim,
            server,
            REDIS_READ_TIMEOUT="500ms",
            REDIS_DIAL_TIMEOUT="500ms",
            REDIS_MAX_RETRIES="0",
            WRITER_LOCK_TTL="3s",
        )
        try:
            process.wait_ready()
            pause(server)
            try:
                wait_until(
                    lambda: process.output().count("Could not reach Redis to take the writer") >= 2,
                    30,
                    "two failed attempts to take the lease again",
                )
                body = process.get("/ready")
            finally:
                resume(server)
            process.wait_ready(timeout_s=40)
        finally:
            code = process.stop()

    assert body is not None
    outage = body.json()
    output = process.output()
    assert code == 0
    assert outage["ready"] is False
    assert outage["components"]["redis"] == "unreachable"
    assert outage["components"]["writer_lease"] == "not held"
    assert outage["reason"] == "Redis is unreachable, so the writer lease cannot be taken"
    assert "Standing by" not in output
    assert "belongs to another replicator" not in output


def test_lease_lost_with_the_data_blames_no_writer() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            client = redis.Redis(host="127.0.0.1", port=server.port)
            client.flushall()
            client.close()
            wait_until(
                lambda: "Lost the writer lease" in process.output(), 30, "the lease to be lost"
            )
            assert_converged(sim, server, process, timeout_s=60)
        finally:
            code = process.stop()

    output = process.output()
    assert code == 0
    assert "The writer lease 'schematic:datastream:writer_lock' is gone" in output
    assert "belongs to another replicator" not in output
    assert "Standing by" not in output
