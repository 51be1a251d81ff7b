"""Offset paging that does not miss entities when the stream deletes some mid-load.

A delete upstream moves every later entity one offset down. If that happens after
page k-1 was fetched and before page k is, the first entity of page k slides into
page k-1 and neither request returns it; the sweep would then delete a live entity.
Each request therefore starts earlier by the number of deletes the stream reported
since the load began, which bounds how far any entity can have moved. Duplicates
from the overlap are harmless. Pages past the initial count are fetched until one
comes back short, so entities created mid-load are not missed either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Largest ``limit`` the loader sends; more overlap than this fits makes the load
#: unsafe for the sweep instead of sending bigger requests.
MAX_LIMIT = 1000


@dataclass(frozen=True)
class PageRequest:
    resource: str
    index: int
    offset: int
    limit: int


class PagePlan:
    """The requests for one resource (``companies`` or ``users``)."""

    def __init__(
        self, resource: str, page_size: int, total: int, deletes: Callable[[], int]
    ) -> None:
        self.resource = resource
        self.page_size = page_size
        self.deletes = deletes
        self.deletes_at_start = deletes()
        self.planned = -(-total // page_size)  # ceil
        self.next_index = 0
        self.outstanding = 0
        self.last_full = total > 0 and total % page_size == 0
        self.overlap_exceeded = False

    def next_request(self) -> PageRequest | None:
        if self.next_index >= self.planned:
            return None
        index = self.next_index
        self.next_index += 1
        self.outstanding += 1

        overlap = self.deletes() - self.deletes_at_start
        start = index * self.page_size
        offset = max(0, start - overlap)
        limit = self.page_size + (start - offset)
        if limit > MAX_LIMIT:
            self.overlap_exceeded = True
            offset, limit = start - (MAX_LIMIT - self.page_size), MAX_LIMIT
        return PageRequest(self.resource, index, offset, limit)

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
