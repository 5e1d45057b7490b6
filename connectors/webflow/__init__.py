"""Webflow (Data API v2): a site's assets and asset folders, as a source and a target."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role, lazy_exports
from connectors.webflow.config import WebflowConfig

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.webflow.connector import WebflowConnector


def _open(config: Any, *, role: Role,
          transport: httpx.AsyncBaseTransport | None) -> Source:
    from connectors.webflow.connector import WebflowConnector  # imported when opened

    return WebflowConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.webflow.demo import WebflowDemo  # the emulator only when asked for

    return WebflowDemo(settings)


PLUGIN = ConnectorPlugin(name="webflow", title="Webflow", config=WebflowConfig, open=_open,
                         writable=True, emulator=_emulator, unit="requests/minute")

# the connector class on first use: a job file's config model loads no connector code
__getattr__ = lazy_exports(__name__, {
    "WebflowConnector": "connectors.webflow.connector",
})

__all__ = ["PLUGIN", "WebflowConfig", "WebflowConnector"]
