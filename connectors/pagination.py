"""Paginators: read one page's response, say what to ask for next. They do no I/O.

A paginator raises :class:`~connectors.errors.MalformedResponseError` when the API's paging
stops making sense (a page beyond the announced total, a repeated cursor), because a silent
endless or short listing would make every diff after it wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.errors import MalformedResponseError


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
                # the collection changed while we listed: the listing can't be trusted
                raise MalformedResponseError(
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
        if total is not None:
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
