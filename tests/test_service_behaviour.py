"""Behaviour of the running service (a real subprocess) beyond the SDK round trip:
bad input from the datastream, the cache cleanup, invalid configuration, Redis down."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
import redis

from replicator import keys, records
from replicator.simulator import Simulator, SimulatorConfig
from replicator.version import schema_version
from tests import truth
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.servers import RedisServer, free_port, start_redis

API_KEY = "behaviour-key"


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(api_key=API_KEY, companies=60, users=80, flags=6)) as sim:
        yield sim


def marker(simulator: Simulator) -> str:
    """Publish an unchanged flag; once the cursor reaches it, everything before is written."""
    first = simulator.truth()["flags"][0]
    return simulator.upsert_flag(first)


def test_bad_stream_input_is_skipped_and_counted(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    replicator = ReplicatorProcess(simulator.base_url, API_KEY, redis_server.url).start()
    try:
        version = replicator.wait_ready()["cache_version"]
        faults = simulator.faults
        for send in (
            faults.send_invalid_json,
            faults.send_wrong_types,
            faults.send_unknown_entity_type,
            faults.send_unknown_message_type,
            faults.send_unknown_partial,
            faults.send_missing_id,
            faults.send_huge_frame,
        ):
            send()
        replicator.wait_cursor(marker(simulator), timeout_s=30)

        status = replicator.status()
        skipped = sum(process["skipped"] for process in status["processes"])
        client = redis.Redis(host="127.0.0.1", port=redis_server.port)
        problems = truth.differences(client, simulator.truth(), version)
        client.close()
        alive = [p["role"] for p in status["processes"] if p["state"] == "running"]
    finally:
        code = replicator.stop()

    output = replicator.output()
    assert code == 0, output[-3000:]
    assert problems == [], "\n".join(problems[:20])
    assert skipped >= 6
    assert "Skipped an invalid datastream message" in output
    assert "Skipped company partial change" in output
    assert {"ingest", "company-0", "company-1", "flags"} <= set(alive)
    assert "Traceback" not in output


def test_cleanup_removes_other_versions_only(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    client.set("schematic:company:0ldversn:comp_gone", b"{}")
    client.set("schematic:flags:0ldversn:gone", b"{}")
    client.set("schematic:datastream:unrelated", b"keep")
    client.set("schematic:credit-lease:comp_1", b"keep")
    replicator = ReplicatorProcess(
        simulator.base_url, API_KEY, redis_server.url, CACHE_CLEANUP_INTERVAL="1s"
    ).start()
    try:
        replicator.wait_ready()
        wait_until(
            lambda: (
                not client.exists(
                    "schematic:company:0ldversn:comp_gone", "schematic:flags:0ldversn:gone"
                )
            ),
            15,
            "the old-version keys to be deleted",
        )
        survivors = client.exists("schematic:datastream:unrelated", "schematic:credit-lease:comp_1")
    finally:
        code = replicator.stop()
        client.close()

    assert code == 0
    assert survivors == 2
    assert "Cache cleanup deleted 2 keys of other versions" in replicator.output()


def run_service(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replicator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tempfile.gettempdir(),
    )


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "SCHEMATIC_API_KEY": "k-123456789",
        "HEALTH_PORT": str(free_port()),
    }
    env.update(overrides)
    return env


def test_invalid_configuration_exits_2_naming_the_variable() -> None:
    result = run_service(base_env(BATCH_SIZE="lots", CACHE_TTL="90"))

    assert result.returncode == 2
    assert "BATCH_SIZE" in result.stderr
    assert "'lots'" in result.stderr
    assert "CACHE_TTL" in result.stderr


def test_missing_api_key_exits_2() -> None:
    env = base_env()
    del env["SCHEMATIC_API_KEY"]

    result = run_service(env)

    assert result.returncode == 2
    assert "SCHEMATIC_API_KEY" in result.stderr


def test_unreachable_redis_exits_4_naming_the_target() -> None:
    port = free_port()
    result = run_service(
        base_env(REDIS_ADDR=f"127.0.0.1:{port}", REDIS_DIAL_TIMEOUT="1s", REDIS_MAX_RETRIES="0")
    )

    assert result.returncode == 4
    assert f"127.0.0.1:{port}" in result.stderr
    assert "k-123456789" not in result.stderr


def seed_stale_entries(client: redis.Redis, simulator: Simulator) -> dict[str, str]:
    """Put into Redis what the source no longer has: a company and a stale lookup."""
    version = schema_version()
    live = simulator.truth()["companies"][0]
    stale = {
        "record": keys.record_key("company", version, "comp_deleted_offline"),
        "record_lookup": keys.lookup_key("company", version, "domain", "gone.example"),
        "stale_lookup": keys.lookup_key("company", version, "domain", "renamed-away.example"),
    }
    client.set(
        stale["record"],
        records.encode(
            records.normalize_company(
                {"id": "comp_deleted_offline", "keys": {"domain": "gone.example"}}
            )
        ),
    )
    client.set(stale["record_lookup"], keys.lookup_value("comp_deleted_offline"))
    client.set(stale["stale_lookup"], keys.lookup_value(live["id"]))
    return stale


def test_complete_load_sweeps_what_the_source_lacks(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    stale = seed_stale_entries(client, simulator)
    replicator = ReplicatorProcess(simulator.base_url, API_KEY, redis_server.url).start()
    try:
        version = replicator.wait_ready()["cache_version"]
        remaining = [name for name, key in stale.items() if client.exists(key)]
        problems = truth.differences(client, simulator.truth(), version)
    finally:
        code = replicator.stop()
        client.close()

    assert code == 0
    assert remaining == []
    assert problems == [], "\n".join(problems[:20])


def test_failed_page_skips_the_sweep_and_retries(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    stale = seed_stale_entries(client, simulator)
    # Two failures of the first companies page outlast the one retry of the first load.
    simulator.faults.fail_page("/companies", offset=0, status=500, times=2)
    replicator = ReplicatorProcess(
        simulator.base_url,
        API_KEY,
        redis_server.url,
        LOADER_PAGE_RETRIES="1",
        LOADER_RETRY_INTERVAL="2s",
    ).start()
    try:
        wait_until(
            lambda: "nothing is swept" in replicator.output(), 30, "the loader to skip the sweep"
        )
        kept_after_failure = [name for name, key in stale.items() if client.exists(key)]
        not_ready = replicator.get("/ready")
        version = replicator.wait_ready()["cache_version"]
        remaining = [name for name, key in stale.items() if client.exists(key)]
        problems = truth.differences(client, simulator.truth(), version)
    finally:
        code = replicator.stop()
        client.close()

    assert code == 0
    assert kept_after_failure == list(stale)
    assert not_ready is not None and not_ready.status_code == 503
    assert remaining == []
    assert problems == [], "\n".join(problems[:20])
