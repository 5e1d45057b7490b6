"""Contento (Content API v1, read-only): a site's assets as a source."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.contento.config import READ_ONLY, ContentoConfig
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role, lazy_exports

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.contento.connector import ContentoConnector


def _open(config: Any, *, role: Role,
          transport: httpx.AsyncBaseTransport | None) -> Source:
    from connectors.contento.connector import ContentoConnector  # imported when opened

    return ContentoConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.contento.demo import ContentoDemo  # the emulator only when asked for

    return ContentoDemo(settings)


PLUGIN = ConnectorPlugin(name="contento", title="Contento", config=ContentoConfig, open=_open,
                         writable=False, read_only_reason=READ_ONLY, emulator=_emulator,
                         unit="requests/minute")

# the connector class on first use: a job file's config model loads no connector code
__getattr__ = lazy_exports(__name__, {
    "ContentoConnector": "connectors.contento.connector",
})

__all__ = ["PLUGIN", "READ_ONLY", "ContentoConfig", "ContentoConnector"]
