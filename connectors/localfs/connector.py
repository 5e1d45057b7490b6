"""The local folder connector: ``LocalConfig`` and ``LocalFolderConnector``.

Listing (confined to the root, symlinks followed only inside it), streaming, and atomic,
never-clobbering writes; metadata goes to the manifest (``connectors.localfs.manifest``).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from sys import intern
from typing import Any, Literal

import anyio
import anyio.to_thread
import structlog
from anyio import AsyncFile

from connectors.base import (
    METADATA_FIELDS,
    NO_STRINGS,
    Asset,
    AssetMeta,
    Folder,
    Limits,
    StagedFile,
    SupportsAssetExists,
    SupportsDelete,
    SupportsFindAsset,
    SupportsProvenance,
    SupportsReadAsset,
    SupportsReplace,
    SupportsUpdateMetadata,
    Target,
    TargetRef,
    UploadJournal,
    UploadRequest,
    system_file_reason,
)
from connectors.errors import ConfigError, FatalError, ItemError, NotFoundError
from connectors.localfs.config import DEFAULT_MANIFEST, FORBIDDEN_NAME_CHARS, LocalConfig
from connectors.localfs.files import (
    CHUNK_SIZE,
    TEMP_NAME_MAX,
    TMP_PREFIX,
    atomic_write,
    copy_staged,
    dimensions,
    fsync_dir,
    guess_content_type,
    is_temp_name,
    os_error,
    reclaimable,
    same_file,
    sha256_of,
    what_to_do,
)
from connectors.localfs.manifest import (
    JOURNAL_SUFFIX,
    LOCK_SUFFIX,
    NO_META,
    Entry,
    EntryView,
    Manifest,
)
from connectors.media import open_regular, special_kind

log = structlog.get_logger(__name__)

PLATFORM_FORBIDDEN_CHARS = "/\x00" + ("\\" if sys.platform == "win32" else "")
"""What a name that exists on this file system cannot hold (POSIX: ``/`` and NUL only, so
``back\\slash.txt`` is an ordinary name there): ids of files found here are read with it."""
MAX_NAME_BYTES = 255
"""NAME_MAX of ext4, XFS, btrfs, APFS (255 UTF-8 bytes; NTFS counts 255 UTF-16 units)."""
WINDOWS_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
"""Device names Windows refuses as a file or folder name, with any extension (``CON.txt``)."""
DEFAULT_PATH_MAX = 4096
RESERVED_PREFIX_REASON = (f"its name starts with {TMP_PREFIX}, the prefix reserved for "
                          "assetferry's temp files: rename it to migrate it")
"""Why an entry of a user's named with our temp files' prefix is left out (never deleted)."""
TEMP_NAME_REASON = (f"its name is in the format of assetferry's own temp files ({TMP_PREFIX} "
                    "+ 16 hex digits: a reserved temp-file name, e.g. a partial file a killed "
                    "run left when this folder was a target); rename it to migrate it")
"""Why a source's entry named exactly like our temp files is left out: listed, never hidden
(README: nothing a source finds is invisible)."""
"""PATH_MAX of Linux, when the file system can't be asked (macOS: 1024, asked)."""
TEMP_NAME_BYTES = TEMP_NAME_MAX + 1
"""A temp file's name (:data:`TEMP_NAME_MAX`) and its "/": kept free in every path."""
CASE_INSENSITIVE_PLATFORMS = frozenset({"darwin", "win32"})
"""Where the default file system (APFS, NTFS) ignores case in names."""


# --- scan results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Skip:
    """An entry the listing leaves out, with why; ``failed``: one a user would want migrated
    (the plan reports it as unsupported, the run exits 1), else a deliberate skip."""

    parts: tuple[str, ...]
    name: str
    reason: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class _Scan:
    """A folder's entries in name order: its subfolders' ``folders``, and ``files[k]`` the
    assets of the files sorted before ``folders[k]`` (after ``folders[k - 1]``; the last
    run: after them all), a file that vanished between the folder's listing and its stat
    as a skipped asset; those left out, in ``skipped``."""

    real: Path
    folders: list[str]
    files: list[list[Asset]]
    skipped: list[_Skip]
    vanished: bool = False
    linked: frozenset[str] = frozenset()
    undecodable: tuple[str, ...] = ()
    """Subfolders whose names are not valid UTF-8 (as ``os`` gives them: surrogate escapes):
    never walked as folders, reported by :meth:`LocalFolderConnector._undecodable`."""
    """The names in ``folders`` that are symlinks to a folder (their real path is resolved
    when they are listed; any other subfolder's is ``real / name``)."""


_name_of = attrgetter("name")
"""The sort key of a folder's entries and skips (in C: 100,000 of them)."""


_SUBFOLDER_MANIFESTS = frozenset({DEFAULT_MANIFEST, DEFAULT_MANIFEST + JOURNAL_SUFFIX,
                                  DEFAULT_MANIFEST + LOCK_SUFFIX})
"""A local target's manifest files by their default names: in a subfolder, one a run wrote
(listed as excluded: metadata, not an asset)."""
_HAS_BIRTHTIME = hasattr(os.stat_result, "st_birthtime")
"""Whether a stat tells a file's creation time here (macOS, BSD; not Linux)."""


# --- the connector ----------------------------------------------------------------------------


class LocalFolderConnector:
    """A local folder tree. Source, target, and every optional capability."""

    name = "local"
    staged_digests: frozenset[str] = frozenset()
    """Uploads read no digest from the staged file (an existing file is compared by hashing
    both sides then)."""
    lists_in_process = True
    """Listing is this process's own CPU work (a walk, a stat per file): listed one side
    after the other beside another such listing (:func:`connectors.base.lists_in_process`)."""

    def __init__(
        self,
        config: LocalConfig,
        *,
        transport: object | None = None,
        role: Literal["source", "target"] = "source",
    ) -> None:
        """``transport`` is ignored (uniform constructor).

        ``role="target"`` makes a missing root list as empty (it is created on the first
        write); as a source (the default) a missing root is a ConfigError.
        """
        del transport
        self._config = config
        self._role = role
        self._root = config.path.resolve()
        # a source's manifest entry that cannot be read fails its asset alone
        self._manifest = Manifest(self._root / config.manifest, per_entry=role == "source")
        self._reported: set[tuple[str, str]] = set()
        # own files by folder, so a listing checks a name without building a path per entry
        self._own_by_folder: dict[Path, dict[str, str]] = {}
        self._folder_ids: dict[tuple[str, ...], str] = {}
        self._temps: list[Path] = []  # our temp files the target's listing passed by
        self._manifest_names = frozenset({config.manifest, config.manifest + JOURNAL_SUFFIX,
                                          config.manifest + LOCK_SUFFIX})
        """The manifest's files at the root: read as metadata, never listed."""
        for path, reason in config.own_files.items():
            self._own_by_folder.setdefault(path.parent, {})[path.name] = reason

    async def __aenter__(self) -> LocalFolderConnector:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Fold the manifest's change journal into the manifest (every file is opened and
        closed per call, so nothing else is held)."""
        await self._manifest.close()

    @property
    def scope(self) -> str:
        return self._config.scope()

    @property
    def limits(self) -> Limits:
        """A POSIX file system: names up to 255 UTF-8 bytes, no ``/`` or NUL; files and
        folders share one namespace; case ignored on macOS and Windows (their default file
        systems), Windows' device names reserved there; the manifest's name and our temp-file
        prefix are reserved everywhere (and the manifest's change journal, its name +
        ``.journal``, and its lock file, its name + ``.lock``)."""
        reserved = {self._config.manifest, self._config.manifest + JOURNAL_SUFFIX,
                    self._config.manifest + LOCK_SUFFIX}
        if sys.platform == "win32":
            reserved |= WINDOWS_RESERVED_NAMES
        # room for the root itself, the "/" after it, and a temp file beside any file
        below_root = _path_max(self._root) - 1 - len(os.fsencode(self._root)) - 1
        return Limits(
            max_folder_depth=None,
            max_folders=None,
            max_file_size=None,
            forbidden_name_chars=FORBIDDEN_NAME_CHARS,
            max_name_bytes=MAX_NAME_BYTES,
            max_path_bytes=max(below_root - TEMP_NAME_BYTES, 0),
            case_insensitive_names=sys.platform in CASE_INSENSITIVE_PLATFORMS,
            folders_and_files_share_names=True,
            reserved_names=frozenset(reserved),
            reserved_prefixes=(TMP_PREFIX,),
            metadata_fields=METADATA_FIELDS,
            version_is_file=True,  # size:mtime:inode:ctime; metadata is in the manifest
            lists_written_meta=True,  # the manifest entry holds what we wrote
        )

    # --- reading ------------------------------------------------------------------------------

    async def iter_folders(self) -> AsyncIterator[Folder]:
        """Every folder, parents first, sorted by path. Raises FatalError if unreadable."""
        async for item in self._walk(with_files=False):
            if isinstance(item, Folder):
                yield item

    async def iter_assets(self) -> AsyncIterator[Asset]:
        """Every file, sorted by path, with its manifest metadata; and every entry the listing
        leaves out, as an asset with its reason (:attr:`Asset.skipped`: FIFOs, sockets,
        devices, symlinks that are broken, loop or point out of the root, entries that
        vanished, operating-system clutter; :attr:`Asset.unreachable`: a name that is not
        valid UTF-8, an entry that can't be read).

        Raises ConfigError on a missing root or a corrupt manifest, FatalError when a folder
        can't be read.
        """
        async for found in self.iter_listing():
            if not isinstance(found, Folder):
                for asset in found:
                    yield asset

    async def iter_listing(self) -> AsyncIterator[Folder | list[Asset]]:
        """:meth:`iter_folders` and :meth:`iter_assets` in one walk, in path order: each
        folder, and the assets a list at a time (a folder's files between two of its
        subfolders, made in one worker-thread call per folder; an excluded entry in a list
        of its own) (:class:`connectors.base.SupportsListingBatches`). Raises as
        :meth:`iter_assets` does."""
        if not await anyio.to_thread.run_sync(self._root_exists):
            return
        entries = await self._manifest.entries()
        damaged = entries.damaged
        async for item in self._walk(with_files=True, entries=entries):
            if isinstance(item, _Skip):
                yield [_skipped_asset(item)]
            elif damaged and isinstance(item, list):  # a manifest entry that can't be read
                yield [replace(asset, unreachable=damaged[asset.source_id])
                       if asset.source_id in damaged else asset for asset in item]
            else:
                yield item

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream the file in 64 KiB chunks. Raises ItemError if it is gone or unreadable."""
        return self._open(asset.source_id)

    def local_path(self, asset: Asset) -> Path | None:
        """The file itself, for the pipeline to read in place (no temp copy). Raises
        ItemError when the id is unsafe or resolves outside the root. Blocking (it resolves
        symlinks: a few lstat calls): see :class:`connectors.base.SupportsLocalPath`."""
        return self._inside(_existing_rel(asset.source_id))

    @asynccontextmanager
    async def _open(self, rel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        path = await anyio.to_thread.run_sync(self._inside, _existing_rel(rel))
        try:
            # a folder, FIFO or device in the file's place is refused, a FIFO never opened
            raw, _ = await anyio.to_thread.run_sync(open_regular, path, rel)
            file = anyio.wrap_file(raw)
        except FileNotFoundError:
            raise ItemError(
                f"{rel} no longer exists; re-run to pick up the current folder"
            ) from None
        except IsADirectoryError:
            raise ItemError(
                f"{rel} is now a folder, not a file; re-run to pick up the change"
            ) from None
        except OSError as exc:
            raise os_error(exc, f"opening {rel}") from None
        async with file:
            chunks = _chunks(file, rel)
            try:
                yield chunks
            finally:
                await chunks.aclose()

    def _root_exists(self) -> bool:
        if self._root.is_dir():
            return True
        if self._root.exists():
            raise ConfigError(f"local path {self._root} is not a folder; point `path` at one")
        if self._role == "target":
            return False
        raise ConfigError(
            f"local folder {self._root} does not exist; fix `path` in the job file"
        )

    async def _walk(self, *, with_files: bool, entries: EntryView | None = None
                    ) -> AsyncIterator[Folder | list[Asset] | _Skip]:
        """Depth-first, entries sorted by name: parents come first, paths in sorted order.
        ``with_files``: the files too, as lists of `Asset` (a folder's files between two of
        its subfolders), their metadata from the manifest's ``entries``. One worker-thread
        call per folder (:meth:`_scan_sync`)."""
        if not await anyio.to_thread.run_sync(self._root_exists):
            return
        files_of = entries if with_files else None
        top = await self._scan((), files_of)
        if with_files:
            for skip in top.skipped:
                yield skip
        async for bad in self._undecodable((), top, with_files=with_files):
            yield bad
        # (folder, its ancestors' real paths, its scan, the next of its runs of files)
        stack: list[tuple[tuple[str, ...], frozenset[Path], _Scan, int]] = [
            ((), frozenset({top.real}), top, 0)
        ]
        while stack:
            parts, ancestors, scan, k = stack.pop()
            if scan.files[k]:
                yield scan.files[k]  # the files sorted before its subfolder k
            if k == len(scan.folders):
                continue
            stack.append((parts, ancestors, scan, k + 1))
            name = scan.folders[k]
            child = (*parts, name)
            # a plain subfolder's real path is its parent's and its name: resolving every
            # folder's whole path (an lstat per component) made a deep tree quadratic
            sub = await self._scan(child, files_of,
                                   None if name in scan.linked else scan.real / name)
            if sub.vanished or sub.real in ancestors:
                reason = (
                    "folder vanished while listing" if sub.vanished
                    else "symlink to one of its own parent folders (a loop)"
                )
                self._skipped_once("/".join(child), reason, log.warning)
                if with_files:
                    yield _Skip(parts, name, reason)
                continue
            if with_files:
                for skip in sub.skipped:
                    yield skip
            yield Folder(
                source_id=self._folder_id(child),
                name=name,
                parent_id=self._folder_id(parts) or None,
                path=child,
            )
            async for bad in self._undecodable(child, sub, with_files=with_files):
                yield bad
            stack.append((child, ancestors | {sub.real}, sub, 0))

    async def _undecodable(self, parts: tuple[str, ...], scan: _Scan, *, with_files: bool
                           ) -> AsyncIterator[Folder | list[Asset]]:
        """The subfolders of folder ``parts`` whose names are not valid UTF-8: each as a
        folder that cannot be created (:attr:`Folder.unconfirmed` holds why: the plan's
        ``unsupported`` folder line, counted in ``folders_unsupported``, never an asset) and,
        ``with_files``, every file below it (listed by its bytes name) as an asset that
        cannot be migrated (:attr:`Asset.unreachable`), in the folder ``parts`` (its
        filename the path below ``parts``), so the plan and run count them as not migrated."""
        for raw in scan.undecodable:
            shown = printable(raw)
            files, error = await anyio.to_thread.run_sync(
                _files_below, self._root.joinpath(*parts, raw))
            where = "/".join((*parts, shown))
            held = (f"cannot be listed ({error})" if error is not None
                    else f"{len(files)} file{'' if len(files) == 1 else 's'} in it")
            reason = ("its name is not valid UTF-8 (undecodable bytes shown as \\xNN): "
                      f"rename it in the source (e.g. with convmv -r) to migrate it ({held})")
            self._skipped_once(where, reason, log.warning)
            yield Folder(source_id=self._folder_id((*parts, shown)), name=shown,
                         parent_id=self._folder_id(parts) or None, path=(*parts, shown),
                         unconfirmed=reason)
            if with_files and files:
                why = (f"in folder {where}, whose name is not valid UTF-8: rename the folder "
                       "in the source (e.g. with convmv -r) to migrate it")
                yield [Asset(source_id=f"{where}/{rel}", filename=f"{shown}/{rel}",
                             folder_path=parts, folder_id="/".join(parts) or None,
                             content_type=guess_content_type(rel), size=None,
                             unreachable=why) for rel in files]

    def _skipped_once(self, path: str, reason: str, say: Callable[..., Any]) -> None:
        """Log a skipped entry once, though the folders and the assets each walk the tree."""
        if (path, reason) not in self._reported:
            self._reported.add((path, reason))
            say("local.skipped", path=path, reason=reason)

    async def _scan(self, parts: tuple[str, ...], entries: EntryView | None,
                    real: Path | None = None) -> _Scan:
        scan = await anyio.to_thread.run_sync(self._scan_sync, parts, entries, real)
        for skip in scan.skipped:
            self._skipped_once("/".join((*parts, skip.name)), skip.reason, log.info)
        return scan

    def _scan_sync(self, parts: tuple[str, ...], entries: EntryView | None = None,
                   real: Path | None = None) -> _Scan:
        """The entries of the folder ``parts``, sorted by name: its subfolders' names and,
        given the manifest's ``entries``, its files' assets (a stat each, through the
        folder's listing: no path built per file); and those left out (with why). Without
        ``entries`` the folders only (a plain file is passed by unchecked: the listing of
        folders walks every folder of 100,000 files, the assets' walk checks them).

        Per entry, the checks an ordinary name passes cost a string test each: the
        reserved names and prefix, the own files (a dict per folder), UTF-8 (``isascii``
        first), clutter (:func:`connectors.base.system_file_reason`). ``real``: the folder's
        real path when the caller knows it (a subfolder that is no symlink), else resolved.
        Raises FatalError when the folder cannot be listed, with what its errno calls for
        (:func:`connectors.localfs.files.what_to_do`)."""
        directory = self._root.joinpath(*parts)
        folders: list[str] = []
        run: list[Asset] = []
        files = [run]
        skipped: list[_Skip] = []
        linked: set[str] = set()
        undecodable: list[str] = []
        try:
            if real is None:
                real = directory.resolve(strict=True)
            with os.scandir(directory) as it:
                listed = sorted(it, key=_name_of)
        except FileNotFoundError:
            return _Scan(real=directory, folders=[], files=[[]], skipped=[], vanished=True)
        except OSError as exc:
            raise FatalError(
                f"cannot list local folder {directory}: {exc.strerror}; "
                f"{what_to_do(exc)} (a partial listing can't be trusted)"
            ) from None
        dirs_only = entries is None
        asset = None if entries is None else self._asset_builder(parts, entries)
        own = self._own_by_folder.get(real)
        reserved = frozenset() if parts else self._manifest_names
        own_names = _SUBFOLDER_MANIFESTS if parts else frozenset()
        clutter = not self._config.include_system_files
        for item in listed:
            name = item.name
            if name in reserved:
                continue
            if name.startswith(TMP_PREFIX):
                if not is_temp_name(name):  # a user's file with our reserved prefix
                    skipped.append(_Skip(parts, printable(name), RESERVED_PREFIX_REASON))
                elif self._role == "target":  # ours: reclaimed when stale, never an asset
                    if dirs_only:
                        continue  # the assets' walk takes it
                    self._temps.append(directory / name)
                else:
                    skipped.append(_Skip(parts, printable(name), TEMP_NAME_REASON))
                continue
            if dirs_only:
                try:
                    if not item.is_dir(follow_symlinks=False) and not item.is_symlink():
                        continue
                except OSError:
                    pass  # checked below like any entry: an unreadable one is reported
            if (own is not None and name in own) or name in own_names:
                skipped.append(_Skip(parts, printable(name), self._own_reason(own, name)))
                continue
            if not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    try:
                        is_folder = item.is_dir(follow_symlinks=False)
                    except OSError:
                        is_folder = False
                    if is_folder:  # a folder: reported as one, with what it holds
                        undecodable.append(name)
                        continue
                    skipped.append(_Skip(
                        parts, printable(name),
                        "its name is not valid UTF-8 (undecodable bytes shown as \\xNN); "
                        "rename it in the source (e.g. with convmv) to migrate it",
                        failed=True,
                    ))
                    continue
            if clutter:
                why = system_file_reason(name)
                if why is not None:
                    skipped.append(_Skip(parts, name, why))
                    continue
            try:  # a plain file first: the most entries are (a symlink is neither)
                if item.is_file(follow_symlinks=False):
                    is_dir = False
                elif item.is_dir(follow_symlinks=False):
                    is_dir = True
                elif item.is_symlink():
                    kind = self._symlink_kind(Path(item.path))
                    if kind not in ("dir", "file"):
                        skipped.append(_Skip(parts, name, kind))
                        continue
                    is_dir = kind == "dir"
                    if is_dir:
                        linked.add(name)
                else:
                    kind = special_kind(item.stat(follow_symlinks=False).st_mode)
                    skipped.append(_Skip(parts, name, f"{kind}, not a regular file or folder"))
                    continue
            except OSError as exc:
                skipped.append(_Skip(parts, name, f"unreadable: {exc.strerror}", failed=True))
                continue
            if is_dir:
                folders.append(name)
                run = []
                files.append(run)
            elif asset is not None:
                try:
                    st = item.stat()  # follows a symlink (checked above: inside the root)
                except OSError:
                    log.warning("local.skipped", path="/".join((*parts, name)), reason="vanished")
                    run.append(_skipped_asset(_Skip(parts, name, "file vanished while listing")))
                    continue
                try:
                    run.append(asset(name, st))
                except OSError as exc:  # its checksum read (``checksum = true``)
                    run.append(_skipped_asset(_Skip(
                        parts, name, f"unreadable: {exc.strerror or exc}", failed=True)))
        skipped.sort(key=_name_of)
        return _Scan(real=real, folders=folders, files=files, skipped=skipped,
                     linked=frozenset(linked), undecodable=tuple(undecodable))

    def _own_reason(self, own: Mapping[str, str] | None, name: str) -> str:
        """Why the entry ``name`` of a folder is assetferry's own file (``own``: the folder's
        files the pipeline named, the job's state database and its sidecars), else the
        metadata manifest a local target wrote into a subfolder (the source's own manifest,
        at the root, is read as metadata and never listed)."""
        reason = own.get(name) if own else None
        if reason is not None:
            return reason
        return (f"assetferry's metadata manifest of a local folder it wrote ({name}): "
                "metadata, not an asset")

    def _symlink_kind(self, link: Path) -> str:
        """``"dir"``/``"file"`` for a link we follow, else the reason to skip it."""
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):
            return "broken symlink (its target does not exist)"
        if target != self._root and not target.is_relative_to(self._root):
            return "symlink to a place outside the source folder (not followed)"
        if target.is_dir():
            return "dir"
        if target.is_file():
            return "file"
        return "symlink to something that is not a regular file or folder"

    def _folder_id(self, parts: tuple[str, ...]) -> str:
        """The id of folder ``parts`` (``""``: the root), one string per folder."""
        folder_id = self._folder_ids.get(parts)
        if folder_id is None:
            folder_id = self._folder_ids[parts] = "/".join(parts)
        return folder_id

    def _asset_builder(self, parts: tuple[str, ...], entries: EntryView
                       ) -> Callable[[str, os.stat_result], Asset]:
        """What makes the `Asset` of a file ``name`` of folder ``parts`` from its stat: the
        content type (by its suffixes), an image's size (its header read), the manifest's
        ``entries``. What is per folder is computed here once; per file: the id,
        ``sys.intern``-ed (a local target's manifest interns its keys and the plan's ledger
        read its ids, so the listings, the manifest and the ledger hold one string each), and
        the fields that differ from :class:`Asset`'s defaults. A source with ``checksum =
        true`` reads each file's SHA-256 here (the worker thread of the listing); raises
        OSError when it cannot be read."""
        folder_id = self._folder_id(parts)
        folder_key = folder_id or None
        prefix = f"{folder_id}/" if parts else ""
        folder = str(self._root.joinpath(*parts))
        target = self._role == "target"
        hashed = self._config.checksum and not target
        listing = entries.listing

        def asset(name: str, st: os.stat_result) -> Asset:
            content_type = guess_content_type(name)
            rel = intern(prefix + name)
            entry = listing(rel)
            size, mtime_ns = st.st_size, st.st_mtime_ns
            width = height = None
            if content_type.startswith("image/"):
                width, height = dimensions(f"{folder}/{name}", content_type)
            birth = getattr(st, "st_birthtime", None) if _HAS_BIRTHTIME else None
            return Asset(
                source_id=rel,
                filename=name,
                folder_path=parts,
                folder_id=folder_key,
                content_type=content_type,
                size=size,
                meta=entry[0] if entry else NO_META,
                checksums=({"sha256": sha256_of(Path(f"{folder}/{name}"))} if hashed
                           else NO_STRINGS),
                width=width,
                height=height,
                created_at=datetime.fromtimestamp(birth, tz=UTC) if birth else None,
                updated_at=datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC),
                version=(_target_version(size, mtime_ns, st.st_ino, st.st_ctime_ns)
                         if target else f"{size}:{mtime_ns}"),
                extra=dict(entry[1]) if entry and entry[1] else NO_STRINGS,
            )

        return asset

    # --- writing ------------------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raise ConfigError when files cannot be written under the root (what ``plan``
        checks, so a read-only or forbidden target shows before a run, exit 2): a probe
        folder is made and removed at once in the root, or in its nearest existing parent
        when the root is not made yet (nothing is left behind)."""
        def probe() -> None:
            where = next((p for p in (self._root, *self._root.parents) if p.exists()),
                         self._root)
            try:
                Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "probe-", dir=where)).rmdir()
            except OSError as exc:
                raise ConfigError(
                    f"local target folder {self._root}: cannot write in {where} "
                    f"({exc.strerror or exc}); {what_to_do(exc)}"
                ) from None

        await anyio.to_thread.run_sync(probe)

    async def reclaim_temp_files(self) -> tuple[int, int]:
        """Remove the temp files of killed runs that the target's listing passed by.

        Only those no live writer can own (:func:`connectors.localfs.files.reclaimable`:
        a dead pid on this host, else untouched for an hour), so a run of another job into
        the same folder keeps its own. Call after listing the target, in a run (never in a
        dry run). Returns ``(files, bytes)`` removed."""
        temps, self._temps = self._temps, []

        def remove() -> tuple[int, int]:
            files = size = 0
            now = time.time()
            for path in temps:
                found = reclaimable(path, now)
                if found is None:
                    continue
                try:
                    path.unlink()
                except OSError as exc:
                    log.warning("local.temp_not_removed", path=str(path),
                                error=exc.strerror or str(exc))
                    continue
                files, size = files + 1, size + found
            return files, size

        files, size = await anyio.to_thread.run_sync(remove)
        if files:
            log.info("local.temp_reclaimed", files=files, bytes=size)
        return files, size

    async def create_folder(self, parent_id: str | None, name: str) -> Folder:
        """Create (or reuse) folder ``name`` under ``parent_id``. ItemError on a bad name."""
        parent = _split_rel(parent_id, "parent folder id") if parent_id is not None else ()
        parts = (*parent, self._check_name(name, "folder name", parent))
        path = await anyio.to_thread.run_sync(self._inside, parts)
        try:
            await anyio.to_thread.run_sync(
                lambda: path.mkdir(parents=True, exist_ok=True)
            )
        except FileExistsError:
            raise ItemError(
                f"cannot create folder {'/'.join(parts)}: a file of that name is in the way"
            ) from None
        except OSError as exc:
            raise os_error(exc, f"creating folder {'/'.join(parts)}") from None
        log.info("local.folder_created", folder_id="/".join(parts))
        return Folder(
            source_id="/".join(parts), name=parts[-1], parent_id=parent_id, path=parts
        )

    async def upload(
        self, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Write ``staged`` as a new file; its metadata goes to the manifest.

        Returns once the file, its name in its folder and its manifest entry are durable
        (fsynced: the file by itself, the folder and the manifest's journal once for each
        group of concurrent uploads, :meth:`Manifest.put`). Raises ItemError on a name that is
        unsafe or would land outside the root, and when a different file of that name already
        exists (an identical one is taken as ours).
        """
        del journal  # one atomic step: nothing to resume between
        parts = self._asset_parts(request.folder_id, request.filename)
        rel = "/".join(parts)
        await self._manifest.entries()  # a corrupt manifest stops us before any write
        final, created, version = await anyio.to_thread.run_sync(
            self._write_new, parts, staged, rel, request)
        # the pipeline logs each upload (load.done); an identical file found there is news
        (log.debug if created else log.info)(
            "local.uploaded", source_id=request.source_id, target_id=rel, bytes=staged.size,
            existed=not created,
        )
        return TargetRef(target_id=rel, url=final.as_uri(), version=version)

    def _write_new(
        self, parts: tuple[str, ...], staged: StagedFile, rel: str, request: UploadRequest
    ) -> tuple[Path, bool, str | None]:
        """One worker-thread call: check the path, place the file, read its version marker,
        record it in the manifest (with its folder fsynced, in the manifest's group commit).
        Returns ``(path, created, version)``."""
        final = self._inside(parts)
        created = self._place_new(final, staged, rel)
        version = _version_of(final)
        previous = None if created else self._manifest.get_sync(rel)
        self._manifest.put_sync(
            rel,
            Entry.of(request.meta, source_id=request.source_id,
                     extra=previous.extra if previous else {}),
            # an identical file found there may be one a killed run linked but never made
            # durable: its folder is fsynced too
            durable_dirs=(final.parent,),
        )
        return final, created, version

    def _place_new(self, final: Path, staged: StagedFile, rel: str) -> bool:
        """Put the file at ``final`` without clobbering; False if an identical one was there.

        The file's bytes are fsynced before its name appears; the folder is not fsynced here
        (the caller hands it to :meth:`Manifest.put` as a ``durable_dirs``)."""
        try:
            try:
                tmp = atomic_write(final, copy_staged(staged), replace=False)
            except FileNotFoundError as exc:
                if exc.filename == str(staged.path):
                    raise
                # its folder is missing (created on the first write into it)
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = atomic_write(final, copy_staged(staged), replace=False)
        except FileNotFoundError as exc:
            if exc.filename == str(staged.path):
                raise ItemError(f"staged file for {rel} vanished before upload") from None
            raise os_error(exc, f"writing {rel}") from None
        except (FileExistsError, NotADirectoryError):
            raise ItemError(f"cannot write {rel}: a file is in the way of its folder") from None
        except OSError as exc:
            raise os_error(exc, f"writing {rel}") from None
        try:
            try:
                os.link(tmp, final)  # atomic and never overwrites
            except FileExistsError:
                if same_file(final, staged):
                    return False
                raise ItemError(
                    f"{rel} already exists with different content; not overwriting it"
                ) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                # No hard links here (FAT, some network shares): check, then rename.
                if final.exists() or final.is_symlink():
                    if same_file(final, staged):
                        return False
                    raise ItemError(
                        f"{rel} already exists with different content; not overwriting it"
                    ) from None
                tmp.replace(final)
            return True
        except OSError as exc:
            raise os_error(exc, f"writing {rel}") from None
        finally:
            tmp.unlink(missing_ok=True)

    async def replace(
        self, target_id: str, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Atomically overwrite the file ``target_id`` and set its metadata.

        Raises NotFoundError if the file is gone, ItemError on an unsafe id.
        """
        del journal
        parts = _existing_rel(target_id)
        rel = "/".join(parts)
        await self._manifest.entries()  # a corrupt manifest stops us before any write

        def overwrite() -> tuple[Path, str | None]:
            final = self._inside(parts)
            if not final.is_file():
                raise NotFoundError(f"{rel} no longer exists; it can't be replaced")
            try:
                atomic_write(final, copy_staged(staged), sync_dir=False)  # with the manifest's
            except OSError as exc:
                raise os_error(exc, f"replacing {rel}") from None
            version = _version_of(final)
            previous = self._manifest.get_sync(rel)
            self._manifest.put_sync(
                rel,
                Entry.of(request.meta, source_id=request.source_id,
                         extra=previous.extra if previous else {}),
                durable_dirs=(final.parent,),
            )
            return final, version

        final, version = await anyio.to_thread.run_sync(overwrite)
        log.info("local.replaced", source_id=request.source_id, target_id=rel, bytes=staged.size)
        return TargetRef(target_id=rel, url=final.as_uri(), version=version)

    async def update_metadata(self, target_id: str, meta: AssetMeta) -> None:
        """Set the manifest metadata of ``target_id`` (its recorded ``source_id`` kept).
        NotFoundError if the file is gone."""
        await self._set_metadata(target_id, meta, None)

    async def update_metadata_from(self, target_id: str, meta: AssetMeta,
                                   source_id: str) -> None:
        """Write the whole manifest entry of ``target_id``: ``meta`` and ``source_id`` (a
        file adopted after a kill between its link and its journal line has no entry at
        all). NotFoundError if the file is gone."""
        await self._set_metadata(target_id, meta, source_id)

    async def _set_metadata(self, target_id: str, meta: AssetMeta,
                            source_id: str | None) -> None:
        parts = _existing_rel(target_id)
        rel = "/".join(parts)
        final = await anyio.to_thread.run_sync(self._inside, parts)
        if not await anyio.to_thread.run_sync(final.is_file):
            raise NotFoundError(f"{rel} no longer exists; its metadata can't be updated")
        previous = await self._manifest.get(rel)
        await self._manifest.put(
            rel,
            Entry.of(
                meta,
                source_id=source_id or (previous.source_id if previous else None),
                extra=previous.extra if previous else {},
            ),
        )
        log.info("local.metadata_updated", target_id=rel)

    async def delete(self, target_id: str) -> None:
        """Remove the file and its manifest entry; a file already gone is fine."""
        parts = _existing_rel(target_id)
        rel = "/".join(parts)
        final = await anyio.to_thread.run_sync(self._inside, parts)

        def unlink() -> None:
            if final.is_dir() and not final.is_symlink():
                raise ItemError(f"{rel} is a folder, not an asset; not deleting it")
            final.unlink(missing_ok=True)
            fsync_dir(final.parent)

        try:
            await anyio.to_thread.run_sync(unlink)
        except OSError as exc:
            raise os_error(exc, f"deleting {rel}") from None
        await self._manifest.remove(rel)
        log.info("local.deleted", target_id=rel)

    async def asset_exists(self, source_id: str) -> bool:
        """Whether the file ``source_id`` (a path under the root) is still a file there.

        Raises ItemError on an id that is unsafe or resolves outside the root.
        """
        path = await anyio.to_thread.run_sync(self._inside, _existing_rel(source_id))
        return await anyio.to_thread.run_sync(path.is_file)

    async def read_asset(self, asset_id: str) -> Asset | None:
        """The file ``asset_id`` (a path under the root) as a listing would show it now: a
        stat (its version ``size:mtime:inode:ctime`` as a target) and its manifest entry
        (as this connector read it, with its own changes since); ``None`` when it is no
        longer a file. Raises ItemError on an id that is unsafe or resolves outside the
        root, ConfigError on a corrupt manifest."""
        parts = _existing_rel(asset_id)
        final = await anyio.to_thread.run_sync(self._inside, parts)
        if not await anyio.to_thread.run_sync(final.is_file):
            return None
        entries = await self._manifest.entries()

        def read() -> Asset | None:
            try:
                st = os.stat(final)  # noqa: PTH116 - the stat the listing reads
                return self._asset_builder(parts[:-1], entries)(parts[-1], st)
            except OSError:
                return None

        return await anyio.to_thread.run_sync(read)

    async def find_asset(
        self, folder_id: str | None, filename: str, size: int
    ) -> TargetRef | None:
        """The file ``filename`` in ``folder_id`` if it exists with ``size`` bytes."""
        parts = self._asset_parts(folder_id, filename)
        final = await anyio.to_thread.run_sync(self._inside, parts)

        def matches() -> bool:
            try:
                return final.is_file() and final.stat().st_size == size
            except OSError:
                return False

        if await anyio.to_thread.run_sync(matches):
            return TargetRef(target_id="/".join(parts), url=final.as_uri(),
                             version=await anyio.to_thread.run_sync(_version_of, final))
        return None

    # --- names and paths ----------------------------------------------------------------------

    def _asset_parts(self, folder_id: str | None, filename: str) -> tuple[str, ...]:
        folder = _split_rel(folder_id, "folder id") if folder_id is not None else ()
        return (*folder, self._check_name(filename, "file name", folder))

    def _check_name(self, name: str, what: str, parent: tuple[str, ...]) -> str:
        name = _check_component(name, what)
        if not parent and name in (self._config.manifest,
                                   self._config.manifest + JOURNAL_SUFFIX,
                                   self._config.manifest + LOCK_SUFFIX):
            raise ItemError(f"{what} {name!r} is reserved for the metadata manifest")
        return name

    def _inside(self, parts: tuple[str, ...]) -> Path:
        """``root/parts``, refusing a path that resolves (through symlinks) outside the root.

        ``parts`` are checked components (no ``.``, ``..`` or separator: :func:`_split_rel`)
        and the root was resolved once, when the connector was made, so only a symlink at or
        below the root can lead out: the components below the root are looked at with one
        ``lstat`` each, and the whole path is resolved only when one of them is a symlink
        (issue 12: ``Path.resolve`` made an ``lstat`` per component from ``/`` and a ``stat``,
        about 7 calls a file, on every asset's way to its upload). A component that cannot
        be looked at (missing, not a folder, no permission) ends the walk, as it ends
        ``os.path.realpath``'s: nothing below it resolves anywhere."""
        path = self._root.joinpath(*parts)
        if not _links_below(self._root, parts):
            return path
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as exc:
            raise ItemError(f"cannot resolve {'/'.join(parts)}: {exc}") from None
        if resolved != self._root and not resolved.is_relative_to(self._root):
            raise ItemError(
                f"{'/'.join(parts)} resolves outside the folder {self._root}; refusing it"
            )
        return path


def _links_below(root: Path, parts: tuple[str, ...]) -> bool:
    """Whether one of ``root/parts``'s components below ``root`` is a symlink (``lstat``
    each, from the top; one that cannot be looked at ends the walk: ``False``)."""
    at = os.fspath(root).rstrip(os.sep)  # ("/" as a root: no "//" prefix)
    for part in parts:
        at = f"{at}{os.sep}{part}"  # (strings: a Path per component cost more than its lstat)
        try:
            if stat.S_ISLNK(os.lstat(at).st_mode):
                return True
        except OSError:  # (ValueError: NUL, refused by _check_component before)
            return False
    return False


async def _chunks(file: AsyncFile[bytes], rel: str) -> AsyncGenerator[bytes, None]:
    while True:
        try:
            chunk = await file.read(CHUNK_SIZE)
        except OSError as exc:
            raise os_error(exc, f"reading {rel}") from None
        if not chunk:
            return
        yield chunk


def _target_version(size: int, mtime_ns: int, ino: int, ctime_ns: int) -> str:
    """A local target file's change marker: ``size:mtime_ns:inode:ctime_ns``. Any write to
    the file changes its ctime, which no tool can set back (``touch -d``, ``cp -p`` and
    ``rsync -t`` restore the mtime only), and an editor that saves by renaming a new file
    over it changes the inode: a same-size edit is drift, not an unchanged file (the ledger
    compares it with the marker of our own write, :attr:`TargetRef.version`). A chmod or
    chown changes the ctime too, and counts as an edit. A source keeps ``size:mtime_ns``."""
    return f"{size}:{mtime_ns}:{ino}:{ctime_ns}"


def _version_of(path: Path) -> str | None:
    """:func:`_target_version` of the file at ``path`` now, ``None`` if it can't be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return _target_version(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _path_max(root: Path) -> int:
    """PATH_MAX of the file system holding ``root`` (or its nearest existing parent)."""
    for place in (root, *root.parents):
        try:
            return int(os.pathconf(place, "PC_PATH_MAX"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError):
            break
    return DEFAULT_PATH_MAX


def printable(name: str) -> str:
    """A file-system name as text: bytes that are not UTF-8 (``os.fsdecode``'s surrogate
    escapes) shown as ``\\xNN``, so it can be printed, stored and reported."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _files_below(top: Path) -> tuple[list[str], str | None]:
    """Blocking: the files below folder ``top`` (at any depth, symlinks not followed), as
    printable paths relative to it, sorted; or ``([], why)`` when ``top`` cannot be listed."""
    errors: list[OSError] = []
    found: list[str] = []
    for folder, _folders, names in os.walk(top, onerror=errors.append):
        rel = os.path.relpath(folder, top)
        found.extend(printable(n if rel == "." else f"{rel}/{n}") for n in names)
    if errors and not found:
        return [], errors[0].strerror or str(errors[0])
    return sorted(found), None


def _skipped_asset(skip: _Skip) -> Asset:
    """An entry the listing leaves out, as the canonical model reports it (no bytes)."""
    folder = "/".join(skip.parts)
    return Asset(
        source_id="/".join((*skip.parts, skip.name)),
        filename=skip.name,
        folder_path=skip.parts,
        folder_id=folder or None,
        content_type=guess_content_type(skip.name),
        size=None,
        skipped=None if skip.failed else skip.reason,
        unreachable=skip.reason if skip.failed else None,
    )


def _check_component(name: str, what: str, forbidden: str = FORBIDDEN_NAME_CHARS) -> str:
    """One path component: not empty, none of ``forbidden`` (separators, NUL), not
    ``.``/``..``, <= 255 bytes."""
    if name in ("", ".", ".."):
        raise ItemError(f"{what} {name!r} is not a usable name")
    if any(c in name for c in forbidden):  # (a scan per forbidden char, not per name char)
        bad = sorted({c for c in name if c in forbidden})
        shown = ", ".join(repr(c) for c in bad)
        raise ItemError(f"{what} {name!r} contains {shown}; path separators and NUL are refused")
    if name.startswith(TMP_PREFIX):
        raise ItemError(f"{what} {name!r} uses the prefix reserved for our temp files")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ItemError(f"{what} {name!r} is not valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise ItemError(f"{what} {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    return name


def _split_rel(rel: str, what: str, forbidden: str = FORBIDDEN_NAME_CHARS) -> tuple[str, ...]:
    """A relative POSIX id as its components; ItemError if absolute or escaping, or if a
    component holds one of ``forbidden``."""
    if not rel:
        raise ItemError(f"{what} is empty")
    # os.path, not PurePath(rel).is_absolute(): a PurePath per asset cost more than the rest
    if rel.startswith(("/", *(c for c in "\\" if c in forbidden))) \
            or os.path.isabs(rel):  # noqa: PTH117
        raise ItemError(f"{what} {rel!r} is absolute; only paths inside the folder are allowed")
    return tuple(_check_component(part, what, forbidden) for part in rel.split("/"))


def _existing_rel(rel: str) -> tuple[str, ...]:
    """The id of a file found on this file system (a listed source asset, a target asset we
    wrote or adopted): any name the platform can hold is accepted (POSIX:
    ``back\\slash.txt``), so every file the listing yields can be read, replaced and deleted.
    ItemError if absolute or escaping the root."""
    return _split_rel(rel, "asset id", PLATFORM_FORBIDDEN_CHARS)


_: type[Target] = LocalFolderConnector
_replace: type[SupportsReplace] = LocalFolderConnector
_update: type[SupportsUpdateMetadata] = LocalFolderConnector
_delete: type[SupportsDelete] = LocalFolderConnector
_find: type[SupportsFindAsset] = LocalFolderConnector
_exists: type[SupportsAssetExists] = LocalFolderConnector
_read: type[SupportsReadAsset] = LocalFolderConnector
_provenance: type[SupportsProvenance] = LocalFolderConnector
