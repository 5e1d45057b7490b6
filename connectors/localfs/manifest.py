"""The metadata manifest of the local folder connector: a JSON file at the root.

It holds what a file system cannot (title, alt text, tags, locales...), keyed by the
asset's path relative to the root; the format is described in ``connectors.localfs``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from sys import intern
from typing import Any, Literal

import anyio
import anyio.to_thread
import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from connectors.base import NO_STRINGS, AssetMeta, LocalizedText
from connectors.errors import ConfigError
from connectors.jsontext import UntrustedJSONError, loads_lenient, lone_surrogate
from connectors.localfs.files import atomic_write, fsync_dir, os_error

log = structlog.get_logger("connectors.localfs.manifest")

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


NO_META = AssetMeta()
"""The metadata of a file without any: one frozen object shared by every such file (a local
folder of 100,000 files lists 100,000 of them)."""


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
        if (self.title is None and self.description is None and self.alt_text is None
                and not self.tags and self.copyright is None and self.focus is None
                and not self.locales):
            return NO_META  # what assetferry wrote for a file without metadata
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


_Stored = Entry | str
"""A manifest entry as the manifest holds it: an :class:`Entry`, or for an entry that holds
only its ``source_id`` (what a migrate writes for an asset without metadata) that id's
string: a local target of 100,000 such files holds no 100,000 model objects."""


def _entry(stored: _Stored) -> Entry:
    return Entry(source_id=stored) if isinstance(stored, str) else stored


def _plain_source_id(raw: object) -> str | None:
    """The ``source_id`` of an entry read from the file that holds nothing else, else None."""
    if type(raw) is dict and len(raw) == 1:
        value = raw.get("source_id")
        if type(value) is str:
            return value
    return None


class EntryView(Mapping[str, Entry]):
    """The manifest's entries, read-only, each an :class:`Entry` when looked up."""

    __slots__ = ("_stored", "damaged")

    def __init__(self, stored: Mapping[str, _Stored],
                 damaged: Mapping[str, str] | None = None) -> None:
        self._stored = stored
        self.damaged: Mapping[str, str] = damaged or {}
        """Entries set aside as unreadable (a source's manifest): key -> why, for that
        asset's own result (:attr:`Manifest.damaged`)."""

    def __getitem__(self, key: str) -> Entry:
        return _entry(self._stored[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)

    def listing(self, key: str) -> tuple[AssetMeta, Mapping[str, str]] | None:
        """What a listing reads of entry ``key`` (its metadata and extra fields), without
        making an :class:`Entry` for one that holds only its source id; None: no entry."""
        stored = self._stored.get(key)
        if stored is None:
            return None
        if isinstance(stored, str):
            return NO_META, NO_STRINGS
        return stored.meta(), stored.extra


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


JOURNAL_SUFFIX = ".journal"
"""The manifest's change journal is the manifest's name plus this (``.assetferry.json.journal``)."""

COMPACT_AFTER = 1000
"""The journal is folded into the manifest once it holds this many changes, or as many as the
manifest file had entries when last written if that is more (so whole-file rewrites cost O(1)
per change: each one at least doubles what the last one wrote, or follows as many changes)."""


LOCK_SUFFIX = ".lock"
"""The manifest's lock file is the manifest's name plus this (``.assetferry.json.lock``): an
empty file whose advisory lock (``flock``) every writer of the folder holds while it appends to
the journal or rewrites the manifest, so runs of several jobs into one folder keep each
other's entries."""


def journal_path(manifest: Path) -> Path:
    """Where the change journal of the manifest at ``manifest`` lives (beside it)."""
    return manifest.with_name(manifest.name + JOURNAL_SUFFIX)


def lock_path(manifest: Path) -> Path:
    """Where the lock file of the manifest at ``manifest`` lives (beside it)."""
    return manifest.with_name(manifest.name + LOCK_SUFFIX)


_Catchup = dict[str, "_Stored"] | list["_Apply"] | None
"""What other writers wrote, found under the lock: the whole entries as on disk, or the
changes appended since we last looked, or None (nothing)."""


_Apply = Callable[[dict[str, _Stored]], object]
"""A change as applied to the entries in memory."""

_Signature = tuple[int, int, int] | None
"""A file's inode, mtime (ns) and size; None when it is absent."""


def _signature(path: Path) -> _Signature:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _encoded(text: str) -> bytes:
    """``text`` (JSON) as UTF-8, a lone surrogate in a string (an entry set aside as
    unreadable, a name's undecodable byte) written as its ``\\uDCxx`` escape, which reads
    back as the same string: never an error."""
    return text.encode("utf-8", "backslashreplace")


def _set(entries: dict[str, _Stored], key: str, entry: Entry | None) -> None:
    """Apply one journal change to ``entries``: set ``key``, or remove it (None)."""
    if entry is None:
        entries.pop(key, None)
    else:
        entries[key] = entry


class Manifest:
    """The metadata manifest: loaded once, kept in memory, changed through a journal.

    A change (``put``/``remove``) is appended to the journal beside the manifest (one JSON
    object a line: ``{"put": key, "entry": {...}}`` or ``{"remove": key}``) and fsynced; the
    whole manifest is rewritten (atomically) only when the journal has grown as long as
    :data:`COMPACT_AFTER` or the manifest file itself, and on :meth:`close`. Reading replays the
    journal over the manifest, so a run killed at any moment leaves both files consistent:
    a torn last line (a kill mid-append) is dropped, and a kill between the rewrite and the
    journal's removal replays changes the manifest already holds (each line sets a key's
    final value, so replaying is harmless).

    Several writers (runs of several jobs into one folder, each its own process) share the
    files: every append and every rewrite holds the advisory lock of the lock file beside the
    manifest (:func:`lock_path`, ``flock``). Under it a writer first catches up with what
    others wrote (the journal lines appended since it last looked, or the whole manifest and
    journal again when another writer rewrote the manifest), so its entries in memory hold
    theirs and a rewrite folds in every writer's changes, not only its own: for one key the
    last change in journal order wins. Reading takes the lock shared when the lock file exists
    (a folder no writer has touched is never written by reading it).

    Writers are grouped (group commit): a change is made under a lock, and the writer that
    finds no append in progress appends every change queued so far, with one fsync; writers
    arriving meanwhile wait for the next append, which carries all of them. ``put``/``remove``
    return only once their change is on disk; when the append carrying a change fails, every
    writer of that group gets its error. The ``*_sync`` methods do the same from a worker
    thread (the connector writes a file and records it in one thread call, no second one).
    """

    def __init__(self, path: Path, *, per_entry: bool = False) -> None:
        """An entry whose text cannot be read (a lone UTF-16 surrogate, bytes that are not
        UTF-8, in the manifest or a line of its journal) is set aside and the other entries
        are read: ``per_entry`` (a source's manifest) names it in :attr:`damaged`, for its
        asset alone to fail; either way it is kept as it was, written back with its
        surrogates as ``\\uDCxx`` escapes (a target's manifest we rewrite loses nothing;
        a target asset whose entry is set aside lists without metadata, so the plan sees
        its drift). Such text outside the entries still makes the whole manifest unreadable
        (ConfigError), as any other fault does."""
        self.path = path
        self.per_entry = per_entry
        self.damaged: dict[str, str] = {}
        """Entries set aside as unreadable (``per_entry``): key -> why."""
        self._kept: dict[str, Any] = {}
        """Entries set aside as unreadable, as read (JSON values): written back as they were
        until a change of their key replaces them."""
        self.journal = journal_path(path)
        self.lock = lock_path(path)
        self._entries: dict[str, _Stored] | None = None
        self._load_lock = anyio.Lock()
        self._cond = threading.Condition()
        """Guards everything below and the entries (their changes and snapshots)."""
        self._pending: list[tuple[bytes, _Apply]] = []
        self._pending_dirs: set[Path] = set()
        """Folders the pending changes need fsynced before they are appended."""
        self._changes = 0
        """Changes made so far; the ``n``-th is on disk once ``_written >= n``."""
        self._written = 0
        self._failed: list[tuple[int, int, BaseException]] = []
        """The changes (first, last) of each append that failed, and its error."""
        self._flushing = False
        self._journal_lines = 0
        self._file_entries = 0
        """Entries in the manifest file as last read or written."""
        self._journal_valid: int | None = None
        """Bytes of the journal read (and parsed) so far; a torn tail beyond is cut before
        appending."""
        self._file_sig: _Signature = None
        """The manifest file as last read or written (another writer's rewrite changes it)."""
        self._journal_ino: int | None = None
        """The journal file whose first ``_journal_valid`` bytes were read."""

    async def entries(self) -> EntryView:
        """All entries. Raises ConfigError when the file is unreadable or malformed."""
        return EntryView(await self._stored(), self.damaged)

    async def _stored(self) -> dict[str, _Stored]:
        if self._entries is None:
            async with self._load_lock:
                if self._entries is None:
                    self._entries = await anyio.to_thread.run_sync(self._read_shared)
        return self._entries

    async def get(self, key: str) -> Entry | None:
        stored = (await self._stored()).get(key)
        return None if stored is None else _entry(stored)

    def get_sync(self, key: str) -> Entry | None:
        """``key``'s entry, from a worker thread, after :meth:`entries` has loaded them."""
        assert self._entries is not None  # noqa: S101 - entries() ran first
        stored = self._entries.get(key)
        return None if stored is None else _entry(stored)

    async def put(self, key: str, entry: Entry, *, durable_dirs: Iterable[Path] = ()) -> None:
        """Set ``key``'s entry; returns once the change is on disk.

        ``durable_dirs``: folders holding a rename or link this change describes (a file
        just written): each is fsynced before the change is appended, in the same group as
        the other changes of that append, so a group of uploads into one folder costs one
        folder fsync and one journal fsync, not one each. Raises what writing raises
        (ItemError, FatalError for a full or read-only disk).
        """
        await self._stored()
        await anyio.to_thread.run_sync(self.put_sync, key, entry, tuple(durable_dirs))

    def put_sync(self, key: str, entry: Entry, durable_dirs: Iterable[Path] = ()) -> None:
        """:meth:`put` from a worker thread, after :meth:`entries` has loaded the entries."""
        line = {"put": key, "entry": entry.model_dump(mode="json", exclude_defaults=True)}

        def apply(entries: dict[str, _Stored]) -> None:
            entries[key] = entry
            self._forget(key)

        self._commit(line, durable_dirs, apply)

    async def remove(self, key: str) -> None:
        entries = await self._stored()
        if key in entries:
            await anyio.to_thread.run_sync(
                self._commit, {"remove": key}, (), lambda e: e.pop(key, None))

    async def close(self) -> None:
        """Fold the journal into the manifest (one JSON file again) when this instance
        changed anything; a no-op otherwise (a source never writes its folder)."""
        if self._entries is None or not self._changes:
            return
        await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._cond:
            while self._flushing:
                self._cond.wait()
            if not (self._journal_lines or self._pending):
                return
            assert self._entries is not None  # noqa: S101 - it changed
            batch, self._pending = self._pending, []
            folders, self._pending_dirs = self._pending_dirs, set()
            self._flushing = True
            snapshot, upto = dict(self._entries), self._changes
        done = False
        try:
            base = self._flush(batch, folders, snapshot)
            done = True
        finally:
            with self._cond:
                self._flushing = False
                if done:  # the rewrite holds every change made so far
                    self._written = max(self._written, upto)
                    self._rebase(base, batch)
                self._cond.notify_all()

    def _commit(self, change: dict[str, Any], dirs: Iterable[Path], apply: _Apply) -> None:
        """Make ``change`` (``apply`` it to the entries, queue its journal line), then return
        once an append carried it; the writer that finds none in progress appends."""
        line = _encoded(json.dumps(change, ensure_ascii=False)) + b"\n"
        with self._cond:
            assert self._entries is not None  # noqa: S101 - entries() ran before any change
            apply(self._entries)
            self._pending.append((line, apply))
            self._pending_dirs.update(dirs)
            self._changes += 1
            wanted = self._changes
            while self._written < wanted:
                if self._flushing:
                    self._cond.wait()
                    continue
                first, upto = self._written + 1, self._changes
                batch, self._pending = self._pending, []
                folders, self._pending_dirs = self._pending_dirs, set()
                compact = self._journal_lines + len(batch) >= max(COMPACT_AFTER,
                                                                  self._file_entries)
                snapshot = dict(self._entries) if compact else None
                self._flushing = True
                self._cond.release()
                error: BaseException | None = None
                base: _Catchup = None
                try:
                    base = self._flush(batch, folders, snapshot)
                except BaseException as exc:  # noqa: BLE001 - re-raised, and to its group
                    error = exc
                finally:
                    self._cond.acquire()
                    self._flushing = False
                    if error is not None:
                        self._failed.append((first, upto, error))
                    else:
                        self._rebase(base, batch)
                    self._written = upto
                    self._cond.notify_all()
            for first, last, failure in self._failed:
                if first <= wanted <= last:  # the append that carried our change failed
                    raise copy.copy(failure).with_traceback(None)

    def _rebase(self, base: _Catchup, batch: list[tuple[bytes, _Apply]]) -> None:
        """Under ``_cond``, after a flush: take in what other writers wrote (``base``: the
        entries as on disk, or the changes appended since we last looked), then apply again
        our changes that came after them in journal order (the ``batch`` just written and
        those queued meanwhile), so for one key the last change wins."""
        if base is None or self._entries is None:
            return
        if isinstance(base, dict):
            self._entries = base
        else:
            for apply in base:
                apply(self._entries)
        for _, apply in batch:
            apply(self._entries)
        for _, apply in self._pending:
            apply(self._entries)

    @contextlib.contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        """Hold the advisory lock of the lock file (exclusive: created when absent; shared:
        only when it exists, reading never writes the folder)."""
        try:
            if shared:
                try:
                    fd = os.open(self.lock, os.O_RDONLY)
                except (FileNotFoundError, PermissionError):
                    yield
                    return
            else:
                fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise os_error(exc, f"opening the metadata manifest lock {self.lock}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _flush(self, batch: list[tuple[bytes, _Apply]], folders: Collection[Path],
               snapshot: dict[str, _Stored] | None) -> _Catchup:
        """fsync ``folders``; then, holding the lock, catch up with other writers and append
        ``batch`` to the journal (fsynced) or, given the ``snapshot`` of our entries (``batch``
        applied), rewrite the manifest and drop the journal: from the snapshot when nobody
        else wrote since we last looked, else from their changes with ``batch`` applied
        after them. Returns what other writers wrote (see :meth:`_rebase`)."""
        for folder in folders:
            fsync_dir(folder)
        with self._locked():
            caught = self._catch_up()
            if snapshot is None:
                self._append([line for line, _ in batch])
                return caught
            if isinstance(caught, dict):
                snapshot = caught
            elif caught:
                for apply in caught:
                    apply(snapshot)
            for _, apply in batch:  # ours come after theirs in journal order
                apply(snapshot)
            self._compact(snapshot)
            return caught

    def _catch_up(self) -> _Catchup:
        """Under the lock: what other writers wrote since we last looked. The whole entries
        again when the manifest was rewritten or the journal replaced; else the changes
        appended to the journal since (None: nothing)."""
        if _signature(self.path) != self._file_sig:
            return self._read()
        try:
            st = self.journal.stat()
        except FileNotFoundError:
            if self._journal_valid:
                return self._read()  # dropped by hand: the manifest is all there is
            self._journal_valid, self._journal_ino = 0, None
            return None
        except OSError as exc:
            raise os_error(exc, f"reading the metadata manifest journal {self.journal}") \
                from None
        start = self._journal_valid or 0
        if self._journal_ino not in (None, st.st_ino) or st.st_size < start:
            return self._read()
        self._journal_ino = st.st_ino
        if st.st_size == start:
            return None
        changes: list[_Apply] = []
        self._replay_from(start, lambda key, entry: changes.append(
            lambda entries: _set(entries, key, entry)))
        return changes

    def _append(self, lines: list[bytes], folders: Collection[Path] = ()) -> None:
        """fsync ``folders``, then append ``lines`` to the journal and fsync it (cutting a
        torn tail first); under the lock (:meth:`_flush` fsyncs the folders before taking
        it)."""
        for folder in folders:
            fsync_dir(folder)
        try:
            fresh = not self.journal.exists()
            with self.journal.open("ab") as out:
                if self._journal_valid is not None and out.tell() > self._journal_valid:
                    out.truncate(self._journal_valid)  # a dead writer's torn line
                out.write(b"".join(lines))
                out.flush()
                os.fsync(out.fileno())
                self._journal_valid = out.tell()
                self._journal_ino = os.fstat(out.fileno()).st_ino
            if fresh:
                fsync_dir(self.journal.parent)
        except OSError as exc:
            raise os_error(exc, f"writing the metadata manifest journal {self.journal}") from None
        self._journal_lines += len(lines)

    def _compact(self, entries: dict[str, _Stored]) -> None:
        """Rewrite the manifest whole (atomically) as ``entries``, then drop the journal it
        now holds; under the lock."""
        self._write(entries)
        try:
            self.journal.unlink(missing_ok=True)
            fsync_dir(self.journal.parent)
        except OSError as exc:
            raise os_error(exc, f"removing the metadata manifest journal {self.journal}") \
                from None
        self._journal_lines = 0
        self._journal_valid = 0
        self._journal_ino = None
        self._file_entries = len(entries)
        self._file_sig = _signature(self.path)

    def _read_shared(self) -> dict[str, _Stored]:
        with self._locked(shared=True):
            return self._read()

    def _read(self) -> dict[str, _Stored]:
        self._file_sig = _signature(self.path)
        entries = self._read_file()
        self._file_entries = len(entries)
        self._replay(entries)
        return entries

    def _read_file(self) -> dict[str, _Stored]:
        how_to_fix = (
            "fix it by hand (it must be JSON like "
            '{"version": 1, "assets": {"<relative path>": {"title": "..."}}}) '
            "or move it aside to start without metadata"
        )
        self.damaged, self._kept = {}, {}
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(
                f"cannot read the metadata manifest {self.path}: {exc.strerror}"
            ) from None
        try:
            data = self._set_aside(raw)
        except UntrustedJSONError as exc:
            raise ConfigError(f"metadata manifest {self.path} {exc}; {how_to_fix}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"metadata manifest {self.path} is not valid JSON ({exc}); {how_to_fix}"
            ) from None
        fast = self._read_plain(data)
        if fast is not None:
            return fast
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

    def _set_aside(self, raw: bytes) -> Any:
        """The manifest's JSON with each entry that holds unreadable text (a lone UTF-16
        surrogate, bytes that are not UTF-8) taken out into :attr:`damaged`, naming where;
        UntrustedJSONError when such text is outside the entries."""
        data, suspect = loads_lenient(raw)
        if not suspect:
            return data
        assets = data.get("assets") if isinstance(data, dict) else None
        for key, value in list(assets.items()) if isinstance(assets, dict) else ():
            where = lone_surrogate({key: value}, ".assets")
            if where is not None:
                del assets[key]  # type: ignore[union-attr]
                self._set_aside_entry(key, value, f"its entry in the metadata manifest "
                                      f"{self.path}", where)
        where = lone_surrogate(data)
        if where is not None:
            raise UntrustedJSONError(f"holds text that cannot be read (a lone UTF-16 "
                                     f"surrogate, or bytes that are not UTF-8) at {where}",
                                     where=where)
        return data

    def _set_aside_entry(self, key: str, raw: Any, what: str, where: str) -> None:
        """Set entry ``key`` aside as unreadable (``raw``: its JSON value, kept to be written
        back; ``what``: where it was read; ``where``: the JSON path of the unreadable text)."""
        self._kept[key] = raw
        if self.per_entry:
            self.damaged[key] = (
                f"{what} holds text that cannot be read (a lone UTF-16 surrogate, or bytes "
                f"that are not UTF-8) at {where.encode('ascii', 'backslashreplace').decode()}; "
                "fix that entry by hand, then run again")
        else:
            log.warning("manifest.entry_set_aside", manifest=str(self.path),
                        entry=key.encode("ascii", "backslashreplace").decode(),
                        at=where.encode("ascii", "backslashreplace").decode())

    def _forget(self, key: str) -> None:
        """A change of ``key`` replaces its set-aside entry (if any)."""
        if self._kept:
            self._kept.pop(key, None)
            self.damaged.pop(key, None)

    @staticmethod
    def _read_plain(data: object) -> dict[str, _Stored] | None:
        """The entries of a well-formed manifest, an entry holding only its source id kept
        as that string (no model object each; the key's own string when the two are equal,
        as a local -> local migrate writes them), the keys ``sys.intern``-ed (a listing interns
        its paths: one string each for the manifest and the listing); None when anything is
        off, for the whole file's validation to name every problem."""
        if type(data) is not dict or not set(data) <= {"version", "assets"} \
                or type(data.get("version")) is not int or data["version"] != 1:
            return None
        assets = data.get("assets", {})
        if type(assets) is not dict:
            return None
        out: dict[str, _Stored] = {}
        try:
            for raw_key, raw in assets.items():
                key = intern(raw_key)
                plain = _plain_source_id(raw)
                out[key] = (key if plain == key else plain) if plain is not None \
                    else Entry.model_validate(raw, context={"reading": True})
        except ValidationError:
            return None
        return out

    def _replay(self, entries: dict[str, _Stored]) -> None:
        """Apply the journal's changes to ``entries`` (in order); a torn last line is left
        out. Raises ConfigError on a broken line before the last."""
        self._journal_lines = 0
        self._journal_valid, self._journal_ino = 0, None
        self._replay_from(0, lambda key, entry: _set(entries, key, entry))

    def _replay_from(self, start: int, change: Callable[[str, Entry | None], object]) -> None:
        """Call ``change(key, entry)`` (None: removed) for each journal line from byte
        ``start`` on, in order; a torn last line is left out (``_journal_valid`` ends before
        it). Raises ConfigError on a broken line before the last."""
        try:
            with self.journal.open("rb") as file:
                self._journal_ino = os.fstat(file.fileno()).st_ino
                file.seek(start)
                raw = file.read()
        except FileNotFoundError:
            self._journal_valid, self._journal_ino = 0, None
            return
        except OSError as exc:
            raise ConfigError(
                f"cannot read the metadata manifest journal {self.journal}: {exc.strerror}"
            ) from None
        valid = start
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            last = number == len(lines)
            if not line.strip():
                valid += len(line) + (0 if last else 1)
                continue
            try:
                parsed, suspect = loads_lenient(line)
                if "put" in parsed:
                    key = intern(str(parsed["put"]))
                    where = lone_surrogate(parsed, f"line {number}") if suspect else None
                    if where is not None:  # this entry's own fault: set aside, not the run's
                        self._set_aside_entry(
                            key, parsed["entry"],
                            f"its change in the metadata manifest journal {self.journal}",
                            where.replace(".put", " (its key)", 1))
                        change(key, None)
                        valid += len(line) + (0 if last else 1)
                        self._journal_lines += 1
                        continue
                    entry: Entry | None = Entry.model_validate(parsed["entry"])
                else:
                    key, entry = str(parsed["remove"]), None
            except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                if last or (number == len(lines) - 1 and not lines[-1]):
                    break  # torn by a kill mid-append: that change never returned
                where = f"line {number}" + (f" after byte {start}" if start else "")
                raise ConfigError(
                    f"metadata manifest journal {self.journal} {where} is damaged ({exc}); "
                    "move the journal aside (its changes since the manifest was last "
                    "rewritten are then lost) and run again") from None
            self._forget(key)
            change(key, entry)
            valid += len(line) + (0 if last else 1)
            self._journal_lines += 1
        self._journal_valid = valid

    def _write(self, snapshot: dict[str, _Stored]) -> None:
        assets: dict[str, Any] = {
            key: {"source_id": stored} if isinstance(stored, str)
            else stored.model_dump(mode="json", exclude_defaults=True)
            for key, stored in snapshot.items()
        }
        for key, raw in dict(self._kept).items():  # set aside unreadable: kept as read
            assets.setdefault(key, raw)
        document = {"version": 1, "assets": dict(sorted(assets.items()))}
        body = _encoded(json.dumps(document, ensure_ascii=False, indent=1)) + b"\n"
        try:
            atomic_write(self.path, lambda out: out.write(body))
        except OSError as exc:
            raise os_error(exc, f"writing the metadata manifest {self.path}") from None
