"""Two replicators on one Redis: one writes, the other stands by and takes over."""

from __future__ import annotations

import os
import signal
import time

from tests.faults import assert_converged, environment, ready_status, replicator
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
            killed_at = time.monotonic()
            second.wait_ready(timeout_s=40)
            takeover_s = time.monotonic() - killed_at
            assert_converged(sim, server, second)
        finally:
            first.stop()
            code = second.stop()

    assert code == 0
    assert standby["ready"] is False
    assert standby["components"]["writer_lease"].startswith("standby: held by")
    assert "another replicator" in standby["reason"]
    assert takeover_s < 25


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
            cut_at = time.monotonic()
            other.wait_ready(timeout_s=40)
            takeover_s = time.monotonic() - cut_at
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

    assert takeover_s < 25
