"""Contentstack (Content Management API v3): stack assets and asset folders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.contentstack.config import ContentstackConfig
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role, lazy_exports

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.contentstack.connector import ContentstackConnector


def _open(config: Any, *, role: Role,
          transport: httpx.AsyncBaseTransport | None) -> Source:
    from connectors.contentstack.connector import ContentstackConnector  # imported when opened

    return ContentstackConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.contentstack.demo import ContentstackDemo  # the emulator only when asked

    return ContentstackDemo(settings)


PLUGIN = ConnectorPlugin(name="contentstack", title="Contentstack", config=ContentstackConfig,
                         open=_open, writable=True, emulator=_emulator)

# the connector class on first use: a job file's config model loads no connector code
__getattr__ = lazy_exports(__name__, {
    "ContentstackConnector": "connectors.contentstack.connector",
})

__all__ = ["PLUGIN", "ContentstackConfig", "ContentstackConnector"]
