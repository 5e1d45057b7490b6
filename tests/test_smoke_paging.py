from __future__ import annotations

import pytest

from connectors.errors import MalformedResponseError
from connectors.pagination import CursorPaginator, OffsetPaginator, PageNumberPaginator


def test_offset_paginator_stops_at_announced_total() -> None:
    p = OffsetPaginator(limit=2)
    assert p.advance(2, 5) is True
    assert p.params() == {"skip": 2, "limit": 2}
    assert p.advance(2, 5) is True
    assert p.advance(1, 5) is False


def test_offset_paginator_refuses_page_beyond_total() -> None:
    p = OffsetPaginator(limit=2)
    p.advance(2, 3)
    with pytest.raises(MalformedResponseError, match="announced 3"):
        p.advance(2, 3)


def test_offset_paginator_without_total_stops_on_short_page() -> None:
    p = OffsetPaginator(limit=3)
    assert p.advance(3, None) is True
    assert p.advance(1, None) is False


def test_page_number_paginator_uses_total_header() -> None:
    p = PageNumberPaginator(per_page=2)
    assert p.advance(2, 3) is True
    assert p.params()["page"] == 2
    assert p.advance(1, 3) is False


def test_cursor_paginator_refuses_repeated_cursor() -> None:
    p = CursorPaginator()
    assert p.advance("abc") is True
    assert p.advance(None) is False
    with pytest.raises(MalformedResponseError, match="repeated"):
        p.advance("abc")
