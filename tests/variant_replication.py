"""One end-to-end run of the replicator against a given Redis deployment.

The same routine proves every deployment the product supports: a single node, a
cluster, TLS and ACL users. The simulator serves a dataset and a live mutation
stream, and the real replicator service fills the Redis. The published Schematic SDK
in replicator mode evaluates flags from it. Finally all of Redis is compared with
the simulator's truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replicator.simulator import Simulator, SimulatorConfig
from tests import truth
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.sdk_probe import SdkProbe
from tests.test_end_to_end import ACME, ANA, BETA, BOB, CRAFTED_FLAGS, company, trait, user

API_KEY = "variant-secret-key"
MUTATIONS_PER_S = 60.0
SETTLE_TIMEOUT_S = 40.0
LIVE_CHANGE_TIMEOUT_S = 5.0


@dataclass
class RedisVariant:
    """How the replicator, the SDK and the truth check reach one Redis deployment."""

    name: str
    #: ``REDIS_*`` variables for the replicator, REDIS_URL included when it is used.
    env: dict[str, str]
    #: Builds a synchronous redis-py client (single-node or cluster) for the truth check.
    sync_client: Callable[[], Any]
    #: Builds a redis.asyncio client for the SDK.
    async_client: Callable[[], Any]
    #: Texts that must never appear in the replicator's log, such as passwords.
    secrets: tuple[str, ...] = field(default=())


def seeded_simulator() -> Simulator:
    """A simulator with a generated dataset plus records whose flag results are known."""
    config = SimulatorConfig(api_key=API_KEY, companies=120, users=240, flags=10, seed=23)
    sim = Simulator(config).start()
    for record in CRAFTED_FLAGS:
        sim.upsert_flag(record)
    acme_keys = {"domain": "Acme.com", "external_id": "ACME-42"}
    sim.upsert_company(company(ACME, "plan_e2e_pro", "startup", acme_keys))
    sim.upsert_company(company(BETA, "plan_e2e_free", "startup", {"domain": "beta.io"}))
    sim.upsert_user(user(ANA, "admin", {"email": "Ana@Acme.com", "user_id": "U-1"}))
    sim.upsert_user(user(BOB, "viewer", {"email": "bob@beta.io"}))
    return sim


def check_sdk_answers(sdk: SdkProbe, sim: Simulator) -> None:
    """Evaluate flags through the SDK: loaded records, lookups and one live change."""
    expected = [
        ("e2e-premium", {"company": {"domain": "ACME.com"}}, True),
        ("e2e-premium", {"company": {"external_id": "acme-42"}}, True),
        ("e2e-premium", {"company": {"domain": "beta.io"}}, False),
        ("e2e-admin", {"user": {"email": "ANA@acme.com"}}, True),
        ("e2e-admin", {"user": {"email": "bob@beta.io"}}, False),
        ("e2e-rule-edit", {"company": {"domain": "Beta.IO"}}, True),
        ("e2e-enterprise", {"company": {"domain": "beta.io"}}, False),
    ]
    for flag_key, context, value in expected:
        result = sdk.check(flag_key, **context)
        assert result.value is value, (flag_key, context, result)

    both = sdk.check("e2e-premium", company={"domain": "acme.com"}, user={"user_id": "u-1"})
    assert both.company_id == ACME
    assert both.user_id == ANA

    # A change from the stream reaches the SDK through this Redis.
    sim.patch_company(BETA, {"traits": [trait("tdef_e2e_tier", "company", "enterprise")]})
    wait_until(
        lambda: sdk.check("e2e-enterprise", company={"domain": "beta.io"}).value is True,
        LIVE_CHANGE_TIMEOUT_S,
        "the SDK to see the live trait change of beta.io",
    )


def assert_matches_truth(variant: RedisVariant, sim: Simulator, process: ReplicatorProcess) -> None:
    """Wait until everything the simulator published is written, then compare all keys."""
    marker = sim.upsert_flag(sim.truth()["flags"][0])
    process.wait_cursor(marker, SETTLE_TIMEOUT_S)
    wait_until(
        lambda: process.load_state() in ("complete", "skipped"),
        SETTLE_TIMEOUT_S,
        "the bulk load to finish",
    )
    version = process.wait_ready(SETTLE_TIMEOUT_S)["cache_version"]
    client = variant.sync_client()
    try:
        problems = truth.differences(client, sim.truth(), version)
    finally:
        client.close()
    assert problems == [], f"{variant.name}: " + "\n".join(problems[:40])


def replicate_and_verify(
    variant: RedisVariant,
    mutation_s: float = 3.0,
    during_mutations: Callable[[], None] | None = None,
    restart: bool = False,
) -> ReplicatorProcess:
    """Run the whole routine; return the last stopped replicator for checks on its log.

    ``during_mutations``, when given, runs while the mutation stream is on (a failover,
    for example) instead of the plain ``mutation_s`` wait. With ``restart``, a second
    replicator starts after changes made while none ran, and must resume from the
    replay cursor stored in this Redis instead of loading everything again.
    """
    sim = seeded_simulator()
    try:
        process = _run_once(
            variant,
            sim,
            lambda started: _exercise(variant, sim, started, mutation_s, during_mutations),
        )
        if restart:
            _mutate_while_stopped(sim)
            process = _run_once(variant, sim, lambda started: _resume(variant, sim, started))
    finally:
        sim.stop()
    return process


def _run_once(
    variant: RedisVariant, sim: Simulator, body: Callable[[ReplicatorProcess], None]
) -> ReplicatorProcess:
    env = dict(variant.env)
    redis_url = env.pop("REDIS_URL", "")
    process = ReplicatorProcess(sim.base_url, API_KEY, redis_url, **env).start()
    try:
        body(process)
    except AssertionError as exc:
        tail = process.output()[-6000:]
        raise AssertionError(f"{exc}\nReplicator log tail:\n{tail}") from exc
    finally:
        code = process.stop()

    output = process.output()
    assert code == 0, output[-4000:]
    for secret in (API_KEY, *variant.secrets):
        assert secret not in output, f"{variant.name}: a secret appears in the replicator log"
    return process


def _mutate_while_stopped(sim: Simulator) -> None:
    sim.start_mutations(MUTATIONS_PER_S)
    time.sleep(1.0)
    sim.stop_mutations()


def _resume(variant: RedisVariant, sim: Simulator, process: ReplicatorProcess) -> None:
    process.wait_ready()
    assert_matches_truth(variant, sim, process)
    assert "Resuming from replay cursor" in process.output()
    assert process.load_state() == "skipped"


def _exercise(
    variant: RedisVariant,
    sim: Simulator,
    process: ReplicatorProcess,
    mutation_s: float,
    during_mutations: Callable[[], None] | None,
) -> None:
    process.wait_ready()
    sdk = SdkProbe(variant.async_client(), f"{process.base_url}/ready", sim.base_url, API_KEY)
    try:
        check_sdk_answers(sdk, sim)
    finally:
        sdk.close()

    sim.start_mutations(MUTATIONS_PER_S)
    if during_mutations is None:
        time.sleep(mutation_s)
    else:
        during_mutations()
    sim.stop_mutations()
    assert_matches_truth(variant, sim, process)
