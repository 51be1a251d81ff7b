"""Pre-encoded parts of the REST items of one seed's generated companies and users.

Every part that depends only on the catalog is encoded once here, by the same builders
that :mod:`api_shapes` uses for a whole item, with slots (see :mod:`json_templates`)
where an entity's values go. Only the top-level item objects are written out here,
because their builders also compute the values that fill them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson

from replicator.simulator.api_shapes import (
    key_items,
    metric_items,
    plan_view,
    product_view,
    rule_items,
    subscription_view,
    trait_items,
)
from replicator.simulator.catalog import (
    COMPANY_KEY_NAMES,
    COMPANY_TRAITS,
    EVENT_SUBTYPES,
    METRIC_PERIODS,
    MONTH_RESETS,
    OVERRIDE_RULE_TYPES,
    USER_KEY_NAMES,
    USER_TRAITS,
    Catalog,
)
from replicator.simulator.entities import PERIOD_WINDOWS
from replicator.simulator.json_templates import Template, compile_template, json_slot, text_slot
from replicator.simulator.rules import blank_condition
from replicator.simulator.times import to_unix_seconds

_FLAG_POOL = 50
_MAX_TRAITS = 5
_CREATED4 = ("created",) * 4

Record = dict[str, Any]


def _encode(value: object) -> str:
    return orjson.dumps(value).decode()


_COMPANY_SLOTS = (
    "id",
    "name",
    "created",
    "updated",
    "user_count",
    "keys",
    "entity_traits",
    "traits",
    "plan",
    "add_ons",
    "plans",
    "billing_subscription",
    "billing_subscriptions",
    "balances",
    "metrics",
    "rules",
    "entitlements",
)
_USER_SLOTS = ("id", "name", "created", "updated", "keys", "entity_traits", "traits")


def _company_head(catalog: Catalog) -> Template:
    value: Record = {
        "id": text_slot("id"),
        "name": text_slot("name"),
        "environment_id": catalog.environment_id,
        "created_at": text_slot("created"),
        "updated_at": text_slot("updated"),
        "last_seen_at": None,
        "logo_url": None,
        "user_count": json_slot("user_count"),
        "keys": json_slot("keys"),
        "entity_traits": json_slot("entity_traits"),
        "traits": json_slot("traits"),
        "plan": json_slot("plan"),
        "add_ons": json_slot("add_ons"),
        "plans": json_slot("plans"),
        "billing_subscription": json_slot("billing_subscription"),
        "billing_subscriptions": json_slot("billing_subscriptions"),
        "billing_credit_balances": json_slot("balances"),
        "custom_plan_billings": [],
        "payment_methods": [],
        "metrics": json_slot("metrics"),
        "rules": json_slot("rules"),
        "entitlements": json_slot("entitlements"),
    }
    return compile_template(value, _COMPANY_SLOTS)


def _user_head(catalog: Catalog) -> Template:
    value: Record = {
        "id": text_slot("id"),
        "name": text_slot("name"),
        "environment_id": catalog.environment_id,
        "created_at": text_slot("created"),
        "updated_at": text_slot("updated"),
        "last_seen_at": None,
        "keys": json_slot("keys"),
        "entity_traits": json_slot("entity_traits"),
        "traits": json_slot("traits"),
        "company_memberships": [],
    }
    return compile_template(value, _USER_SLOTS)


def _key_item(catalog: Catalog, kind: str, name: str) -> Template:
    keys = {name: text_slot("value")}
    entry = key_items(text_slot("id"), kind, catalog.environment_id, keys, text_slot("created"))
    return compile_template(entry[0], ("id", "value", "id", *_CREATED4))


def _trait_item(catalog: Catalog, kind: str, table_position: int, position: int) -> Template:
    """Encode the entry of trait definition ``table_position`` at ``position`` in the list."""
    trait = {
        "trait_definition": catalog.trait_definition(kind, table_position),
        "value": text_slot("value"),
    }
    traits = [{"trait_definition": None}] * position + [trait]
    entries = trait_items(text_slot("id"), catalog.environment_id, traits, text_slot("created"))
    return compile_template(entries[-1], ("id", "value", *_CREATED4))


def _trait_member(catalog: Catalog, kind: str, table_position: int) -> Template:
    """Encode one member of the ``traits`` object: the definition id and a value slot."""
    definition_id = catalog.trait_definition(kind, table_position)["id"]
    before, after = compile_template({definition_id: text_slot("value")}, ("value",))
    return before[1:], after[:-1]  # without the braces of the object


def _metric_item(catalog: Catalog, subtype: str, period: str, reset: str) -> Template:
    created_at, valid_until = PERIOD_WINDOWS[period]
    metric = {
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "company_id": text_slot("company_id"),
        "event_subtype": subtype,
        "period": period,
        "month_reset": reset,
        "value": json_slot("value"),
        "created_at": created_at,
        "valid_until": valid_until,
    }
    return compile_template(metric_items({"metrics": [metric]})[0], ("company_id", "value"))


def _override_condition(catalog: Catalog, position: int) -> tuple[Record, tuple[str, ...]]:
    condition_id = f"cond_{text_slot('suffix')}o{position}"
    if position == 0:
        condition = blank_condition(catalog, condition_id, "company")
        condition["resource_ids"] = [text_slot("company_id")]
        return condition, ("company_id",)
    condition = blank_condition(catalog, condition_id, "metric")
    condition.update(
        operator="gte",
        event_subtype=text_slot("event_subtype"),
        metric_value=json_slot("metric_value"),
        metric_period=text_slot("metric_period"),
        metric_period_month_reset=json_slot("month_reset"),
    )
    return condition, ("event_subtype", "metric_value", "metric_period", "month_reset")


def _override_rule(catalog: Catalog, position: int) -> Template:
    """Encode override rule ``position``: 0 matches the company itself, 1 a metric."""
    condition, condition_slots = _override_condition(catalog, position)
    rule = {
        "id": f"rule_{text_slot('suffix')}o{position}",
        "flag_id": text_slot("flag_id"),
        "account_id": catalog.account_id,
        "environment_id": catalog.environment_id,
        "rule_type": OVERRIDE_RULE_TYPES[position],
        "name": f"Override {position}",
        "priority": position + 1,
        "conditions": [condition],
        "condition_groups": [],
        "value": json_slot("value"),
    }
    slots = ("suffix", "flag_id", "value", "suffix", *condition_slots)
    return compile_template(rule_items({"rules": [rule]})[0], slots)


def _subscription_periods() -> tuple[tuple[int, int], ...]:
    """Return the unix-seconds period of a subscription starting in each month of 2026."""
    starts = [f"2026-{month:02d}-01T00:00:00Z" for month in range(1, 13)]
    ends = [*starts[1:], "2027-01-01T00:00:00Z"]
    return tuple(
        (to_unix_seconds(s), to_unix_seconds(e)) for s, e in zip(starts, ends, strict=True)
    )


def _subscription(catalog: Catalog) -> Template:
    view = subscription_view(
        text_slot("company_id"),
        text_slot("id"),
        json_slot("period_start"),
        json_slot("period_end"),
        json_slot("products"),
        json_slot("total_price"),
        text_slot("created"),
    )
    slots = ("id", "company_id", "company_id", "period_start", "period_end", "products", "id")
    return compile_template(view, (*slots, "total_price", "created"))


def _plan_entry(plan_id: str) -> str:
    return _encode({"id": plan_id, "name": plan_id.replace("_", " ").title()})


@dataclass(frozen=True)
class ItemTemplates:
    """Encoded parts of one catalog's items. The comments list the slots of each template."""

    catalog: Catalog
    company_head: Template
    user_head: Template
    #: (kind, key name): id, value, id, created x4.
    key_items: dict[tuple[str, str], Template]
    #: kind -> [trait table position][list position]: id, value, created x4.
    trait_items: dict[str, tuple[tuple[Template, ...], ...]]
    #: kind -> [trait table position]: value.
    trait_members: dict[str, tuple[Template, ...]]
    #: [plan][version] and [add-on]: complete ``plan`` and ``add_ons`` entries.
    plan_views: tuple[tuple[str, ...], ...]
    add_on_views: tuple[str, ...]
    #: [plan] and [add-on]: complete ``plans`` entries.
    plan_entries: tuple[str, ...]
    add_on_entries: tuple[str, ...]
    #: [billing product]: subscription id.
    products: tuple[Template, ...]
    #: id, company id x2, period start, period end, products, id, total price, created.
    subscription: Template
    #: [month - 1]: (period start, period end) in unix seconds.
    subscription_periods: tuple[tuple[int, int], ...]
    #: (event subtype, period, month reset): company id, value.
    metrics: dict[tuple[str, str, str], Template]
    #: [position]: see _override_rule().
    override_rules: tuple[Template, Template]
    flag_ids: tuple[str, ...]


def build_templates(catalog: Catalog) -> ItemTemplates:
    """Encode every catalog-wide part of the REST items of generated entities."""
    kinds = (("company", COMPANY_KEY_NAMES, COMPANY_TRAITS), ("user", USER_KEY_NAMES, USER_TRAITS))
    combos = itertools.product(EVENT_SUBTYPES, METRIC_PERIODS, MONTH_RESETS)
    return ItemTemplates(
        catalog=catalog,
        company_head=_company_head(catalog),
        user_head=_user_head(catalog),
        key_items={
            (kind, name): _key_item(catalog, kind, name)
            for kind, names, _ in kinds
            for name in names
        },
        trait_items={
            kind: tuple(
                tuple(_trait_item(catalog, kind, p, i) for i in range(_MAX_TRAITS))
                for p in range(len(table))
            )
            for kind, _, table in kinds
        },
        trait_members={
            kind: tuple(_trait_member(catalog, kind, p) for p in range(len(table)))
            for kind, _, table in kinds
        },
        plan_views=tuple(
            tuple(_encode(plan_view(plan_id, v)) for v in versions)
            for plan_id, versions in zip(catalog.plan_ids, catalog.plan_version_ids, strict=True)
        ),
        add_on_views=tuple(
            _encode(plan_view(a, v))
            for a, v in zip(catalog.add_on_ids, catalog.add_on_version_ids, strict=True)
        ),
        plan_entries=tuple(_plan_entry(p) for p in catalog.plan_ids),
        add_on_entries=tuple(_plan_entry(a) for a in catalog.add_on_ids),
        products=tuple(
            compile_template(product_view(p, text_slot("id"), catalog.environment_id), ("id",))
            for p in catalog.billing_product_ids
        ),
        subscription=_subscription(catalog),
        subscription_periods=_subscription_periods(),
        metrics={combo: _metric_item(catalog, *combo) for combo in combos},
        override_rules=(_override_rule(catalog, 0), _override_rule(catalog, 1)),
        flag_ids=tuple(catalog.entity_id("flag", i) for i in range(_FLAG_POOL)),
    )
