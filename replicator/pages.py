"""Offset paging of one REST resource, by count, then on while pages come back full.

Entities created during the load show up past the count, so pages are fetched until
one comes back short. Entities that slide to a lower offset because others were
deleted mid-load can be missed by offset paging; the sweep therefore checks each
record it would delete against the API before deleting it.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        self.planned = -(-total // page_size)  # ceil
        self.next_index = 0
        self.outstanding = 0
        self.last_full = total > 0 and total % page_size == 0

    def next_request(self) -> PageRequest | None:
        if self.next_index >= self.planned:
            return None
        index = self.next_index
        self.next_index += 1
        self.outstanding += 1
        return PageRequest(self.resource, index, index * self.page_size, self.page_size)

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
