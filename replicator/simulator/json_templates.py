"""JSON templates: a value encoded once by orjson, with named slots left as ``%s``.

A template is built from a JSON value whose variable parts are slot markers:

- :func:`text_slot` inside a string: the slot takes raw string content, which must need
  no JSON escaping (ids, words, times);
- :func:`json_slot` as a whole value: the slot takes JSON text (a number, ``null``, an
  array or an object already encoded).

:func:`compile_template` returns a printf-style format, so filling a template is one
``%`` operation on a tuple. Because the constant parts come from ``orjson.dumps``, a
filled template is byte-identical to ``orjson.dumps`` of the value it stands for.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# Private-use characters: orjson writes them unescaped and no generated value contains them.
_TEXT_OPEN = "\ue000"
_JSON_OPEN = "\ue001"
_CLOSE = "\ue002"
_SLOT = re.compile(f'"{_JSON_OPEN}(\\w+){_CLOSE}"|{_TEXT_OPEN}(\\w+){_CLOSE}')


def text_slot(name: str) -> str:
    """Return the marker of a slot for raw string content, to place inside a string."""
    return f"{_TEXT_OPEN}{name}{_CLOSE}"


def json_slot(name: str) -> str:
    """Return the marker of a slot for an encoded JSON value, to use as a whole value."""
    return f"{_JSON_OPEN}{name}{_CLOSE}"


def compile_template(value: Any, slots: tuple[str, ...]) -> str:
    """Encode ``value`` and turn its slot markers into ``%s``.

    ``slots`` names the markers in the order they appear in the encoded text, which is
    the order of the values the format takes. A ValueError names the order found when
    it differs, so a template and its callers cannot drift apart silently.
    """
    encoded = orjson.dumps(value).decode().replace("%", "%%")
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        found.append(match.group(1) or match.group(2))
        return "%s"

    compiled = _SLOT.sub(replace, encoded)
    if tuple(found) != slots:
        raise ValueError(f"Invalid template slots {slots!r}: the encoded value has {found!r}.")
    if _TEXT_OPEN in compiled or _JSON_OPEN in compiled or _CLOSE in compiled:
        raise ValueError("Invalid template: a json_slot() marker is not a whole value.")
    return compiled
