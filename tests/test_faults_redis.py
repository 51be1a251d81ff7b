"""Redis faults: paused, restarted without persistence, flushed. Nothing may be lost, and
/ready must say Redis is gone while /health keeps answering fast."""

from __future__ import annotations

import time

import redis

from tests.faults import assert_converged, environment, pause, ready_status, replicator, resume
from tests.replicator_process import wait_until


def test_paused_redis_loses_nothing() -> None:
    with environment() as (sim, server):
        process = replicator(
            sim,
            server,
            CIRCUIT_BREAKER_TIMEOUT="2s",
            REDIS_READ_TIMEOUT="500ms",
            REDIS_WRITE_TIMEOUT="500ms",
            REDIS_MAX_RETRIES="0",
        )
        try:
            process.wait_ready()
            sim.start_mutations(40)
            time.sleep(1)
            pause(server)
            try:
                wait_until(lambda: ready_status(process) == 503, 10, "/ready to turn 503")
                # The client gives up after 2s, so any response shows /health does
                # not wait for Redis.
                health = process.get("/health")
                body = process.get("/ready").json()
                time.sleep(6)
            finally:
                resume(server)
            assert_converged(sim, server, process, timeout_s=60)
            breaker_opened = "opened its Redis circuit" in process.output()
        finally:
            code = process.stop()

    assert code == 0
    assert health is not None and health.status_code == 200
    assert body["components"]["redis"] == "unreachable"
    assert breaker_opened


def test_redis_restart_without_persistence_reloads() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            sim.start_mutations(30)
            time.sleep(1)
            server.stop()
            time.sleep(4)
            server.start()
            wait_until(lambda: ready_status(process) == 503, 15, "/ready to turn 503")
            assert_converged(sim, server, process, timeout_s=60)
        finally:
            code = process.stop()

    assert code == 0


def test_flushall_is_detected_and_reloaded() -> None:
    for lease in ("true", "false"):
        with environment() as (sim, server):
            process = replicator(sim, server, WRITER_LOCK_DISABLED=lease)
            try:
                process.wait_ready()
                sim.start_mutations(30)
                time.sleep(1)
                redis.Redis(host="127.0.0.1", port=server.port).flushall()
                wait_until(lambda p=process: ready_status(p) == 503, 20, "/ready to turn 503")
                assert_converged(sim, server, process, timeout_s=60)
            finally:
                code = process.stop()

        assert code == 0, lease
