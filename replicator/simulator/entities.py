"""Generated companies and users in the rules-engine JSON shapes.

Entity ``i`` depends only on (seed, i, revision): its id and keys on (seed, i), the rest
on the revision too, so a "full update" can regenerate a company's content and keep its
keys. Key values contain the decimal index, so they stay unique across entities even
after Redis lower-cases them. Like the Go datastream, records carry ``null`` for some
empty lists and maps, and companies without entitlements omit the field.

The REST fast path (:mod:`generated_items`) repeats the draws of make_company and
make_user, so a change to them must be made there too.
"""

from __future__ import annotations

import random
from typing import Any

from replicator.simulator.catalog import (
    COMPANY_KEY_NAMES,
    COMPANY_TRAITS,
    CREDIT_NAMES,
    EVENT_SUBTYPES,
    FEATURE_KEYS,
    FIRST_NAMES,
    METRIC_PERIODS,
    MONTH_RESETS,
    USER_KEY_NAMES,
    USER_TRAITS,
    VALUE_TYPES,
    WORDS,
    Catalog,
    seeded_random,
)
from replicator.simulator.rules import make_condition

Record = dict[str, Any]

#: Start and end of the metric period of each kind, relative to a fixed simulated "today"
#: (2026-07-15), so generated data does not depend on the wall clock.
PERIOD_WINDOWS = {
    "all_time": ("2025-01-01T00:00:00Z", None),
    "current_day": ("2026-07-15T00:00:00Z", "2026-07-16T00:00:00Z"),
    "current_week": ("2026-07-13T00:00:00Z", "2026-07-20T00:00:00Z"),
    "current_month": ("2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"),
}
_FLAG_POOL = 50


def company_key_value(catalog: Catalog, name: str, index: int) -> str:
    """Return the canonical value of key ``name`` for company ``index``."""
    if name == "domain":
        first, second = WORDS[index % len(WORDS)], WORDS[(index // len(WORDS)) % len(WORDS)]
        return f"{first}-{second}-{index}.example.com"
    if name == "external_id":
        return f"ext-{catalog.tag.lower()}-{index}"
    if name == "crm_id":
        return f"0015e{index:010d}"
    return f"cus_{catalog.tag.lower()}{index}"


def user_key_value(catalog: Catalog, name: str, index: int) -> str:
    """Return the canonical value of key ``name`` for user ``index``."""
    if name == "email":
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        return f"{first}.{index}@{WORDS[index % len(WORDS)]}.example.com"
    if name == "user_id":
        return f"usr-{catalog.tag.lower()}-{index}"
    return f"u{index:09d}"


def _keys(catalog: Catalog, kind: str, index: int) -> dict[str, str]:
    rng = seeded_random(catalog.seed, kind, "keys", index)
    if kind == "company":
        names = COMPANY_KEY_NAMES[:2] + tuple(rng.sample(COMPANY_KEY_NAMES[2:], rng.randint(0, 2)))
        return {name: company_key_value(catalog, name, index) for name in names}
    names = USER_KEY_NAMES[:1] + tuple(rng.sample(USER_KEY_NAMES[1:], rng.randint(0, 2)))
    return {name: user_key_value(catalog, name, index) for name in names}


def _trait_value(rng: random.Random, name: str, comparable_type: str) -> str:
    if comparable_type == "int":
        return str(rng.randint(1, 2000))
    if comparable_type == "bool":
        return rng.choice(("true", "false"))
    if comparable_type == "date":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if name == "website":
        return f"https://{rng.choice(WORDS)}.example.com"
    return rng.choice(WORDS)


def make_traits(catalog: Catalog, rng: random.Random, kind: str) -> list[Record]:
    """Build 1 to 5 traits, each with its trait definition."""
    table = COMPANY_TRAITS if kind == "company" else USER_TRAITS
    positions = sorted(rng.sample(range(len(table)), rng.randint(1, min(5, len(table)))))
    return [
        {
            "trait_definition": catalog.trait_definition(kind, p),
            "value": _trait_value(rng, table[p][0], table[p][1]),
        }
        for p in positions
    ]


def make_metric(
    catalog: Catalog, rng: random.Random, company_id: str, subtype: str, period: str, reset: str
) -> Record:
    """Build one company metric whose times match its period."""
    created_at, valid_until = PERIOD_WINDOWS[period]
    return {
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "company_id": company_id,
        "event_subtype": subtype,
        "period": period,
        "month_reset": reset,
        "value": rng.randint(0, 50_000),
        "created_at": created_at,
        "valid_until": valid_until,
    }


def _metrics(catalog: Catalog, rng: random.Random, company_id: str) -> list[Record]:
    combos = {
        (rng.choice(EVENT_SUBTYPES), rng.choice(METRIC_PERIODS), rng.choice(MONTH_RESETS))
        for _ in range(rng.randint(0, 5))
    }
    return [make_metric(catalog, rng, company_id, *combo) for combo in sorted(combos)]


def _entitlement(
    catalog: Catalog,
    rng: random.Random,
    value_type: str,
    metrics: list[Record],
    balances: dict[str, float],
) -> Record:
    feature = rng.randrange(len(FEATURE_KEYS))
    item: Record = {
        "feature_id": catalog.feature_ids[feature],
        "feature_key": FEATURE_KEYS[feature],
        "value_type": value_type,
    }
    if value_type == "numeric" and metrics:
        metric = rng.choice(metrics)
        item.update(
            allocation=rng.choice((1000, 5000, 100_000)),
            usage=metric["value"],
            event_name=metric["event_subtype"],
            metric_period=metric["period"],
            month_reset=metric["month_reset"],
            metric_reset_at=metric["valid_until"],
        )
        if rng.random() < 0.5:
            item["soft_limit"] = item["allocation"] * 2
            item["warning_tiers"] = [{"key": "80-percent", "value": item["allocation"] * 8 // 10}]
    elif value_type == "credit" and balances:
        credit_id = rng.choice(sorted(balances))
        total = balances[credit_id] + rng.randint(0, 500)
        item.update(
            credit_id=credit_id,
            credit_total=total,
            credit_used=total - balances[credit_id],
            credit_remaining=balances[credit_id],
            consumption_rate=rng.choice((1, 0.5, 2)),
            event_subtype=rng.choice(EVENT_SUBTYPES),
        )
    elif value_type == "numeric":
        item.update(allocation=rng.randint(1, 50), usage=rng.randint(0, 50))
    return item


def _entitlements(
    catalog: Catalog, rng: random.Random, metrics: list[Record], balances: dict[str, float]
) -> list[Record]:
    value_types = rng.sample(VALUE_TYPES, rng.randint(0, 4))
    return [_entitlement(catalog, rng, kind, metrics, balances) for kind in value_types]


def _override_rules(catalog: Catalog, rng: random.Random, company_id: str) -> list[Record]:
    rules = []
    for position in range(rng.choice((0, 0, 1, 2))):
        rule_type = ("company_override", "company_override_usage_exceeded")[position % 2]
        rule_id = f"rule_{company_id[5:]}o{position}"
        if rule_type == "company_override":
            condition = make_condition(catalog, rng, f"cond_{rule_id[5:]}", "company", "eq")
            condition["resource_ids"] = [company_id]
        else:
            condition = make_condition(catalog, rng, f"cond_{rule_id[5:]}", "metric", "gte")
        rules.append(
            {
                "id": rule_id,
                "flag_id": catalog.entity_id("flag", rng.randrange(_FLAG_POOL)),
                "account_id": catalog.account_id,
                "environment_id": catalog.environment_id,
                "rule_type": rule_type,
                "name": f"Override {position}",
                "priority": position + 1,
                "conditions": [condition],
                "condition_groups": [],
                "value": rng.random() < 0.5,
            }
        )
    return rules


def _subscription(rng: random.Random, company_id: str) -> Record | None:
    if rng.random() < 0.15:
        return None
    month = rng.randint(1, 12)
    end = "2027-01-01T00:00:00Z" if month == 12 else f"2026-{month + 1:02d}-01T00:00:00Z"
    return {
        "id": f"sub_{company_id[5:]}",
        "period_start": f"2026-{month:02d}-01T00:00:00Z",
        "period_end": end,
    }


def _plans(catalog: Catalog, rng: random.Random) -> tuple[str | None, list[str], list[str]]:
    plan = rng.randrange(len(catalog.plan_ids))
    add_ons = sorted(rng.sample(range(len(catalog.add_on_ids)), rng.choice((0, 0, 1, 2))))
    plan_ids = [catalog.plan_ids[plan]] + [catalog.add_on_ids[a] for a in add_ons]
    versions = [catalog.plan_version_ids[plan][rng.randrange(2)]]
    versions += [catalog.add_on_version_ids[a] for a in add_ons]
    if rng.random() < 0.1:
        return None, [], []
    return catalog.plan_ids[plan], plan_ids, versions


def _go_null(rng: random.Random, value: Any) -> Any:
    """Return None in place of an empty list or map half of the time, as Go writes nil."""
    if not value and rng.random() < 0.5:
        return None
    return value


def company_content(
    catalog: Catalog, rng: random.Random, company_id: str, keys: dict[str, str]
) -> Record:
    """Build a company record for a given id and keys, every other field generated."""
    base_plan_id, plan_ids, version_ids = _plans(catalog, rng)
    credits = rng.sample(range(len(CREDIT_NAMES)), rng.randint(0, len(CREDIT_NAMES)))
    balances = {catalog.credit_ids[c]: rng.choice((0, 250, 1200, 99.5, 10_000)) for c in credits}
    metrics = _metrics(catalog, rng, company_id)
    entitlements = _entitlements(catalog, rng, metrics, balances)
    products = rng.sample(catalog.billing_product_ids, rng.randint(0, 3))
    record: Record = {
        "id": company_id,
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "base_plan_id": base_plan_id,
        "billing_product_ids": _go_null(rng, products),
        "credit_balances": _go_null(rng, balances),
        "entitlements": entitlements,
        "keys": keys,
        "metrics": _go_null(rng, metrics),
        "plan_ids": _go_null(rng, plan_ids),
        "plan_version_ids": _go_null(rng, version_ids),
        "rules": _go_null(rng, _override_rules(catalog, rng, company_id)),
        "subscription": _subscription(rng, company_id),
        "traits": make_traits(catalog, rng, "company"),
    }
    if not entitlements:
        del record["entitlements"]
    return record


def make_company(catalog: Catalog, index: int, revision: int = 0) -> Record:
    """Build company ``index``; a revision keeps its id and keys and changes the rest."""
    rng = seeded_random(catalog.seed, "company", index, revision)
    company_id = catalog.entity_id("comp", index)
    return company_content(catalog, rng, company_id, _keys(catalog, "company", index))


def user_content(
    catalog: Catalog, rng: random.Random, user_id: str, keys: dict[str, str]
) -> Record:
    """Build a user record for a given id and keys, its traits generated."""
    return {
        "id": user_id,
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "keys": keys,
        "traits": make_traits(catalog, rng, "user"),
        "rules": _go_null(rng, []),
    }


def make_user(catalog: Catalog, index: int, revision: int = 0) -> Record:
    """Build user ``index``; a revision keeps its id and keys and changes its traits."""
    rng = seeded_random(catalog.seed, "user", index, revision)
    user_id = catalog.entity_id("user", index)
    return user_content(catalog, rng, user_id, _keys(catalog, "user", index))


def make_burst_company(catalog: Catalog, index: int) -> Record:
    """Build company ``index`` with exactly three keys and a fixed, benchmark-sized content.

    The encoded record is about 1.45 KB and its change message about 1.6 KB: three keys,
    two traits, two metrics, one numeric entitlement and a subscription.
    """
    rng = seeded_random(catalog.seed, "burst", index)
    company_id = catalog.entity_id("comp", index)
    keys = {name: company_key_value(catalog, name, index) for name in COMPANY_KEY_NAMES[:3]}
    metrics = [
        make_metric(catalog, rng, company_id, subtype, period, "first_of_month")
        for subtype, period in zip(EVENT_SUBTYPES[:2], METRIC_PERIODS[2:], strict=True)
    ]
    return {
        "id": company_id,
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "base_plan_id": catalog.plan_ids[2],
        "billing_product_ids": list(catalog.billing_product_ids[:2]),
        "credit_balances": {catalog.credit_ids[0]: 1200},
        "entitlements": [
            {
                "feature_id": catalog.feature_ids[0],
                "feature_key": FEATURE_KEYS[0],
                "value_type": "numeric",
                "allocation": 100_000,
                "usage": metrics[0]["value"],
                "event_name": metrics[0]["event_subtype"],
                "metric_period": metrics[0]["period"],
                "month_reset": "first_of_month",
            }
        ],
        "keys": keys,
        "metrics": metrics,
        "plan_ids": [catalog.plan_ids[2]],
        "plan_version_ids": [catalog.plan_version_ids[2][0]],
        "rules": [],
        "subscription": {
            "id": f"sub_{company_id[5:]}",
            "period_start": "2026-07-01T00:00:00Z",
            "period_end": "2026-08-01T00:00:00Z",
        },
        "traits": [
            {"trait_definition": catalog.trait_definition("company", p), "value": value}
            for p, value in enumerate(("Enterprise", "120"))
        ],
    }
