"""The shared paged-listing loop: each item once, checked against totals, re-listed on change."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest
from structlog.testing import capture_logs

from connectors.errors import MalformedResponseError
from connectors.pagination import (
    FetchPage,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    iter_listing,
)

Pages = tuple[Sequence[str], int | None]


def offset_source(rows: list[str], *, edit: Callable[[list[str], int], None] | None = None,
                  announce: bool = True) -> tuple[list[int], FetchPage[str]]:
    """A fake API over ``rows`` (skip/limit); ``edit(rows, call)`` runs before each call."""
    calls: list[int] = []

    async def fetch(params: Mapping[str, int]) -> Pages:
        calls.append(params["skip"])
        if edit is not None:
            edit(rows, len(calls))
        skip, limit = params["skip"], params["limit"]
        return rows[skip:skip + limit], len(rows) if announce else None

    return calls, fetch


async def drain(fetch: FetchPage[str], pager: Callable[[], Paginator],
                passes: int = 3) -> list[str]:
    out: list[str] = []
    async for page in iter_listing(fetch, pager, key=str, what="the test list", passes=passes):
        out.extend(page)
    return out


async def test_a_still_collection_is_listed_once_page_by_page() -> None:
    rows = [f"a{i:03d}" for i in range(250)]
    calls, fetch = offset_source(rows)
    assert await drain(fetch, lambda: OffsetPaginator(limit=100)) == rows
    assert calls == [0, 100, 200]


async def test_a_deletion_between_pages_is_listed_again_and_nothing_is_missed() -> None:
    """Oldest first: deleting an early item shifts the next page by one; the second pass
    finds the item the first one skipped."""
    rows = [f"a{i:03d}" for i in range(150)]

    def delete_between_pages(current: list[str], call: int) -> None:
        if call == 2:
            current.remove("a005")

    calls, fetch = offset_source(rows, edit=delete_between_pages)
    with capture_logs() as logs:
        listed = await drain(fetch, lambda: OffsetPaginator(limit=100))
    assert set(rows) <= set(listed), "every item still there is listed"
    assert "a100" in listed, "the item shifted onto page 1 is not lost"
    assert len(listed) == len(set(listed)) == 150, "each item once (a005 from the first pass)"
    assert calls == [0, 100, 0, 100]
    assert [e["event"] for e in logs] == ["listing.changed"]


async def test_page_numbers_too_total_header_changes_mean_relist() -> None:
    rows = [f"a{i:03d}" for i in range(150)]
    seen_pages: list[int] = []

    async def fetch(params: Mapping[str, int]) -> Pages:
        seen_pages.append(params["page"])
        if len(seen_pages) == 2:
            rows.pop(0)  # deleted between page 1 and 2
        start = (params["page"] - 1) * params["per_page"]
        return rows[start:start + params["per_page"]], len(rows)

    listed = await drain(fetch, lambda: PageNumberPaginator(per_page=100))
    assert set(rows) <= set(listed)
    assert seen_pages == [1, 2, 1, 2]


async def test_an_item_listed_twice_in_one_pass_means_relist() -> None:
    rows = [f"a{i:03d}" for i in range(150)]

    def insert_first(current: list[str], call: int) -> None:
        if call == 2:
            current.insert(0, "new")  # no total in this API: only the duplicate shows it

    calls, fetch = offset_source(rows, edit=insert_first, announce=False)
    listed = await drain(fetch, lambda: OffsetPaginator(limit=100))
    assert len(listed) == len(set(listed)) == 151
    assert calls == [0, 100, 0, 100]


async def test_a_source_that_keeps_changing_fails_the_listing() -> None:
    rows = [f"a{i:03d}" for i in range(300)]

    def churn(current: list[str], call: int) -> None:
        current.pop(0)

    _, fetch = offset_source(rows, edit=churn)
    with pytest.raises(MalformedResponseError, match="changed while being listed, 2 times"):
        await drain(fetch, lambda: OffsetPaginator(limit=100), passes=2)


async def test_fewer_items_than_announced_is_never_a_whole_listing() -> None:
    async def fetch(params: Mapping[str, int]) -> Pages:
        return ([f"a{i}" for i in range(100)] if params["skip"] == 0 else []), 150

    with pytest.raises(MalformedResponseError, match="empty page after 100 distinct items"):
        await drain(fetch, lambda: OffsetPaginator(limit=100))
