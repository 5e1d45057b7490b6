"""Storyblok Management API (MAPI v1) connector: asset folders and assets of one space."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import Source
from connectors.plugin import ConnectorPlugin, EmulatedCMS, EmulatorSettings, Role
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector


def _open(config: Any, *, role: Role, transport: httpx.AsyncBaseTransport | None) -> Source:
    return StoryblokConnector(config, transport=transport)


def _emulator(settings: EmulatorSettings) -> EmulatedCMS:
    from connectors.storyblok.demo import StoryblokDemo  # the emulator only when asked for

    return StoryblokDemo(settings)


PLUGIN = ConnectorPlugin(name="storyblok", title="Storyblok", config=StoryblokConfig,
                         open=_open, writable=True, emulator=_emulator, emulated_spaces=True)

__all__ = ["PLUGIN", "StoryblokConfig", "StoryblokConnector"]
