"""Contento (Content API v1, read-only): a site's assets as a source."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import Source
from connectors.contento.config import ContentoConfig
from connectors.contento.connector import READ_ONLY, ContentoConnector
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role


def _open(config: Any, *, role: Role, transport: httpx.AsyncBaseTransport | None) -> Source:
    return ContentoConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.contento.demo import ContentoDemo  # the emulator only when asked for

    return ContentoDemo(settings)


PLUGIN = ConnectorPlugin(name="contento", title="Contento", config=ContentoConfig, open=_open,
                         writable=False, read_only_reason=READ_ONLY, emulator=_emulator,
                         unit="requests/minute")

__all__ = ["PLUGIN", "READ_ONLY", "ContentoConfig", "ContentoConnector"]
