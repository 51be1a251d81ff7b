"""Encoded REST pages: the body of ``GET /companies`` and ``GET /users``.

A page body is exactly ``orjson.dumps({"data": items, "params": {"limit": ..., "offset":
...}})`` of the items :mod:`api_shapes` builds. Unchanged generated entities take the
fast path of :mod:`generated_items`, which builds no record and no item dict. Changed,
created and loaded entities are built and encoded as dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from replicator.simulator.api_shapes import item
from replicator.simulator.catalog import Catalog
from replicator.simulator.dataset import GeneratedSource, Source
from replicator.simulator.generated_items import company_json, user_json
from replicator.simulator.item_templates import ItemTemplates, build_templates

Record = dict[str, Any]

#: Target size of the chunks of a page body, below glibc's default mmap threshold (128 KiB).
CHUNK_BYTES = 64 * 1024


class PageEncoder:
    """The encoder of the REST items and pages of one kind (``company`` or ``user``)."""

    def __init__(self, kind: str, source: Source, catalog: Catalog) -> None:
        self.kind = kind
        self._source = source
        self._catalog = catalog
        self._generated = isinstance(source, GeneratedSource)
        self._encode_generated: Callable[[ItemTemplates, int], str] = (
            company_json if kind == "company" else user_json
        )
        # Built on the first page. Two threads may both build it, which is harmless because
        # the results are equal.
        self._templates: ItemTemplates | None = None

    def item_text(self, ref: Record | int) -> str:
        """Encode the REST item of an entity reference (see ``EntityTable.iter_refs_from``)."""
        if isinstance(ref, int):
            if self._generated:
                return self._encode_generated(self.templates(), ref)
            ref = self._source.record(ref)
        return orjson.dumps(item(self.kind, ref)).decode()

    def templates(self) -> ItemTemplates:
        """Return the item templates of the catalog, building them on the first call."""
        templates = self._templates
        if templates is None:
            templates = self._templates = build_templates(self._catalog)
        return templates

    def page(self, refs: list[Record | int], offset: int, limit: int) -> list[bytes]:
        """Encode the body of a page of items with its ``params``, in chunks."""
        body = PageBody(self, offset, limit)
        for ref in refs:
            body.add(ref)
        return body.finish()


class PageBody:
    """The body of one page, encoded item by item into chunks of about CHUNK_BYTES.

    A page of 100 companies is about 700 KB. As one object, the page and each copy of it
    would get a fresh mmap allocation whose pages fault in on every request. Chunks stay
    in the heap that malloc reuses, and each item's text is freed as soon as its chunk
    is built.
    """

    def __init__(self, encoder: PageEncoder, offset: int, limit: int) -> None:
        self._encoder = encoder
        self._params = orjson.dumps({"limit": limit, "offset": offset}).decode()
        self._chunks: list[bytes] = []
        self._pending = ['{"data":[']
        self._size = 0
        self._items = 0

    def add(self, ref: Record | int) -> None:
        """Encode the item of the next entity reference of the page."""
        if self._items:
            self._pending.append(",")
        text = self._encoder.item_text(ref)
        self._pending.append(text)
        self._items += 1
        self._size += len(text)
        if self._size >= CHUNK_BYTES:
            self._chunks.append("".join(self._pending).encode())
            self._pending, self._size = [], 0

    def finish(self) -> list[bytes]:
        """Close the body and return its chunks, to send in order."""
        self._pending.append(f'],"params":{self._params}}}')
        self._chunks.append("".join(self._pending).encode())
        self._pending = []
        return self._chunks
