"""Tests for replicator.convert: REST API items to rules-engine records.

Each API item first validates with the SDK's REST models, and the converted record, once
normalised, validates with the SDK's rules-engine models.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import schematic.types as sdk

from replicator.convert import company_from_api, user_from_api
from replicator.records import InvalidRecord, encode, normalize_company, normalize_user

T0 = "2026-01-05T10:00:00Z"

MINIMAL_COMPANY = {
    "id": "comp_4Fk2Pq",
    "name": "Acme",
    "environment_id": "env_Tz90",
    "created_at": T0,
    "updated_at": "2026-07-01T10:00:00Z",
    "user_count": 3,
    "keys": [
        {
            "id": "ek_1",
            "key": "domain",
            "value": "acme.io",
            "entity_id": "comp_4Fk2Pq",
            "entity_type": "company",
            "definition_id": "ekd_1",
            "environment_id": "env_Tz90",
            "created_at": T0,
            "updated_at": T0,
        }
    ],
    "entity_traits": [],
    "add_ons": [],
    "billing_subscriptions": [],
    "custom_plan_billings": [],
    "entitlements": [],
    "metrics": [],
    "payment_methods": [],
    "plans": [{"id": "plan_Pro01", "name": "Pro"}],
    "rules": [],
    "plan": {
        "id": "plan_Pro01",
        "name": "Pro",
        "plan_version_id": "plvr_3a",
        "included_credit_grants": [],
    },
    "billing_credit_balances": {"bcrd_api": 1200},
}


def api_key(name: str, value: str, entity: str = "company") -> dict[str, Any]:
    return {
        "id": "ek_" + name,
        "key": name,
        "value": value,
        "entity_id": "e1",
        "entity_type": entity,
        "definition_id": "ekd_" + name,
        "environment_id": "env_1",
        "created_at": T0,
        "updated_at": T0,
    }


def api_trait(value: str, trait_type: str | None, entity: str = "company") -> dict[str, Any]:
    trait: dict[str, Any] = {
        "id": "et_" + value,
        "value": value,
        "definition_id": "td_" + value,
        "environment_id": "env_1",
        "created_at": T0,
        "updated_at": T0,
    }
    if trait_type is not None:
        trait["definition"] = {
            "id": "td_" + value,
            "trait_type": trait_type,
            "entity_type": entity,
            "display_name": value,
            "hierarchy": [],
            "created_at": T0,
            "updated_at": T0,
        }
    return trait


def api_plan(plan_id: str, version: str | None) -> dict[str, Any]:
    return {
        "id": plan_id,
        "name": plan_id,
        "plan_version_id": version,
        "included_credit_grants": [],
    }


def api_product(product_id: str) -> dict[str, Any]:
    return {
        "id": product_id,
        "billing_scheme": "per_unit",
        "created_at": T0,
        "currency": "usd",
        "environment_id": "env_1",
        "external_id": "x_" + product_id,
        "interval": "month",
        "name": product_id,
        "package_size": 1,
        "price": 100,
        "price_external_id": "pe",
        "price_id": "pr",
        "price_tier": [],
        "provider_type": "stripe",
        "quantity": 1.0,
        "subscription_id": "bs_1",
        "updated_at": T0,
        "usage_type": "licensed",
    }


def api_subscription(sub_id: str, start: int, end: int, products: list[str]) -> dict[str, Any]:
    return {
        "id": sub_id,
        "cancel_at_period_end": False,
        "created_at": T0,
        "currency": "usd",
        "customer_external_id": "cus_1",
        "discounts": [],
        "interval": "month",
        "period_start": start,
        "period_end": end,
        "products": [api_product(p) for p in products],
        "provider_type": "stripe",
        "status": "active",
        "subscription_external_id": "sub_x",
        "total_price": 100,
    }


def api_metric(subtype: str, period: str, month_reset: str, value: int) -> dict[str, Any]:
    return {
        "account_id": "acct_1",
        "environment_id": "env_1",
        "company_id": "comp_1",
        "event_subtype": subtype,
        "period": period,
        "month_reset": month_reset,
        "value": value,
        "created_at": T0,
        "valid_until": None,
        "captured_at_max": T0,
        "captured_at_min": T0,
    }


def api_condition(condition_id: str, condition_type: str, operator: str) -> dict[str, Any]:
    return {
        "id": condition_id,
        "account_id": "acct_1",
        "environment_id": "env_1",
        "condition_type": condition_type,
        "operator": operator,
        "resource_ids": ["r1"],
        "trait_value": "",
        "event_subtype": "api_call",
        "metric_value": 10,
        "metric_period": "current_month",
        "metric_period_month_reset": "billing_cycle",
        "credit_id": "cred_1",
        "consumption_rate": 1.5,
        "quantity_rates": {"tokens": 0.5},
        "trait_definition": {"id": "td_1", "comparable_type": "int", "entity_type": "company"},
        "comparison_trait_definition": None,
    }


def api_rule(rule_id: str, rule_type: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "account_id": "acct_1",
        "environment_id": "env_1",
        "flag_id": "flag_1",
        "rule_type": rule_type,
        "name": rule_id,
        "priority": 3,
        "value": True,
        "conditions": conditions,
        "condition_groups": [{"conditions": [api_condition(rule_id + "_g", "plan", "")]}],
    }


ENTITLEMENT = {
    "allocation": 100,
    "consumption_rate": 2.0,
    "credit_id": "cred_1",
    "credit_remaining": 5.5,
    "credit_reserved": 1.0,
    "credit_settled": 6.5,
    "credit_total": 10.0,
    "credit_used": 4.5,
    "event_name": "api_call",
    "event_subtype": "api_call",
    "feature_id": "feat_1",
    "feature_key": "api",
    "metric_period": "current_week",
    "metric_reset_at": T0,
    "month_reset": "billing_cycle",
    "quantity_rates": {"tokens": 0.25},
    "soft_limit": 90,
    "usage": 12,
    "value_type": "numeric",
    "warning_tiers": [{"key": "w80", "value": 80}],
}


def full_company() -> dict[str, Any]:
    item = copy.deepcopy(MINIMAL_COMPANY)
    item.update(
        {
            "id": "comp_1",
            "environment_id": "env_1",
            "keys": [api_key("domain", "Acme.com"), api_key("external_id", "A-1")],
            "entity_traits": [
                api_trait("true", "boolean"),
                api_trait("42", "number"),
                api_trait("2026-01-01", "date"),
                api_trait("9.99", "currency"),
                api_trait("orphan", None),
            ],
            "plan": api_plan("plan_base", "pv_base"),
            "add_ons": [api_plan("plan_addon1", "pv_addon1"), api_plan("plan_addon2", None)],
            "plans": [{"id": "plan_base", "name": "Base"}, {"id": "plan_addon1", "name": "Add-on"}],
            "billing_subscriptions": [
                api_subscription("bs_1", 1782864000, 1785542400, ["prod_a", "prod_b"])
            ],
            "billing_subscription": api_subscription(
                "bs_1", 1782864000, 1785542400, ["prod_b", "prod_c"]
            ),
            "billing_credit_balances": {"cred_1": 5.5},
            "metrics": [
                api_metric("api_call", "current_week", "first", 4),
                api_metric("api_call", "all_time", "billing_cycle", 40),
            ],
            "rules": [
                api_rule(
                    "rule_co",
                    "company_override",
                    [
                        api_condition("c_pv", "plan_version", "equals"),
                        api_condition("c_ne", "trait", "not_equals"),
                    ],
                ),
                api_rule(
                    "rule_ex",
                    "company_override_usage_exceeded",
                    [api_condition("c_gte", "metric", "greater_than_or_equal")],
                ),
                api_rule("rule_plan", "plan_entitlement", []),
                api_rule("rule_std", "standard", []),
            ],
            "entitlements": [ENTITLEMENT],
        }
    )
    return item


def user_item() -> dict[str, Any]:
    return {
        "id": "user_1",
        "name": "Jane",
        "environment_id": "env_1",
        "created_at": T0,
        "updated_at": T0,
        "company_memberships": [],
        "entity_traits": [api_trait("admin", "string", "user"), api_trait("none", None)],
        "keys": [api_key("email", "Jane@Acme.com", "user")],
    }


def converted_company(item: dict[str, Any]) -> dict[str, Any]:
    record = normalize_company(company_from_api(item))
    sdk.RulesengineCompany.model_validate(json.loads(encode(record)))
    return record


def test_api_items_valid_for_sdk() -> None:
    sdk.CompanyDetailResponseData.model_validate(MINIMAL_COMPANY)
    sdk.CompanyDetailResponseData.model_validate(full_company())
    sdk.UserDetailResponseData.model_validate(user_item())


def test_company_from_api_minimal() -> None:
    assert converted_company(MINIMAL_COMPANY) == {
        "id": "comp_4Fk2Pq",
        "account_id": "",
        "environment_id": "env_Tz90",
        "base_plan_id": "plan_Pro01",
        "billing_product_ids": [],
        "credit_balances": {"bcrd_api": 1200},
        "entitlements": [],
        "keys": {"domain": "acme.io"},
        "metrics": [],
        "plan_ids": ["plan_Pro01"],
        "plan_version_ids": ["plvr_3a"],
        "rules": [],
        "subscription": None,
        "traits": [],
        "credit_postpaid": None,
        "credit_spend_policies": None,
    }


def test_company_from_api_sdk_dump() -> None:
    for item in (MINIMAL_COMPANY, full_company()):
        dumped = sdk.CompanyDetailResponseData.model_validate(item).model_dump(mode="json")
        assert converted_company(dumped) == converted_company(item)


def test_company_from_api_keys() -> None:
    record = converted_company(full_company())
    assert record["keys"] == {"domain": "Acme.com", "external_id": "A-1"}
    assert record["account_id"] == ""
    assert record["environment_id"] == "env_1"


def test_company_from_api_traits() -> None:
    record = converted_company(full_company())
    assert [(t["value"], t["trait_definition"]["comparable_type"]) for t in record["traits"]] == [
        ("true", "bool"),
        ("42", "int"),
        ("2026-01-01", "date"),
        ("9.99", "string"),
    ]
    assert record["traits"][0]["trait_definition"] == {
        "id": "td_true",
        "comparable_type": "bool",
        "entity_type": "company",
    }


@pytest.mark.parametrize(
    ("trait_type", "comparable"),
    [
        ("boolean", "bool"),
        ("bool", "bool"),
        ("number", "int"),
        ("int", "int"),
        ("integer", "int"),
        ("date", "date"),
        ("string", "string"),
        ("url", "string"),
        ("currency", "string"),
        (None, "string"),
    ],
)
def test_company_from_api_trait_types(trait_type: str | None, comparable: str) -> None:
    trait = api_trait("v", "string")
    trait["definition"]["trait_type"] = trait_type
    record = converted_company({"id": "c", "entity_traits": [trait]})
    assert record["traits"][0]["trait_definition"]["comparable_type"] == comparable


def test_company_from_api_plans() -> None:
    record = converted_company(full_company())
    assert record["base_plan_id"] == "plan_base"
    assert record["plan_ids"] == ["plan_base", "plan_addon1"]
    assert record["plan_version_ids"] == ["pv_base", "pv_addon1"]


def test_company_from_api_no_plan() -> None:
    item = full_company()
    item["plan"] = None
    record = converted_company(item)
    assert record["base_plan_id"] is None
    assert record["plan_version_ids"] == ["pv_addon1"]


def test_company_from_api_billing_products() -> None:
    record = converted_company(full_company())
    assert record["billing_product_ids"] == ["prod_a", "prod_b", "prod_c"]


def test_company_from_api_subscription() -> None:
    record = converted_company(full_company())
    assert record["subscription"] == {
        "id": "bs_1",
        "period_start": "2026-07-01T00:00:00Z",
        "period_end": "2026-08-01T00:00:00Z",
    }


def test_company_from_api_zero_periods() -> None:
    item = full_company()
    item["billing_subscription"] = api_subscription("bs_2", 0, 0, [])
    subscription = converted_company(item)["subscription"]
    assert subscription["period_start"] == "0001-01-01T00:00:00Z"
    assert subscription["period_end"] == "0001-01-01T00:00:00Z"


def test_company_from_api_bad_period() -> None:
    item = full_company()
    item["billing_subscription"]["period_end"] = "soon"
    with pytest.raises(InvalidRecord) as caught:
        company_from_api(item)
    assert caught.value.path == "item.billing_subscription.period_end"


def test_company_from_api_balances() -> None:
    assert converted_company(full_company())["credit_balances"] == {"cred_1": 5.5}
    item = full_company()
    item["billing_credit_balances"] = None
    assert converted_company(item)["credit_balances"] == {}


def test_company_from_api_metrics() -> None:
    record = converted_company(full_company())
    assert record["metrics"][0] == {
        "account_id": "acct_1",
        "environment_id": "env_1",
        "company_id": "comp_1",
        "event_subtype": "api_call",
        "period": "current_week",
        "month_reset": "first_of_month",
        "value": 4,
        "created_at": T0,
        "valid_until": None,
    }
    assert record["metrics"][1]["period"] == "all_time"
    assert record["metrics"][1]["month_reset"] == "billing_cycle"


def test_company_from_api_rules_filtered() -> None:
    record = converted_company(full_company())
    assert [r["id"] for r in record["rules"]] == ["rule_co", "rule_ex"]
    rule = record["rules"][0]
    assert rule["flag_id"] == "flag_1"
    assert rule["priority"] == 3
    assert rule["value"] is True
    assert rule["rule_type"] == "company_override"


def test_company_from_api_conditions() -> None:
    record = converted_company(full_company())
    condition = record["rules"][0]["conditions"][0]
    assert condition == {
        "id": "c_pv",
        "account_id": "acct_1",
        "environment_id": "env_1",
        "condition_type": "plan_version",
        "operator": "eq",
        "resource_ids": ["r1"],
        "event_subtype": "api_call",
        "metric_value": 10,
        "metric_period": "current_month",
        "metric_period_month_reset": "billing_cycle",
        "credit_id": "cred_1",
        "consumption_rate": 1.5,
        "trait_definition": {"id": "td_1", "comparable_type": "int", "entity_type": "company"},
        "trait_value": "",
        "comparison_trait_definition": None,
        "quantity_rates": {"tokens": 0.5},
    }
    assert record["rules"][0]["condition_groups"][0]["conditions"][0]["operator"] == "eq"


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("equals", "eq"),
        ("not_equals", "ne"),
        ("greater_than", "gt"),
        ("less_than", "lt"),
        ("greater_than_or_equal", "gte"),
        ("less_than_or_equal", "lte"),
        ("", "eq"),
        (None, "eq"),
        ("eq", "eq"),
        ("is_empty", "is_empty"),
        ("not_empty", "not_empty"),
    ],
)
def test_company_from_api_operators(operator: str | None, expected: str) -> None:
    condition = api_condition("c", "trait", "eq")
    condition["operator"] = operator
    item = {"id": "c", "rules": [api_rule("r", "company_override", [condition])]}
    assert converted_company(item)["rules"][0]["conditions"][0]["operator"] == expected


def test_company_from_api_entitlements() -> None:
    # The fixture sets every field of the REST model, so each one must come through.
    assert set(ENTITLEMENT) == set(sdk.FeatureEntitlement.model_fields)
    record = converted_company(full_company())
    assert record["entitlements"] == [ENTITLEMENT]


def test_company_from_api_integral_floats() -> None:
    entitlement = {**ENTITLEMENT, "allocation": 100.0, "usage": 12.0, "soft_limit": 90.0}
    record = converted_company({"id": "c", "entitlements": [entitlement]})
    assert type(record["entitlements"][0]["allocation"]) is int
    assert type(record["entitlements"][0]["usage"]) is int
    assert type(record["entitlements"][0]["soft_limit"]) is int


def test_company_from_api_credit_fields_absent() -> None:
    item = {**full_company(), "credit_postpaid": {"cred_1": {}}, "credit_spend_policies": []}
    record = converted_company(item)
    assert record["credit_postpaid"] is None
    assert record["credit_spend_policies"] is None


def test_company_from_api_missing_fields() -> None:
    record = converted_company({"id": "comp_1"})
    assert record["keys"] == {}
    assert record["environment_id"] == ""
    assert record["subscription"] is None
    assert record["credit_balances"] == {}

    nulls = {name: None for name in MINIMAL_COMPANY if name != "id"}
    assert converted_company({"id": "comp_1", **nulls}) == record


def test_company_from_api_inputs_unchanged() -> None:
    item = full_company()
    before = copy.deepcopy(item)
    company_from_api(item)
    assert item == before


@pytest.mark.parametrize("item", [{}, {"id": ""}, {"id": None}, {"id": 7}, [], "comp_1"])
def test_company_from_api_needs_id(item: Any) -> None:
    with pytest.raises(InvalidRecord, match="company item"):
        company_from_api(item)
    with pytest.raises(InvalidRecord, match="user item"):
        user_from_api(item)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"keys": {"domain": "a"}}, "item.keys"),
        ({"keys": ["domain"]}, "item.keys[0]"),
        ({"keys": [{"key": 5, "value": "a"}]}, "item.keys[0].key"),
        ({"plan": "plan_a"}, "item.plan"),
        ({"plans": [{"id": 5}]}, "item.plans[0].id"),
        (
            {"rules": [{"rule_type": "company_override", "conditions": "x"}]},
            "item.rules[].conditions",
        ),
        ({"entity_traits": [{"value": "v", "definition": "d"}]}, "item.entity_traits[].definition"),
    ],
)
def test_company_from_api_wrong_types(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        company_from_api({"id": "comp_1", **changes})
    assert caught.value.path == path


# Users


def converted_user(item: dict[str, Any]) -> dict[str, Any]:
    record = normalize_user(user_from_api(item))
    sdk.RulesengineUser.model_validate(json.loads(encode(record)))
    return record


def test_user_from_api_mapping() -> None:
    assert converted_user(user_item()) == {
        "id": "user_1",
        "account_id": "",
        "environment_id": "env_1",
        "keys": {"email": "Jane@Acme.com"},
        "traits": [
            {
                "trait_definition": {
                    "id": "td_admin",
                    "comparable_type": "string",
                    "entity_type": "user",
                },
                "value": "admin",
            }
        ],
        "rules": [],
        "credit_spend_policies": None,
    }


def test_user_from_api_sdk_dump() -> None:
    dumped = sdk.UserDetailResponseData.model_validate(user_item()).model_dump(mode="json")
    assert converted_user(dumped) == converted_user(user_item())


def test_user_from_api_missing_fields() -> None:
    record = converted_user({"id": "user_1", "keys": None, "entity_traits": None})
    assert record["keys"] == {}
    assert record["traits"] == []
    assert record["rules"] == []
