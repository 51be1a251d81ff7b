"""Offset paging of one REST resource, by count, then on while pages come back full.

Entities created during the load show up past the count, so pages are fetched until
one comes back short.

Neighbouring pages overlap: every page after the first starts ``overlap`` entries
(5% of the page size, at least 1 for pages of two or more) before the previous one
ends. Each request keeps the page size as its limit, because a larger one could pass
the API's cap. When entities below a page are deleted
between the reads of that page and the one before it, the entities behind them move
to lower offsets. Up to ``overlap`` such deletes move no entity past both pages, so
none is missed. The same holds for inserts when the higher page is read first. An
entity that two pages both return is loaded and counted once (``OverlapFilter``),
from the page that finished first.

NOTE: a larger shift between two neighbouring reads (a page that is retried or
delayed while many entities are deleted) can still skip entities. The sweep looks up
every stored record that the pages did not bring, so only entities that Redis did not
hold yet (a first load, or a load after a data loss) stay missing until the stream
sends a ``full`` for them or the next load runs.
"""

from __future__ import annotations

from dataclasses import dataclass

OVERLAP_FRACTION = 0.05


def overlap_for(page_size: int) -> int:
    """Return how many entries a page shares with the page before it."""
    if page_size <= 1:
        return 0  # A page of one entry cannot share it and still move on.
    return max(1, int(page_size * OVERLAP_FRACTION))


@dataclass(frozen=True)
class PageRequest:
    resource: str
    index: int
    offset: int
    limit: int


class PagePlan:
    """The requests for one resource (``companies`` or ``users``)."""

    def __init__(self, resource: str, page_size: int, total: int) -> None:
        self.resource = resource
        self.page_size = page_size
        self.overlap = overlap_for(page_size)
        self.step = page_size - self.overlap
        # The last planned page must reach the counted total: it starts at most
        # page_size entries before it.
        self.planned = 0 if total <= 0 else 1 + -(-max(0, total - page_size) // self.step)
        self.next_index = 0
        self.outstanding = 0
        self.last_full = False

    def next_request(self) -> PageRequest | None:
        if self.next_index >= self.planned:
            return None
        index = self.next_index
        self.next_index += 1
        self.outstanding += 1
        return PageRequest(self.resource, index, index * self.step, self.page_size)

    def page_done(self, request: PageRequest, returned: int) -> None:
        """Record a finished page; plan one more when the last one came back full."""
        self.outstanding -= 1
        if request.index == self.planned - 1:
            self.last_full = returned >= request.limit
        if self.next_index >= self.planned and self.outstanding == 0 and self.last_full:
            self.planned += 1
            self.last_full = False

    @property
    def finished(self) -> bool:
        return self.next_index >= self.planned and self.outstanding == 0


class OverlapFilter:
    """A filter of the items that a neighbouring page already returned.

    The ids of a finished page are kept until both of its neighbours finished, so only
    the pages next to those still in flight are held. An entity that moved further
    than one page between two reads is counted twice. Its second ``load`` change is
    still harmless, because the worker skips an entity already loaded in this load.
    """

    def __init__(self) -> None:
        self._ids: dict[int, frozenset[str]] = {}
        # Every page below _all_below finished, and _finished contains the others that did.
        self._all_below = 0
        self._finished: set[int] = set()

    def new_items(self, index: int, ids: list[str | None]) -> list[bool]:
        """Record the item ids of page ``index`` and return, per item, whether it is new.

        An item without an id (``None``) is always new, because it cannot be matched.
        """
        seen = set(self._ids.get(index - 1, ())) | set(self._ids.get(index + 1, ()))
        new = []
        for entity_id in ids:
            fresh = entity_id is None or entity_id not in seen
            if entity_id is not None:
                seen.add(entity_id)
            new.append(fresh)
        self._ids[index] = frozenset(entity_id for entity_id in ids if entity_id is not None)
        self._finished.add(index)
        while self._all_below in self._finished:
            self._finished.discard(self._all_below)
            self._all_below += 1
        for page in (index - 1, index, index + 1):
            if self._is_finished(page - 1) and self._is_finished(page + 1):
                self._ids.pop(page, None)
        return new

    def _is_finished(self, index: int) -> bool:
        return index < self._all_below or index in self._finished

    @property
    def pages_held(self) -> int:
        """Number of pages whose ids or finished mark are still kept."""
        return len(self._ids) + len(self._finished)
