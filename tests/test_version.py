"""Tests for replicator.version: the cache version derived from the record schema."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from replicator import schema
from replicator.schema import Field
from replicator.version import canonical_schema, effective_version, schema_version, version_of

ROOT = Path(__file__).resolve().parent.parent

# Update this value only together with a deliberate change of the written shape.
PINNED_VERSION = "d62bdf12"

Records = dict[str, tuple[Field, ...]]


def copy_records() -> Records:
    return {name: tuple(fields) for name, fields in schema.RECORDS.items()}


def replace_field(records: Records, record: str, field_name: str, **changes: object) -> Records:
    result = dict(records)
    result[record] = tuple(
        dataclasses.replace(f, **changes) if f.name == field_name else f  # type: ignore[arg-type]
        for f in records[record]
    )
    return result


def version(records: Records) -> str:
    return version_of(records, schema.ROOTS)


def test_schema_version_format() -> None:
    value = schema_version()
    assert re.fullmatch(r"[0-9a-f]{8}", value)
    assert value == schema_version()


def test_schema_version_pinned() -> None:
    assert schema_version() == PINNED_VERSION


def test_schema_version_other_processes() -> None:
    code = "from replicator.version import schema_version; print(schema_version())"
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert result.stdout.strip() == PINNED_VERSION


def test_version_changes_with_kind() -> None:
    changed = replace_field(copy_records(), "CompanyMetric", "value", type=schema.FLOAT_TYPE)
    assert version(changed) != PINNED_VERSION


def test_version_changes_with_name() -> None:
    changed = replace_field(copy_records(), "WarningTier", "key", name="label")
    assert version(changed) != PINNED_VERSION


def test_version_changes_with_order() -> None:
    records = copy_records()
    first, second, *rest = records["Subscription"]
    records["Subscription"] = (second, first, *rest)
    assert version(records) != PINNED_VERSION


def test_version_changes_with_flags() -> None:
    nullable = replace_field(copy_records(), "Company", "entitlements", nullable=True)
    not_required = replace_field(copy_records(), "Rule", "name", required=False)
    assert version(nullable) != PINNED_VERSION
    assert version(not_required) != PINNED_VERSION
    assert version(nullable) != version(not_required)


def test_version_changes_with_nested_type() -> None:
    records = copy_records()
    records["CreditSpendWindow"] = (
        *records["CreditSpendWindow"],
        schema.optional("anchor", schema.DATETIME_TYPE),
    )
    assert version(records) != PINNED_VERSION


def test_version_changes_with_element() -> None:
    changed = replace_field(
        copy_records(), "Company", "plan_ids", type=schema.list_of(schema.INT64_TYPE)
    )
    assert version(changed) != PINNED_VERSION


def test_version_ignores_unrelated_changes() -> None:
    reordered = dict(reversed(list(copy_records().items())))
    assert version(reordered) == PINNED_VERSION

    enums = replace_field(copy_records(), "Condition", "operator", type=schema.enum_of("eq"))
    assert version(enums) == PINNED_VERSION

    renamed = copy_records()
    renamed["Window"] = renamed.pop("CreditSpendWindow")
    renamed = replace_field(renamed, "CreditSpendPolicy", "window", type=schema.object_of("Window"))
    assert version(renamed) == PINNED_VERSION


def test_canonical_schema_ascii_json() -> None:
    raw = canonical_schema(schema.RECORDS, schema.ROOTS)
    assert raw.isascii()
    assert b" " not in raw
    assert b'["id","string",true,false]' in raw


@pytest.mark.parametrize("override", ["v1", "ad96bec2", "A.b_C-9", "x" * 64, "1"])
def test_effective_version_override(override: str) -> None:
    assert effective_version(override) == override


def test_effective_version_default() -> None:
    assert effective_version(None) == schema_version()


@pytest.mark.parametrize("override", ["", "x" * 65, "a:b", "a b", "ver*", "é", "v1\n"])
def test_effective_version_invalid(override: str) -> None:
    with pytest.raises(ValueError) as caught:
        effective_version(override)
    assert repr(override) in str(caught.value)
    assert "1 to 64 characters" in str(caught.value)
