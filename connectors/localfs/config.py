"""The local folder's settings (``[source]`` / ``[target]`` with ``connector = "local"``).

Apart from the connector (:mod:`connectors.localfs.connector`), so that reading a job file
imports no file-system code (start-up, issue 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, PrivateAttr, StrictBool, field_validator

from connectors.settings import JobSection

FORBIDDEN_NAME_CHARS = "/\\\x00"
"""What a name we write may not hold: the separators of POSIX and Windows, and NUL (so a
folder written here can be copied to either); the plan renames such a name first."""

DEFAULT_MANIFEST = ".assetferry.json"
"""The metadata manifest's default name; one in a source subfolder is a local target's."""


class LocalConfig(JobSection):
    """``[source]`` / ``[target]`` of a job that reads or writes a local folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: Literal["local"]
    path: Path
    """Root folder. As a source it must exist; as a target it is created on the first write."""
    manifest: str = DEFAULT_MANIFEST
    """File name (at the root) of the metadata manifest."""
    include_system_files: StrictBool = False
    """As a source: also migrate operating-system clutter (``.DS_Store``, ``Thumbs.db``,
    ``desktop.ini``, ``._*`` AppleDouble files...); by default they are skipped, each listed in
    the plan with its reason and counted as excluded."""
    checksum: StrictBool = False
    """As a source: read each file's SHA-256 while listing (``Asset.checksums["sha256"]``),
    so a file whose bytes changed is a change whatever its size and modification time (as
    ``rsync --checksum``). Off, a file counts as unchanged while its size and mtime are (the
    quick check: a copy that keeps the mtime, ``cp -p``/``rsync -t``/``tar x``, over a file
    of the same size goes unseen). Costs a full read of every file per listing."""

    @field_validator("manifest")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if not value or value in (".", "..") or any(c in value for c in FORBIDDEN_NAME_CHARS):
            raise ValueError("must be a plain file name (no folders), e.g. '.assetferry.json'")
        return value

    _own_files: dict[Path, str] = PrivateAttr(default_factory=dict)

    @property
    def own_files(self) -> Mapping[Path, str]:
        """assetferry's own files (resolved path -> reason) a source listing skips: set by
        the pipeline (:meth:`with_own_files`), never by the job file."""
        return self._own_files

    def with_own_files(self, files: Mapping[Path, str]) -> LocalConfig:
        """A copy that skips ``files`` (the job's state database and its SQLite sidecars,
        given by the pipeline) as excluded entries with their reason. Paths are resolved."""
        copy = self.model_copy()
        copy._own_files = {**self._own_files, **{p.resolve(): r for p, r in files.items()}}
        return copy

    def scope(self) -> str:
        """The root folder, resolved (:attr:`connectors.base.Source.scope`, part of the job's
        route in the state DB), from the settings alone: ``status`` and ``export-map`` read
        the route without opening the connector."""
        return str(self.path.resolve())
