"""Compare every replicated key in Redis with the simulator's truth.

A record is right when it equals the normalised truth (it came from the stream) or
the normalised API projection of the truth (it came from a REST page, which cannot
carry every field). Lookups must name exactly the keys of the truth's records and
hold the id as a JSON string. Coordination keys under ``schematic:datastream:`` are
not replicated data and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import redis
from redis.cluster import RedisCluster

from replicator import keys, records
from replicator.simulator import api_projection

NORMALIZERS = {
    "company": records.normalize_company,
    "user": records.normalize_user,
}


def expected_keys(truth: dict[str, Any], version: str) -> dict[str, list[bytes]]:
    """Every key the truth implies, with the values it may hold."""
    expected: dict[str, list[bytes]] = {}
    for flag in truth["flags"]:
        value = records.encode(records.normalize_flag(flag))
        expected[keys.flag_key(version, flag["key"])] = [value]

    for kind, section in (("company", "companies"), ("user", "users")):
        normalize = NORMALIZERS[kind]
        for record in truth[section]:
            entity_id = record["id"]
            variants = {
                records.encode(normalize(record)),
                records.encode(normalize(api_projection(kind, record))),
            }
            expected[keys.record_key(kind, version, entity_id)] = sorted(variants)
            for lookup in keys.lookup_keys(kind, version, normalize(record)["keys"]):
                expected[lookup] = [keys.lookup_value(entity_id)]
    return expected


def replicated_keys(client: redis.Redis | RedisCluster) -> dict[str, bytes]:
    """Every ``schematic:`` key in Redis except the coordination keys.

    A cluster client scans each primary on its own, so a key on any shard is found.
    """
    found: dict[str, bytes] = {}
    names = [
        name.decode()
        for name in _scan_every_primary(client)
        if not name.startswith(b"schematic:datastream:")
    ]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(name)
    for name, value in zip(names, pipe.execute(), strict=True):
        if value is not None:
            found[name] = value
    return found


def _scan_every_primary(client: redis.Redis | RedisCluster) -> Iterator[bytes]:
    if not isinstance(client, RedisCluster):
        yield from client.scan_iter(match="schematic:*", count=1000)
        return
    primaries = client.get_primaries()
    assert primaries, "the cluster client knows no primary"
    for node in primaries:
        yield from client.scan_iter(match="schematic:*", count=1000, target_nodes=node)


def differences(
    client: redis.Redis | RedisCluster, truth: dict[str, Any], version: str
) -> list[str]:
    """Describe every missing, extra or wrong key; empty when Redis equals the truth."""
    expected = expected_keys(truth, version)
    actual = replicated_keys(client)
    problems = []
    for name in sorted(expected.keys() - actual.keys()):
        problems.append(f"missing {name}")
    for name in sorted(actual.keys() - expected.keys()):
        problems.append(f"extra {name} = {actual[name][:120]!r}")
    for name in sorted(expected.keys() & actual.keys()):
        if not _matches(actual[name], expected[name]):
            problems.append(f"wrong {name}: {_diff(actual[name], expected[name][0])}")
    return problems


def _matches(value: bytes, variants: list[bytes]) -> bool:
    decoded = orjson.loads(value)
    return any(decoded == orjson.loads(variant) for variant in variants)


def _diff(actual: bytes, expected: bytes) -> str:
    left, right = orjson.loads(actual), orjson.loads(expected)
    if not isinstance(left, dict) or not isinstance(right, dict):
        return f"{actual[:80]!r} != {expected[:80]!r}"
    fields = sorted(
        name for name in left.keys() | right.keys() if left.get(name) != right.get(name)
    )
    return "fields differ: " + ", ".join(fields)
