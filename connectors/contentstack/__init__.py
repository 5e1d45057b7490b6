"""Contentstack (Content Management API v3): stack assets and asset folders."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import Source
from connectors.contentstack.config import ContentstackConfig
from connectors.contentstack.connector import ContentstackConnector
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role


def _open(config: Any, *, role: Role, transport: httpx.AsyncBaseTransport | None) -> Source:
    return ContentstackConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.contentstack.demo import ContentstackDemo  # the emulator only when asked

    return ContentstackDemo(settings)


PLUGIN = ConnectorPlugin(name="contentstack", title="Contentstack", config=ContentstackConfig,
                         open=_open, writable=True, emulator=_emulator)

__all__ = ["PLUGIN", "ContentstackConfig", "ContentstackConnector"]
