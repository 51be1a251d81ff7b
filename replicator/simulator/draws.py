"""Random draws that give exactly what ``random.Random`` gives, with fewer Python calls.

The REST fast path must reproduce the generator's data bit for bit, so every draw here
repeats the algorithm of CPython's ``random`` module (checked against CPython 3.11):

- ``randrange(n)``, ``randint(a, b)`` and ``choice(seq)`` all reduce to ``_randbelow(n)``:
  draw ``n.bit_length()`` bits and draw again while the result is ``>= n``;
- ``sample(population, k)`` on a population of at most 21 items (every population the
  generator samples) moves each pick out of a pool list, as :func:`sample_positions`
  does.

The tests compare these draws with ``random.Random`` for many seeds, so a Python release
that changes the algorithms fails them instead of changing the data silently.
"""

from __future__ import annotations

import hashlib
from _random import Random as _CoreRandom
from collections.abc import Callable

#: A bound ``getrandbits`` of one seeded generator.
Bits = Callable[[int], int]

#: ``random.sample`` uses the pool algorithm for populations up to this size, whatever k.
MAX_POOL = 21


def seed_text(seed: int, *parts: object) -> str:
    """Return the text that names the generator of ``parts`` (an entity, a purpose) of a seed.

    Hot paths may format it themselves, e.g. ``f"{seed}:company:{index}:0"``.
    """
    return ":".join([str(seed), *map(str, parts)])


def seed_value(text: str) -> int:
    """Derive the integer seed of the generator named by a :func:`seed_text`."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def seeded_core(text: str) -> _CoreRandom:
    """Return the C generator in the state ``random.Random(seed_value(text))`` starts in.

    ``_random.Random`` is the generator behind ``random.Random``; constructed with an int,
    it seeds exactly as ``random.Random(int)`` does, without the Python-level wrapper.
    """
    return _CoreRandom(seed_value(text))


def below(bits: Bits, n: int) -> int:
    """Return ``random.Random._randbelow(n)``: a uniform integer in ``[0, n)``, n >= 1."""
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def sample_positions(bits: Bits, n: int, k: int) -> list[int]:
    """Return the positions that ``random.sample(population, k)`` picks from ``n`` items."""
    if n > MAX_POOL or not 0 <= k <= n:
        raise ValueError(f"Invalid sample of {k} from {n}: expected 0 <= k <= n <= {MAX_POOL}.")
    if not k:
        return []
    pool = list(range(n))
    picked = []
    for i in range(k):
        # below(bits, n - i), written out because this loop runs for most entities.
        size = n - i
        width = size.bit_length()
        j = bits(width)
        while j >= size:
            j = bits(width)
        picked.append(pool[j])
        pool[j] = pool[size - 1]
    return picked
