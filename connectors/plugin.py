"""How a connector describes itself once, so the pipeline reads one list of connectors.

Each connector package exposes ``PLUGIN = ConnectorPlugin(...)`` in its ``__init__``: its name
(the job file's ``connector = "..."``), its config model (the ``[source]`` / ``[target]`` table),
a factory that opens it, whether it can be a target, and, for API connectors, a factory for its
emulator with the demo seeding. ``pipeline/registry.py`` collects the built-in packages and the
third-party ones that installed distributions register under the entry-point group
``assetferry.connectors`` (the way pytest plugins and Singer taps are found)::

    # a third-party package's pyproject.toml
    [project.entry-points."assetferry.connectors"]
    mycms = "assetferry_mycms:PLUGIN"

The job file's connector union, the CLI's ``emulate`` / ``demo`` choices and the demo's job file
all come from that list (rclone's ``fs.Register`` in each backend's ``init()``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.emulation import ASGIApp

Role = Literal["source", "target"]


@dataclass(frozen=True, slots=True)
class DemoFile:
    """One file of the demo's sample library, as an emulator seeds it.

    ``folder`` is the folder path from the root; ``alt_de`` the German alt text; ``focus``
    a focus point as ``"x,y"`` fractions (0..1) or ``None``.
    """

    folder: tuple[str, ...]
    name: str
    data: bytes
    content_type: str
    title: str
    alt: str | None = None
    alt_de: str | None = None
    tags: tuple[str, ...] = ()
    focus: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class ConnectorSettings(Protocol):
    """What the pipeline reads of every connector's config model (a frozen pydantic model)."""

    @property
    def connector(self) -> str: ...


@runtime_checkable
class ScopedSettings(Protocol):
    """A config model that names its connector's scope itself
    (:attr:`connectors.base.Source.scope`, which returns the same): ``status`` and
    ``export-map`` then read the job's route without opening the connector, so they load no
    HTTP client (start-up, issue 12). Every built-in config is one; for a third-party one
    that is not, the connector is opened to ask."""

    def scope(self) -> str: ...


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562) that imports each name of ``names``
    (name -> module) on first use: a connector package exposes its connector class without
    importing it (and its HTTP client) when only its config model is needed."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


class EmulatedCMS(Protocol):
    """A connector's emulator as ``assetferry emulate`` and ``assetferry demo`` drive it."""

    @property
    def app(self) -> ASGIApp:
        """The ASGI app to serve (faults and rate limit included)."""
        ...

    @property
    def env(self) -> Mapping[str, str]:
        """Environment variables :meth:`job_section` refers to (``${VAR}``), with values."""
        ...

    @property
    def credentials(self) -> str:
        """The emulator's fixed test credentials, for the ``emulate`` banner."""
        ...

    def seed(self, files: Iterable[DemoFile]) -> None:
        """Fill the emulator with ``files`` (folders made as needed), enforcing no limits."""
        ...

    def job_section(self, base_url: str) -> str:
        """TOML lines (``connector = ...`` onwards) of a job file table for this emulator."""
        ...

    def holdings(self) -> tuple[int, int]:
        """How many assets and folders the emulator holds now."""
        ...

    def close(self) -> None:
        """Free what the emulator holds on disk."""
        ...


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """How ``emulate`` / ``demo`` want an emulator.

    ``rate_limit`` in the connector's own unit (requests per second, or per minute where the
    vendor documents a per-minute limit); ``None`` is the documented limit. ``unlimited``
    turns rate limiting off (the demo's source, so the run is paced by the target).
    """

    rate_limit: float | None = None
    unlimited: bool = False
    space_id: int | None = None
    """The emulated space, for a CMS whose API names one (Storyblok); ``None`` is a random
    one, so two emulators never share a space or its ids."""


@runtime_checkable
class ExcludesOwnFiles(Protocol):
    """A config whose connector lists files on a disk assetferry also writes to (the local
    folder): the pipeline hands it assetferry's own files, which the listing then skips as
    excluded entries with the reason given, never as assets."""

    def with_own_files(self, files: Mapping[Path, str]) -> Any:
        """A copy of the config that skips ``files`` (absolute, resolved paths -> reason)."""
        ...


class Opener(Protocol):
    def __call__(self, config: Any, *, role: Role,
                 transport: httpx.AsyncBaseTransport | None) -> Source:
        """Open the connector for ``config`` (an instance of the plugin's config model).

        ``transport`` routes its HTTP in-process (tests, demo); ``None`` is the network.
        """
        ...


@dataclass(frozen=True, slots=True)
class ConnectorPlugin:
    """One connector's description; see the module docstring."""

    name: str
    """The job file's ``connector = "<name>"``; the config model's ``connector`` literal."""
    config: type[BaseModel]
    """The ``[source]`` / ``[target]`` table's model (``extra="forbid"``, frozen)."""
    open: Opener
    writable: bool
    """Whether it can be a target (implements :class:`connectors.base.Target`)."""
    read_only_reason: str = ""
    """For a source-only connector: why it cannot be a target, said when a job file names it
    as one (``"Contento's Content API is read-only ..."``)."""
    title: str = ""
    """Human name for messages ("Contentstack"); defaults to ``name``."""
    emulator: Callable[[EmulatorSettings], EmulatedCMS] | None = None
    """Builds the emulator for ``emulate`` and ``demo``; ``None`` when there is none."""
    path_keys: tuple[str, ...] = ()
    """Config keys holding file paths, taken relative to the job file's folder."""
    unit: str = "requests/s"
    """The unit of :attr:`EmulatorSettings.rate_limit` for this connector's emulator."""
    emulated_spaces: bool = False
    """Whether its emulator takes :attr:`EmulatorSettings.space_id` (``emulate --space-id``)."""

    @property
    def label(self) -> str:
        return self.title or self.name
