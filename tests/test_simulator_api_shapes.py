"""REST items built from records, and the API projection of records."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from schematic.types import (
    CompanyDetailResponseData,
    RulesengineCompany,
    RulesengineUser,
    UserDetailResponseData,
)

from replicator.simulator.api_shapes import company_item, user_item
from replicator.simulator.catalog import build_catalog
from replicator.simulator.projection import api_projection
from replicator.simulator.truth import Truth
from tests.simulator_helpers import canonical, company_from_item, user_from_item

Record = dict[str, Any]

_TRUTH = Truth.generated(build_catalog(5), 200, 200, 0)
COMPANIES = _TRUTH.companies.page(0, 200)
USERS = _TRUTH.users.page(0, 200)


def _condition(condition_id: str, operator: str) -> Record:
    return {
        "id": condition_id,
        "account_id": "acct_1",
        "environment_id": "env_1",
        "condition_type": "plan_version",
        "operator": operator,
        "resource_ids": ["plvr_1"],
        "trait_value": "",
    }


def _rule(rule_id: str, rule_type: str, operator: str = "eq") -> Record:
    return {
        "id": rule_id,
        "flag_id": "flag_1",
        "account_id": "acct_1",
        "environment_id": "env_1",
        "rule_type": rule_type,
        "name": rule_id,
        "priority": 1,
        "value": True,
        "conditions": [_condition(f"{rule_id}_c", operator)],
        "condition_groups": [{"conditions": [_condition(f"{rule_id}_g", "")]}],
    }


HAND_MADE: Record = {
    "id": "comp_hand",
    "account_id": "acct_1",
    "environment_id": "env_1",
    "base_plan_id": None,
    "billing_product_ids": ["bprod_a", "bprod_b", "bprod_a"],
    "credit_balances": None,
    "credit_postpaid": {"bcrd_1": {"overdraft_limit": 10}},
    "credit_spend_policies": [
        {"id": "csp_1", "credit_id": "bcrd_1", "kind": "hard", "limit": 5, "scope": "company"}
    ],
    "entitlements": [
        {
            "feature_id": "feat_1",
            "feature_key": "f",
            "value_type": "numeric",
            "allocation": 10.0,
            "usage": 3,
            "soft_limit": None,
        }
    ],
    "keys": {"domain": "hand.example.com"},
    "metrics": [
        {
            "account_id": "acct_1",
            "environment_id": "env_1",
            "company_id": "comp_hand",
            "event_subtype": "x",
            "period": "current_week",
            "month_reset": "first",
            "value": 4,
            "created_at": "2026-07-13T00:00:00Z",
            "valid_until": None,
        }
    ],
    "plan_ids": ["plan_a"],
    "plan_version_ids": ["plvr_a", "", "plvr_b"],
    "rules": [
        _rule("rule_keep", "company_override", "greater_than_or_equal"),
        _rule("rule_keep2", "company_override_usage_exceeded", "not_equals"),
        _rule("rule_drop", "standard"),
    ],
    "subscription": {
        "id": "sub_1",
        "period_start": "2026-07-01T10:00:00.123456789Z",
        "period_end": "0001-01-01T00:00:00Z",
    },
    "traits": [
        {"value": "no definition"},
        {
            "value": "5",
            "trait_definition": {
                "id": "tdef_n",
                "comparable_type": "int",
                "entity_type": "company",
            },
        },
        {
            "value": "x",
            "trait_definition": {
                "id": "tdef_o",
                "comparable_type": "odd",
                "entity_type": "company",
            },
        },
    ],
}


def test_company_items_validate_with_sdk() -> None:
    for company in [*COMPANIES, HAND_MADE]:
        CompanyDetailResponseData.model_validate(company_item(company))


def test_user_items_validate_with_sdk() -> None:
    for user in USERS:
        UserDetailResponseData.model_validate(user_item(user))


def test_company_round_trip_is_projection() -> None:
    for company in [*COMPANIES, HAND_MADE]:
        assert company_from_item(company_item(company)) == api_projection("company", company)


def test_user_round_trip_is_projection() -> None:
    odd = {**USERS[0], "rules": [_rule("rule_u", "standard")], "credit_spend_policies": []}
    for user in [*USERS, odd]:
        assert user_from_item(user_item(user)) == api_projection("user", user)


def test_generated_projection_only_account_id() -> None:
    for company in COMPANIES:
        expected = canonical({**company, "account_id": ""})
        assert canonical(api_projection("company", company)) == expected
    for user in USERS:
        assert canonical(api_projection("user", user)) == canonical({**user, "account_id": ""})


def test_projection_validates_with_sdk() -> None:
    for company in [*COMPANIES, HAND_MADE]:
        RulesengineCompany.model_validate(api_projection("company", company))
    for user in USERS:
        RulesengineUser.model_validate(api_projection("user", user))


def test_projection_drops_what_api_lacks() -> None:
    projected = api_projection("company", HAND_MADE)

    assert projected["account_id"] == ""
    assert "credit_postpaid" not in projected
    assert "credit_spend_policies" not in projected
    assert [rule["id"] for rule in projected["rules"]] == ["rule_keep", "rule_keep2"]
    assert [t["trait_definition"]["id"] for t in projected["traits"]] == ["tdef_n", "tdef_o"]
    assert projected["traits"][1]["trait_definition"]["comparable_type"] == "string"


def test_projection_normalises_values() -> None:
    projected = api_projection("company", HAND_MADE)
    rules = projected["rules"]

    assert projected["subscription"] == {
        "id": "sub_1",
        "period_start": "2026-07-01T10:00:00Z",
        "period_end": "0001-01-01T00:00:00Z",
    }
    assert rules[0]["conditions"][0]["operator"] == "gte"
    assert rules[1]["conditions"][0]["operator"] == "ne"
    assert rules[0]["condition_groups"][0]["conditions"][0]["operator"] == "eq"
    assert rules[0]["conditions"][0]["condition_type"] == "plan_version"
    assert projected["metrics"][0]["month_reset"] == "first_of_month"
    assert projected["metrics"][0]["period"] == "current_week"
    assert projected["billing_product_ids"] == ["bprod_a", "bprod_b"]
    assert projected["plan_version_ids"] == ["plvr_a", "plvr_b"]
    assert projected["credit_balances"] == {}
    assert projected["entitlements"][0]["allocation"] == 10
    assert isinstance(projected["entitlements"][0]["allocation"], int)


def test_projection_leaves_record_unchanged() -> None:
    before = copy.deepcopy(HAND_MADE)
    api_projection("company", HAND_MADE)
    company_item(HAND_MADE)

    assert before == HAND_MADE


def test_company_item_plans_and_billing() -> None:
    with_plan = {
        **HAND_MADE,
        "base_plan_id": "plan_a",
        "subscription": {
            "id": "sub_2",
            "period_start": "2026-07-01T00:00:00Z",
            "period_end": "2026-08-01T00:00:00Z",
        },
    }
    item = company_item(with_plan)
    no_subscription = company_item({**HAND_MADE, "subscription": None})

    assert item["plan"]["id"] == "plan_a"
    assert item["plan"]["plan_version_id"] == "plvr_a"
    assert [a["plan_version_id"] for a in item["add_ons"]] == ["plvr_b"]
    assert item["billing_subscription"]["period_start"] == 1782864000
    assert [p["id"] for p in item["billing_subscription"]["products"]] == ["bprod_a", "bprod_b"]
    assert no_subscription["billing_subscription"] is None
    assert [p["id"] for p in no_subscription["billing_subscriptions"][0]["products"]] == [
        "bprod_a",
        "bprod_b",
    ]


def test_replicator_convert_agrees() -> None:
    """The replicator's own REST conversion yields the simulator's projection."""
    convert = pytest.importorskip("replicator.convert")
    records = pytest.importorskip("replicator.records")
    for company in [*COMPANIES[:50], HAND_MADE]:
        converted = records.normalize_company(convert.company_from_api(company_item(company)))
        assert converted == records.normalize_company(api_projection("company", company))
    for user in USERS[:50]:
        converted = records.normalize_user(convert.user_from_api(user_item(user)))
        assert converted == records.normalize_user(api_projection("user", user))
