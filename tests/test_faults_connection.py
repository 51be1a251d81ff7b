"""Connection faults: drops, stalls and a rejected key, each ending with Redis equal to the
simulator's truth."""

from __future__ import annotations

import time

from tests.faults import (
    API_KEY,
    assert_converged,
    environment,
    ready_status,
    replicator,
)
from tests.replicator_process import wait_until


def test_reconnect_after_close_and_reset_replays_without_reload() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            sim.start_mutations(50)
            time.sleep(1.5)
            sim.faults.close(code=1000)
            wait_until(lambda: len(sim.connections) >= 2, 15, "a second connection")
            time.sleep(1.5)
            sim.faults.reset()
            wait_until(lambda: len(sim.connections) >= 3, 15, "a third connection")
            time.sleep(1)
            assert_converged(sim, server, process)
            replays = [info.replay_from for info in sim.connections[1:]]
            generation = process.status()["load"]["generation"]
        finally:
            code = process.stop()

    assert code == 0
    assert all(replays), replays
    assert generation == 1  # The reconnects cost no bulk reload.


def test_stall_is_detected_within_pong_wait() -> None:
    with environment() as (sim, server):
        # A load that overlaps the stall can lose a page; retry it soon, not after 1m.
        process = replicator(
            sim, server, WS_PING_INTERVAL="500ms", WS_PONG_WAIT="2s", LOADER_RETRY_INTERVAL="2s"
        )
        try:
            process.wait_ready()
            sim.start_mutations(20)
            sim.faults.stall()
            # The bound only keeps a missed stall from hanging the test: the reason
            # below shows that the pong wait, not some later timeout, detected it.
            wait_until(lambda: ready_status(process) == 503, 20, "/ready to report the stall")
            reason = process.get("/ready").json()["reason"]
            sim.faults.clear_stall()
            assert_converged(sim, server, process)
        finally:
            code = process.stop()

    assert code == 0
    assert "no pong within 2s" in reason


def test_rejected_api_key_exits_without_retry_storm() -> None:
    with environment() as (sim, server):
        sim.faults.reject_auth("close", times=None)
        process = replicator(sim, server)
        assert process.process is not None
        code = process.process.wait(timeout=30)
        output = process.output()

    assert code == 3
    assert "rejected the API key" in output
    assert API_KEY not in output
    assert len(sim.connections) <= 2


def test_http_401_on_upgrade_is_a_rejected_key() -> None:
    with environment() as (sim, server):
        sim.faults.reject_auth("http", times=None)
        process = replicator(sim, server)
        assert process.process is not None
        code = process.process.wait(timeout=30)

    assert code == 3
