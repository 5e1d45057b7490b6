"""The one list of connectors: built-in packages plus installed third-party ones.

Every connector package exposes ``PLUGIN`` (:class:`connectors.plugin.ConnectorPlugin`). The
built-ins are listed in :data:`BUILTIN` (adding a CMS here is one line); others come from
installed distributions through the entry-point group ``assetferry.connectors``, each entry
point naming a ``ConnectorPlugin`` object. A plugin that fails to load, or that reuses a name,
is skipped with a warning in the log; it never stops the other connectors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from connectors.errors import ConfigError
from connectors.plugin import ConnectorPlugin, ConnectorSettings, ExcludesOwnFiles, Role

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "assetferry.connectors"
BUILTIN = (
    "connectors.localfs",
    "connectors.contentstack",
    "connectors.storyblok",
    "connectors.contento",
    "connectors.contentstack_delivery",
    "connectors.webflow",
)
"""Modules of the built-in connectors, each with a ``PLUGIN``."""


@cache
def plugins() -> dict[str, ConnectorPlugin]:
    """Every known connector by name: built-ins first, then entry points (cached)."""
    found: dict[str, ConnectorPlugin] = {}
    for module in BUILTIN:
        plugin = importlib.import_module(module).PLUGIN
        found[plugin.name] = plugin
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            log.warning("registry.plugin_failed", entry_point=ep.value, error=repr(exc))
            continue
        if not isinstance(plugin, ConnectorPlugin):
            log.warning("registry.plugin_failed", entry_point=ep.value,
                        error="not a connectors.plugin.ConnectorPlugin")
            continue
        if plugin.name in found:
            log.warning("registry.plugin_duplicate", entry_point=ep.value, name=plugin.name)
            continue
        found[plugin.name] = plugin
    return found


def plugin_for(name: str) -> ConnectorPlugin:
    """The plugin called ``name``; ConfigError naming the known ones otherwise."""
    known = plugins()
    if name not in known:
        raise ConfigError(f"unknown connector {name!r}; use one of: {', '.join(known)}")
    return known[name]


def writable() -> list[str]:
    return [name for name, p in plugins().items() if p.writable]


def emulated() -> list[str]:
    """Names of the connectors that ship an emulator (``assetferry emulate`` choices)."""
    return [name for name, p in plugins().items() if p.emulator is not None]


def open_connector(
    config: ConnectorSettings,
    *,
    role: Role = "source",
    transport: httpx.AsyncBaseTransport | None = None,
    own_files: Mapping[Path, str] | None = None,
) -> Source:
    """A connector for ``config``; ``transport`` routes its HTTP in-process (tests, demo).

    ``own_files`` (resolved path -> reason): assetferry's own files, which a connector whose
    config can take them (:class:`connectors.plugin.ExcludesOwnFiles`) lists as excluded.
    """
    if own_files and isinstance(config, ExcludesOwnFiles):
        config = config.with_own_files(own_files)
    return plugin_for(config.connector).open(config, role=role, transport=transport)
