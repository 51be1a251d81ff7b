"""Tests for replicator.merge: partial company and user updates, Go SDK semantics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import schematic.types as sdk

from replicator.merge import merge_company, merge_user
from replicator.records import InvalidRecord, encode, normalize_company, normalize_user


def metric(
    subtype: str, value: int, period: str = "all_time", month_reset: str = "first_of_month"
) -> dict[str, Any]:
    return {
        "account_id": "acct",
        "environment_id": "env",
        "company_id": "comp_1",
        "event_subtype": subtype,
        "period": period,
        "month_reset": month_reset,
        "value": value,
        "created_at": "2026-07-01T00:00:00Z",
        "valid_until": None,
    }


def base_company() -> dict[str, Any]:
    return normalize_company(
        {
            "id": "comp_1",
            "account_id": "acct",
            "environment_id": "env",
            "base_plan_id": "plan_a",
            "billing_product_ids": ["prod_a"],
            "plan_ids": ["plan_a"],
            "plan_version_ids": ["pv_a"],
            "credit_balances": {"cred_a": 10.0, "cred_b": 20.0},
            "keys": {"domain": "acme.com", "external_id": "A-1"},
            "metrics": [
                metric("api_call", 5),
                metric("api_call", 2, "current_month"),
                metric("export", 1, "current_month", "billing_cycle"),
            ],
            "subscription": {
                "id": "sub_1",
                "period_start": "2026-07-01T00:00:00Z",
                "period_end": "2026-08-01T00:00:00Z",
            },
            "traits": [
                {
                    "trait_definition": {
                        "id": "t1",
                        "comparable_type": "int",
                        "entity_type": "company",
                    },
                    "value": "3",
                }
            ],
            "rules": [{"id": "rule_1", "rule_type": "company_override", "value": True}],
            "entitlements": [
                {
                    "feature_id": "f_api",
                    "feature_key": "api",
                    "value_type": "numeric",
                    "event_name": "api_call",
                    "usage": 5,
                    "allocation": 100,
                },
                {
                    "feature_id": "f_month",
                    "feature_key": "month",
                    "value_type": "numeric",
                    "event_name": "api_call",
                    "metric_period": "current_month",
                    "usage": 2,
                },
                {
                    "feature_id": "f_export",
                    "feature_key": "export",
                    "value_type": "numeric",
                    "event_name": "export",
                    "metric_period": "current_month",
                    "month_reset": "billing_cycle",
                    "usage": 1,
                },
                {
                    "feature_id": "f_credit",
                    "feature_key": "credit",
                    "value_type": "credit",
                    "credit_id": "cred_a",
                    "credit_remaining": 10.0,
                    "credit_total": 50.0,
                    "credit_used": 40.0,
                },
            ],
            "credit_postpaid": {"cred_a": {"overdraft_limit": 5.0}},
            "credit_spend_policies": [
                {
                    "id": "pol_1",
                    "credit_id": "cred_a",
                    "kind": "hard",
                    "limit": 10.0,
                    "scope": "company",
                }
            ],
        }
    )


def base_user() -> dict[str, Any]:
    return normalize_user(
        {
            "id": "user_1",
            "account_id": "acct",
            "environment_id": "env",
            "keys": {"email": "jane@acme.com"},
            "traits": [{"value": "x"}],
            "rules": [{"id": "rule_u"}],
            "credit_spend_policies": [
                {
                    "id": "pol_u",
                    "credit_id": "cred_a",
                    "kind": "hard",
                    "limit": 1.0,
                    "scope": "user",
                }
            ],
        }
    )


def merged_company(partial: dict[str, Any]) -> dict[str, Any]:
    """Merge into a fresh base, check the inputs stayed unchanged, and normalise."""
    base = base_company()
    base_before = copy.deepcopy(base)
    partial_before = copy.deepcopy(partial)
    result = merge_company(base, partial)
    assert base == base_before
    assert partial == partial_before
    assert result is not base

    record = normalize_company(result)
    sdk.RulesengineCompany.model_validate(json.loads(encode(record)))
    return record


def entitlement(record: dict[str, Any], feature_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in record["entitlements"] if e["feature_id"] == feature_id)
    return found


def test_merge_company_empty_partial() -> None:
    assert merged_company({}) == base_company()


def test_merge_company_replaces_scalars() -> None:
    record = merged_company(
        {
            "account_id": "acct_2",
            "environment_id": "env_2",
            "base_plan_id": "plan_b",
            "id": "comp_1",
        }
    )
    assert record["account_id"] == "acct_2"
    assert record["environment_id"] == "env_2"
    assert record["base_plan_id"] == "plan_b"


def test_merge_company_null_clears_nullable() -> None:
    record = merged_company(
        {
            "base_plan_id": None,
            "subscription": None,
            "credit_postpaid": None,
            "credit_spend_policies": None,
        }
    )
    assert record["base_plan_id"] is None
    assert record["subscription"] is None
    assert record["credit_postpaid"] is None
    assert record["credit_spend_policies"] is None


def test_merge_company_null_keeps_ids() -> None:
    record = merged_company({"id": None, "account_id": None, "environment_id": None})
    assert record["id"] == "comp_1"
    assert record["account_id"] == "acct"
    assert record["environment_id"] == "env"


def test_merge_company_replaces_subscription() -> None:
    subscription = {
        "id": "sub_2",
        "period_start": "2026-08-01T00:00:00Z",
        "period_end": "2026-09-01T00:00:00Z",
    }
    assert merged_company({"subscription": subscription})["subscription"] == subscription


@pytest.mark.parametrize(
    "name",
    ["billing_product_ids", "plan_ids", "plan_version_ids"],
)
def test_merge_company_replaces_id_lists(name: str) -> None:
    assert merged_company({name: ["new_1", "new_2"]})[name] == ["new_1", "new_2"]
    assert merged_company({name: []})[name] == []
    assert merged_company({name: None})[name] == []


def test_merge_company_replaces_object_lists() -> None:
    rule = {"id": "rule_2", "rule_type": "company_override_usage_exceeded"}
    trait = {"trait_definition": None, "value": "y"}
    record = merged_company({"rules": [rule], "traits": [trait]})
    assert [r["id"] for r in record["rules"]] == ["rule_2"]
    assert record["traits"] == [trait]
    assert merged_company({"rules": None})["rules"] == []


def test_merge_company_replaces_entitlements() -> None:
    new = {"feature_id": "f_new", "feature_key": "new", "value_type": "boolean"}
    record = merged_company({"entitlements": [new]})
    assert [e["feature_id"] for e in record["entitlements"]] == ["f_new"]
    assert merged_company({"entitlements": None})["entitlements"] == []


def test_merge_company_replaces_credit_fields() -> None:
    policy = {"id": "pol_2", "credit_id": "cred_b", "kind": "soft", "limit": 3, "scope": "user"}
    record = merged_company({"credit_postpaid": {"cred_b": {}}, "credit_spend_policies": [policy]})
    assert record["credit_postpaid"] == {"cred_b": {"overdraft_limit": None}}
    assert [p["id"] for p in record["credit_spend_policies"]] == ["pol_2"]


def test_merge_company_keys_shallow() -> None:
    record = merged_company({"keys": {"external_id": "A-2", "crm": "c-9"}})
    assert record["keys"] == {"crm": "c-9", "domain": "acme.com", "external_id": "A-2"}
    assert merged_company({"keys": None})["keys"] == base_company()["keys"]
    assert merged_company({"keys": {}})["keys"] == base_company()["keys"]


def test_merge_company_balances_shallow() -> None:
    record = merged_company({"credit_balances": {"cred_b": 25.0, "cred_c": 1.0}})
    assert record["credit_balances"] == {"cred_a": 10.0, "cred_b": 25.0, "cred_c": 1.0}
    assert merged_company({"credit_balances": None})["credit_balances"] == {
        "cred_a": 10.0,
        "cred_b": 20.0,
    }


def test_merge_company_metrics_upsert() -> None:
    record = merged_company(
        {"metrics": [metric("api_call", 9, "current_month"), metric("login", 4, "current_day")]}
    )
    values = [
        (m["event_subtype"], m["period"], m["month_reset"], m["value"]) for m in record["metrics"]
    ]
    assert values == [
        ("api_call", "all_time", "first_of_month", 5),
        ("api_call", "current_month", "first_of_month", 9),
        ("export", "current_month", "billing_cycle", 1),
        ("login", "current_day", "first_of_month", 4),
    ]


def test_merge_company_metric_month_reset_key() -> None:
    record = merged_company({"metrics": [metric("export", 7, "current_month")]})
    exports = [
        (m["month_reset"], m["value"]) for m in record["metrics"] if m["event_subtype"] == "export"
    ]
    assert exports == [("billing_cycle", 1), ("first_of_month", 7)]


def test_merge_company_single_metric() -> None:
    record = merged_company({"metrics": metric("api_call", 11)})
    assert record["metrics"][0]["value"] == 11
    assert len(record["metrics"]) == 3


def test_merge_company_duplicate_metrics() -> None:
    record = merged_company({"metrics": [metric("new", 1), None, metric("new", 2)]})
    news = [m["value"] for m in record["metrics"] if m["event_subtype"] == "new"]
    assert news == [2]


def test_merge_company_null_metrics() -> None:
    record = merged_company({"metrics": None})
    assert record["metrics"] == base_company()["metrics"]


def test_merge_company_syncs_credit_remaining() -> None:
    record = merged_company({"credit_balances": {"cred_a": 3.5, "cred_z": 1.0}})
    credit = entitlement(record, "f_credit")
    assert credit["credit_remaining"] == 3.5
    assert credit["credit_total"] == 50.0
    assert credit["credit_used"] == 40.0
    assert entitlement(record, "f_api")["credit_remaining"] is None


def test_merge_company_sync_skips_other_credits() -> None:
    record = merged_company({"credit_balances": {"cred_b": 1.0}})
    assert entitlement(record, "f_credit")["credit_remaining"] == 10.0


def test_merge_company_syncs_usage() -> None:
    record = merged_company(
        {"metrics": [metric("api_call", 42), metric("export", 8, "current_month", "billing_cycle")]}
    )
    assert entitlement(record, "f_api")["usage"] == 42
    assert entitlement(record, "f_month")["usage"] == 2
    assert entitlement(record, "f_export")["usage"] == 8
    assert entitlement(record, "f_api")["allocation"] == 100


def test_merge_company_usage_needs_full_key() -> None:
    record = merged_company({"metrics": [metric("export", 8, "current_month")]})
    assert entitlement(record, "f_export")["usage"] == 1


def test_merge_company_null_metrics_resync() -> None:
    base = base_company()
    base["entitlements"][0]["usage"] = 999
    record = normalize_company(merge_company(base, {"metrics": None}))
    assert entitlement(record, "f_api")["usage"] == 5


def test_merge_company_no_sync_with_entitlements() -> None:
    sent = [
        {
            "feature_id": "f_credit",
            "feature_key": "credit",
            "value_type": "credit",
            "credit_id": "cred_a",
            "credit_remaining": 7.0,
        }
    ]
    record = merged_company({"credit_balances": {"cred_a": 1.0}, "entitlements": sent})
    assert entitlement(record, "f_credit")["credit_remaining"] == 7.0


def test_merge_company_no_sync_without_trigger() -> None:
    base = base_company()
    base["entitlements"][0]["usage"] = 999
    record = normalize_company(merge_company(base, {"keys": {"a": "b"}, "plan_ids": []}))
    assert entitlement(record, "f_api")["usage"] == 999


def test_merge_company_sync_without_entitlements() -> None:
    base = base_company()
    base["entitlements"] = []
    record = normalize_company(merge_company(base, {"credit_balances": {"cred_a": 1.0}}))
    assert record["entitlements"] == []


def test_merge_company_ignores_other_fields() -> None:
    record = merged_company({"mu": 1, "unknown": {"x": 1}, "name": "Acme"})
    assert record == base_company()


def test_merge_company_base_without_fields() -> None:
    merged = merge_company(
        {"id": "comp_1"},
        {"keys": {"a": "b"}, "credit_balances": {"c": 1}, "metrics": [metric("e", 1)]},
    )
    record = normalize_company(merged)
    assert record["keys"] == {"a": "b"}
    assert record["credit_balances"] == {"c": 1}
    assert len(record["metrics"]) == 1


@pytest.mark.parametrize(
    ("partial", "path"),
    [
        ({"keys": ["a"]}, "partial.keys"),
        ({"credit_balances": 5}, "partial.credit_balances"),
        ({"metrics": "m"}, "partial.metrics"),
        ({"metrics": [metric("a", 1), 7]}, "partial.metrics[1]"),
    ],
)
def test_merge_company_invalid_types(partial: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        merge_company(base_company(), partial)
    assert caught.value.path == path


def test_merge_partial_not_object() -> None:
    with pytest.raises(InvalidRecord, match="partial"):
        merge_company(base_company(), ["keys"])  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord, match="partial"):
        merge_user(base_user(), "x")  # type: ignore[arg-type]


# Users


def merged_user(partial: dict[str, Any]) -> dict[str, Any]:
    base = base_user()
    base_before = copy.deepcopy(base)
    partial_before = copy.deepcopy(partial)
    result = merge_user(base, partial)
    assert base == base_before
    assert partial == partial_before

    record = normalize_user(result)
    sdk.RulesengineUser.model_validate(json.loads(encode(record)))
    return record


def test_merge_user_replaces_ids() -> None:
    record = merged_user({"account_id": "acct_2", "environment_id": "env_2"})
    assert record["account_id"] == "acct_2"
    assert record["environment_id"] == "env_2"
    assert merged_user({"account_id": None})["account_id"] == "acct"


def test_merge_user_keys_shallow() -> None:
    record = merged_user({"keys": {"email": "j@acme.com", "crm": "9"}})
    assert record["keys"] == {"crm": "9", "email": "j@acme.com"}
    assert merged_user({"keys": None})["keys"] == {"email": "jane@acme.com"}


def test_merge_user_replaces_lists() -> None:
    record = merged_user({"traits": [{"value": "new"}], "rules": []})
    assert record["traits"] == [{"trait_definition": None, "value": "new"}]
    assert record["rules"] == []
    assert merged_user({"traits": None})["traits"] == []


def test_merge_user_spend_policies() -> None:
    assert merged_user({"credit_spend_policies": None})["credit_spend_policies"] is None
    policy = {"id": "pol_2", "credit_id": "c", "kind": "hard", "limit": 2, "scope": "user"}
    record = merged_user({"credit_spend_policies": [policy]})
    assert [p["id"] for p in record["credit_spend_policies"]] == ["pol_2"]


def test_merge_user_ignores_company_fields() -> None:
    record = merged_user(
        {
            "metrics": [metric("a", 1)],
            "credit_balances": {"a": 1},
            "base_plan_id": "p",
            "entitlements": [],
        }
    )
    assert record == base_user()
