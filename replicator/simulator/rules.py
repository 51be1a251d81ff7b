"""Generated flags, rules and conditions in the rules-engine JSON shapes.

Rule types, condition types and operators are picked by formulas over the flag index and
the rule and condition positions. So twenty consecutive flags use every rule type, every
condition type and every operator, with condition groups, trait comparisons, metric
conditions and credit conditions among them. The other values come from a seeded
generator.
Field order follows the Go rules-engine structs, because the datastream is written by Go.
"""

from __future__ import annotations

import random
from typing import Any

from replicator.simulator.catalog import (
    CONDITION_TYPES,
    EVENT_SUBTYPES,
    FEATURE_KEYS,
    METRIC_PERIODS,
    MONTH_RESETS,
    OPERATORS,
    RULE_TYPES,
    WORDS,
    Catalog,
    seeded_random,
)

Record = dict[str, Any]

_COMPARISON_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte")
_LIST_OPERATORS = ("eq", "ne")
_RULES_WITHOUT_CONDITIONS = ("default", "global_override")
_RULES_WITH_GROUPS = ("standard", "plan_entitlement")


def blank_condition(catalog: Catalog, condition_id: str, condition_type: str) -> Record:
    """Build a condition of a type with operator ``eq`` and every optional field unset."""
    return {
        "id": condition_id,
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "condition_type": condition_type,
        "operator": "eq",
        "resource_ids": [],
        "event_subtype": None,
        "metric_value": None,
        "metric_period": None,
        "metric_period_month_reset": None,
        "credit_id": None,
        "consumption_rate": None,
        "quantity_rates": None,
        "trait_definition": None,
        "trait_value": "",
        "comparison_trait_definition": None,
    }


def _trait_value(rng: random.Random, comparable_type: str) -> str:
    if comparable_type == "int":
        return str(rng.randint(1, 500))
    if comparable_type == "bool":
        return rng.choice(("true", "false"))
    if comparable_type == "date":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return rng.choice(WORDS)


def _fill_trait(catalog: Catalog, rng: random.Random, condition: Record, operator: str) -> None:
    kind = rng.choice(("company", "user"))
    count = len(catalog.company_trait_ids if kind == "company" else catalog.user_trait_ids)
    definition = catalog.trait_definition(kind, rng.randrange(count))
    condition["operator"] = operator
    condition["trait_definition"] = definition
    if operator in ("is_empty", "not_empty"):
        return
    if rng.random() < 0.25:
        condition["comparison_trait_definition"] = catalog.trait_definition(kind, 0)
        return
    condition["trait_value"] = _trait_value(rng, definition["comparable_type"])


def _fill_metric(catalog: Catalog, rng: random.Random, condition: Record, operator: str) -> None:
    period = rng.choice(METRIC_PERIODS)
    condition["operator"] = operator if operator in _COMPARISON_OPERATORS else "lte"
    condition["event_subtype"] = rng.choice(EVENT_SUBTYPES)
    condition["metric_value"] = rng.randint(10, 100_000)
    condition["metric_period"] = period
    if period == "current_month":
        condition["metric_period_month_reset"] = rng.choice(MONTH_RESETS)


def _fill_credit(catalog: Catalog, rng: random.Random, condition: Record, operator: str) -> None:
    condition["operator"] = operator if operator in _COMPARISON_OPERATORS else "gte"
    condition["credit_id"] = rng.choice(catalog.credit_ids)
    condition["consumption_rate"] = rng.choice((1, 0.5, 2.5, 10))
    if rng.random() < 0.5:
        condition["quantity_rates"] = {"input_tokens": 0.001, "output_tokens": 0.004}


def _resource_ids(catalog: Catalog, rng: random.Random, condition_type: str) -> list[str]:
    if condition_type in ("plan", "base_plan"):
        pool: tuple[str, ...] = catalog.plan_ids
    elif condition_type == "plan_version":
        pool = tuple(v for versions in catalog.plan_version_ids for v in versions)
    elif condition_type == "billing_product":
        pool = catalog.billing_product_ids
    else:
        prefix = "comp" if condition_type == "company" else "user"
        pool = tuple(catalog.entity_id(prefix, rng.randrange(1000)) for _ in range(3))
    return rng.sample(pool, k=rng.randint(1, min(3, len(pool))))


def make_condition(
    catalog: Catalog, rng: random.Random, condition_id: str, condition_type: str, operator: str
) -> Record:
    """Build one condition of a type; ``operator`` is used where the type allows it."""
    condition = blank_condition(catalog, condition_id, condition_type)
    if condition_type == "trait":
        _fill_trait(catalog, rng, condition, operator)
    elif condition_type == "metric":
        _fill_metric(catalog, rng, condition, operator)
    elif condition_type == "credit":
        _fill_credit(catalog, rng, condition, operator)
    else:
        condition["operator"] = operator if operator in _LIST_OPERATORS else "eq"
        condition["resource_ids"] = _resource_ids(catalog, rng, condition_type)
    return condition


def _conditions(
    catalog: Catalog, rng: random.Random, rule_id: str, start: int, count: int, prefix: str
) -> list[Record]:
    return [
        make_condition(
            catalog,
            rng,
            f"cond_{rule_id[5:]}{prefix}{c}",
            CONDITION_TYPES[(start + c) % len(CONDITION_TYPES)],
            OPERATORS[(3 * start + c) % len(OPERATORS)],
        )
        for c in range(count)
    ]


def make_rule(
    catalog: Catalog, rng: random.Random, flag_id: str, rule_id: str, rule_type: str, slot: int
) -> Record:
    """Build one rule; ``slot`` varies which condition types and operators it uses."""
    conditions: list[Record] = []
    groups: list[Record] = []
    if rule_type not in _RULES_WITHOUT_CONDITIONS:
        conditions = _conditions(catalog, rng, rule_id, slot, 1 + slot % 3, "c")
    if rule_type in _RULES_WITH_GROUPS:
        groups = [
            {"conditions": _conditions(catalog, rng, rule_id, slot + 4 + g, 2, f"g{g}")}
            for g in range(1 + slot % 2)
        ]
    return {
        "id": rule_id,
        "flag_id": flag_id,
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "rule_type": rule_type,
        "name": f"{rule_type.replace('_', ' ').capitalize()} {slot}",
        "priority": 10 * (slot % 7) + rng.randint(0, 9),
        "conditions": conditions,
        "condition_groups": groups,
        "value": rng.random() < 0.6,
    }


def make_rules(
    catalog: Catalog, rng: random.Random, flag_id: str, index: int, revision: int
) -> list[Record]:
    """Build the rules of flag ``index``; a new revision gives other rules with other ids."""
    count = 1 + (index + revision) % 4
    rules = []
    for position in range(count):
        rule_type = RULE_TYPES[(index + position) % len(RULE_TYPES)]
        rule_id = f"rule_{flag_id[5:]}r{revision}p{position}"
        rules.append(make_rule(catalog, rng, flag_id, rule_id, rule_type, index + 2 * position))
    return rules


def flag_key(index: int) -> str:
    """Return the key of flag ``index``: lower case, unique, readable."""
    word = WORDS[index % len(WORDS)]
    feature = FEATURE_KEYS[(index // len(WORDS)) % len(FEATURE_KEYS)]
    return f"{word}-{feature}-{index}"


def make_flag(catalog: Catalog, index: int, revision: int = 0) -> Record:
    """Build flag ``index``; a revision keeps its id and key and changes its rules."""
    rng = seeded_random(catalog.seed, "flag", index, revision)
    flag_id = catalog.entity_id("flag", index)
    return {
        "id": flag_id,
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "key": flag_key(index),
        "rules": make_rules(catalog, rng, flag_id, index, revision),
        "default_value": rng.random() < 0.3,
    }
