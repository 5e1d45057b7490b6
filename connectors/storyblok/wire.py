"""Pydantic models of the Storyblok MAPI JSON we read. Only the connector sees them.

Real responses carry ``null`` in most string fields and ``meta_data: []`` (a PHP empty array)
where the spec says object, so every field here is optional and ``meta_data`` accepts both.
Ids are 53-bit integers; some documents spell them as strings, which pydantic's lax mode
turns into the same exact ``int``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WireTag(_Wire):
    id: int
    name: str
    object_type: str | None = None


class WireAsset(_Wire):
    id: int
    filename: str | None = None
    """The full public URL, not a name."""
    short_filename: str | None = None
    space_id: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    asset_folder_id: int | None = None
    content_type: str | None = None
    content_length: int | None = None
    alt: str | None = None
    title: str | None = None
    copyright: str | None = None
    source: str | None = None
    focus: str | None = None
    is_private: bool | None = None
    internal_tag_ids: list[int] | None = None
    internal_tags_list: list[WireTag] | None = None
    meta_data: dict[str, Any] = Field(default_factory=dict)
    signed_url: str | None = None

    @field_validator("meta_data", mode="before")
    @classmethod
    def _empty_list_is_empty_dict(cls, value: Any) -> Any:
        if value is None or value == []:
            return {}
        return value


class AssetList(_Wire):
    assets: list[WireAsset]


class WireFolder(_Wire):
    id: int
    name: str
    parent_id: int | None = None
    uuid: str | None = None
    parent_uuid: str | None = None


class FolderList(_Wire):
    asset_folders: list[WireFolder]


class FolderEnvelope(_Wire):
    asset_folder: WireFolder


class SignedResponse(_Wire):
    """Step 1 of an upload: where and how to POST the file to storage."""

    id: int
    post_url: str
    fields: dict[str, str]
    pretty_url: str | None = None
    public_url: str | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value


class FinishResponse(_Wire):
    """Step 3: docs show a minimal asset; the older spec a ``{"message": ...}``."""

    id: int | None = None
    filename: str | None = None
    message: str | None = None


class InternalTagList(_Wire):
    internal_tags: list[WireTag]


class InternalTagEnvelope(_Wire):
    internal_tag: WireTag


class SignedAsset(_Wire):
    signed_url: str


class SignedAssetEnvelope(_Wire):
    """CDA ``GET /v2/cdn/assets/me`` answer for a private asset."""

    asset: SignedAsset
