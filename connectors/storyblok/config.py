"""Settings of the Storyblok Management API (MAPI v1) connector."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    ConfigDict,
    SecretStr,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from connectors.settings import BaseUrl, JobSection, Rate, Token

Region = Literal["eu", "us", "ca", "ap", "cn"]

MAPI_HOSTS: dict[str, str] = {
    "eu": "https://mapi.storyblok.com",
    "us": "https://api-us.storyblok.com",
    "ca": "https://api-ca.storyblok.com",
    "ap": "https://api-ap.storyblok.com",
    "cn": "https://app.storyblokchina.cn",
}
"""MAPI host per region (the API lives under ``/v1``)."""

CDA_HOSTS: dict[str, str] = {
    "eu": "https://api.storyblok.com",
    "us": "https://api-us.storyblok.com",
    "ca": "https://api-ca.storyblok.com",
    "ap": "https://api-ap.storyblok.com",
    "cn": "https://app.storyblokchina.cn",
}
"""Content Delivery API host per region (``/v2/cdn``); used only for private-asset URLs."""

DEFAULT_RATE = 3.0
"""MAPI requests per second on the Starter plan; paid plans allow 6."""
MAX_RATE = 6.0
MAX_SPACE_ID = 2**53 - 1


class StoryblokConfig(JobSection):
    """``[source]`` / ``[target]`` table of a job file for a Storyblok space.

    ``token`` is a personal access token (sent raw as ``Authorization``) or, with
    ``oauth = true``, an OAuth token (sent as ``Bearer``). ``base_url`` (an emulator, a proxy)
    overrides ``region`` and lifts the 6 requests/s cap.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: Literal["storyblok"]
    space_id: StrictInt
    token: Token
    oauth: StrictBool = False
    region: Region = "eu"
    base_url: BaseUrl = None
    asset_token: SecretStr | None = None
    """Asset access token: signed URLs of private assets come from the CDA with it."""
    requests_per_second: Rate = None

    @field_validator("space_id")
    @classmethod
    def _space_id_in_range(cls, value: int) -> int:
        if not 0 < value <= MAX_SPACE_ID:
            raise ValueError("space_id must be a positive integer of at most 53 bits")
        return value

    @model_validator(mode="after")
    def _rate_within_plan(self) -> StoryblokConfig:
        rate = self.requests_per_second
        if rate is None:
            return self
        if rate > MAX_RATE and self.base_url is None:
            raise ValueError(
                f"requests_per_second={rate:g} is above Storyblok's Management API limit "
                f"({DEFAULT_RATE:g}/s on Starter, {MAX_RATE:g}/s on paid plans); "
                f"use at most {MAX_RATE:g}"
            )
        return self

    @property
    def rate(self) -> float:
        """Requests per second the connector paces MAPI calls at."""
        return self.requests_per_second or DEFAULT_RATE

    def scope(self) -> str:
        """Which space the connector points at (:attr:`connectors.base.Source.scope`,
        part of the job's route in the state DB), from the settings alone: ``status`` and
        ``export-map`` read the route without opening the connector."""
        return str(self.space_id)

    def host(self) -> str:
        """Root of the MAPI host, e.g. ``https://mapi.storyblok.com``."""
        return self.base_url or MAPI_HOSTS[self.region]

    def api_base(self) -> str:
        """E.g. ``https://mapi.storyblok.com/v1/spaces/{space_id}/``."""
        return f"{self.host()}/v1/spaces/{self.space_id}/"

    def cda_assets_me_url(self) -> str:
        """CDA endpoint that turns a private asset's URL into a signed URL."""
        root = self.base_url or CDA_HOSTS[self.region]
        return f"{root}/v2/cdn/assets/me"
