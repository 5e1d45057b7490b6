"""Contentstack through the Content Delivery API v3: a stack's published assets, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.contentstack_delivery.config import READ_ONLY, ContentstackDeliveryConfig
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role, lazy_exports

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.contentstack_delivery.connector import ContentstackDeliveryConnector


def _open(config: Any, *, role: Role,
          transport: httpx.AsyncBaseTransport | None) -> Source:
    from connectors.contentstack_delivery.connector import (
        ContentstackDeliveryConnector,  # imported when opened
    )

    return ContentstackDeliveryConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.contentstack_delivery.demo import ContentstackDeliveryDemo

    return ContentstackDeliveryDemo(settings)


PLUGIN = ConnectorPlugin(name="contentstack-delivery", title="Contentstack Delivery API",
                         config=ContentstackDeliveryConfig, open=_open, writable=False,
                         read_only_reason=READ_ONLY, emulator=_emulator)

# the connector class on first use: a job file's config model loads no connector code
__getattr__ = lazy_exports(__name__, {
    "ContentstackDeliveryConnector": "connectors.contentstack_delivery.connector",
})

__all__ = ["PLUGIN", "READ_ONLY", "ContentstackDeliveryConfig", "ContentstackDeliveryConnector"]
