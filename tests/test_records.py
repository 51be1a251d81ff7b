"""Tests for replicator.records and replicator.schema.

The proof is the published Python SDK. Every normalised record, once encoded and decoded,
validates with the SDK's pydantic models exactly as stored, without the SDK's own repair
of null lists. The SDK also reads stored records back from a real redis-server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import typing
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic
import pytest
import redis
import redis.asyncio as aioredis
import schematic.types as sdk
from schematic.cache import RedisCache
from schematic.datastream.datastream_client import DataStreamClient, DataStreamClientOptions

from replicator import keys, schema
from replicator.records import (
    InvalidRecord,
    encode,
    normalize_company,
    normalize_flag,
    normalize_user,
)
from tests.servers import RedisServer

VERSION = "ad96bec2"
NORMALIZERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    schema.FLAG: normalize_flag,
    schema.COMPANY: normalize_company,
    schema.USER: normalize_user,
}

# Records as the Go replicator writes them (rulesengine v0.1.19, Go 1.26.5).
GO_FLAG = (
    b'{"id":"flag_01HZXA","account_id":"acct_01HZX0","environment_id":"env_01HZX0",'
    b'"key":"Premium-Reports","rules":[{"id":"rule_01HZXB","flag_id":"flag_01HZXA",'
    b'"account_id":"acct_01HZX0","environment_id":"env_01HZX0","rule_type":"plan_entitlement",'
    b'"name":"Pro plan","priority":1,"conditions":[{"id":"cond_01HZXC","account_id":"acct_01HZX0",'
    b'"environment_id":"env_01HZX0","condition_type":"plan","operator":"eq",'
    b'"resource_ids":["plan_pro"],"event_subtype":null,"metric_value":null,"metric_period":null,'
    b'"metric_period_month_reset":null,"credit_id":null,"consumption_rate":null,'
    b'"trait_definition":null,"trait_value":"","comparison_trait_definition":null}],'
    b'"condition_groups":[],"value":true}],"default_value":false}'
)
GO_COMPANY = (
    b'{"id":"comp_01HZXD","account_id":"acct_01HZX0","environment_id":"env_01HZX0",'
    b'"base_plan_id":"plan_pro","billing_product_ids":[],"credit_balances":{},'
    b'"keys":{"domain":"Acme.com","external_id":"ACME-42"},"metrics":[{"account_id":"acct_01HZX0",'
    b'"environment_id":"env_01HZX0","company_id":"comp_01HZXD","event_subtype":"report_generated",'
    b'"period":"current_month","month_reset":"first_of_month","value":7,'
    b'"created_at":"2026-07-01T12:00:00Z","valid_until":null}],"plan_ids":["plan_pro"],'
    b'"plan_version_ids":[],"rules":[],"subscription":null,"traits":[]}'
)
GO_USER = (
    b'{"id":"user_01HZXE","account_id":"acct_01HZX0","environment_id":"env_01HZX0",'
    b'"keys":{"email":"Jane@Acme.com"},"traits":[],"rules":[]}'
)


def sdk_model(record: str) -> type[pydantic.BaseModel]:
    model: type[pydantic.BaseModel] = getattr(sdk, "Rulesengine" + record)
    return model


def stored(record: str, data: Any) -> dict[str, Any]:
    """Normalise and encode ``data``, then decode it as an SDK would read it from Redis."""
    decoded: dict[str, Any] = json.loads(encode(NORMALIZERS[record](data)))
    return decoded


def validate(record: str, data: Any) -> dict[str, Any]:
    """Return the stored form of ``data`` after checking it against the SDK model."""
    value = stored(record, data)
    sdk_model(record).model_validate(value)
    assert_schema_shape(record, value, record)
    return value


def assert_schema_shape(record: str, value: dict[str, Any], path: str) -> None:
    """Check field order and JSON types that the SDK's lax validation does not check."""
    fields = schema.RECORDS[record]
    assert list(value) == [field.name for field in fields], path
    for field in fields:
        item = value[field.name]
        if item is None:
            assert field.nullable, f"{path}.{field.name}"
        else:
            assert_type_shape(field.type, item, f"{path}.{field.name}")


def assert_type_shape(field_type: schema.FieldType, value: Any, path: str) -> None:
    kind = field_type.kind
    if kind == schema.INT64:
        assert type(value) is int, path
    elif kind == schema.FLOAT:
        assert type(value) in (int, float), path
    elif kind == schema.BOOL:
        assert type(value) is bool, path
    elif kind in (schema.STRING, schema.ENUM, schema.DATETIME):
        assert type(value) is str, path
    elif kind == schema.LIST:
        assert type(value) is list, path
        for index, item in enumerate(value):
            assert field_type.element is not None
            assert_type_shape(field_type.element, item, f"{path}[{index}]")
    elif kind == schema.MAP:
        assert type(value) is dict, path
        assert list(value) == sorted(value), path
        for key, item in value.items():
            assert field_type.element is not None
            assert_type_shape(field_type.element, item, f"{path}[{key!r}]")
    else:
        assert field_type.record is not None
        assert_schema_shape(field_type.record, value, path)


def assert_kept(record: str, source: dict[str, Any], result: dict[str, Any]) -> None:
    """Check that every known, non-null field of ``source`` kept its value in ``result``."""
    for field in schema.RECORDS[record]:
        value = source.get(field.name)
        if value is not None:
            assert_value_kept(field.type, value, result[field.name])


def assert_value_kept(field_type: schema.FieldType, source: Any, result: Any) -> None:
    if field_type.kind == schema.OBJECT:
        assert field_type.record is not None
        assert_kept(field_type.record, source, result)
    elif field_type.kind == schema.LIST:
        assert field_type.element is not None
        items = [item for item in source if item is not None]
        assert len(result) == len(items)
        for item, out in zip(items, result, strict=True):
            assert_value_kept(field_type.element, item, out)
    elif field_type.kind == schema.MAP:
        assert field_type.element is not None
        entries = {key: item for key, item in source.items() if item is not None}
        assert set(result) == set(entries)
        for key, item in entries.items():
            assert_value_kept(field_type.element, item, result[key])
    else:
        assert result == source


# Schema against the SDK models


def annotation_kind(annotation: Any) -> tuple[str, Any, bool]:
    """Return (schema kind, detail, accepts None) for an SDK field annotation."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union:
        accepts_none = type(None) in args
        literals = [a for a in args if typing.get_origin(a) is typing.Literal]
        if literals:
            return schema.ENUM, set(typing.get_args(literals[0])), accepts_none
        others = [a for a in args if a is not type(None)]
        kind, detail, _ = annotation_kind(others[0])
        return kind, detail, accepts_none

    origin = typing.get_origin(annotation)
    if origin is list:
        return schema.LIST, args[0], False
    if origin is dict:
        return schema.MAP, args[1], False
    scalars = {
        str: schema.STRING,
        int: schema.INT64,
        float: schema.FLOAT,
        bool: schema.BOOL,
        datetime: schema.DATETIME,
    }
    if annotation in scalars:
        return scalars[annotation], None, False
    return schema.OBJECT, annotation.__name__, False


def assert_type_matches(field_type: schema.FieldType, annotation: Any, path: str) -> None:
    kind, detail, _ = annotation_kind(annotation)
    assert kind == field_type.kind, path
    if kind == schema.ENUM:
        assert detail == set(field_type.values), path
    elif kind == schema.OBJECT:
        assert detail == "Rulesengine" + str(field_type.record), path
    elif kind in (schema.LIST, schema.MAP):
        assert field_type.element is not None
        assert_type_matches(field_type.element, detail, path + "[]")


def test_schema_matches_sdk_models() -> None:
    for record, fields in schema.RECORDS.items():
        model_fields = sdk_model(record).model_fields
        assert {f.name for f in fields} == set(model_fields), record
        for field in fields:
            info = model_fields[field.name]
            path = f"{record}.{field.name}"
            assert field.required == info.is_required(), path
            if field.nullable:
                assert annotation_kind(info.annotation)[2], path
            assert_type_matches(field.type, info.annotation, path)


def test_schema_go_field_order() -> None:
    assert schema.field_names("Company")[:14] == (
        "id",
        "account_id",
        "environment_id",
        "base_plan_id",
        "billing_product_ids",
        "credit_balances",
        "entitlements",
        "keys",
        "metrics",
        "plan_ids",
        "plan_version_ids",
        "rules",
        "subscription",
        "traits",
    )
    assert schema.field_names("Company")[14:] == ("credit_postpaid", "credit_spend_policies")
    assert schema.field_names("Rule") == (
        "id",
        "flag_id",
        "account_id",
        "environment_id",
        "rule_type",
        "name",
        "priority",
        "conditions",
        "condition_groups",
        "value",
    )
    assert schema.field_names("User") == (
        "id",
        "account_id",
        "environment_id",
        "keys",
        "traits",
        "rules",
        "credit_spend_policies",
    )


# Records written by the Go replicator


def without(value: Any, names: set[str]) -> Any:
    """Return ``value`` with the fields ``names`` removed at every level."""
    if isinstance(value, dict):
        return {k: without(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [without(v, names) for v in value]
    return value


@pytest.mark.parametrize(
    ("record", "go_bytes", "added"),
    [
        (schema.FLAG, GO_FLAG, {"quantity_rates"}),
        (schema.COMPANY, GO_COMPANY, {"entitlements", "credit_postpaid", "credit_spend_policies"}),
        (schema.USER, GO_USER, {"credit_spend_policies"}),
    ],
)
def test_normalize_go_records_same_bytes(record: str, go_bytes: bytes, added: set[str]) -> None:
    normalized = NORMALIZERS[record](json.loads(go_bytes))
    assert encode(without(normalized, added)) == go_bytes
    sdk_model(record).model_validate(json.loads(encode(normalized)))


def test_normalize_company_go_nulls() -> None:
    data = {
        "id": "comp_1",
        "account_id": None,
        "environment_id": None,
        "base_plan_id": None,
        "billing_product_ids": None,
        "credit_balances": None,
        "entitlements": None,
        "keys": None,
        "metrics": None,
        "plan_ids": None,
        "plan_version_ids": None,
        "rules": None,
        "subscription": None,
        "traits": None,
    }
    value = validate(schema.COMPANY, data)
    assert value["credit_balances"] == {}
    assert value["keys"] == {}
    assert value["entitlements"] == []
    assert value["metrics"] == []
    assert value["account_id"] == ""
    assert value["base_plan_id"] is None
    assert value["subscription"] is None
    assert value["credit_postpaid"] is None


def test_normalize_company_only_id() -> None:
    value = validate(schema.COMPANY, {"id": "comp_1"})
    assert value["id"] == "comp_1"
    assert value["rules"] == []
    assert value["credit_spend_policies"] is None


def test_normalize_nested_nulls() -> None:
    data = {
        "id": "comp_1",
        "rules": [
            None,
            {
                "id": "r1",
                "conditions": None,
                "condition_groups": [{"conditions": None}],
                "priority": None,
                "value": None,
                "flag_id": None,
            },
        ],
        "traits": [{"trait_definition": None, "value": None}],
        "metrics": [{"event_subtype": "e", "value": None, "created_at": None}],
        "subscription": {"id": None, "period_start": None, "period_end": None},
        "entitlements": [{"feature_id": "f", "warning_tiers": None, "quantity_rates": None}],
    }
    value = validate(schema.COMPANY, data)
    rule = value["rules"][0]
    assert len(value["rules"]) == 1
    assert rule["conditions"] == []
    assert rule["condition_groups"] == [{"conditions": []}]
    assert rule["priority"] == 0
    assert rule["value"] is False
    assert rule["flag_id"] is None
    assert value["traits"] == [{"trait_definition": None, "value": ""}]
    assert value["metrics"][0]["created_at"] == schema.ZERO_TIME
    assert value["subscription"]["period_end"] == schema.ZERO_TIME
    assert value["entitlements"][0]["warning_tiers"] is None


def test_normalize_unknown_fields_dropped() -> None:
    plain: dict[str, Any] = {
        "id": "user_1",
        "keys": {"email": "a@b.c"},
        "traits": [
            {
                "value": "x",
                "trait_definition": {"id": "t", "comparable_type": "int", "entity_type": "user"},
            }
        ],
    }
    noisy = {
        **plain,
        "extra": {"deep": [1]},
        "mu": None,
        "traits": [
            {
                **plain["traits"][0],
                "color": "red",
                "trait_definition": {**plain["traits"][0]["trait_definition"], "x": 1},
            }
        ],
    }
    assert encode(normalize_user(noisy)) == encode(normalize_user(plain))
    assert "extra" not in validate(schema.USER, noisy)


def test_normalize_integral_floats_to_ints() -> None:
    data = {
        "id": "comp_1",
        "metrics": [{"value": 7.0, "created_at": "2026-07-01T12:00:00Z"}],
        "entitlements": [
            {
                "feature_id": "f",
                "allocation": 10.0,
                "usage": 3.0,
                "soft_limit": -1.0,
                "warning_tiers": [{"key": "w", "value": 80.0}],
            }
        ],
        "rules": [{"id": "r", "priority": 2.0, "conditions": [{"id": "c", "metric_value": 5.0}]}],
    }
    value = validate(schema.COMPANY, data)
    entitlement = value["entitlements"][0]
    assert type(value["metrics"][0]["value"]) is int
    assert entitlement["allocation"] == 10
    assert type(entitlement["usage"]) is int
    assert type(entitlement["soft_limit"]) is int
    assert type(entitlement["warning_tiers"][0]["value"]) is int
    assert type(value["rules"][0]["priority"]) is int
    assert type(value["rules"][0]["conditions"][0]["metric_value"]) is int


def test_normalize_floats_kept_as_sent() -> None:
    raw = encode(normalize_company({"id": "c", "credit_balances": {"a": 100.0, "b": 5, "c": 0.5}}))
    assert b'"credit_balances":{"a":100.0,"b":5,"c":0.5}' in raw
    model = sdk.RulesengineCompany.model_validate(json.loads(raw))
    assert model.credit_balances == {"a": 100.0, "b": 5.0, "c": 0.5}


def test_normalize_key_values() -> None:
    value = validate(schema.COMPANY, {"id": "c", "keys": {"n": 42, "s": "Acme", "gone": None}})
    assert value["keys"] == {"n": "42", "s": "Acme"}
    bad_values: list[Any] = [True, 1.5, [], {"a": 1}]
    for bad in bad_values:
        with pytest.raises(InvalidRecord, match=r"company\.keys\['k'\]"):
            normalize_company({"id": "c", "keys": {"k": bad}})


def test_normalize_maps_sorted() -> None:
    value = validate(schema.COMPANY, {"id": "c", "keys": {"b": "1", "B": "2", "a": "3"}})
    assert list(value["keys"]) == ["B", "a", "b"]


def test_normalize_credit_postpaid() -> None:
    postpaid = {"off": None, "open": {}, "capped": {"overdraft_limit": 5}}
    data = {"id": "c", "credit_postpaid": postpaid}
    value = validate(schema.COMPANY, data)
    assert value["credit_postpaid"] == {
        "capped": {"overdraft_limit": 5},
        "open": {"overdraft_limit": None},
    }


def test_normalize_credit_spend_policies() -> None:
    policy = {
        "id": "p",
        "credit_id": "cr",
        "kind": "hard",
        "limit": 10,
        "scope": "user",
        "company_id": "c",
        "resets_at": "2026-08-01T00:00:00Z",
        "window": {"count": 1.0, "unit": "month"},
    }
    company = validate(schema.COMPANY, {"id": "c", "credit_spend_policies": [policy]})
    user = validate(schema.USER, {"id": "u", "credit_spend_policies": [policy]})
    assert company["credit_spend_policies"][0]["window"] == {"count": 1, "unit": "month"}
    assert user["credit_spend_policies"][0]["label"] is None
    assert_kept(schema.USER, {"credit_spend_policies": [policy]}, user)


def test_normalize_unknown_enum_kept() -> None:
    data = {
        "id": "f",
        "key": "k",
        "rules": [{"rule_type": "future_type", "conditions": [{"operator": "matches"}]}],
    }
    value = validate(schema.FLAG, data)
    assert value["rules"][0]["rule_type"] == "future_type"
    assert value["rules"][0]["conditions"][0]["operator"] == "matches"


@pytest.mark.parametrize(
    "text",
    [
        "2026-07-01T12:00:00Z",
        "2026-07-01T12:00:00.5Z",
        "2026-07-01T12:00:00.123456789Z",
        "2026-07-01T12:00:00+02:00",
        "2026-07-01T12:00:00.000001-05:30",
        "0001-01-01T00:00:00Z",
        "2028-02-29T23:59:59+23:59",
    ],
)
def test_normalize_datetime_unchanged(text: str) -> None:
    data = {"id": "c", "subscription": {"id": "s", "period_start": text, "period_end": text}}
    value = validate(schema.COMPANY, data)
    assert value["subscription"]["period_start"] == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-07-01",
        "2026-07-01T12:00:00",
        "2026-07-01 12:00:00Z",
        "2026-07-01t12:00:00z",
        "2026-07-01T12:00Z",
        "2026-13-01T12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-07-01T24:00:00Z",
        "2026-07-01T23:59:60Z",
        "2026-07-01T12:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "2026-07-01T12:00:00.Z",
        "٢٠٢٦-07-01T12:00:00Z",
        "",
    ],
)
def test_normalize_datetime_invalid(text: str) -> None:
    data = {"id": "c", "metrics": [{"created_at": text}]}
    with pytest.raises(InvalidRecord, match=r"company\.metrics\[0\]\.created_at") as caught:
        normalize_company(data)
    assert "RFC 3339" in str(caught.value)


@pytest.mark.parametrize(
    ("record", "data", "path"),
    [
        (schema.COMPANY, {}, "company.id"),
        (schema.COMPANY, {"id": ""}, "company.id"),
        (schema.COMPANY, {"id": 5}, "company.id"),
        (schema.COMPANY, [], "company"),
        (schema.FLAG, {"id": "f"}, "flag.key"),
        (schema.FLAG, {"id": "f", "key": "k", "default_value": "true"}, "flag.default_value"),
        (schema.USER, {"id": "u", "keys": ["a"]}, "user.keys"),
        (schema.COMPANY, {"id": "c", "metrics": "m"}, "company.metrics"),
        (schema.COMPANY, {"id": "c", "rules": ["r"]}, "company.rules[0]"),
        (schema.COMPANY, {"id": "c", "metrics": [{"value": 1.5}]}, "company.metrics[0].value"),
        (schema.COMPANY, {"id": "c", "metrics": [{}, {"value": True}]}, "company.metrics[1].value"),
        (schema.COMPANY, {"id": "c", "metrics": [{"value": "7"}]}, "company.metrics[0].value"),
        (schema.COMPANY, {"id": "c", "metrics": [{"value": 2**63}]}, "company.metrics[0].value"),
        (
            schema.COMPANY,
            {"id": "c", "credit_balances": {"a": "1"}},
            "company.credit_balances['a']",
        ),
        (
            schema.COMPANY,
            {"id": "c", "credit_balances": {"a": float("nan")}},
            "company.credit_balances['a']",
        ),
        (schema.COMPANY, {"id": "c", "plan_ids": [1]}, "company.plan_ids[0]"),
        (schema.COMPANY, {"id": "c", "subscription": "s"}, "company.subscription"),
        (
            schema.COMPANY,
            {"id": "c", "entitlements": [{"warning_tiers": [{"value": 0.5}]}]},
            "company.entitlements[0].warning_tiers[0].value",
        ),
        (
            schema.FLAG,
            {
                "id": "f",
                "key": "k",
                "rules": [
                    {"condition_groups": [{"conditions": [{"trait_definition": {"id": 3}}]}]}
                ],
            },
            "flag.rules[0].condition_groups[0].conditions[0].trait_definition.id",
        ),
        (
            schema.COMPANY,
            {"id": "c", "credit_postpaid": {"x": {"overdraft_limit": "big"}}},
            "company.credit_postpaid['x'].overdraft_limit",
        ),
    ],
)
def test_normalize_invalid_names_path(record: str, data: Any, path: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        NORMALIZERS[record](data)
    assert caught.value.path == path
    assert f"Invalid value at {path}: " in str(caught.value)
    assert "expected" in str(caught.value)


def test_invalid_record_shortens_value() -> None:
    with pytest.raises(InvalidRecord) as caught:
        normalize_company({"id": "c", "plan_ids": "x" * 500})
    assert len(str(caught.value)) < 200
    assert "..." in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_normalize_inputs_unchanged() -> None:
    data = {"id": "c", "keys": {"n": 1}, "metrics": [{"value": 1.0, "extra": True}]}
    snapshot = json.dumps(data)
    normalize_company(data)
    assert json.dumps(data) == snapshot


# Encoding


def test_encode_compact_utf8() -> None:
    raw = encode(normalize_user({"id": "user_é", "keys": {"name": "Zoë 企業"}}))
    assert raw.startswith(b'{"id":"user_\xc3\xa9","account_id":""')
    assert "Zoë 企業".encode() in raw
    assert b" " not in raw.replace("Zoë 企業".encode(), b"")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_normalize_rejects_non_finite(bad: float) -> None:
    # encode trusts normalised records, so this is where NaN and infinities stop.
    record = {"id": "c", "entitlements": [{"feature_id": "f", "credit_total": bad}]}
    with pytest.raises(InvalidRecord) as caught:
        normalize_company(record)
    assert caught.value.path == "company.entitlements[0].credit_total"


def test_encode_rejects_unencodable() -> None:
    with pytest.raises(InvalidRecord, match="JSON-encodable"):
        encode({"id": "c", "keys": {1: "a"}})
    with pytest.raises(InvalidRecord, match="JSON-encodable"):
        encode({"id": "c", "value": 2**70})


# Generated records


class RecordGenerator:
    """Random records of every schema type, with Go-style nulls, gaps and unknown fields."""

    TEXTS = ("", "a", "Acme.com", "ÉCOLE", "企業", "x:y", "with space", "rocket 🚀", "<&>")
    DATETIMES = (
        "2026-07-01T12:00:00Z",
        "2026-07-01T12:00:00.123Z",
        "2026-07-01T12:00:00.123456789Z",
        "2026-01-31T23:59:59+02:00",
        "1999-12-31T00:00:00-05:30",
        "0001-01-01T00:00:00Z",
    )

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def record(self, name: str, depth: int = 0) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field in schema.RECORDS[name]:
            roll = self.rng.random()
            if roll < 0.15:
                continue
            data[field.name] = None if roll < 0.3 else self.value(field.type, depth)
        if self.rng.random() < 0.3:
            data["unknown_" + self.rng.choice("abc")] = self.rng.choice([None, 1, "x", [1], {}])
        return data

    def value(self, field_type: schema.FieldType, depth: int) -> Any:
        kind = field_type.kind
        if kind == schema.LIST:
            assert field_type.element is not None
            count = 0 if depth > 2 else self.rng.randrange(4)
            return [self.value(field_type.element, depth + 1) for _ in range(count)]
        if kind == schema.MAP:
            assert field_type.element is not None
            count = self.rng.randrange(4)
            return {
                self.text() + str(i): self.value(field_type.element, depth + 1)
                for i in range(count)
            }
        if kind == schema.OBJECT:
            assert field_type.record is not None
            return self.record(field_type.record, depth + 1)
        return self.scalar(field_type)

    def scalar(self, field_type: schema.FieldType) -> Any:
        kind = field_type.kind
        if kind == schema.ENUM:
            return self.rng.choice([*field_type.values, "", "future_value"])
        if kind == schema.INT64:
            random_int = self.rng.randrange(-(2**40), 2**40)
            value = self.rng.choice([0, 1, -1, 2**63 - 1, -(2**63), random_int])
            return float(value) if abs(value) < 2**53 and self.rng.random() < 0.3 else value
        if kind == schema.FLOAT:
            random_float = self.rng.uniform(-1e6, 1e6)
            return self.rng.choice([0, 5, 100.0, 0.25, 1e-7, 1e21, -3.5, random_float])
        if kind == schema.BOOL:
            return self.rng.random() < 0.5
        if kind == schema.DATETIME:
            return self.rng.choice(self.DATETIMES)
        return self.text()

    def text(self) -> str:
        return self.rng.choice(self.TEXTS)

    def root(self, name: str) -> dict[str, Any]:
        data = self.record(name)
        data["id"] = "id_" + self.text() + str(self.rng.randrange(10**6))
        if name == schema.FLAG:
            data["key"] = "flag-" + self.text()
        return data


@pytest.mark.parametrize("record", [schema.FLAG, schema.COMPANY, schema.USER])
def test_normalize_generated_records(record: str) -> None:
    generator = RecordGenerator(seed=20260701)
    for _ in range(150):
        data = generator.root(record)
        value = validate(record, data)
        assert_kept(record, data, value)
        assert NORMALIZERS[record](value) == value


# Reading back through the Python SDK


@pytest.fixture()
def ready_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of a loopback /ready endpoint that reports VERSION."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    body = json.dumps(
        {"status": "healthy", "ready": True, "connected": True, "cache_version": VERSION}
    ).encode()

    class ReadyHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), ReadyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ready"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def store_fixture(client: redis.Redis) -> None:
    """Write the Go fixture flag, company and user as the replicator stores them."""
    flag = normalize_flag(json.loads(GO_FLAG))
    company = normalize_company(json.loads(GO_COMPANY))
    user = normalize_user(json.loads(GO_USER))
    client.set(keys.flag_key(VERSION, flag["key"]), encode(flag))
    for kind, record in ((keys.COMPANY, company), (keys.USER, user)):
        client.set(keys.record_key(kind, VERSION, record["id"]), encode(record))
        for lookup in keys.lookup_keys(kind, VERSION, record["keys"]):
            client.set(lookup, keys.lookup_value(record["id"]))


def test_sdk_reads_stored_company(redis_client: redis.Redis, redis_server: RedisServer) -> None:
    store_fixture(redis_client)

    async def read() -> tuple[Any, Any]:
        client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
        try:
            cache: RedisCache[Any] = RedisCache(client)
            company_id = await cache.get(f"company:{VERSION}:external_id:acme-42")
            raw = await cache.get(f"company:{VERSION}:{company_id}")
            return company_id, raw
        finally:
            await client.aclose()

    company_id, raw = asyncio.run(read())
    company = sdk.RulesengineCompany.model_validate(raw)
    assert company_id == "comp_01HZXD"
    assert company.keys == {"domain": "Acme.com", "external_id": "ACME-42"}
    assert company.metrics[0].value == 7
    assert company.entitlements == []


def test_sdk_checks_flag_from_redis(
    redis_client: redis.Redis, redis_server: RedisServer, ready_url: str
) -> None:
    store_fixture(redis_client)

    async def check() -> Any:
        client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
        options = DataStreamClientOptions(
            api_key="test-key",
            logger=logging.getLogger("sdk"),
            replicator_mode=True,
            replicator_health_url=ready_url,
            company_cache=RedisCache(client),
            company_lookup_cache=RedisCache(client),
            user_cache=RedisCache(client),
            user_lookup_cache=RedisCache(client),
            flag_cache=RedisCache(client),
        )
        datastream = DataStreamClient(options)
        try:
            await datastream.start()
            context = sdk.CheckFlagRequestBody(
                company={"domain": "ACME.com"}, user={"email": "JANE@acme.com"}
            )
            return await datastream.check_flag(context, "PREMIUM-REPORTS")
        finally:
            await datastream.close()
            await client.aclose()

    result = asyncio.run(check())
    assert result.value is True
    assert result.company_id == "comp_01HZXD"
    assert result.user_id == "user_01HZXE"
    assert result.rule_id == "rule_01HZXB"
