"""Contento Content API v1 asset records as the API sends them (pydantic, unknown keys ignored).

Shapes from the ``/v1/assets`` page (seed 002), the asset object reference and the official
JS client's ``AssetData`` type (reference/cms-api-facts.md §4.3, §4.8):

- ``size`` is a display string (``"1.86 MB"``), not a byte count;
- ``width`` / ``height`` are strings (``"4844"``) on the assets endpoint but documented as
  integers in the object reference: both are accepted, ``null`` for documents;
- a list is ``{"data": [...], "links": {...}, "meta": {...}}`` with cursor paging
  (``links.next`` / ``meta.next_cursor``); a result set of exactly one object comes back as
  that object, without the envelope.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WireAsset(_Wire):
    id: str
    name: str | None = None
    description: str | None = None
    path: str | None = None
    url: str | None = None
    extension: str | None = None
    size: str | int | float | None = None
    mime_type: str | None = None
    is_image: bool | None = None
    width: str | int | float | None = None
    height: str | int | float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class WireLinks(_Wire):
    first: str | None = None
    last: str | None = None
    prev: str | None = None
    next: str | None = None


class WireMeta(_Wire):
    path: str | None = None
    per_page: int | None = None
    next_cursor: str | None = None
    prev_cursor: str | None = None


class WireAssetPage(_Wire):
    """One page of ``GET /v1/assets``."""

    data: list[WireAsset]
    links: WireLinks = Field(default_factory=WireLinks)
    meta: WireMeta = Field(default_factory=WireMeta)
