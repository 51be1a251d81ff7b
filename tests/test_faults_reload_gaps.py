"""Loads into an empty Redis while deletes shift the pages.

Each test ends with the usual comparison against the simulator's truth.
"""

from __future__ import annotations

import time

from tests.faults import assert_converged, environment, page_offset, replicator
from tests.replicator_process import wait_until


def test_first_load_finds_shifted_entity() -> None:
    with environment(companies=300, users=50) as (sim, server):
        # The first load into the empty Redis reads the second page late.
        sim.faults.slow_page("/companies", offset=page_offset(1), delay_s=3.0)
        process = replicator(sim, server, ASYNC_LOADER_MAX_CONCURRENT_REQUESTS="1")
        try:
            wait_until(lambda: process.load_state() == "running", 20, "the load to start")
            time.sleep(1.0)
            # A delete below offset 100 moves the entity at offset 100, the first one past
            # the page that was already read, to a lower offset. Only overlapping pages
            # still return it.
            first = sim.page_items("company", 0, 1)[0]["id"]
            moved = sim.page_items("company", 100, 1)[0]["id"]
            sim.delete_company(first)
            print("deleted", first, "moved", moved)
            assert_converged(sim, server, process, timeout_s=60)
        finally:
            print("replicator log:", process.log.name)
            code = process.stop()

    assert code == 0
