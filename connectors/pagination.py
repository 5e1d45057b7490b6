"""Paged listings you can trust: paginators, and the one loop every paged connector uses.

Paginators read one page's response and say what to ask for next; they do no I/O. A paginator
raises :class:`~connectors.errors.MalformedResponseError` when the API's paging stops making
sense (a page beyond the announced total, a repeated cursor), and :class:`SourceChangedError`
when the announced total changes between pages (the collection was edited while we listed).

:func:`iter_listing` drives a paginator over a fetch function for every offset- or page-based
listing (Storyblok, Contentstack, Webflow...). A listing is what a plan is built on and what prune
deletes on the word of, so it:

- de-duplicates items by id (an item shifted onto the next page by an insertion is listed once);
- checks every pass against the total the API announced (a changed total, an item listed twice
  in one pass, or fewer distinct items than announced means the source changed under it);
- lists again, at most ``passes`` times in all, when the source changed; items found by an
  earlier pass are still yielded (once): they existed while we listed, and keeping too much in
  a listing only keeps an asset, while missing one could delete it;
- raises MalformedResponseError when no pass came out whole, so no diff is built on it.

Connectors also ask for a stable order where the API offers one (oldest first: a new asset is
appended at the end and shifts nothing already read). Absence from even a whole listing is no
proof of deletion: prune reads each item directly before deleting (``SupportsAssetExists``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import structlog

from connectors.errors import MalformedResponseError

log = structlog.get_logger(__name__)

T = TypeVar("T")

LISTING_PASSES = 3
"""How many times a listing is tried when the source changes under it before it fails."""


class SourceChangedError(MalformedResponseError):
    """The collection changed between two pages of one listing (total, duplicates, count)."""


class Paginator(Protocol):
    """What :func:`iter_listing` needs of a paginator."""

    @property
    def total(self) -> int | None: ...

    def params(self) -> dict[str, int]: ...

    def advance(self, received: int, total: int | None) -> bool: ...


FetchPage = Callable[[Mapping[str, int]], Awaitable[tuple[Sequence[T], int | None]]]
"""One page for the paginator's params: its raw items and the announced total (or None)."""


async def iter_listing(
    fetch: FetchPage[T],
    new_paginator: Callable[[], Paginator],
    *,
    key: Callable[[T], str],
    what: str,
    passes: int = LISTING_PASSES,
) -> AsyncGenerator[list[T], None]:
    """Pages of items, each item once (by ``key``), as the pages arrive.

    ``what`` names the listing in messages (``"Storyblok assets"``). Raises
    MalformedResponseError when the paging is broken, or when the source changed under every
    one of ``passes`` passes; errors of ``fetch`` propagate unchanged.
    """
    yielded: set[str] = set()
    problem = ""
    for attempt in range(1, passes + 1):
        paginator = new_paginator()
        in_pass: set[str] = set()
        last_received = -1
        try:
            while True:
                items, total = await fetch(paginator.params())
                fresh: list[T] = []
                repeated: str | None = None
                for item in items:
                    item_key = key(item)
                    if item_key in in_pass:
                        repeated = item_key
                        continue
                    in_pass.add(item_key)
                    if item_key not in yielded:
                        yielded.add(item_key)
                        fresh.append(item)
                if fresh:
                    yield fresh
                if repeated is not None:
                    raise SourceChangedError(f"{repeated} was listed twice while paging")
                more = paginator.advance(len(items), total)
                last_received = len(items)
                if not more:
                    break
            announced = paginator.total
            if announced is not None and len(in_pass) != announced:
                ending = "an empty page" if last_received == 0 else "the last page"
                raise SourceChangedError(
                    f"the listing ended with {ending} after {len(in_pass)} distinct items "
                    f"of the {announced} announced"
                )
            return
        except SourceChangedError as exc:
            problem = str(exc)
            log.warning("listing.changed", what=what, attempt=attempt, passes=passes,
                        reason=problem)
    raise MalformedResponseError(
        f"{what} changed while being listed, {passes} times in a row (last: {problem}); the "
        "listing can't be trusted: run again when the library is not being edited"
    )


@dataclass
class OffsetPaginator:
    """``skip``/``limit`` (or ``offset``/``limit``) paging with an optional announced total."""

    limit: int
    skip: int = 0
    total: int | None = None
    offset_key: str = "skip"
    """The API's name for the offset: ``skip`` (Contentstack), ``offset`` (Webflow)."""
    _pages: int = 0

    def params(self) -> dict[str, int]:
        return {self.offset_key: self.skip, "limit": self.limit}

    def advance(self, received: int, total: int | None) -> bool:
        """Record a page of ``received`` items; return True if another page must be fetched."""
        self._pages += 1
        if total is not None:
            if self.total is not None and total != self.total:
                # the collection changed while we listed: this pass can't be trusted
                raise SourceChangedError(
                    f"the total changed from {self.total} to {total} during listing; "
                    "run again when nobody is editing the library"
                )
            self.total = total
        self.skip += received
        if self.total is not None:
            if self.skip > self.total:
                raise MalformedResponseError(
                    f"the API returned {self.skip} items but announced {self.total}"
                )
            return self.skip < self.total and received > 0
        return received >= self.limit


@dataclass
class PageNumberPaginator:
    """``page``/``per_page`` paging driven by a total (Storyblok's ``total`` header)."""

    per_page: int
    page: int = 1
    total: int | None = None
    seen: int = 0

    def params(self) -> dict[str, int]:
        return {"page": self.page, "per_page": self.per_page}

    def advance(self, received: int, total: int | None) -> bool:
        """Record a page of ``received`` items; return True if another page must be fetched.

        Raises SourceChangedError when the ``total`` changes between pages.
        """
        if total is not None:
            if self.total is not None and total != self.total:
                raise SourceChangedError(
                    f"the total changed from {self.total} to {total} between pages"
                )
            self.total = total
        self.seen += received
        if self.total is not None and self.seen > self.total:
            raise MalformedResponseError(
                f"page {self.page} goes beyond the announced total of {self.total} items"
            )
        self.page += 1
        if self.total is not None:
            return self.seen < self.total and received > 0
        return received >= self.per_page


@dataclass
class CursorPaginator:
    """Cursor paging: the response names the next cursor, ``None`` at the end."""

    cursor: str | None = None
    _seen: set[str] = field(default_factory=set)

    def advance(self, next_cursor: str | None) -> bool:
        if next_cursor is None or next_cursor == "":
            return False
        if next_cursor in self._seen:
            raise MalformedResponseError(
                f"the API repeated the cursor {next_cursor[:20]!r}: the listing would never end"
            )
        self._seen.add(next_cursor)
        self.cursor = next_cursor
        return True
