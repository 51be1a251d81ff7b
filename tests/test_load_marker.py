"""The load marker's transitions on a real Redis: in progress, then complete only if kept."""

from __future__ import annotations

import redis

from replicator import keys
from replicator.load_marker import IN_PROGRESS_PREFIX, LoadMarker

VERSION = "abcd1234"


def test_begin_writes_unique_in_progress_value(redis_client: redis.Redis) -> None:
    redis_client.set(keys.LOAD_MARKER_KEY, VERSION)
    marker = LoadMarker(redis_client)

    first, found_version = marker.begin("7")
    stored = redis_client.get(keys.LOAD_MARKER_KEY)
    second, found_first = marker.begin("7")

    assert found_version
    assert found_first
    assert stored == first.encode()
    assert first.startswith(f"{IN_PROGRESS_PREFIX}7:")
    assert first != second
    assert first != VERSION


def test_complete_swaps_in_the_version(redis_client: redis.Redis) -> None:
    marker = LoadMarker(redis_client)
    value, _ = marker.begin("1")

    completed = marker.complete(value, VERSION)
    repeated = marker.complete(value, VERSION)

    assert completed
    assert repeated  # A retried call after its reply was lost.
    assert redis_client.get(keys.LOAD_MARKER_KEY) == VERSION.encode()


def test_complete_fails_after_flush(redis_client: redis.Redis) -> None:
    marker = LoadMarker(redis_client)
    value, _ = marker.begin("1")
    redis_client.flushall()

    completed = marker.complete(value, VERSION)

    assert not completed
    assert redis_client.get(keys.LOAD_MARKER_KEY) is None


def test_complete_rejects_other_load_value(redis_client: redis.Redis) -> None:
    marker = LoadMarker(redis_client)
    ours, _ = marker.begin("1")
    theirs, _ = marker.begin("2")

    completed = marker.complete(ours, VERSION)

    assert not completed
    assert redis_client.get(keys.LOAD_MARKER_KEY) == theirs.encode()


def test_begin_reports_missing_marker(redis_client: redis.Redis) -> None:
    marker = LoadMarker(redis_client)

    value, found = marker.begin("1")

    assert not found
    assert redis_client.get(keys.LOAD_MARKER_KEY) == value.encode()
