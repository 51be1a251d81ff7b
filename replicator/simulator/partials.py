"""Apply a partial change message to a company or user record.

These are the merge rules the datastream clients apply (the Go SDK's, which the original
replicator used). The simulator applies the same rules to its own truth. So a correct
client that merged every partial stores exactly the simulator's records, including the
entitlement fields that clients derive from new balances and metrics.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

_COMPANY_REPLACED = frozenset(
    {
        "id",
        "account_id",
        "environment_id",
        "base_plan_id",
        "subscription",
        "billing_product_ids",
        "plan_ids",
        "plan_version_ids",
        "rules",
        "traits",
        "entitlements",
        "credit_postpaid",
        "credit_spend_policies",
    }
)
_USER_REPLACED = frozenset(
    {
        "id",
        "account_id",
        "environment_id",
        "traits",
        "rules",
        "credit_spend_policies",
    }
)


def _metric_identity(metric: Record) -> tuple[Any, Any, Any]:
    return metric.get("event_subtype"), metric.get("period"), metric.get("month_reset")


def upsert_metrics(current: list[Record] | None, incoming: Any) -> list[Record]:
    """Replace the metrics with the same (event_subtype, period, month_reset), append others."""
    merged = list(current or [])
    items = [incoming] if isinstance(incoming, dict) else list(incoming or [])
    for item in items:
        identity = _metric_identity(item)
        for position, metric in enumerate(merged):
            if _metric_identity(metric) == identity:
                merged[position] = item
                break
        else:
            merged.append(item)
    return merged


def _find_metric(metrics: list[Record], entitlement: Record) -> Record | None:
    identity = (
        entitlement.get("event_name"),
        entitlement.get("metric_period") or "all_time",
        entitlement.get("month_reset") or "first_of_month",
    )
    for metric in metrics:
        if _metric_identity(metric) == identity:
            return metric
    return None


def _sync_entitlements(result: Record, partial: Record) -> None:
    """Derive credit_remaining and usage of entitlements from new balances and metrics."""
    balances = partial.get("credit_balances") or {}
    metrics_changed = "metrics" in partial
    synced = []
    for entitlement in result["entitlements"]:
        entitlement = dict(entitlement)
        credit_id = entitlement.get("credit_id")
        if credit_id is not None and credit_id in balances:
            entitlement["credit_remaining"] = balances[credit_id]
        if metrics_changed and entitlement.get("event_name"):
            metric = _find_metric(result.get("metrics") or [], entitlement)
            if metric is not None:
                entitlement["usage"] = metric.get("value")
        synced.append(entitlement)
    result["entitlements"] = synced


def merge_company(base: Record, partial: Record) -> Record:
    """Return a new company record: ``base`` with the partial's fields merged in."""
    result = dict(base)
    for name, value in partial.items():
        if name in _COMPANY_REPLACED:
            result[name] = value
        elif name == "keys" and value is not None:
            result["keys"] = {**(base.get("keys") or {}), **value}
        elif name == "credit_balances" and value is not None:
            result["credit_balances"] = {**(base.get("credit_balances") or {}), **value}
        elif name == "metrics":
            result["metrics"] = upsert_metrics(base.get("metrics"), value)

    touches_usage = "credit_balances" in partial or "metrics" in partial
    if touches_usage and "entitlements" not in partial and base.get("entitlements"):
        _sync_entitlements(result, partial)
    return result


def merge_user(base: Record, partial: Record) -> Record:
    """Return a new user record: ``base`` with the partial's fields merged in."""
    result = dict(base)
    for name, value in partial.items():
        if name in _USER_REPLACED:
            result[name] = value
        elif name == "keys" and value is not None:
            result["keys"] = {**(base.get("keys") or {}), **value}
    return result


def merge(kind: str, base: Record, partial: Record) -> Record:
    """Merge a partial into a record of a kind (``company`` or ``user``)."""
    if kind == "company":
        return merge_company(base, partial)
    return merge_user(base, partial)
