"""Job-file settings of a Contento site (Content API v1, read-only).

The keys are the job file's interface::

    [source]
    connector = "contento"
    site_id = "s_01jDSh2WkN8Kp6SvRA8Ne5CJ69"
    token = "${CONTENTO_TOKEN}"
    # base_url = "http://127.0.0.1:8125/api"   # the API root (emulator, proxy); /v1 is added

    [source.folders]                  # Contento's API cannot list folders: name them here
    "af_01jDxyz..." = "Marketing/Heroes"

Facts (reference/cms-api-facts.md §4): one host ``https://app.contento.io/api/v1``,
``Authorization: Bearer`` plus ``X-CONTENTO-SITE``, 600 requests per minute per token, folder
ids (``af_...``) usable only as a ``folder_id`` filter.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from connectors.settings import BaseUrl, JobSection, Rate, Token

DEFAULT_API_ROOT = "https://app.contento.io/api"
"""The API root; every path lives under ``/v1`` (seed 002)."""

DEFAULT_REQUESTS_PER_SECOND = 10.0
"""600 requests per minute per API token, not configurable (facts §4.6)."""


def folder_path(value: str) -> tuple[str, ...]:
    """``"Marketing/Heroes"`` as ``("Marketing", "Heroes")``; ValueError for an empty part."""
    parts = tuple(p.strip() for p in value.strip().strip("/").split("/"))
    if not parts or any(not p for p in parts):
        raise ValueError(f"{value!r} is not a folder path like \"Marketing/Heroes\"")
    return parts


READ_ONLY = (
    "Contento's Content API is read-only (no upload, update or delete endpoint exists), "
    "so it can only be a [source]"
)
"""Why it cannot be a target (said when a job file names it as one)."""


class ContentoConfig(JobSection):
    """One Contento site, read through the Content API with an account API key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: Literal["contento"]
    site_id: str
    token: Token
    base_url: BaseUrl = None
    """The API root (``http(s)://host[:port][/prefix]``); the connector adds ``/v1``."""
    folders: dict[str, str] = Field(default_factory=dict)
    """Folder id (``af_...``) -> folder path (``"Marketing/Heroes"``) for the folders to keep."""
    requests_per_second: Rate = None
    """Pacing override; default 10 (600 requests per minute, the documented limit)."""

    @field_validator("site_id")
    @classmethod
    def _site(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (the site's id, e.g. s_01jDSh2WkN8K...)")
        return value

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for folder_id, path in value.items():
            key = folder_id.strip()
            if not key or any(c in key for c in "/?#&="):
                raise ValueError(f"{folder_id!r} is not a Contento folder id (af_...)")
            out[key] = "/".join(folder_path(path))
        return out

    def scope(self) -> str:
        """Which site the connector points at (:attr:`connectors.base.Source.scope`,
        part of the job's route in the state DB), from the settings alone: ``status`` and
        ``export-map`` read the route without opening the connector."""
        return self.site_id

    def api_base(self) -> str:
        """The versioned base URL ending in ``/v1/``, e.g. ``https://app.contento.io/api/v1/``."""
        root = (self.base_url or DEFAULT_API_ROOT).rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        return f"{root}/v1/"

    def named_folders(self) -> dict[str, tuple[str, ...]]:
        return {k: folder_path(v) for k, v in self.folders.items()}
