"""The simulator's seeded generator, dataset files and entity tables."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from schematic.types import RulesengineCompany, RulesengineFlag, RulesengineUser

from replicator.simulator.catalog import (
    CONDITION_TYPES,
    METRIC_PERIODS,
    MONTH_RESETS,
    OPERATORS,
    RULE_TYPES,
    VALUE_TYPES,
    build_catalog,
)
from replicator.simulator.dataset import DatasetError, GeneratedSource, ListSource, parse_dataset
from replicator.simulator.times import to_unix_seconds
from replicator.simulator.truth import EntityTable, Truth
from tests.simulator_helpers import rest, running, without_go_nulls

Record = dict[str, Any]


def _dump(seed: int, companies: int = 40, users: int = 40, flags: int = 20) -> bytes:
    buffer = io.BytesIO()
    Truth.generated(build_catalog(seed), companies, users, flags).write(buffer, None)
    return buffer.getvalue()


def _all_conditions(flags: list[Record]) -> list[Record]:
    conditions = []
    for flag in flags:
        for rule in flag["rules"]:
            conditions += rule["conditions"]
            for group in rule["condition_groups"]:
                conditions += group["conditions"]
    return conditions


def test_generator_same_seed_same_bytes() -> None:
    assert _dump(7) == _dump(7)
    assert _dump(7) != _dump(8)
    assert json.loads(_dump(7))["last_stream_id"] is None


def test_generator_entity_is_function_of_index() -> None:
    small = Truth.generated(build_catalog(7), 10, 10, 0)
    large = Truth.generated(build_catalog(7), 1000, 1000, 0)
    assert small.companies.page(0, 10) == large.companies.page(0, 10)
    assert small.users.page(5, 5) == large.users.page(5, 5)


def test_generator_million_page_lazily() -> None:
    tracemalloc.start()
    truth = Truth.generated(build_catalog(7), 1_000_000, 1_000_000, 5)
    page = truth.companies.page(999_950, 100)
    users = truth.users.page(500_000, 100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert truth.companies.count() == 1_000_000
    assert len(page) == 50
    assert page[-1]["id"] == truth.catalog.entity_id("comp", 999_999)
    assert users[0]["id"] == truth.catalog.entity_id("user", 500_000)
    assert peak < 20 * 1024 * 1024


def test_generator_flags_cover_every_kind() -> None:
    flags = Truth.generated(build_catalog(7), 0, 0, 20).flags.values()
    rules = [rule for flag in flags for rule in flag["rules"]]
    conditions = _all_conditions(list(flags))

    assert {rule["rule_type"] for rule in rules} == set(RULE_TYPES)
    assert {c["condition_type"] for c in conditions} == set(CONDITION_TYPES)
    assert {c["operator"] for c in conditions} == set(OPERATORS)
    assert any(rule["condition_groups"] for rule in rules)
    assert any(c["comparison_trait_definition"] for c in conditions)
    assert any(c["metric_value"] is not None and c["metric_period"] for c in conditions)
    assert any(c["credit_id"] and c["consumption_rate"] for c in conditions)
    assert len({flag["key"] for flag in flags}) == 20


def test_generator_companies_cover_every_kind() -> None:
    companies = Truth.generated(build_catalog(7), 300, 0, 0).companies.page(0, 300)
    metrics = [m for c in companies for m in c["metrics"] or []]
    entitlements = [e for c in companies for e in c.get("entitlements") or []]
    rules = [r for c in companies for r in c["rules"] or []]

    assert all(2 <= len(c["keys"]) <= 4 for c in companies)
    for name in ("domain", "external_id", "crm_id", "stripe_customer_id"):
        values = [c["keys"][name].lower() for c in companies if name in c["keys"]]
        assert len(values) == len(set(values)), name
    assert {m["period"] for m in metrics} == set(METRIC_PERIODS)
    assert {m["month_reset"] for m in metrics} == set(MONTH_RESETS)
    assert {e["value_type"] for e in entitlements} == set(VALUE_TYPES)
    assert {r["rule_type"] for r in rules} == {
        "company_override",
        "company_override_usage_exceeded",
    }
    assert any(c["credit_balances"] is None for c in companies)
    assert any(c["plan_version_ids"] is None or c["metrics"] is None for c in companies)
    assert any("entitlements" not in c for c in companies)
    assert all(t["trait_definition"] for c in companies for t in c["traits"])


def test_generator_subscriptions_whole_seconds() -> None:
    companies = Truth.generated(build_catalog(3), 100, 0, 0).companies.page(0, 100)
    subscriptions = [c["subscription"] for c in companies if c["subscription"]]

    assert subscriptions
    for subscription in subscriptions:
        assert subscription["period_start"].endswith(":00Z")
        assert to_unix_seconds(subscription["period_end"]) > to_unix_seconds(
            subscription["period_start"]
        )


def test_generator_users_keys_unique() -> None:
    users = Truth.generated(build_catalog(7), 0, 200, 0).users.page(0, 200)
    emails = [u["keys"]["email"].lower() for u in users]

    assert all(1 <= len(u["keys"]) <= 3 for u in users)
    assert len(set(emails)) == 200
    assert all(t["trait_definition"]["entity_type"] == "user" for u in users for t in u["traits"])


def test_generator_records_validate_with_sdk() -> None:
    truth = Truth.generated(build_catalog(11), 150, 150, 20)

    for company in truth.companies.page(0, 150):
        RulesengineCompany.model_validate(without_go_nulls(company))
    for user in truth.users.page(0, 150):
        RulesengineUser.model_validate(without_go_nulls(user))
    for flag in truth.flags.values():
        RulesengineFlag.model_validate(flag)


def test_entity_table_overlay_paging() -> None:
    catalog = build_catalog(7)
    table = EntityTable(
        "company", GeneratedSource(catalog, "company", 10), lambda i: catalog.entity_id("comp", i)
    )
    ids = [catalog.entity_id("comp", i) for i in range(10)]
    table.remove(ids[0])
    table.remove(ids[4])
    table.remove(ids[5])
    table.put({"id": "comp_created", "keys": {}})
    table.put({**table.get(ids[2]), "traits": []})  # type: ignore[dict-item]

    assert table.count() == 8
    assert [r["id"] for r in table.page(0, 100)] == [
        ids[1],
        ids[2],
        ids[3],
        ids[6],
        ids[7],
        ids[8],
        ids[9],
        "comp_created",
    ]
    assert [r["id"] for r in table.page(3, 2)] == [ids[6], ids[7]]
    assert table.get(ids[2])["traits"] == []  # type: ignore[index]
    assert table.get(ids[4]) is None
    assert table.id_at(7) == "comp_created"


def test_entity_table_recreate_deleted() -> None:
    catalog = build_catalog(7)
    table = EntityTable(
        "user", GeneratedSource(catalog, "user", 5), lambda i: catalog.entity_id("user", i)
    )
    first = table.get(catalog.entity_id("user", 1))
    assert first is not None
    table.remove(first["id"])
    table.put(first)

    assert table.count() == 5
    assert table.page(1, 1) == [first]
    assert table.allocate_index() == 5


def test_dataset_file_served(tmp_path: Path) -> None:
    company = {
        "id": "comp_file1",
        "account_id": "acct_1",
        "environment_id": "env_1",
        "keys": {"domain": "file.example.com"},
        "traits": [],
        "rules": [],
        "metrics": [],
        "plan_ids": [],
        "plan_version_ids": [],
        "billing_product_ids": [],
        "credit_balances": {},
    }
    user = {
        "id": "user_file1",
        "account_id": "acct_1",
        "environment_id": "env_1",
        "keys": {"email": "a@example.com"},
        "traits": [],
        "rules": [],
    }
    path = tmp_path / "dataset.json"
    path.write_text(
        json.dumps({"flags": [], "companies": [company], "users": [user], "comment": "ignored"})
    )

    with running(dataset_path=str(path)) as simulator:
        assert simulator.company("comp_file1") == company
        assert simulator.user("user_file1") == user
        assert rest(simulator, "/companies/count").json()["data"]["count"] == 1
        assert rest(simulator, "/users").json()["data"][0]["id"] == "user_file1"


@pytest.mark.parametrize(
    "data, fragment",
    [
        ([], "top level is list"),
        ({"companies": {}}, "'companies' is dict"),
        ({"companies": [{"keys": {}}]}, "companies[0] has no string 'id'"),
        ({"users": [{"id": "u"}, {"id": "u"}]}, "users[1] repeats id 'u'"),
        ({"flags": [{"id": "f"}]}, "flags[0] has no string 'key'"),
    ],
)
def test_dataset_invalid_rejected(data: Any, fragment: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(fragment)):
        parse_dataset(data)


def test_dataset_list_source_index() -> None:
    source = ListSource([{"id": "a"}, {"id": "b"}])

    assert source.index_of("b") == 1
    assert source.index_of("c") is None
    assert source.id_of(0) == "a"


def test_truth_in_memory_limited() -> None:
    with running(companies=300_000, users=0, flags=0) as simulator:
        with pytest.raises(RuntimeError, match="use dump_truth"):
            simulator.truth()
        assert rest(simulator, "/companies", offset=299_999).json()["data"][0]["id"] == (
            simulator.catalog.entity_id("comp", 299_999)
        )
