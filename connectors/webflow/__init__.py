"""Webflow (Data API v2): a site's assets and asset folders, as a source and a target."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import Source
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role
from connectors.webflow.config import WebflowConfig
from connectors.webflow.connector import WebflowConnector


def _open(config: Any, *, role: Role, transport: httpx.AsyncBaseTransport | None) -> Source:
    return WebflowConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.webflow.demo import WebflowDemo  # the emulator only when asked for

    return WebflowDemo(settings)


PLUGIN = ConnectorPlugin(name="webflow", title="Webflow", config=WebflowConfig, open=_open,
                         writable=True, emulator=_emulator, unit="requests/minute")

__all__ = ["PLUGIN", "WebflowConfig", "WebflowConnector"]
