"""Contentstack through the Content Delivery API v3: a stack's published assets, read-only."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import Source
from connectors.contentstack_delivery.config import ContentstackDeliveryConfig
from connectors.contentstack_delivery.connector import READ_ONLY, ContentstackDeliveryConnector
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role


def _open(config: Any, *, role: Role, transport: httpx.AsyncBaseTransport | None) -> Source:
    return ContentstackDeliveryConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.contentstack_delivery.demo import ContentstackDeliveryDemo

    return ContentstackDeliveryDemo(settings)


PLUGIN = ConnectorPlugin(name="contentstack-delivery", title="Contentstack Delivery API",
                         config=ContentstackDeliveryConfig, open=_open, writable=False,
                         read_only_reason=READ_ONLY, emulator=_emulator)

__all__ = ["PLUGIN", "READ_ONLY", "ContentstackDeliveryConfig", "ContentstackDeliveryConnector"]
