"""End to end: simulator -> replicator subprocess -> real Redis -> the published SDK.

The Schematic Python SDK (``schematichq``) runs in replicator mode against the Redis the
replicator fills, learning the cache version from the replicator's /ready, exactly as an
application would. Every test ends by comparing all of Redis with the simulator's truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from replicator.simulator import Simulator, SimulatorConfig
from tests import truth
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.sdk_probe import SdkProbe
from tests.servers import RedisServer, start_redis

API_KEY = "e2e-secret-key"
LIVE_CHANGE_TIMEOUT_S = 2.0

ACME = "comp_e2e_acme"
BETA = "comp_e2e_beta"
ANA = "user_e2e_ana"
BOB = "user_e2e_bob"


def trait(definition_id: str, entity_type: str, value: str) -> dict[str, Any]:
    return {
        "trait_definition": {
            "id": definition_id,
            "comparable_type": "string",
            "entity_type": entity_type,
        },
        "value": value,
    }


def company(company_id: str, plan: str, tier: str, keys: dict[str, str]) -> dict[str, Any]:
    return {
        "id": company_id,
        "account_id": "acct_e2e",
        "environment_id": "env_e2e",
        "keys": keys,
        "base_plan_id": plan,
        "plan_ids": [plan],
        "plan_version_ids": [],
        "billing_product_ids": [],
        "credit_balances": {},
        "metrics": [],
        "rules": [],
        "subscription": None,
        "traits": [trait("tdef_e2e_tier", "company", tier)],
    }


def user(user_id: str, role: str, keys: dict[str, str]) -> dict[str, Any]:
    return {
        "id": user_id,
        "account_id": "acct_e2e",
        "environment_id": "env_e2e",
        "keys": keys,
        "traits": [trait("tdef_e2e_role", "user", role)],
        "rules": [],
    }


def condition(condition_id: str, condition_type: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": condition_id,
        "account_id": "acct_e2e",
        "environment_id": "env_e2e",
        "condition_type": condition_type,
        "operator": "eq",
        "resource_ids": [],
        "trait_value": "",
        "trait_definition": None,
    }
    return {**base, **fields}


def flag(
    flag_id: str,
    key: str,
    default: bool,
    conditions: list[dict[str, Any]],
    rule_type: str = "standard",
) -> dict[str, Any]:
    rules = []
    if conditions:
        rules.append(
            {
                "id": f"rule_{flag_id}",
                "flag_id": flag_id,
                "account_id": "acct_e2e",
                "environment_id": "env_e2e",
                "rule_type": rule_type,
                "name": f"{key} rule",
                "priority": 1,
                "conditions": conditions,
                "condition_groups": [],
                "value": True,
            }
        )
    return {
        "id": flag_id,
        "account_id": "acct_e2e",
        "environment_id": "env_e2e",
        "key": key,
        "default_value": default,
        "rules": rules,
    }


def tier_condition(tier: str) -> dict[str, Any]:
    definition = {"id": "tdef_e2e_tier", "comparable_type": "string", "entity_type": "company"}
    return condition("cond_tier", "trait", trait_definition=definition, trait_value=tier)


def role_condition(role: str) -> dict[str, Any]:
    definition = {"id": "tdef_e2e_role", "comparable_type": "string", "entity_type": "user"}
    return condition("cond_role", "trait", trait_definition=definition, trait_value=role)


CRAFTED_FLAGS = [
    flag(
        "flag_e2e_premium",
        "E2E-Premium",
        False,
        [condition("cond_plan", "plan", resource_ids=["plan_e2e_pro"])],
        "plan_entitlement",
    ),
    flag("flag_e2e_enterprise", "e2e-enterprise", False, [tier_condition("enterprise")]),
    flag("flag_e2e_admin", "e2e-admin", False, [role_condition("admin")]),
    flag(
        "flag_e2e_edit",
        "e2e-rule-edit",
        False,
        [condition("cond_company", "company", resource_ids=[BETA])],
    ),
    flag("flag_e2e_doomed", "e2e-doomed", True, []),
]


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    config = SimulatorConfig(api_key=API_KEY, companies=150, users=300, flags=12, seed=11)
    with Simulator(config) as sim:
        for record in CRAFTED_FLAGS:
            sim.upsert_flag(record)
        sim.upsert_company(
            company(
                ACME, "plan_e2e_pro", "startup", {"domain": "Acme.com", "external_id": "ACME-42"}
            )
        )
        sim.upsert_company(company(BETA, "plan_e2e_free", "startup", {"domain": "beta.io"}))
        sim.upsert_user(user(ANA, "admin", {"email": "Ana@Acme.com", "user_id": "U-1"}))
        sim.upsert_user(user(BOB, "viewer", {"email": "bob@beta.io"}))
        yield sim


@pytest.fixture()
def replicator(simulator: Simulator, redis_server: RedisServer) -> Iterator[ReplicatorProcess]:
    process = ReplicatorProcess(simulator.base_url, API_KEY, redis_server.url).start()
    yield process
    code = process.stop()
    assert code == 0, process.output()[-4000:]
    assert API_KEY not in process.output()


@pytest.fixture()
def sdk(
    redis_server: RedisServer, replicator: ReplicatorProcess, simulator: Simulator
) -> Iterator[SdkProbe]:
    replicator.wait_ready()
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    probe = SdkProbe(client, f"{replicator.base_url}/ready", simulator.base_url, API_KEY)
    yield probe
    probe.close()


def assert_flag(sdk: SdkProbe, flag_key: str, expected: bool, **context: dict[str, str]) -> None:
    result = sdk.check(flag_key, **context)
    assert result.value is expected, (flag_key, context, result)


def eventually_flag(
    sdk: SdkProbe, flag_key: str, expected: bool, **context: dict[str, str]
) -> float:
    """Wait up to LIVE_CHANGE_TIMEOUT_S for the SDK to see ``expected``; return the delay."""
    started = time.monotonic()
    wait_until(
        lambda: sdk.check(flag_key, **context).value is expected,
        LIVE_CHANGE_TIMEOUT_S,
        f"{flag_key} to become {expected} for {context}",
    )
    return time.monotonic() - started


def assert_redis_matches_truth(
    redis_server: RedisServer, simulator: Simulator, replicator: ReplicatorProcess
) -> None:
    # Changes made before the replicator subscribed reach it by REST, not by stream id,
    # so publish one more (an unchanged flag) and wait until everything up to it is written.
    marker = CRAFTED_FLAGS[1]
    replicator.wait_cursor(simulator.upsert_flag(simulator.flag(marker["key"]) or marker))
    version = replicator.wait_ready()["cache_version"]
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        problems = truth.differences(client, simulator.truth(), version)
    finally:
        client.close()
    assert problems == [], "\n".join(problems[:40])


def test_sdk_evaluates_replicated_flags(
    sdk: SdkProbe, simulator: Simulator, replicator: ReplicatorProcess, redis_server: RedisServer
) -> None:
    # Matching and not matching, by every key, in any letter case.
    assert_flag(sdk, "e2e-premium", True, company={"domain": "ACME.com"})
    assert_flag(sdk, "E2E-PREMIUM", True, company={"external_id": "acme-42"})
    assert_flag(sdk, "e2e-premium", True, company={"domain": "acme.COM", "external_id": "Acme-42"})
    assert_flag(sdk, "e2e-premium", False, company={"domain": "beta.io"})
    assert_flag(sdk, "e2e-admin", True, user={"email": "ANA@acme.com"})
    assert_flag(sdk, "e2e-admin", True, user={"user_id": "u-1"})
    assert_flag(sdk, "e2e-admin", False, user={"email": "bob@beta.io"})
    assert_flag(sdk, "e2e-rule-edit", True, company={"domain": "Beta.IO"})
    assert_flag(sdk, "e2e-rule-edit", False, company={"domain": "acme.com"})
    assert_flag(sdk, "e2e-doomed", True, company={"domain": "acme.com"})

    result = sdk.check(
        "e2e-premium", company={"domain": "acme.com"}, user={"email": "ana@acme.com"}
    )
    assert result.company_id == ACME
    assert result.user_id == ANA

    assert_redis_matches_truth(redis_server, simulator, replicator)


def test_sdk_sees_live_changes_within_two_seconds(
    sdk: SdkProbe, simulator: Simulator, replicator: ReplicatorProcess, redis_server: RedisServer
) -> None:
    # A trait change that flips a flag.
    assert_flag(sdk, "e2e-enterprise", False, company={"domain": "beta.io"})
    simulator.patch_company(BETA, {"traits": [trait("tdef_e2e_tier", "company", "enterprise")]})
    eventually_flag(sdk, "e2e-enterprise", True, company={"domain": "beta.io"})

    # A company key change: the new key finds the company, the old one no longer does.
    simulator.rename_company_key(ACME, "domain", "Acme-Renamed.io")
    eventually_flag(sdk, "e2e-premium", True, company={"domain": "acme-renamed.io"})
    eventually_flag(sdk, "e2e-premium", False, company={"domain": "acme.com"})

    # A company delete.
    simulator.delete_company(BETA)
    eventually_flag(sdk, "e2e-enterprise", False, company={"domain": "beta.io"})

    # A flag rule edit.
    edited = flag(
        "flag_e2e_edit",
        "e2e-rule-edit",
        False,
        [condition("cond_company", "company", resource_ids=[ACME])],
    )
    simulator.upsert_flag(edited)
    eventually_flag(sdk, "e2e-rule-edit", True, company={"external_id": "ACME-42"})

    # A flag delete: the SDK no longer finds it and answers false.
    simulator.delete_flag("e2e-doomed")
    eventually_flag(sdk, "e2e-doomed", False, company={"domain": "acme-renamed.io"})

    assert_redis_matches_truth(redis_server, simulator, replicator)


def test_replication_converges_under_mutation_stream(
    simulator: Simulator, replicator: ReplicatorProcess, redis_server: RedisServer
) -> None:
    replicator.wait_ready()
    simulator.start_mutations(100)
    time.sleep(8)
    simulator.stop_mutations()

    stats = replicator.status()
    assert_redis_matches_truth(redis_server, simulator, replicator)
    workers = [p for p in stats["processes"] if p["role"].startswith(("company", "user"))]
    assert sum(p["applied"] for p in workers) > 0
