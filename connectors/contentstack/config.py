"""Job-file settings of a Contentstack stack (Content Management API v3).

The keys are the job file's interface::

    [target]
    connector = "contentstack"
    api_key = "blt0123456789abcdef"          # the stack's API key
    management_token = "${CS_MANAGEMENT_TOKEN}"   # or authtoken = "${CS_AUTHTOKEN}"
    region = "eu"                            # na | eu | au | azure-na | azure-eu | gcp-na | gcp-eu
    branch = "main"
    publish = {environments = ["production"], locales = ["en-us"]}   # target only; optional
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    ConfigDict,
    SecretStr,
    StrictBool,
    field_validator,
    model_validator,
)

from connectors.settings import BaseUrl, JobSection, Rate

Region = Literal["na", "eu", "au", "azure-na", "azure-eu", "gcp-na", "gcp-eu"]

CMA_HOSTS: dict[str, str] = {
    "na": "https://api.contentstack.io",
    "eu": "https://eu-api.contentstack.com",
    "au": "https://au-api.contentstack.com",
    "azure-na": "https://azure-na-api.contentstack.com",
    "azure-eu": "https://azure-eu-api.contentstack.com",
    "gcp-na": "https://gcp-na-api.contentstack.com",
    "gcp-eu": "https://gcp-eu-api.contentstack.com",
}
"""Content Management API host per region (reference/cms-api-facts.md §1.1)."""

CDA_HOSTS: dict[str, str] = {
    "na": "https://cdn.contentstack.io",
    "eu": "https://eu-cdn.contentstack.com",
    "au": "https://au-cdn.contentstack.com",
    "azure-na": "https://azure-na-cdn.contentstack.com",
    "azure-eu": "https://azure-eu-cdn.contentstack.com",
    "gcp-na": "https://gcp-na-cdn.contentstack.com",
    "gcp-eu": "https://gcp-eu-cdn.contentstack.com",
}
"""Content Delivery API host per region: not the management hosts (facts §1.1)."""


def v3_base(root: str) -> str:
    """``root`` (a host, maybe with a prefix or ``/v3``) as the API base ending in ``/v3/``."""
    root = root.rstrip("/")
    if root.endswith("/v3"):
        root = root[: -len("/v3")]
    return f"{root}/v3/"

DEFAULT_REQUESTS_PER_SECOND = 10.0
"""Documented CMA limit: 10 reads/s and 10 writes/s per organization (facts §1.7)."""


class PublishConfig(JobSection):
    """``[target] publish = {environments = [...], locales = [...]}``: publish every migrated
    asset to each environment (by name) in each locale (by code), CMA "Publish an asset"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environments: tuple[str, ...] = ()
    locales: tuple[str, ...] = ()
    enabled: StrictBool = True
    """``publish = false`` is read as ``enabled = false`` (publish nothing)."""

    @field_validator("environments", "locales")
    @classmethod
    def _names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(v.strip() for v in values))
        if not all(names):
            raise ValueError("a name is empty")
        return names

    @model_validator(mode="after")
    def _both(self) -> PublishConfig:
        if self.enabled and not (self.environments and self.locales):
            raise ValueError("give both environments and locales, e.g. publish = "
                             '{environments = ["production"], locales = ["en-us"]}, '
                             "or publish = false")
        return self


class ContentstackConfig(JobSection):
    """One stack and branch, with exactly one kind of token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: Literal["contentstack"]
    api_key: str
    management_token: SecretStr | None = None
    authtoken: SecretStr | None = None
    region: Region = "na"
    base_url: BaseUrl = None
    """Overrides ``region`` (emulator, proxy): ``http(s)://host[:port][/prefix]``."""
    branch: str = "main"
    requests_per_second: Rate = None
    """Pacing override; default 10 (the documented CMA limit)."""
    publish: PublishConfig | None = None
    """Target only. A table: publish every migrated asset there. Unset: publish where the
    source has each asset published (a Contentstack source's ``publish_details``; nothing for
    other sources). ``false``: publish nothing. ``true`` is refused: it reads as "publish
    everything" but says nowhere."""

    @field_validator("publish", mode="before")
    @classmethod
    def _publish_switch(cls, value: object) -> object:
        if value is False:
            return {"enabled": False}
        if isinstance(value, dict) or value is None:
            return value
        shown = "true" if value is True else f'"{value}"' if isinstance(value, str) else value
        raise ValueError(
            f"got {shown}; give a table (publish = {{environments = [\"production\"], "
            "locales = [\"en-us\"]}), false to publish nothing, or leave it out to publish "
            "where the source has each asset published")

    @field_validator("api_key", "branch")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _one_token(self) -> ContentstackConfig:
        given = [
            name
            for name, token in (
                ("management_token", self.management_token),
                ("authtoken", self.authtoken),
            )
            if token is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of management_token or authtoken "
                f"({'both are set' if given else 'neither is set'})"
            )
        token = self.management_token or self.authtoken
        if token is not None and not token.get_secret_value().strip():
            raise ValueError(
                f"{given[0]} is empty; is the environment variable it refers to set?"
            )
        return self

    def scope(self) -> str:
        """Which stack and branch the connector points at (:attr:`connectors.base.Source.scope`,
        part of the job's route in the state DB), from the settings alone: ``status`` and
        ``export-map`` read the route without opening the connector."""
        return f"{self.api_key}@{self.branch}"

    def api_base(self) -> str:
        """The CMA base URL ending in ``/v3/``, e.g. ``https://eu-api.contentstack.com/v3/``."""
        return v3_base(self.base_url or CMA_HOSTS[self.region])

    def token_header(self) -> tuple[str, SecretStr]:
        """The credential header for the configured token kind.

        A management token goes raw in ``authorization`` (no "Bearer" prefix, facts §1.2);
        a user session token goes in ``authtoken``.
        """
        if self.management_token is not None:
            return "authorization", self.management_token
        assert self.authtoken is not None  # noqa: S101 - guaranteed by _one_token
        return "authtoken", self.authtoken

    @property
    def token_name(self) -> str:
        return "management_token" if self.management_token is not None else "authtoken"
