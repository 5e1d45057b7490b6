"""Build a connector from its validated config. The only place that knows every connector."""

from __future__ import annotations

from typing import Literal

import httpx

from connectors.base import Source
from connectors.contentstack.config import ContentstackConfig
from connectors.contentstack.connector import ContentstackConnector
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector
from pipeline.config import ConnectorConfig


def open_connector(
    config: ConnectorConfig,
    *,
    role: Literal["source", "target"] = "source",
    transport: httpx.AsyncBaseTransport | None = None,
) -> Source:
    """A connector for ``config``; ``transport`` routes its HTTP in-process (tests, demo)."""
    if isinstance(config, LocalConfig):
        return LocalFolderConnector(config, role=role)
    if isinstance(config, ContentstackConfig):
        return ContentstackConnector(config, transport=transport)
    if isinstance(config, StoryblokConfig):
        return StoryblokConnector(config, transport=transport)
    raise TypeError(f"no connector for {type(config).__name__}")  # pragma: no cover
