"""The metadata manifest of the local folder connector: a JSON file at the root.

It holds what a file system cannot (title, alt text, tags, locales...), keyed by the
asset's path relative to the root; the format is described in ``connectors.localfs``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import AssetMeta, LocalizedText
from connectors.errors import ConfigError
from connectors.localfs.files import atomic_write, os_error


class _LocaleEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str | None = None
    description: str | None = None
    alt_text: str | None = None
    copyright: str | None = None


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str | None = None
    description: str | None = None
    alt_text: str | None = None
    tags: tuple[str, ...] = ()
    copyright: str | None = None
    focus: str | None = None
    locales: dict[str, _LocaleEntry] = Field(default_factory=dict)
    source_id: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    def meta(self) -> AssetMeta:
        return AssetMeta(
            title=self.title,
            description=self.description,
            alt_text=self.alt_text,
            tags=tuple(self.tags),
            copyright=self.copyright,
            focus=self.focus,
            locales={
                code: LocalizedText(
                    title=loc.title,
                    description=loc.description,
                    alt_text=loc.alt_text,
                    copyright=loc.copyright,
                )
                for code, loc in self.locales.items()
            },
        )

    @classmethod
    def of(
        cls, meta: AssetMeta, *, source_id: str | None, extra: Mapping[str, str]
    ) -> Entry:
        return cls(
            title=meta.title,
            description=meta.description,
            alt_text=meta.alt_text,
            tags=tuple(meta.tags),
            copyright=meta.copyright,
            focus=meta.focus,
            locales={
                code: _LocaleEntry(
                    title=loc.title,
                    description=loc.description,
                    alt_text=loc.alt_text,
                    copyright=loc.copyright,
                )
                for code, loc in meta.locales.items()
            },
            source_id=source_id,
            extra=dict(extra),
        )


class _ManifestFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    assets: dict[str, Entry] = Field(default_factory=dict)


ENTRY_KEYS = ", ".join(Entry.model_fields)
LOCALE_KEYS = ", ".join(_LocaleEntry.model_fields)


def _problem(err: Any) -> str:
    """One validation error in the manifest's own terms: the asset path, then the key."""
    loc = [str(p) for p in err["loc"]]
    msg = str(err["msg"])
    if len(loc) >= 3 and loc[0] == "assets":
        where = f"asset {loc[1]!r}, key {'.'.join(loc[2:])!r}"
        if err["type"] == "extra_forbidden":
            allowed = LOCALE_KEYS if len(loc) >= 5 and loc[2] == "locales" else ENTRY_KEYS
            msg = f"unknown key (allowed: {allowed})"
        return f"{where}: {msg}"
    if len(loc) == 2 and loc[0] == "assets":
        return f"asset {loc[1]!r}: {msg}"
    return f"{'.'.join(loc) or '(top)'}: {msg}"


class Manifest:
    """The metadata manifest: loaded once, kept in memory, written back atomically.

    Writers are serialized by a lock and grouped: while one write is in its worker thread,
    later changes queue up and the next write carries all of them. ``put``/``remove`` return
    only once their change is on disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Entry] | None = None
        self._lock = anyio.Lock()
        self._changes = 0
        self._written = 0

    async def entries(self) -> dict[str, Entry]:
        """All entries. Raises ConfigError when the file is unreadable or malformed."""
        if self._entries is None:
            async with self._lock:
                if self._entries is None:
                    self._entries = await anyio.to_thread.run_sync(self._read)
        return self._entries

    async def get(self, key: str) -> Entry | None:
        return (await self.entries()).get(key)

    async def put(self, key: str, entry: Entry) -> None:
        (await self.entries())[key] = entry
        await self._commit()

    async def remove(self, key: str) -> None:
        entries = await self.entries()
        if entries.pop(key, None) is not None:
            await self._commit()

    async def _commit(self) -> None:
        self._changes += 1
        wanted = self._changes
        async with self._lock:
            if self._written >= wanted:
                return  # a write that started after our change already carried it
            assert self._entries is not None  # noqa: S101 - entries() ran before any change
            upto = self._changes
            snapshot = dict(self._entries)
            await anyio.to_thread.run_sync(self._write, snapshot)
            self._written = upto

    def _read(self) -> dict[str, Entry]:
        how_to_fix = (
            "fix it by hand (it must be JSON like "
            '{"version": 1, "assets": {"<relative path>": {"title": "..."}}}) '
            "or move it aside to start without metadata"
        )
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(
                f"cannot read the metadata manifest {self.path}: {exc.strerror}"
            ) from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"metadata manifest {self.path} is not valid JSON ({exc}); {how_to_fix}"
            ) from None
        try:
            manifest = _ManifestFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(_problem(err) for err in exc.errors()[:5])
            raise ConfigError(
                f"metadata manifest {self.path} has an unexpected shape ({problems}); {how_to_fix}"
            ) from None
        return dict(manifest.assets)

    def _write(self, snapshot: dict[str, Entry]) -> None:
        document = {
            "version": 1,
            "assets": {
                key: snapshot[key].model_dump(mode="json", exclude_defaults=True)
                for key in sorted(snapshot)
            },
        }
        body = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
        try:
            atomic_write(self.path, lambda out: out.write(body))
        except OSError as exc:
            raise os_error(exc, f"writing the metadata manifest {self.path}") from None
