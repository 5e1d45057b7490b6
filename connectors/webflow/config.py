"""Settings of the Webflow Data API v2 connector (reference/cms-api-facts.md §3)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, field_validator, model_validator

from connectors.settings import BaseUrl, JobSection, PositiveRate, Token

API_HOST = "https://api.webflow.com"
"""The Data API's only host; the API lives under ``/v2`` (§3.1)."""
DEFAULT_RATE_PER_MINUTE = 60
"""Starter and Basic plans; CMS, eCommerce and Business allow 120 (§3.7, "Rate Limits")."""
MAX_RATE_PER_MINUTE = 120
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


class WebflowConfig(JobSection):
    """``[source]`` / ``[target]`` table of a job file for one Webflow site.

    ``token`` is a site token, workspace token or OAuth token with ``assets:read`` (and
    ``assets:write`` for a target), sent as ``Authorization: Bearer``. ``base_url`` (an
    emulator, a proxy) is the API root without ``/v2``, e.g. ``http://127.0.0.1:8125``, and
    lifts the 120 requests/minute cap. ``locales`` names the locales whose alt text is read
    and written (Webflow's Localization; none by default): ``locales = {de = "<localeId>"}``
    maps a locale code to Webflow's id; ``locales = "site"`` takes every secondary locale of
    the site under its tag (``de-DE``), read once from ``GET /v2/sites/{site_id}`` (the token
    then also needs ``sites:read``), so the job file names no id and ``[mapping.locales]``
    maps source codes onto the site's tags.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: Literal["webflow"]
    site_id: str
    token: Token
    base_url: BaseUrl = None
    rate_limit_per_minute: PositiveRate = DEFAULT_RATE_PER_MINUTE
    locales: dict[str, str] | Literal["site"] = {}
    """Locale code -> Webflow ``localeId``; a list of ids reads each under its own id;
    ``"site"``: the site's secondary locales by tag, read from the site."""

    @field_validator("site_id")
    @classmethod
    def _site_id_is_object_id(cls, value: str) -> str:
        value = value.strip()
        if not _OBJECT_ID.match(value):
            raise ValueError(
                "site_id must be the site's 24-character hex id (Site settings > General, or "
                "GET /v2/sites)"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and value.endswith("/v2"):
            return value[: -len("/v2")]
        return value

    @field_validator("locales", mode="before")
    @classmethod
    def _list_is_ids(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return {v.strip(): v.strip() for v in value if v.strip()}
        if isinstance(value, dict) or (isinstance(value, str) and value.strip() == "site"):
            return value.strip() if isinstance(value, str) else value
        raise ValueError(
            'locales must be "site" (the site\'s locales, by tag), a table {de = "<localeId>"} '
            f"or a list of locale ids (text), got {value!r}"
        )

    @model_validator(mode="after")
    def _rate_within_plans(self) -> WebflowConfig:
        if self.base_url is None and self.rate_limit_per_minute > MAX_RATE_PER_MINUTE:
            raise ValueError(
                f"rate_limit_per_minute={self.rate_limit_per_minute:g} is above Webflow's "
                f"documented limits ({DEFAULT_RATE_PER_MINUTE}/min on Starter and Basic, "
                f"{MAX_RATE_PER_MINUTE}/min on CMS, eCommerce and Business); Enterprise "
                'limits are custom: with one, also set base_url = "https://api.webflow.com"'
            )
        return self

    @property
    def requests_per_second(self) -> float:
        return self.rate_limit_per_minute / 60.0

    def scope(self) -> str:
        """Which site the connector points at (:attr:`connectors.base.Source.scope`,
        part of the job's route in the state DB), from the settings alone: ``status`` and
        ``export-map`` read the route without opening the connector."""
        return self.site_id

    def api_base(self) -> str:
        """E.g. ``https://api.webflow.com/v2/``."""
        return f"{self.base_url or API_HOST}/v2/"
