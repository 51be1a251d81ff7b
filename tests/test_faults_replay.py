"""Replay: a reload message, and a cursor older than the server's window, each end in a
full reload that converges."""

from __future__ import annotations

import time

from tests.faults import assert_converged, environment, replicator
from tests.replicator_process import wait_until


def test_reload_message_drops_cursor_and_reloads() -> None:
    with environment() as (sim, server):
        process = replicator(sim, server)
        try:
            process.wait_ready()
            sim.start_mutations(40)
            time.sleep(1.5)
            sim.faults.send_reload()
            wait_until(
                lambda: process.status()["load"]["generation"] >= 2, 20, "a second bulk load"
            )
            time.sleep(1)
            assert_converged(sim, server, process)
        finally:
            code = process.stop()

    assert code == 0
    assert "asked for a full reload" in process.output()


def test_restart_resumes_from_cursor_or_reloads_when_too_far_behind() -> None:
    with environment(retention=40) as (sim, server):
        first = replicator(sim, server)
        try:
            first.wait_ready()
            sim.start_mutations(30)
            time.sleep(1.5)
            sim.stop_mutations()
            assert_converged(sim, server, first)
        finally:
            assert first.stop() == 0

        # A short absence: everything missed is still in the window.
        for _ in range(10):
            sim.patch_company(sim.truth()["companies"][0]["id"], {"credit_balances": {"x": 1}})
        second = replicator(sim, server)
        try:
            assert_converged(sim, server, second)
            resumed = "Resuming from replay cursor" in second.output()
            second_loads = second.status()["load"]["generation"]
        finally:
            assert second.stop() == 0

        # A long absence: more changes than the window keeps.
        sim.start_mutations(200)
        time.sleep(1)
        sim.stop_mutations()
        third = replicator(sim, server)
        try:
            assert_converged(sim, server, third)
            reloaded = "asked for a full reload" in third.output()
        finally:
            assert third.stop() == 0

    assert resumed
    assert second_loads == 0
    assert reloaded


def test_ids_with_colons_survive_the_sweep() -> None:
    with environment() as (sim, server):
        template = sim.truth()["companies"][0]
        odd = dict(template, id="comp:with:colon", keys={"domain": "colon.example"})
        sim.upsert_company(odd)
        process = replicator(sim, server)
        try:
            process.wait_ready()
            sim.faults.send_reload()
            wait_until(
                lambda: process.status()["load"]["generation"] >= 2, 20, "a second bulk load"
            )
            assert_converged(sim, server, process)
        finally:
            code = process.stop()

    assert code == 0
    assert "is not an id" not in process.output()
