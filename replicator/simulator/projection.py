"""The API projection: what of a rules-engine record survives a trip through the REST API.

A replicator that bulk-loads over REST converts each item back to the rules-engine shape.
Compared with the record the datastream carries, the result differs like this:

- ``account_id`` is ``""``, and ``credit_postpaid`` and ``credit_spend_policies`` are gone;
- companies keep only the company override rules, and users get ``[]``;
- only traits that have a definition remain;
- subscription periods are cut to whole seconds;
- operator spellings such as ``equals`` become ``eq``, and metric ``month_reset`` values
  other than first_of_month and billing_cycle become first_of_month;
- entitlements and conditions carry every model field;
- where a Go record has ``null``, the result has the empty list or map a REST item carries.
"""

from __future__ import annotations

from typing import Any

from replicator.simulator.catalog import OVERRIDE_RULE_TYPES
from replicator.simulator.times import ZERO_TIME, whole_seconds

Record = dict[str, Any]

CONDITION_FIELDS = (
    "id",
    "account_id",
    "environment_id",
    "condition_type",
    "operator",
    "resource_ids",
    "trait_value",
    "event_subtype",
    "metric_value",
    "metric_period",
    "metric_period_month_reset",
    "credit_id",
    "consumption_rate",
    "quantity_rates",
    "trait_definition",
    "comparison_trait_definition",
)
ENTITLEMENT_FIELDS = (
    "allocation",
    "consumption_rate",
    "credit_id",
    "credit_remaining",
    "credit_reserved",
    "credit_settled",
    "credit_total",
    "credit_used",
    "event_name",
    "event_subtype",
    "feature_id",
    "feature_key",
    "metric_period",
    "metric_reset_at",
    "month_reset",
    "quantity_rates",
    "soft_limit",
    "usage",
    "value_type",
    "warning_tiers",
)
_INTEGER_ENTITLEMENT_FIELDS = ("allocation", "usage", "soft_limit")
_OPERATOR_SPELLINGS = {
    "": "eq",
    "equals": "eq",
    "not_equals": "ne",
    "greater_than": "gt",
    "less_than": "lt",
    "greater_than_or_equal": "gte",
    "less_than_or_equal": "lte",
}
_COMPARABLE_TYPES = {"bool": "bool", "int": "int", "date": "date"}
_MONTH_RESETS = ("first_of_month", "billing_cycle")


def text(value: Any) -> str:
    """Return a value as the string a REST string field carries (None becomes "")."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def dedupe(values: list[Any]) -> list[Any]:
    """Drop repeated values, keeping the first appearance of each."""
    return list(dict.fromkeys(values))


def metric_created_at(metric: Record) -> str:
    """Return a metric's creation time; the REST model requires one, so None becomes zero."""
    value = metric.get("created_at")
    return value if isinstance(value, str) and value else ZERO_TIME


def _traits(traits: Any) -> list[Record]:
    projected = []
    for trait in traits or []:
        definition = trait.get("trait_definition")
        if not definition:
            continue
        projected.append(
            {
                "trait_definition": {
                    "id": definition.get("id"),
                    "comparable_type": _COMPARABLE_TYPES.get(
                        definition.get("comparable_type"), "string"
                    ),
                    "entity_type": definition.get("entity_type"),
                },
                "value": text(trait.get("value")),
            }
        )
    return projected


def _condition(condition: Record) -> Record:
    projected = {name: condition.get(name) for name in CONDITION_FIELDS}
    operator = text(condition.get("operator"))
    projected["operator"] = _OPERATOR_SPELLINGS.get(operator, operator)
    projected["resource_ids"] = list(condition.get("resource_ids") or [])
    return projected


def _rule(rule: Record) -> Record:
    projected = {
        name: rule.get(name)
        for name in (
            "id",
            "flag_id",
            "account_id",
            "environment_id",
            "rule_type",
            "name",
            "priority",
            "value",
        )
    }
    projected["conditions"] = [_condition(c) for c in rule.get("conditions") or []]
    projected["condition_groups"] = [
        {"conditions": [_condition(c) for c in group.get("conditions") or []]}
        for group in rule.get("condition_groups") or []
    ]
    return projected


def _metric(metric: Record) -> Record:
    reset = metric.get("month_reset")
    return {
        "account_id": text(metric.get("account_id")),
        "environment_id": text(metric.get("environment_id")),
        "company_id": text(metric.get("company_id")),
        "event_subtype": text(metric.get("event_subtype")),
        "period": metric.get("period"),
        "month_reset": reset if reset in _MONTH_RESETS else "first_of_month",
        "value": metric.get("value"),
        "created_at": metric_created_at(metric),
        "valid_until": metric.get("valid_until"),
    }


def _entitlement(entitlement: Record) -> Record:
    projected = {name: entitlement.get(name) for name in ENTITLEMENT_FIELDS}
    for name in _INTEGER_ENTITLEMENT_FIELDS:
        value = projected[name]
        if value is not None:
            projected[name] = int(value)
    return projected


def _subscription(subscription: Record | None) -> Record | None:
    if subscription is None:
        return None
    return {
        "id": text(subscription.get("id")),
        "period_start": whole_seconds(subscription.get("period_start")),
        "period_end": whole_seconds(subscription.get("period_end")),
    }


def _plan_version_ids(record: Record) -> list[str]:
    return [text(v) for v in record.get("plan_version_ids") or [] if v]


def _keys(record: Record) -> dict[str, str]:
    return {text(name): text(value) for name, value in (record.get("keys") or {}).items()}


def project_company(record: Record) -> Record:
    """Return what the REST path carries of a company record."""
    rules = [r for r in record.get("rules") or [] if r.get("rule_type") in OVERRIDE_RULE_TYPES]
    return {
        "id": text(record.get("id")),
        "account_id": "",
        "environment_id": text(record.get("environment_id")),
        "base_plan_id": record.get("base_plan_id"),
        "billing_product_ids": dedupe(list(record.get("billing_product_ids") or [])),
        "credit_balances": dict(record.get("credit_balances") or {}),
        "entitlements": [_entitlement(e) for e in record.get("entitlements") or []],
        "keys": _keys(record),
        "metrics": [_metric(m) for m in record.get("metrics") or []],
        "plan_ids": list(record.get("plan_ids") or []),
        "plan_version_ids": _plan_version_ids(record),
        "rules": [_rule(r) for r in rules],
        "subscription": _subscription(record.get("subscription")),
        "traits": _traits(record.get("traits")),
    }


def project_user(record: Record) -> Record:
    """Return what the REST path carries of a user record."""
    return {
        "id": text(record.get("id")),
        "account_id": "",
        "environment_id": text(record.get("environment_id")),
        "keys": _keys(record),
        "traits": _traits(record.get("traits")),
        "rules": [],
    }


def api_projection(kind: str, record: Record) -> Record:
    """Return what the REST path carries of a ``company`` or ``user`` record."""
    return project_company(record) if kind == "company" else project_user(record)
