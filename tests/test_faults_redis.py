"""Redis faults: paused, restarted with or without persistence, flushed, also during a bulk
load. Nothing may be lost, and /ready must report Redis as gone or reloading while
/health keeps responding fast."""

from __future__ import annotations

import os
import signal
import time

import redis

from replicator import keys
from tests.faults import (
    assert_converged,
    crash_and_restart,
    environment,
    loads_started,
    page_offset,
    pause,
    ready_status,
    replicator,
    resume,
    role_pid,
    wait_restarted,
)
from tests.replicator_process import ReplicatorProcess, wait_until


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


def test_flushall_during_a_load_is_reloaded() -> None:
    for lease_disabled in ("true", "false"):
        with environment(companies=300, users=50) as (sim, server):
            process = replicator(
                sim,
                server,
                WRITER_LOCK_DISABLED=lease_disabled,
                ASYNC_LOADER_MAX_CONCURRENT_REQUESTS="1",
            )
            try:
                process.wait_ready()
                sim.start_mutations(30)
                before = process.status()["load"]["generation"]
                # Two slow companies pages keep the reload running for a few seconds.
                for index in (1, 2):
                    sim.faults.slow_page("/companies", offset=page_offset(index), delay_s=2.0)
                sim.faults.send_reload()

                def reload_running(p: ReplicatorProcess = process, g: int = before) -> bool:
                    load = p.status()["load"]
                    return bool(load["state"] == "running" and load["generation"] > g)

                wait_until(reload_running, 20, "the reload to start")
                time.sleep(0.5)
                assert ready_status(process) == 200
                redis.Redis(host="127.0.0.1", port=server.port).flushall()
                wait_until(lambda p=process: ready_status(p) == 503, 10, "/ready to turn 503")
                if lease_disabled == "false":
                    # The flush took the lease key too, so the turn ends at the next renewal.
                    # A change in flight then is not replayed: the cursor was dropped with
                    # the loss, and the new turn's load and flags snapshot bring it instead.
                    wait_until(
                        lambda p=process: "Lost the writer lease" in p.output(),
                        20,
                        "the lease loss to end the turn",
                    )
                assert_converged(sim, server, process, timeout_s=60)
            finally:
                code = process.stop()

        assert code == 0, lease_disabled


def test_restart_with_persistence_reloads_lost_writes() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            sim.start_mutations(30)
            time.sleep(1)
            admin = redis.Redis(host="127.0.0.1", port=server.port)
            admin.save()
            admin.close()
            # These changes reach Redis after the snapshot, and die with the server.
            sim.stop_mutations()
            company_ids = [record["id"] for record in sim.truth()["companies"]]
            for company_id in company_ids[::5]:
                last = sim.patch_company(company_id, {"credit_balances": {"unsaved": 1}})
            process.wait_cursor(last)
            crashed_at = time.time()
            crash_and_restart(server)
            sim.start_mutations(30)

            def loss_after_crash() -> float:
                lost = float(process.status()["data_lost_at"])
                return lost if lost > crashed_at else 0.0

            lost_at = wait_until(loss_after_crash, 20, "the replicator to notice the restart")
            assert_converged(sim, server, process, timeout_s=60)
            reloaded_at = process.status()["load"]["started_at"]
        finally:
            code = process.stop()

    assert code == 0
    assert f"Data loss: Redis at {server.addr} restarted" in process.output()
    assert reloaded_at > lost_at


def test_resume_after_repaired_flushall_is_ready() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server, WRITER_LOCK_DISABLED="true")
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            process.wait_ready()
            sim.start_mutations(30)
            client.flushall()
            wait_until(lambda: ready_status(process) == 503, 20, "/ready to turn 503")
            process.wait_ready(30)
            wait_until(
                lambda: client.exists(keys.REPLAY_CURSOR_KEY), 20, "the cursor to be saved again"
            )

            # The new turn after a crash resumes from the cursor instead of loading.
            old_pid = role_pid(process, "user-0")
            os.kill(old_pid, signal.SIGKILL)
            wait_restarted(process, "user-0", old_pid)
            wait_until(lambda: process.load_state() == "skipped", 30, "the loader to resume")
            assert_converged(sim, server, process, timeout_s=30)
        finally:
            client.close()
            code = process.stop()

    assert code == 0


def test_one_flushall_runs_one_reload() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server, WRITER_LOCK_DISABLED="true")
        try:
            process.wait_ready()
            sim.start_mutations(30)
            time.sleep(1)
            before = loads_started(process)
            redis.Redis(host="127.0.0.1", port=server.port).flushall()
            wait_until(lambda p=process: ready_status(p) == 503, 20, "/ready to turn 503")
            assert_converged(sim, server, process, timeout_s=60)
            time.sleep(6)  # Long enough for a second reload request to start a load.
            after = loads_started(process)
        finally:
            code = process.stop()

    assert code == 0
    # The probe and the ingest's reconnect without a cursor both request a reload.
    assert after - before == 1
