"""Job-file settings of a Contentstack stack read through the Content Delivery API (CDA v3).

The keys are the job file's interface::

    [source]
    connector = "contentstack-delivery"
    api_key = "blt0123456789abcdef"             # the stack's API key
    delivery_token = "${CS_DELIVERY_TOKEN}"     # an environment's delivery token
    environment = "production"                  # required: only assets published there
    # locale = "en-us"                          # default: the master locale
    # include_fallback = false                  # fall back to the fallback locale's version
    # branch = "main"
    region = "eu"                         # na | eu | au | azure-na | azure-eu | gcp-na | gcp-eu
    # base_url = "http://127.0.0.1:8124"        # overrides region (emulator, proxy)

The region tables are the management connector's (:mod:`connectors.contentstack.config`): the
delivery hosts (``cdn.contentstack.io``, ``eu-cdn.contentstack.com``...) are not the management
hosts (reference/cms-api-facts.md §1.1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, StrictBool, field_validator

from connectors.contentstack.config import CDA_HOSTS, Region, v3_base
from connectors.settings import BaseUrl, JobSection, Rate, Token

DEFAULT_REQUESTS_PER_SECOND = 10.0
"""The CDA's own limit is not documented (its answers are CDN-cached, facts §1.7); we pace
like the management API's documented 10 requests per second."""


READ_ONLY = (
    "the Contentstack Delivery API is read-only (a delivery token can only read published "
    "content); to write to a stack use connector = \"contentstack\" with a management token"
)
"""Why it cannot be a target (said when a job file names it as one)."""


class ContentstackDeliveryConfig(JobSection):
    """One stack, branch and environment (and optionally locale), read with a delivery token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: Literal["contentstack-delivery"]
    api_key: str
    delivery_token: Token
    environment: str
    locale: str | None = None
    include_fallback: StrictBool = False
    branch: str = "main"
    region: Region = "na"
    base_url: BaseUrl = None
    """Overrides ``region`` (emulator, proxy): ``http(s)://host[:port][/prefix]``."""
    requests_per_second: Rate = None

    @field_validator("api_key", "environment", "branch")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (leave it out for the master locale)")
        return value.strip().lower() if value is not None else None

    def scope(self) -> str:
        """Which stack, branch, environment and locale the connector points at
        (:attr:`connectors.base.Source.scope`, part of the job's route in the state DB), from
        the settings alone: ``status`` and ``export-map`` read the route without opening the
        connector."""
        locale = f"/{self.locale}" if self.locale else ""
        return f"{self.api_key}@{self.branch}:{self.environment}{locale}"

    def api_base(self) -> str:
        """The CDA base URL ending in ``/v3/``, e.g. ``https://eu-cdn.contentstack.com/v3/``."""
        return v3_base(self.base_url or CDA_HOSTS[self.region])
