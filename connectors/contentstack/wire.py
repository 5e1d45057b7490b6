"""Contentstack CMA v3 asset records as the API sends them (pydantic, unknown keys ignored).

Shapes and quirks from the CMA "Assets" page (seed 001) and reference/cms-api-facts.md §1.9:

- folders are asset records with ``is_dir: true``, a ``name`` and no ``filename``; their MIME
  type is ``application/vnd.contenstack.folder`` (sic);
- ``file_size`` is a string of bytes (kept raw here; the connector parses it);
- ``dimension`` values may be floats, or even placeholder strings in a doc sample;
- ``publish_details`` is an array in the CMA but a single object in the CDA;
- ``ACL.roles`` comes as ``[]`` or ``{}``: ``ACL`` is not declared, so it is ignored whatever
  its shape;
- ``tags`` may be missing or ``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

FOLDER_CONTENT_TYPE = "application/vnd.contenstack.folder"
"""Sic: the API spells it "contenstack"."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WireDimension(_Wire):
    height: float | str | None = None
    width: float | str | None = None


class WirePublishDetail(_Wire):
    environment: str | None = None
    locale: str | None = None
    time: str | None = None
    user: str | None = None
    version: int | None = None


class WireAsset(_Wire):
    """One record of ``/v3/assets``: a file, or a folder when ``is_dir`` is true."""

    uid: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    content_type: str | None = None
    file_size: str | int | None = None
    tags: list[str] = Field(default_factory=list)
    filename: str | None = None
    name: str | None = None
    url: str | None = None
    is_dir: bool = False
    parent_uid: str | None = None
    version: int | None = Field(default=None, alias="_version")
    title: str | None = None
    description: str | None = None
    dimension: WireDimension | None = None
    publish_details: list[WirePublishDetail] = Field(default_factory=list)
    permanent_url: str | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("publish_details", mode="before")
    @classmethod
    def _publish_details(cls, value: Any) -> Any:
        # CMA: array of {environment, locale, time, user, version}; CDA: one object
        if value is None:
            return []
        if isinstance(value, dict):
            return [value]
        return value

    @field_validator("parent_uid", mode="before")
    @classmethod
    def _parent(cls, value: Any) -> Any:
        return None if value == "" else value


class WireAssetList(_Wire):
    """``GET /v3/assets``: ``{"assets": [...], "count": N}`` (count with ``include_count``)."""

    assets: list[WireAsset]
    count: int | None = None


class WireAssetEnvelope(_Wire):
    """One record wrapped as ``{"asset": {...}}`` (get, create, update; with a ``notice``)."""

    asset: WireAsset
    notice: str | None = None


class WireReference(_Wire):
    """One entry (in one locale) that references an asset."""

    entry_uid: str | None = None
    content_type_uid: str | None = None
    locale: str | None = None


class WireReferences(_Wire):
    """``GET /v3/assets/{uid}/references``: ``{"references": [...], "count": N}``."""

    references: list[WireReference] = Field(default_factory=list)
    count: int | None = None


class WireEnvironment(_Wire):
    uid: str | None = None
    name: str


class WireEnvironments(_Wire):
    """``GET /v3/environments``: ``{"environments": [...]}``."""

    environments: list[WireEnvironment] = Field(default_factory=list)


class WireLocale(_Wire):
    code: str


class WireLocales(_Wire):
    """``GET /v3/locales``: ``{"locales": [...]}``."""

    locales: list[WireLocale] = Field(default_factory=list)


class WireNotice(_Wire):
    """``{"notice": "Asset deleted successfully."}``."""

    notice: str | None = None
