"""Building blocks of the REST fast path: random draws, JSON templates, stamps and ids."""

from __future__ import annotations

import hashlib
import random

import orjson
import pytest

from replicator.simulator import times
from replicator.simulator.catalog import decode_index, encode_index, seeded_random
from replicator.simulator.draws import MAX_POOL, below, sample_positions, seed_text, seeded_core
from replicator.simulator.json_templates import compile_template, fill, json_slot, text_slot

BOUNDS = (1, 2, 3, 4, 5, 6, 12, 29, 50, 501, 1000, 2000, 50_001, 99_991, 2**31, 2**32 + 5)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_draws_match_random_module(seed: int) -> None:
    for entity in range(200):
        reference = seeded_random(seed, "company", entity, 0)
        core = seeded_core(seed_text(seed, "company", entity, 0))
        bits = core.getrandbits
        for n in BOUNDS:
            assert below(bits, n) == reference.randrange(n), (entity, n)
            assert below(bits, n) + 1 == reference.randint(1, n), (entity, n)
        for population, k in [(2, 0), (2, 2), (3, 1), (6, 5), (8, 3), (12, 4), (MAX_POOL, 5)]:
            assert sample_positions(bits, population, k) == reference.sample(range(population), k)
        assert core.random() == reference.random()


def test_draws_choice_matches_random_module() -> None:
    words = ("a", "b", "c", "d", "e")
    reference = seeded_random(3, "x")
    bits = seeded_core(seed_text(3, "x")).getrandbits
    for _ in range(1000):
        assert words[below(bits, len(words))] == reference.choice(words)


def test_seed_text_formats() -> None:
    # The fast path formats these texts itself.
    for seed in (0, 7, 2**40 + 3):
        for index in (0, 12, 10**6):
            assert seed_text(seed, "company", index, 0) == f"{seed}:company:{index}:0"
            assert seed_text(seed, "user", "keys", index) == f"{seed}:user:keys:{index}"


@pytest.mark.parametrize("population, k", [(MAX_POOL + 1, 1), (3, 4), (3, -1)])
def test_sample_positions_rejects_other_sizes(population: int, k: int) -> None:
    with pytest.raises(ValueError, match="Invalid sample"):
        sample_positions(random.Random(1).getrandbits, population, k)


def test_template_fills_like_orjson() -> None:
    value = {
        "id": f"ek_{text_slot('id')}_domain",
        "count": json_slot("count"),
        "note": "100% done",
        "items": json_slot("items"),
    }
    template = compile_template(value, ("id", "count", "items"))
    filled = fill(template, "comp_1", 5, "[1,2.5,null]")

    assert (
        filled
        == orjson.dumps(
            {"id": "ek_comp_1_domain", "count": 5, "note": "100% done", "items": [1, 2.5, None]}
        ).decode()
    )


def test_template_fill_counts_values() -> None:
    template = compile_template(
        {"a": text_slot("first"), "b": json_slot("second")}, ("first", "second")
    )

    assert template == ('{"a":"', '","b":', "}")
    with pytest.raises(ValueError, match="1 given, the template has 2 slots"):
        fill(template, "x")


def test_template_slot_order_checked() -> None:
    value = {"a": text_slot("first"), "b": json_slot("second")}

    with pytest.raises(ValueError, match="Invalid template slots"):
        compile_template(value, ("second", "first"))


def test_template_json_slot_must_be_whole_value() -> None:
    with pytest.raises(ValueError, match="not a whole value"):
        compile_template({"a": f"x{json_slot('inner')}"}, ())


def test_stamp_matches_unix_seconds_formatting() -> None:
    start = times._STAMP_END - times._YEAR_S
    for offset in [*range(0, times._YEAR_S, 86_399), times._YEAR_S - 1, 59, 3600, 86_400]:
        days, minutes, seconds = times._stamp_parts()
        day, rest = divmod(offset, 86_400)
        text = days[day] + minutes[rest // 60] + seconds[rest % 60]
        assert text == times.from_unix_seconds(start + offset), offset


def test_stamp_value_unchanged() -> None:
    for entity in ("comp_abc000001", "user_xyz00zz00", "bprod_q1w000"):
        for purpose in ("created", "updated", "subscribed"):
            digest = hashlib.blake2b(f"{purpose}:{entity}".encode(), digest_size=4).digest()
            offset = int.from_bytes(digest, "big") % times._YEAR_S
            expected = times.from_unix_seconds(times._STAMP_END - times._YEAR_S + offset)
            assert times.stamp(entity, purpose) == expected


def _slow_encode(index: int, width: int = 6) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        index, rest = divmod(index, 62)
        text = digits[rest] + text
        if index == 0:
            return text.rjust(width, "0")


@pytest.mark.parametrize(
    "index", [0, 1, 61, 62, 3843, 3844, 238_327, 238_328, 14_776_335, 62**6 - 1, 62**6, 62**7 + 5]
)
def test_encode_index_fast_path(index: int) -> None:
    assert encode_index(index) == _slow_encode(index)
    assert encode_index(index, 3) == _slow_encode(index, 3)
    assert decode_index(encode_index(index)) == index


def test_encode_index_dense_range() -> None:
    for index in range(0, 250_000, 7):
        assert encode_index(index) == _slow_encode(index)
