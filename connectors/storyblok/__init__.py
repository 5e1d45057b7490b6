"""Storyblok Management API (MAPI v1) connector: asset folders and assets of one space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role, lazy_exports
from connectors.storyblok.config import StoryblokConfig

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.storyblok.connector import StoryblokConnector


def _open(config: Any, *, role: Role,
          transport: httpx.AsyncBaseTransport | None) -> Source:
    from connectors.storyblok.connector import StoryblokConnector  # imported when opened

    return StoryblokConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.storyblok.demo import StoryblokDemo  # the emulator only when asked for

    return StoryblokDemo(settings)


PLUGIN = ConnectorPlugin(name="storyblok", title="Storyblok", config=StoryblokConfig,
                         open=_open, writable=True, emulator=_emulator, emulated_spaces=True)

# the connector class on first use: a job file's config model loads no connector code
__getattr__ = lazy_exports(__name__, {
    "StoryblokConnector": "connectors.storyblok.connector",
})

__all__ = ["PLUGIN", "StoryblokConfig", "StoryblokConnector"]
