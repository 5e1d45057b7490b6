"""The metadata manifest of the local folder connector: a JSON file at the root.

It holds what a file system cannot (title, alt text, tags, locales...), keyed by the
asset's path relative to the root; the format is described in ``connectors.localfs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from connectors.base import AssetMeta, LocalizedText
from connectors.errors import ConfigError
from connectors.localfs.files import atomic_write, os_error

_FOCUS = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*,\s*([0-9]*\.?[0-9]+)\s*$")


def _check_focus(value: str | None, info: ValidationInfo) -> str | None:
    """On reading the file: a focus point is ``"x,y"``, fractions of width and height 0..1
    (the canonical form, ``connectors.plugin.ExpectedAsset``)."""
    if value is None or not (info.context or {}).get("reading"):
        return value
    match = _FOCUS.match(value)
    if match is None or not all(0 <= float(n) <= 1 for n in match.groups()):
        raise ValueError(
            f"should be \"x,y\" with x and y between 0 and 1 (fractions of the width and "
            f"height), e.g. \"0.5,0.5\"; got {value!r}")
    return value


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

    _focus = field_validator("focus")(_check_focus)

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


MAX_PROBLEMS = 100
"""Problems listed one per line; a manifest broken everywhere is summarised past this."""

ENTRY_KEYS = ", ".join(Entry.model_fields)
LOCALE_KEYS = ", ".join(_LocaleEntry.model_fields)


EXPECTED = {
    "tuple_type": "should be a list of strings, e.g. [\"sea\", \"boat\"]",
    "list_type": "should be a list of strings, e.g. [\"sea\", \"boat\"]",
    "string_type": "should be a string (text in quotes)",
    "dict_type": "should be an object ({...})",
    "model_type": "should be an object ({...})",
    "model_attributes_type": "should be an object ({...})",
    "literal_error": "should be 1 (the only manifest version)",
    "missing": "is missing",
}
"""What a key should be, in the manifest's terms, by pydantic's error type."""

def _problem(err: Any) -> str:
    """One validation error in the manifest's own terms: the asset path, the key, what it
    should be."""
    loc = [str(p) for p in err["loc"]]
    if err["type"] == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
    else:
        msg = EXPECTED.get(err["type"], str(err["msg"]))
    if err["type"] in ("tuple_type", "list_type") and len(loc) >= 4 and loc[-1].isdigit():
        loc, msg = loc[:-1], "should be a list of strings, e.g. [\"sea\", \"boat\"]"
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
            manifest = _ManifestFile.model_validate(data, context={"reading": True})
        except ValidationError as exc:
            problems = list(dict.fromkeys(_problem(err) for err in exc.errors()))
            shown = problems[:MAX_PROBLEMS] + (
                [f"... and {len(problems) - MAX_PROBLEMS} more"]
                if len(problems) > MAX_PROBLEMS else [])
            raise ConfigError(
                f"metadata manifest {self.path} has {len(problems)} "
                f"problem{'s' if len(problems) != 1 else ''}:\n"
                + "".join(f"  {p}\n" for p in shown) + how_to_fix
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
