"""Webflow Data API v2 asset records as the API sends them (pydantic, unknown keys ignored).

Shapes from the v2 OpenAPI spec's asset paths and their examples (shared/external/webflow) and
the "Get Asset" page (seed 004); quirks (reference/cms-api-facts.md §3.9):

- ``displayName`` is usually ``<id>_<name>`` and may carry another extension than
  ``originalFileName``; ``originalFileName`` is the name the file was uploaded with;
- ``variants`` are Webflow's resized copies (their names URL-encoded); the original is
  ``hostedUrl``;
- the spec marks nothing nullable, yet its own examples send ``null`` (``altText``,
  ``parentFolder``, ``variants[].height``, ``externalReference``): every optional field here
  takes ``None``;
- ``folderId`` on list rows is new (2026-04); folder membership otherwise comes from each
  folder's ``assets`` id list.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WireVariant(_Wire):
    hosted_url: str | None = Field(default=None, alias="hostedUrl")
    original_file_name: str | None = Field(default=None, alias="originalFileName")
    format: str | None = None
    width: int | None = None
    height: int | None = None


class WireAsset(_Wire):
    id: str
    content_type: str | None = Field(default=None, alias="contentType")
    size: int | None = None
    site_id: str | None = Field(default=None, alias="siteId")
    hosted_url: str | None = Field(default=None, alias="hostedUrl")
    original_file_name: str | None = Field(default=None, alias="originalFileName")
    display_name: str | None = Field(default=None, alias="displayName")
    last_updated: str | None = Field(default=None, alias="lastUpdated")
    created_on: str | None = Field(default=None, alias="createdOn")
    variants: list[WireVariant] = Field(default_factory=list)
    alt_text: str | None = Field(default=None, alias="altText")
    folder_id: str | None = Field(default=None, alias="folderId")

    @field_validator("variants", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class Pagination(_Wire):
    limit: int | None = None
    offset: int | None = None
    total: int | None = None


class AssetList(_Wire):
    assets: list[WireAsset]
    pagination: Pagination | None = None


class WireFolder(_Wire):
    id: str
    display_name: str = Field(alias="displayName")
    parent_folder: str | None = Field(default=None, alias="parentFolder")
    assets: list[str] = Field(default_factory=list)
    site_id: str | None = Field(default=None, alias="siteId")

    @field_validator("assets", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class FolderList(_Wire):
    asset_folders: list[WireFolder] = Field(alias="assetFolders")
    pagination: Pagination | None = None


class UploadTicket(_Wire):
    """Create Asset's answer: the asset id and the presigned storage POST (step 2)."""

    id: str
    upload_url: str = Field(alias="uploadUrl")
    upload_details: dict[str, str] = Field(alias="uploadDetails")
    content_type: str | None = Field(default=None, alias="contentType")
    parent_folder: str | None = Field(default=None, alias="parentFolder")
    hosted_url: str | None = Field(default=None, alias="hostedUrl")
    asset_url: str | None = Field(default=None, alias="assetUrl")

    @field_validator("upload_details", mode="before")
    @classmethod
    def _fields_as_text(cls, value: Any) -> Any:
        # form fields are text; keep every key exactly as sent (its casing is signed)
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value


class WireLocale(_Wire):
    """One locale of a site (Get Site, ``locales.primary`` / ``locales.secondary[]``)."""

    id: str | None = None
    tag: str | None = None
    """``en-US``, ``fr-FR``: "a tag or code representing the locale"."""
    display_name: str | None = Field(default=None, alias="displayName")
    enabled: bool | None = None


class WireLocales(_Wire):
    primary: WireLocale | None = None
    secondary: list[WireLocale] = Field(default_factory=list)

    @field_validator("secondary", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class WireSite(_Wire):
    """``GET /sites/{site_id}``; ``locales`` is null on a site without Localization."""

    id: str
    locales: WireLocales | None = None
