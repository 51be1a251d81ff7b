"""Apply a datastream ``partial`` message to a stored company or user record.

The rules are those of the Go SDK's ``PartialCompany`` and ``PartialUser`` (schematic-go
v1.5.2 ``datastream/merge.go``), which the Go replicator uses:

- ``id``, ``account_id``, ``environment_id`` replace the stored value. ``null`` keeps it,
  because these fields are never null.
- ``base_plan_id`` and ``subscription`` replace the stored value, and ``null`` clears it.
  ``credit_postpaid`` and ``credit_spend_policies``, which Go v1.5.2 does not know yet, are
  handled the same way.
- The id lists, ``rules``, ``traits`` and ``entitlements`` replace the whole list, and
  ``null`` empties it.
- ``keys`` and ``credit_balances`` are merged entry by entry: entries are added or
  overwritten, never removed, and ``null`` changes nothing.
- ``metrics`` are upserted by ``(event_subtype, period, month_reset)``: a match is
  replaced and a new metric is appended. A single object counts as a list of one.
- Any other field is ignored.

Partials carry no refreshed entitlements, so when a company partial changes
``credit_balances`` or ``metrics`` without sending ``entitlements``, the entitlements'
``credit_remaining`` and ``usage`` are derived again from the new values.

The inputs are never mutated. The result may share nested lists and objects with them, so
the caller normalises it (which builds new containers) before changing anything.
"""

from __future__ import annotations

from typing import Any

from replicator.records import InvalidRecord

_KEPT_ON_NULL = frozenset({"id", "account_id", "environment_id"})
_CLEARED_ON_NULL = frozenset(
    {"base_plan_id", "subscription", "credit_postpaid", "credit_spend_policies"},
)
_LISTS = frozenset(
    {"billing_product_ids", "plan_ids", "plan_version_ids", "rules", "traits", "entitlements"},
)
_USER_CLEARED_ON_NULL = frozenset({"credit_spend_policies"})
_USER_LISTS = frozenset({"traits", "rules"})

MetricKey = tuple[str, str, str]


def merge_company(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with the company ``partial`` applied; raise InvalidRecord on bad types."""
    _check_object(partial, "partial", "a company partial")
    merged = dict(base)
    _replace_fields(merged, partial, _CLEARED_ON_NULL, _LISTS)

    balances = partial.get("credit_balances")
    if balances is not None:
        merged["credit_balances"] = _merge_map(base, balances, "credit_balances")
    if partial.get("keys") is not None:
        merged["keys"] = _merge_map(base, partial["keys"], "keys")

    metrics_updated = "metrics" in partial
    if metrics_updated:
        merged["metrics"] = _upsert_metrics(base.get("metrics") or [], partial["metrics"])

    needs_sync = balances is not None or metrics_updated
    if needs_sync and "entitlements" not in partial and base.get("entitlements"):
        metrics = merged["metrics"] if metrics_updated else None
        merged["entitlements"] = _sync_entitlements(base["entitlements"], balances, metrics)
    return merged


def merge_user(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with the user ``partial`` applied; raise InvalidRecord on bad types."""
    _check_object(partial, "partial", "a user partial")
    merged = dict(base)
    _replace_fields(merged, partial, _USER_CLEARED_ON_NULL, _USER_LISTS)

    if partial.get("keys") is not None:
        merged["keys"] = _merge_map(base, partial["keys"], "keys")
    return merged


def _replace_fields(
    merged: dict[str, Any],
    partial: dict[str, Any],
    cleared_on_null: frozenset[str],
    lists: frozenset[str],
) -> None:
    for name, value in partial.items():
        if name in _KEPT_ON_NULL:
            if value is not None:
                merged[name] = value
        elif name in cleared_on_null:
            merged[name] = value
        elif name in lists:
            merged[name] = [] if value is None else value


def _merge_map(base: dict[str, Any], incoming: Any, name: str) -> dict[str, Any]:
    _check_object(incoming, f"partial.{name}", "an object")
    stored = base.get(name) or {}
    _check_object(stored, f"base.{name}", "an object")
    return {**stored, **incoming}


def _check_object(value: Any, path: str, expected: str) -> None:
    if not isinstance(value, dict):
        raise InvalidRecord(path, value, expected)


# Metrics


def _upsert_metrics(stored: list[Any], incoming: Any) -> list[Any]:
    if incoming is None:
        incoming = []
    elif isinstance(incoming, dict):
        incoming = [incoming]
    elif not isinstance(incoming, list):
        raise InvalidRecord("partial.metrics", incoming, "a list of metrics or one metric")

    result = list(stored)
    positions = {_metric_key(m): i for i, m in enumerate(result) if isinstance(m, dict)}
    for index, metric in enumerate(incoming):
        if metric is None:
            continue
        _check_object(metric, f"partial.metrics[{index}]", "a metric object")

        # A later metric with the same key replaces an earlier one, so each key appears once.
        # Go v1.5.2 appends both when two new metrics in one partial share a key.
        key = _metric_key(metric)
        if key in positions:
            result[positions[key]] = metric
        else:
            positions[key] = len(result)
            result.append(metric)
    return result


def _metric_key(metric: dict[str, Any]) -> MetricKey:
    return (
        metric.get("event_subtype") or "",
        metric.get("period") or "",
        metric.get("month_reset") or "",
    )


# Derived entitlement fields


def _sync_entitlements(
    entitlements: list[Any],
    balances: dict[str, Any] | None,
    metrics: list[Any] | None,
) -> list[Any]:
    """Return copies of ``entitlements`` with ``credit_remaining`` and ``usage`` derived again.

    ``credit_remaining`` takes the incoming balance of the entitlement's ``credit_id``.
    ``usage`` takes the value of the merged metric that matches ``event_name``,
    ``metric_period`` (all_time when unset) and ``month_reset`` (first_of_month when unset).
    ``credit_total`` and ``credit_used`` come from a grant ledger the replicator does not
    see, so they stay as stored.
    """
    usage_by_key = None if metrics is None else _metric_values(metrics)
    result = []
    for entitlement in entitlements:
        if not isinstance(entitlement, dict):
            result.append(entitlement)
            continue

        updated = dict(entitlement)
        credit_id = entitlement.get("credit_id")
        if balances is not None and credit_id is not None and credit_id in balances:
            updated["credit_remaining"] = balances[credit_id]

        key = _entitlement_metric_key(entitlement)
        if usage_by_key is not None and key is not None and key in usage_by_key:
            updated["usage"] = usage_by_key[key]
        result.append(updated)
    return result


def _metric_values(metrics: list[Any]) -> dict[MetricKey, Any]:
    values = {}
    for metric in metrics:
        if isinstance(metric, dict):
            value = metric.get("value")
            values[_metric_key(metric)] = 0 if value is None else value
    return values


def _entitlement_metric_key(entitlement: dict[str, Any]) -> MetricKey | None:
    event_name = entitlement.get("event_name")
    if event_name is None:
        return None

    period = entitlement.get("metric_period")
    month_reset = entitlement.get("month_reset")
    return (
        event_name,
        "all_time" if period is None else period,
        "first_of_month" if month_reset is None else month_reset,
    )
