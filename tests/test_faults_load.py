"""Bulk-load faults: rate limiting with Retry-After, stream changes racing a slow load,
and a burst bigger than every queue."""

from __future__ import annotations

import time

import redis

from tests import truth
from tests.faults import assert_converged, environment, page_offset, replicator
from tests.replicator_process import wait_until


def test_retry_after_is_honoured() -> None:
    with environment() as (sim, server):
        sim.faults.rate_limit_page("/companies", offset=0, times=1, retry_after_s=2.0)
        process = replicator(sim, server)
        try:
            started = time.monotonic()
            process.wait_ready()
            ready_s = time.monotonic() - started
            assert_converged(sim, server, process)
        finally:
            code = process.stop()

    assert code == 0
    assert ready_s >= 2.0
    assert "HTTP 429" in process.output()
    assert "retry 1 of 5 in 2.0s" in process.output()


def test_stream_changes_during_a_slow_load_win() -> None:
    with environment(companies=300, users=50) as (sim, server):
        # Every companies page after the first takes a second: the stream changes the
        # same companies meanwhile, before and after their pages are read.
        for index in (1, 2):
            sim.faults.slow_page("/companies", offset=page_offset(index), delay_s=1.5)
        process = replicator(sim, server, ASYNC_LOADER_MAX_CONCURRENT_REQUESTS="1")
        try:
            wait_until(lambda: process.load_state() == "running", 30, "the load to start")
            company_ids = [record["id"] for record in sim.truth()["companies"]]
            for round_ in range(3):
                for company_id in company_ids[::7]:
                    sim.patch_company(company_id, {"credit_balances": {"race": round_}})
                for company_id in company_ids[3::11]:
                    sim.rename_company_key(
                        company_id, "domain", f"race-{round_}-{company_id.lower()}.example.com"
                    )
                time.sleep(0.6)
            assert_converged(sim, server, process)
        finally:
            code = process.stop()

    assert code == 0


def test_burst_larger_than_every_queue_loses_nothing() -> None:
    with environment(companies=200, users=50) as (sim, server):
        process = replicator(
            sim,
            server,
            COMPANY_CHANNEL_SIZE="5",
            USER_CHANNEL_SIZE="5",
            FLAGS_CHANNEL_SIZE="2",
            BATCH_SIZE="3",
        )
        try:
            process.wait_ready()
            sim.burst(5000, rate=0)
            sim.start_mutations(200)
            time.sleep(2)
            assert_converged(sim, server, process, timeout_s=90)
            dropped = sum(p["dropped"] for p in process.status()["processes"])
        finally:
            code = process.stop()

    assert code == 0
    assert dropped == 0


def test_partials_apply_after_a_failed_load() -> None:
    with environment(companies=60, users=30) as (sim, server):
        process = replicator(sim, server, LOADER_PAGE_RETRIES="1", LOADER_RETRY_INTERVAL="1h")
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            version = process.wait_ready()["cache_version"]
            first, second = [record["id"] for record in sim.truth()["companies"][:2]]
            # The companies pages fail for good, so this reload ends without loaded records.
            sim.faults.fail_page("/companies", status=500, times=None, retry_after_s=2.0)
            sim.faults.send_reload()
            wait_until(lambda: process.load_state() == "running", 30, "the reload to start")
            # Sent while the load runs, so the worker parks it until a loaded record arrives.
            sim.patch_company(first, {"credit_balances": {"during": 1}})
            wait_until(lambda: process.load_state() == "failed", 30, "the reload to fail")
            sim.patch_company(second, {"credit_balances": {"after": 2}})

            wait_until(
                lambda: truth.differences(client, sim.truth(), version) == [],
                15,
                "both partials to reach Redis",
            )
        finally:
            client.close()
            code = process.stop()

    assert code == 0
    assert "nothing is swept" in process.output()
