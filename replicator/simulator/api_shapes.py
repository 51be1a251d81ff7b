"""REST items (``CompanyDetailResponseData``, ``UserDetailResponseData``) built from records.

Each builder is the inverse of the conversion a replicator applies to REST items, so that
converting an item back yields :func:`api_projection` of the record:

- ``plan`` carries ``base_plan_id`` and the first plan version; ``add_ons`` carry the
  other plan versions (all of them when there is no base plan);
- ``billing_subscription`` carries the subscription, its periods as unix seconds and
  one product per billing product id. A company without a subscription gets its
  products in a subscription listed only in ``billing_subscriptions``;
- trait definitions carry ``trait_type`` boolean, number, date or string;
- every other field the SDK models require gets a plausible, stable value.
"""

from __future__ import annotations

from typing import Any

from replicator.simulator.projection import (
    CONDITION_FIELDS,
    ENTITLEMENT_FIELDS,
    api_projection,
    dedupe,
    metric_created_at,
    text,
)
from replicator.simulator.times import stamp, to_unix_seconds

Record = dict[str, Any]

__all__ = ["api_projection", "company_item", "item", "user_item"]

_TRAIT_TYPES = {"bool": "boolean", "int": "number", "date": "date"}
#: Monthly price of every simulated billing product, in cents.
PRICE = 4900


def key_items(
    entity_id: str, kind: str, environment_id: str, keys: Any, created: str
) -> list[Record]:
    """Build the ``keys`` entries of an entity created at ``created``."""
    items = []
    for name, value in (keys or {}).items():
        definition_id = f"ekd_{kind}_{name}"
        items.append(
            {
                "id": f"ek_{entity_id}_{name}",
                "key": name,
                "value": text(value),
                "entity_id": entity_id,
                "entity_type": kind,
                "definition_id": definition_id,
                "environment_id": environment_id,
                "created_at": created,
                "updated_at": created,
                "definition": {
                    "id": definition_id,
                    "entity_type": kind,
                    "key": name,
                    "created_at": created,
                    "updated_at": created,
                },
            }
        )
    return items


def trait_items(entity_id: str, environment_id: str, traits: Any, created: str) -> list[Record]:
    """Build the ``entity_traits`` entries of an entity created at ``created``."""
    items = []
    for position, trait in enumerate(traits or []):
        definition = trait.get("trait_definition")
        view = None
        if definition:
            view = {
                "id": definition.get("id"),
                "display_name": str(definition.get("id")),
                "entity_type": definition.get("entity_type"),
                "hierarchy": [],
                "trait_type": _TRAIT_TYPES.get(definition.get("comparable_type"), "string"),
                "created_at": created,
                "updated_at": created,
            }
        items.append(
            {
                "id": f"et_{entity_id}_{position}",
                "value": text(trait.get("value")),
                "definition_id": definition.get("id") if definition else "",
                "definition": view,
                "environment_id": environment_id,
                "created_at": created,
                "updated_at": created,
            }
        )
    return items


def product_view(product_id: str, subscription_id: str, environment_id: str) -> Record:
    """Build the subscription product of a billing product id."""
    created = stamp(product_id, "created")
    return {
        "id": product_id,
        "name": product_id.replace("_", " ").title(),
        "external_id": f"prod_ext_{product_id}",
        "environment_id": environment_id,
        "subscription_id": subscription_id,
        "billing_scheme": "per_unit",
        "currency": "usd",
        "interval": "month",
        "package_size": 1,
        "price": PRICE,
        "price_id": f"price_{product_id}",
        "price_external_id": f"price_ext_{product_id}",
        "price_tier": [],
        "provider_type": "stripe",
        "quantity": 1.0,
        "usage_type": "licensed",
        "created_at": created,
        "updated_at": created,
    }


def _subscription_view(
    company_id: str, environment_id: str, subscription: Record | None, products: list[str]
) -> Record:
    subscription = subscription or {"id": f"sub_{company_id}_billing"}
    subscription_id = text(subscription.get("id"))
    return subscription_view(
        company_id,
        subscription_id,
        to_unix_seconds(subscription.get("period_start")),
        to_unix_seconds(subscription.get("period_end")),
        [product_view(p, subscription_id, environment_id) for p in products],
        PRICE * len(products),
        stamp(company_id, "subscribed"),
    )


def subscription_view(
    company_id: str,
    subscription_id: str,
    period_start: Any,
    period_end: Any,
    products: Any,
    total_price: Any,
    created: str,
) -> Record:
    """Build a company's subscription: periods in unix seconds, products as built."""
    return {
        "id": subscription_id,
        "company_id": company_id,
        "status": "active",
        "interval": "month",
        "currency": "usd",
        "cancel_at_period_end": False,
        "customer_external_id": f"cus_ext_{company_id}",
        "discounts": [],
        "period_start": period_start,
        "period_end": period_end,
        "products": products,
        "provider_type": "stripe",
        "subscription_external_id": f"sub_ext_{subscription_id}",
        "total_price": total_price,
        "created_at": created,
    }


def plan_view(plan_id: str, version_id: str | None) -> Record:
    """Build the ``plan`` or ``add_ons`` entry of a plan and its version."""
    return {
        "id": plan_id,
        "name": plan_id.replace("_", " ").title(),
        "plan_version_id": version_id,
        "included_credit_grants": [],
        "plan_period": "month",
    }


def _plans(record: Record) -> tuple[Record | None, list[Record]]:
    versions = [v for v in record.get("plan_version_ids") or [] if v]
    plan_ids = list(record.get("plan_ids") or [])
    base_plan_id = record.get("base_plan_id")
    plan = None
    if base_plan_id is not None:
        plan = plan_view(text(base_plan_id), versions[0] if versions else None)
        versions = versions[1:]
    add_ons = [
        plan_view(plan_ids[i + 1] if i + 1 < len(plan_ids) else f"plan_addon_{i}", version)
        for i, version in enumerate(versions)
    ]
    return plan, add_ons


def metric_items(record: Record) -> list[Record]:
    """Build the ``metrics`` entries of a company record."""
    items = []
    for metric in record.get("metrics") or []:
        created_at = metric_created_at(metric)
        items.append(
            {
                "account_id": text(metric.get("account_id")),
                "environment_id": text(metric.get("environment_id")),
                "company_id": text(metric.get("company_id")),
                "event_subtype": text(metric.get("event_subtype")),
                "period": metric.get("period"),
                "month_reset": metric.get("month_reset"),
                "value": metric.get("value"),
                "created_at": created_at,
                "valid_until": metric.get("valid_until"),
                "captured_at_min": created_at,
                "captured_at_max": metric.get("valid_until") or created_at,
            }
        )
    return items


def _condition_item(condition: Record) -> Record:
    item = {name: condition.get(name) for name in CONDITION_FIELDS}
    item["resource_ids"] = list(condition.get("resource_ids") or [])
    return item


def rule_items(record: Record) -> list[Record]:
    """Build the ``rules`` entries of a company record, conditions with every field."""
    items = []
    for rule in record.get("rules") or []:
        item = {
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
        item["conditions"] = [_condition_item(c) for c in rule.get("conditions") or []]
        item["condition_groups"] = [
            {"conditions": [_condition_item(c) for c in group.get("conditions") or []]}
            for group in rule.get("condition_groups") or []
        ]
        items.append(item)
    return items


def _entitlement_items(record: Record) -> list[Record]:
    return [
        {name: entitlement[name] for name in ENTITLEMENT_FIELDS if name in entitlement}
        for entitlement in record.get("entitlements") or []
    ]


def display_name(keys: Any, fallback: str) -> str:
    """Derive an entity's name from its domain or email key, else use ``fallback``."""
    keys = keys or {}
    if "domain" in keys:
        return text(keys["domain"]).split(".")[0].replace("-", " ").title()
    if "email" in keys:
        return text(keys["email"]).split("@")[0].replace(".", " ").title()
    return fallback


def company_item(record: Record) -> Record:
    """Build the ``CompanyDetailResponseData`` JSON of a company record."""
    company_id = text(record.get("id"))
    environment_id = text(record.get("environment_id"))
    subscription = record.get("subscription")
    products = dedupe(record.get("billing_product_ids") or [])
    plan, add_ons = _plans(record)
    billing = None
    subscriptions = []
    if subscription is not None or products:
        view = _subscription_view(company_id, environment_id, subscription, products)
        subscriptions = [view]
        billing = view if subscription is not None else None
    created = stamp(company_id, "created")
    return {
        "id": company_id,
        "name": display_name(record.get("keys"), company_id),
        "environment_id": environment_id,
        "created_at": created,
        "updated_at": stamp(company_id, "updated"),
        "last_seen_at": None,
        "logo_url": None,
        "user_count": int.from_bytes(company_id.encode()[-2:], "big") % 50,
        "keys": key_items(company_id, "company", environment_id, record.get("keys"), created),
        "entity_traits": trait_items(company_id, environment_id, record.get("traits"), created),
        "traits": {
            text((t.get("trait_definition") or {}).get("id")): t.get("value")
            for t in record.get("traits") or []
        },
        "plan": plan,
        "add_ons": add_ons,
        "plans": [
            {"id": p, "name": p.replace("_", " ").title()} for p in record.get("plan_ids") or []
        ],
        "billing_subscription": billing,
        "billing_subscriptions": subscriptions,
        "billing_credit_balances": record.get("credit_balances"),
        "custom_plan_billings": [],
        "payment_methods": [],
        "metrics": metric_items(record),
        "rules": rule_items(record),
        "entitlements": _entitlement_items(record),
    }


def user_item(record: Record) -> Record:
    """Build the ``UserDetailResponseData`` JSON of a user record."""
    user_id = text(record.get("id"))
    environment_id = text(record.get("environment_id"))
    created = stamp(user_id, "created")
    return {
        "id": user_id,
        "name": display_name(record.get("keys"), user_id),
        "environment_id": environment_id,
        "created_at": created,
        "updated_at": stamp(user_id, "updated"),
        "last_seen_at": None,
        "keys": key_items(user_id, "user", environment_id, record.get("keys"), created),
        "entity_traits": trait_items(user_id, environment_id, record.get("traits"), created),
        "traits": {
            text((t.get("trait_definition") or {}).get("id")): t.get("value")
            for t in record.get("traits") or []
        },
        "company_memberships": [],
    }


def item(kind: str, record: Record) -> Record:
    """Build the REST item of a ``company`` or ``user`` record."""
    return company_item(record) if kind == "company" else user_item(record)
