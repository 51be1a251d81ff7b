"""Clients and reference conversions for the simulator's tests.

``company_from_item`` and ``user_from_item`` implement the REST-to-rules-engine mapping
independently of the simulator, so a round trip through them checks the simulator's
REST items against its own API projection.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
import websocket

from replicator.simulator import Simulator, SimulatorConfig

API_KEY = "sim-key"
WAIT_S = 10.0

Record = dict[str, Any]


def wait_until(
    predicate: Callable[[], Any], timeout_s: float = WAIT_S, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns a true value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout_s}s waiting for {what}.")
        time.sleep(0.01)


@contextmanager
def running(**settings: Any) -> Iterator[Simulator]:
    """Run a simulator on a free loopback port for the duration of a with-block."""
    settings.setdefault("api_key", API_KEY)
    settings.setdefault("companies", 30)
    settings.setdefault("users", 30)
    settings.setdefault("flags", 20)
    simulator = Simulator(SimulatorConfig(**settings)).start()
    try:
        yield simulator
    finally:
        simulator.stop()


def ws_url(simulator: Simulator) -> str:
    return simulator.base_url.replace("http", "ws", 1) + "/datastream"


class StreamClient:
    """A websocket-client connection to the simulator's datastream."""

    def __init__(
        self,
        simulator: Simulator,
        key: str | None = API_KEY,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        headers = dict(extra_headers or {})
        if key is not None:
            headers["X-Schematic-Api-Key"] = key
        self.ws = websocket.create_connection(
            ws_url(simulator),
            header=[f"{k}: {v}" for k, v in headers.items()],
            timeout=WAIT_S,
            enable_multithread=True,
            skip_utf8_validation=True,
        )

    def request(self, entity_type: str, **extra: Any) -> None:
        data = {"action": "start", "entity_type": entity_type, **extra}
        self.ws.send(json.dumps({"data": data}) + "\n")

    def subscribe_all(self, **extra: Any) -> list[Record]:
        """Send the three requests a replicator sends and return the three replies."""
        for entity_type in ("rulesengine.Companies", "rulesengine.Users", "rulesengine.Flags"):
            self.request(entity_type, **extra)
        return [self.receive() for _ in range(3)]

    def receive_text(self) -> str:
        text = self.ws.recv()
        assert isinstance(text, str)
        return text

    def receive(self) -> Record:
        message = json.loads(self.receive_text())
        assert isinstance(message, dict)
        return message

    def receive_many(self, count: int) -> list[Record]:
        return [self.receive() for _ in range(count)]

    def receive_until(self, predicate: Callable[[Record], bool]) -> list[Record]:
        """Receive messages up to and including the first one that matches."""
        messages = []
        while True:
            message = self.receive()
            messages.append(message)
            if predicate(message):
                return messages

    def close(self) -> None:
        self.ws.close()


def rest(
    simulator: Simulator, path: str, key: str | None = API_KEY, **params: Any
) -> requests.Response:
    headers = {"X-Schematic-Api-Key": key} if key is not None else {}
    return requests.get(simulator.base_url + path, params=params, headers=headers, timeout=WAIT_S)


def stream_key(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


# Reference REST-to-rules-engine conversion.

_COMPARABLE = {
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
    "": "eq",
}
_CONDITION_FIELDS = (
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
_ENTITLEMENT_FIELDS = (
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


def _traits(item: Record) -> list[Record]:
    traits = []
    for trait in item["entity_traits"]:
        definition = trait.get("definition")
        if definition is None:
            continue
        traits.append(
            {
                "trait_definition": {
                    "id": definition["id"],
                    "comparable_type": _COMPARABLE.get(definition["trait_type"], "string"),
                    "entity_type": definition["entity_type"],
                },
                "value": trait["value"],
            }
        )
    return traits


def _time(seconds: int) -> str:
    if seconds == 0:
        return "0001-01-01T00:00:00Z"
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(condition: Record) -> Record:
    converted = {name: condition.get(name) for name in _CONDITION_FIELDS}
    operator = condition.get("operator") or ""
    converted["operator"] = _OPERATORS.get(operator, operator)
    return converted


def _rule(rule: Record) -> Record:
    converted = {
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
    converted["conditions"] = [_condition(c) for c in rule["conditions"]]
    converted["condition_groups"] = [
        {"conditions": [_condition(c) for c in g["conditions"]]} for g in rule["condition_groups"]
    ]
    return converted


def _entitlement(entitlement: Record) -> Record:
    converted = {name: entitlement.get(name) for name in _ENTITLEMENT_FIELDS}
    for name in ("allocation", "usage", "soft_limit"):
        value = converted[name]
        if value is not None:
            converted[name] = int(value)
    return converted


def company_from_item(item: Record) -> Record:
    """Convert a CompanyDetailResponseData item as the replicator's REST loader does."""
    plan = item.get("plan")
    versions = [plan["plan_version_id"]] if plan and plan.get("plan_version_id") else []
    versions += [a["plan_version_id"] for a in item["add_ons"] if a.get("plan_version_id")]
    products = [p["id"] for s in item["billing_subscriptions"] for p in s["products"]]
    subscription = item.get("billing_subscription")
    products += [p["id"] for p in (subscription or {}).get("products", [])]
    resets = ("first_of_month", "billing_cycle")
    return {
        "id": item["id"],
        "account_id": "",
        "environment_id": item["environment_id"],
        "base_plan_id": plan["id"] if plan else None,
        "billing_product_ids": list(dict.fromkeys(products)),
        "credit_balances": item.get("billing_credit_balances") or {},
        "entitlements": [_entitlement(e) for e in item["entitlements"]],
        "keys": {k["key"]: k["value"] for k in item["keys"]},
        "metrics": [
            {
                "account_id": m["account_id"],
                "environment_id": m["environment_id"],
                "company_id": m["company_id"],
                "event_subtype": m["event_subtype"],
                "period": m["period"],
                "month_reset": m["month_reset"] if m["month_reset"] in resets else "first_of_month",
                "value": m["value"],
                "created_at": m["created_at"],
                "valid_until": m["valid_until"],
            }
            for m in item["metrics"]
        ],
        "plan_ids": [p["id"] for p in item["plans"]],
        "plan_version_ids": versions,
        "rules": [
            _rule(r)
            for r in item["rules"]
            if r["rule_type"] in ("company_override", "company_override_usage_exceeded")
        ],
        "subscription": None
        if subscription is None
        else {
            "id": subscription["id"],
            "period_start": _time(subscription["period_start"]),
            "period_end": _time(subscription["period_end"]),
        },
        "traits": _traits(item),
    }


def user_from_item(item: Record) -> Record:
    """Convert a UserDetailResponseData item as the replicator's REST loader does."""
    return {
        "id": item["id"],
        "account_id": "",
        "environment_id": item["environment_id"],
        "keys": {k["key"]: k["value"] for k in item["keys"]},
        "traits": _traits(item),
        "rules": [],
    }


def without_go_nulls(value: Any) -> Any:
    """Replace ``null`` lists and maps of a generated record by empty ones, recursively.

    The SDK models reject ``"credit_balances": null``; this is the repair a replicator
    makes before it stores a record.
    """
    if isinstance(value, dict):
        repaired = {k: without_go_nulls(v) for k, v in value.items()}
        for name in (
            "billing_product_ids",
            "metrics",
            "plan_ids",
            "plan_version_ids",
            "rules",
            "traits",
            "conditions",
            "condition_groups",
            "resource_ids",
        ):
            if name in repaired and repaired[name] is None:
                repaired[name] = []
        for name in ("credit_balances", "keys"):
            if name in repaired and repaired[name] is None:
                repaired[name] = {}
        return repaired
    if isinstance(value, list):
        return [without_go_nulls(v) for v in value]
    return value


def canonical(record: Record) -> Record:
    """Return a record without Go nulls and without optional fields that are null.

    Two records that a replicator would store identically compare equal after this.
    """

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    stripped: Record = strip(without_go_nulls(record))
    stripped.setdefault("entitlements", [])
    return stripped
