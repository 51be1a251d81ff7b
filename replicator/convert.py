"""Convert REST API companies and users to rules-engine records.

The REST API serves ``CompanyDetailResponseData`` and ``UserDetailResponseData`` items. The
result of a conversion still goes through ``records.normalize_company`` or
``normalize_user``, which fixes the field order, the empty values and the number types.

The API does not carry everything a datastream record has, so a converted record is the
record's "API projection". Compared with the datastream record:

- ``account_id`` is ``""``, and ``credit_postpaid`` and ``credit_spend_policies`` are absent.
- Company rules other than the two company override types are dropped, and user rules
  are ``[]``.
- Traits without a definition are dropped.
- Subscription periods are whole seconds.

Unlike the Go replicator's conversion, every metric period is kept (Go turned
``current_week`` into ``all_time``) and ``plan_version`` conditions keep their type (Go
wrote ``""``).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from replicator import schema
from replicator.records import InvalidRecord

_OVERRIDE_RULE_TYPES = frozenset({"company_override", "company_override_usage_exceeded"})
_MONTH_RESETS = frozenset({"first_of_month", "billing_cycle"})
_COMPARABLE_TYPES = {
    "boolean": "bool",
    "bool": "bool",
    "number": "int",
    "int": "int",
    "integer": "int",
    "date": "date",
}
_OPERATORS = {
    "equals": "eq",
    "not_equals": "ne",
    "greater_than": "gt",
    "less_than": "lt",
    "greater_than_or_equal": "gte",
    "less_than_or_equal": "lte",
}
_METRIC_FIELDS = (
    "account_id",
    "environment_id",
    "company_id",
    "event_subtype",
    "period",
    "value",
    "created_at",
    "valid_until",
)
_RULE_FIELDS = (
    "id",
    "flag_id",
    "account_id",
    "environment_id",
    "rule_type",
    "name",
    "priority",
    "value",
)
_CONDITION_FIELDS = schema.field_names("Condition")
_ENTITLEMENT_FIELDS = schema.field_names("FeatureEntitlement")


def company_from_api(item: Any) -> dict[str, Any]:
    """Return the rules-engine company for a REST ``CompanyDetailResponseData`` item."""
    _check_item(item, "company item")
    plan = _object(item, "plan")
    subscription = _object(item, "billing_subscription")

    return {
        "id": item["id"],
        "account_id": "",
        "environment_id": item.get("environment_id"),
        "base_plan_id": plan.get("id") if plan else None,
        "billing_product_ids": _billing_product_ids(item, subscription),
        "credit_balances": _object(item, "billing_credit_balances") or {},
        "entitlements": [_pick(e, _ENTITLEMENT_FIELDS) for e in _objects(item, "entitlements")],
        "keys": _keys(item),
        "metrics": [_metric(m) for m in _objects(item, "metrics")],
        "plan_ids": _ids(_objects(item, "plans"), "item.plans"),
        "plan_version_ids": _plan_version_ids(item, plan),
        "rules": _override_rules(item),
        "subscription": _subscription(subscription) if subscription else None,
        "traits": _traits(item),
    }


def user_from_api(item: Any) -> dict[str, Any]:
    """Return the rules-engine user for a REST ``UserDetailResponseData`` item."""
    _check_item(item, "user item")
    return {
        "id": item["id"],
        "account_id": "",
        "environment_id": item.get("environment_id"),
        "keys": _keys(item),
        "traits": _traits(item),
        "rules": [],
    }


def _check_item(item: Any, label: str) -> None:
    if not isinstance(item, dict):
        raise InvalidRecord(label, item, "an object")
    if not isinstance(item.get("id"), str) or not item["id"]:
        raise InvalidRecord(f"{label}.id", item.get("id"), "a non-empty string")


# Tolerant accessors: a missing or null field reads as empty, a wrong type is rejected


def _object(item: dict[str, Any], name: str, parent: str = "item") -> dict[str, Any] | None:
    value = item.get(name)
    if value is not None and not isinstance(value, dict):
        raise InvalidRecord(f"{parent}.{name}", value, "an object")
    return value


def _objects(item: dict[str, Any], name: str, parent: str = "item") -> list[dict[str, Any]]:
    value = item.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRecord(f"{parent}.{name}", value, "a list")

    for index, element in enumerate(value):
        if not isinstance(element, dict):
            raise InvalidRecord(f"{parent}.{name}[{index}]", element, "an object")
    return value


def _text(value: Any) -> str | None:
    """Return ``value`` when it is a string, so it can be looked up in a table."""
    return value if isinstance(value, str) else None


def _pick(source: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: source.get(name) for name in names}


def _ids(objects: list[dict[str, Any]], path: str) -> list[str]:
    ids = []
    for index, entry in enumerate(objects):
        value = entry.get("id")
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRecord(f"{path}[{index}].id", value, "a string")
        ids.append(value)
    return ids


# Field mappings


def _keys(item: dict[str, Any]) -> dict[str, Any]:
    keys = {}
    for index, entry in enumerate(_objects(item, "keys")):
        name = entry.get("key")
        if name is None:
            continue
        if not isinstance(name, str):
            raise InvalidRecord(f"item.keys[{index}].key", name, "a string")
        keys[name] = entry.get("value")
    return keys


def _traits(item: dict[str, Any]) -> list[dict[str, Any]]:
    traits = []
    for entry in _objects(item, "entity_traits"):
        definition = _object(entry, "definition", "item.entity_traits[]")
        if not definition:
            continue
        trait_type = _text(definition.get("trait_type"))
        trait_definition = {
            "id": definition.get("id"),
            "comparable_type": _COMPARABLE_TYPES.get(trait_type or "", "string"),
            "entity_type": definition.get("entity_type"),
        }
        traits.append({"trait_definition": trait_definition, "value": entry.get("value")})
    return traits


def _plan_version_ids(item: dict[str, Any], plan: dict[str, Any] | None) -> list[Any]:
    sources = ([plan] if plan else []) + _objects(item, "add_ons")
    return [p["plan_version_id"] for p in sources if p.get("plan_version_id")]


def _billing_product_ids(item: dict[str, Any], subscription: dict[str, Any] | None) -> list[Any]:
    subscriptions = _objects(item, "billing_subscriptions")
    if subscription:
        subscriptions = [*subscriptions, subscription]
    ids: dict[str, None] = {}
    for entry in subscriptions:
        path = "item.billing_subscriptions[].products"
        for product_id in _ids(_objects(entry, "products", path), path):
            ids[product_id] = None
    return list(ids)


def _subscription(subscription: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": subscription.get("id"),
        "period_start": _unix_to_rfc3339(subscription, "period_start"),
        "period_end": _unix_to_rfc3339(subscription, "period_end"),
    }


def _unix_to_rfc3339(subscription: dict[str, Any], name: str) -> str:
    """Return the unix-seconds field ``name`` as UTC RFC 3339; 0 or null is the Go zero time."""
    seconds = subscription.get(name)
    if seconds is None or seconds == 0:
        return schema.ZERO_TIME

    path = f"item.billing_subscription.{name}"
    if type(seconds) not in (int, float):
        raise InvalidRecord(path, seconds, "unix seconds (a number)")
    try:
        moment = datetime.fromtimestamp(math.floor(seconds), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise InvalidRecord(path, seconds, "unix seconds within years 1 to 9999") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _metric(metric: dict[str, Any]) -> dict[str, Any]:
    converted = _pick(metric, _METRIC_FIELDS)
    month_reset = _text(metric.get("month_reset"))
    converted["month_reset"] = month_reset if month_reset in _MONTH_RESETS else "first_of_month"
    return converted


def _override_rules(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _rule(rule)
        for rule in _objects(item, "rules")
        if _text(rule.get("rule_type")) in _OVERRIDE_RULE_TYPES
    ]


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted = _pick(rule, _RULE_FIELDS)
    conditions = _objects(rule, "conditions", "item.rules[]")
    groups = _objects(rule, "condition_groups", "item.rules[]")
    converted["conditions"] = [_condition(c) for c in conditions]
    converted["condition_groups"] = [
        {"conditions": [_condition(c) for c in _objects(g, "conditions", "item.rules[].groups[]")]}
        for g in groups
    ]
    return converted


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    converted = _pick(condition, _CONDITION_FIELDS)
    operator = condition.get("operator")
    if not operator:
        converted["operator"] = "eq"
    elif isinstance(operator, str):
        converted["operator"] = _OPERATORS.get(operator, operator)
    return converted
