"""Tests for replicator.keys: the key strings the Schematic SDKs build and read."""

from __future__ import annotations

import json

import pytest

from replicator import keys

V = "ad96bec2"


def test_flag_key_lowercased() -> None:
    assert keys.flag_key(V, "Premium-Reports") == "schematic:flags:ad96bec2:premium-reports"
    assert keys.flag_key(V, "a:B") == "schematic:flags:ad96bec2:a:b"
    with pytest.raises(ValueError, match="empty key"):
        keys.flag_key(V, "")


def test_record_key_keeps_id_case() -> None:
    assert keys.company_key(V, "comp_01HZXD") == "schematic:company:ad96bec2:comp_01HZXD"
    assert keys.user_key(V, "User_X") == "schematic:user:ad96bec2:User_X"
    assert keys.record_key("company", V, "C") == "schematic:company:ad96bec2:C"


def test_record_key_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty id"):
        keys.record_key("company", V, "")
    with pytest.raises(ValueError, match="Unknown entity kind 'flags'"):
        keys.record_key("flags", V, "x")


def test_lookup_key_lowercases_pair() -> None:
    assert (
        keys.lookup_key("company", V, "Domain", "Acme.COM")
        == "schematic:company:ad96bec2:domain:acme.com"
    )
    assert keys.lookup_key("user", V, "email", "Jane@Acme.com") == (
        "schematic:user:ad96bec2:email:jane@acme.com"
    )


def test_lookup_key_python_lower() -> None:
    # str.lower(), as the Python and Node SDKs do; Go's strings.ToLower gives "istanbul".
    assert keys.lookup_key("company", V, "city", "İstanbul").endswith(":city:i\u0307stanbul")
    assert keys.lookup_key("company", V, "name", "ΣΑΣ").endswith(":name:σας")


def test_lookup_keys_from_keys_map() -> None:
    result = keys.lookup_keys("company", V, {"domain": "Acme.com", "external_id": "ACME-42"})
    assert result == [
        "schematic:company:ad96bec2:domain:acme.com",
        "schematic:company:ad96bec2:external_id:acme-42",
    ]
    assert keys.lookup_keys("user", V, {}) == []


def test_lookup_keys_no_duplicates() -> None:
    result = keys.lookup_keys("company", V, {"Domain": "A", "domain": "a", "x": "1"})
    assert result == ["schematic:company:ad96bec2:domain:a", "schematic:company:ad96bec2:x:1"]


def test_lookup_value_json_string() -> None:
    assert keys.lookup_value("comp_01HZXD") == b'"comp_01HZXD"'
    assert len(keys.lookup_value("comp_01HZXD")) == 13
    assert json.loads(keys.lookup_value('we"ird\\id')) == 'we"ird\\id'
    assert json.loads(keys.lookup_value("ünï")) == "ünï"


def test_scan_patterns() -> None:
    assert keys.scan_pattern("flags") == "schematic:flags:*"
    assert keys.scan_pattern("company", V) == "schematic:company:ad96bec2:*"
    assert keys.flag_pattern() == "schematic:flags:*"
    assert keys.flag_pattern(V) == "schematic:flags:ad96bec2:*"
    assert keys.entity_pattern("user") == "schematic:user:*"
    assert keys.entity_pattern("user", V) == "schematic:user:ad96bec2:*"
    with pytest.raises(ValueError, match="Unknown key kind"):
        keys.scan_pattern("datastream")


def test_coordination_keys() -> None:
    assert keys.WRITER_LOCK_KEY == "schematic:datastream:writer_lock"
    assert keys.REPLAY_CURSOR_KEY == "schematic:datastream:replay_cursor"
    assert keys.parse_entity_key(keys.WRITER_LOCK_KEY) is None
    assert keys.parse_entity_key(keys.REPLAY_CURSOR_KEY) is None


def test_parse_record_key() -> None:
    parsed = keys.parse_entity_key("schematic:company:ad96bec2:comp_01HZXD")
    assert parsed is not None
    assert tuple(parsed) == ("company", V, "comp_01HZXD")
    assert parsed.is_record
    assert parsed.entity_id == "comp_01HZXD"


def test_parse_lookup_key() -> None:
    parsed = keys.parse_entity_key(b"schematic:user:ad96bec2:email:jane@acme.com")
    assert parsed is not None
    assert tuple(parsed) == ("user", V, ("email", "jane@acme.com"))
    assert not parsed.is_record
    assert parsed.entity_id == ""


def test_parse_colon_in_value() -> None:
    parsed = keys.parse_entity_key("schematic:company:v1:crm:urn:acme:42")
    assert parsed is not None
    assert parsed.target == ("crm", "urn:acme:42")


def test_parse_colon_in_id_limit() -> None:
    # The documented limit: a key alone cannot distinguish an id with ":" from a lookup key.
    parsed = keys.parse_entity_key(keys.company_key(V, "org:7"))
    assert parsed is not None
    assert parsed.target == ("org", "7")


def test_parse_flag_key_with_colon() -> None:
    parsed = keys.parse_entity_key(keys.flag_key(V, "Billing:Reports"))
    assert parsed == ("flags", V, "billing:reports")


def test_parse_round_trip() -> None:
    for key in [
        keys.flag_key(V, "f"),
        keys.company_key(V, "c1"),
        keys.user_key("1", "u1"),
        keys.lookup_key("company", V, "domain", "acme.com"),
        keys.lookup_key("user", "x.y-z_9", "email", ""),
    ]:
        parsed = keys.parse_entity_key(key)
        assert parsed is not None, key
        if parsed.kind == "flags":
            assert keys.flag_key(parsed.version, str(parsed.target)) == key
        elif parsed.is_record:
            assert keys.record_key(parsed.kind, parsed.version, parsed.entity_id) == key
        else:
            assert isinstance(parsed.target, tuple)
            name, value = parsed.target
            assert keys.lookup_key(parsed.kind, parsed.version, name, value) == key


@pytest.mark.parametrize(
    "key",
    [
        "schematic:company:v1",
        "schematic:company::c1",
        "schematic:company:v1:",
        "schematic:credit-lease:v1:x",
        "other:company:v1:c1",
        "test:connection:verify",
        b"schematic:company:v1:\xff",
        "",
    ],
)
def test_parse_foreign_key_none(key: str | bytes) -> None:
    assert keys.parse_entity_key(key) is None
