"""Process faults: children killed with SIGKILL, a child failing at start-up, SIGTERM,
SIGINT and SIGHUP with a drain in a stated order, and a resume that needs no reload."""

from __future__ import annotations

import os
import signal
import socket
import time

import redis

from tests.faults import (
    assert_converged,
    environment,
    loads_started,
    page_offset,
    replicator,
    role_pid,
    wait_restarted,
)
from tests.replicator_process import wait_until


def test_killed_children_are_restarted_and_nothing_is_lost() -> None:
    with environment(companies=200, users=200) as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            sim.start_mutations(60)
            for role in ("company-0", "ingest", "user-1", "flags"):
                process.wait_ready()
                time.sleep(0.5)
                old = role_pid(process, role)
                os.kill(old, signal.SIGKILL)
                wait_restarted(process, role, old)
            process.wait_ready()
            # A reload that loses its loader halfway: a slow page keeps it running.
            sim.faults.slow_page("/companies", offset=page_offset(1), delay_s=3.0)
            sim.faults.send_reload()
            wait_until(
                lambda: process.status()["load"]["state"] == "running", 30, "the reload to start"
            )
            old = role_pid(process, "loader")
            os.kill(old, signal.SIGKILL)
            wait_restarted(process, "loader", old)
            assert_converged(sim, server, process, timeout_s=60)
            restarts = {p["role"]: p["restarts"] for p in process.status()["processes"]}
        finally:
            code = process.stop()

    output = process.output()
    assert code == 0
    assert restarts["company-0"] == 1
    assert restarts["loader"] == 1
    assert "Process ingest exited with signal SIGKILL" in output


def test_child_failing_at_start_stops_without_restart_loop() -> None:
    with environment() as (sim, server), socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = replicator(sim, server, HEALTH_PORT=str(port))
        assert process.process is not None
        code = process.process.wait(timeout=60)

    output = process.output()
    assert code == 1
    assert f"is port {port} in use" in output
    assert output.count("Health server listening") == 0
    assert "restarting it" not in output


def test_sigterm_drains_in_order_and_next_start_resumes() -> None:
    with environment() as (sim, server):
        first = replicator(sim, server, SHUTDOWN_TIMEOUT="20s")
        first.wait_ready()
        sim.start_mutations(80)
        time.sleep(2)
        assert first.process is not None
        first.process.send_signal(signal.SIGTERM)
        code = first.process.wait(timeout=30)
        output = first.output()

        second = replicator(sim, server)
        try:
            assert_converged(sim, server, second)
            resumed_output = second.output()
        finally:
            assert second.stop() == 0

    assert code == 0
    steps = [
        "Shutting down: stopping the datastream reader",
        "Replay cursor",
        "Draining the worker queues",
        "Released the writer lease",
        "Stopped.",
    ]
    positions = [output.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "Resuming from replay cursor" in resumed_output
    assert "Bulk load 1 started" not in resumed_output


def test_sighup_to_the_group_stops_gracefully() -> None:
    with environment(companies=100, users=100) as (sim, server):
        process = replicator(sim, server)
        process.wait_ready()
        assert process.process is not None
        sim.start_mutations(40)
        time.sleep(1)
        # A closed terminal sends SIGHUP to the whole foreground process group.
        os.killpg(process.process.pid, signal.SIGHUP)
        code = process.process.wait(timeout=40)
        sim.stop_mutations()
        lease = redis.Redis(host="127.0.0.1", port=server.port).get(
            "schematic:datastream:writer_lock"
        )

    output = process.output()
    assert code == 0
    assert "Received SIGHUP" in output
    assert "Draining the worker queues" in output
    assert "Released the writer lease" in output
    assert "Process ingest exited" not in output
    assert lease is None


def test_second_signal_exits_at_once() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server, SHUTDOWN_TIMEOUT="60s")
        process.wait_ready()
        assert process.process is not None
        # Hold the workers: pause Redis so the drain cannot finish on its own.
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            sim.start_mutations(50)
            time.sleep(1)
            process.process.send_signal(signal.SIGINT)
            time.sleep(1)
            process.process.send_signal(signal.SIGINT)
            # The drain alone could take the whole 60s shutdown timeout.
            code = process.process.wait(timeout=20)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
            sim.stop_mutations()
            process.stop()

    output = process.output()
    assert code != 0
    assert "Shutting down" in output
    assert "Released the writer lease" not in output


def test_stray_sigusr2_stops_nothing_and_starts_nothing() -> None:
    with environment(companies=100, users=100) as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            assert process.process is not None
            sim.start_mutations(40)
            health = role_pid(process, "health")
            # The group contains the supervisor and its data-plane children. The health
            # server has a group of its own, so it gets the signal separately.
            os.killpg(process.process.pid, signal.SIGUSR2)
            os.kill(health, signal.SIGUSR2)
            wait_until(lambda: "Ignored SIGUSR2" in process.output(), 20, "the health server")
            # The ingest takes the signal as a request to start the stream afresh. A change
            # sent before it reconnects may be lost to the stream, and the reload brings
            # it back, so the comparison waits for the reload.
            wait_until(lambda: process.status()["stream"]["reconnects"] >= 1, 20, "a reconnect")
            wait_until(lambda: loads_started(process) >= 2, 20, "the reload")
            assert_converged(sim, server, process, timeout_s=60)
            restarts = {p["role"]: p["restarts"] for p in process.status()["processes"]}
            still_health = role_pid(process, "health")
        finally:
            code = process.stop()

    output = process.output()
    assert code == 0
    assert still_health == health
    assert set(restarts.values()) == {0}
    assert output.count("Starting Schematic Datastream Replicator") == 1
