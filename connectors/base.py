"""The canonical model every layer speaks, and the capability Protocols of a connector.

Nothing above ``connectors/`` ever sees wire JSON: a connector turns its API's records into the
frozen dataclasses below, and turns them back when it writes.

Capabilities follow rclone's "small required core, optional features": every connector is a
:class:`Source`; a writable one is also a :class:`Target`; extras (replace a file, update
metadata, delete, find an asset we may have created, read one asset directly) are separate
Protocols that the pipeline asks about through :meth:`Capabilities.of`, never by checking a
connector's type.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

FolderPath = tuple[str, ...]
"""Folder names from the root down; ``()`` is the root."""


@dataclass(frozen=True, slots=True)
class Folder:
    """One folder as its connector sees it.

    ``source_id`` is the id in the connector that listed it (a source's id when read from a
    source, the target's id when read from a target). ``path`` includes the folder's own name.
    """

    source_id: str
    name: str
    parent_id: str | None
    path: FolderPath
    unconfirmed: str | None = None
    """Why the source cannot confirm this folder holds anything (Contento: a folder id from
    the job file under which the API lists no asset). The plan creates no such folder unless
    an asset is placed in it or below it, and says why on the folder's line."""


@dataclass(frozen=True, slots=True)
class LocalizedText:
    """Per-locale overrides of an asset's text fields; ``None`` means "no override"."""

    title: str | None = None
    description: str | None = None
    alt_text: str | None = None
    copyright: str | None = None


METADATA_FIELDS: frozenset[str] = frozenset(
    {"title", "description", "alt_text", "tags", "copyright", "focus", "locales"}
)
"""Canonical metadata fields a target may or may not be able to store."""


_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
"""What ``json.dumps(..., sort_keys=True, ensure_ascii=False)`` makes, without building an
encoder per call (:meth:`AssetMeta.fingerprint` runs once per asset in every plan)."""


@dataclass(frozen=True, slots=True)
class AssetMeta:
    """The editable metadata of an asset: what an upload sets and a metadata update changes."""

    title: str | None = None
    description: str | None = None
    alt_text: str | None = None
    tags: tuple[str, ...] = ()
    copyright: str | None = None
    focus: str | None = None
    """Focus point as ``"x,y"`` fractions of width and height (0..1), e.g. ``"0.5,0.25"``."""
    locales: Mapping[str, LocalizedText] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)
    """Target-native text fields that have no canonical name, set by a mapping rule
    (Storyblok's ``source``); a connector writes the keys its :class:`Limits` declare
    (:attr:`Limits.field_specs`) and ignores the others."""

    def present_fields(self) -> frozenset[str]:
        """Names of the fields that carry a value (used to warn about fields a target drops)."""
        present = set()
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in (None, (), {}, ""):
                present.add(f.name)
        return frozenset(present)

    def fingerprint(self) -> str:
        """A stable hash of the metadata, so a sync notices a metadata-only change."""
        if (self.title is None and self.description is None and self.alt_text is None
                and not self.tags and self.copyright is None and self.focus is None
                and not self.locales and not self.extra):
            return _NO_META_FINGERPRINT  # no metadata (most files of a local folder)
        payload: dict[str, object] = {
            "title": self.title,
            "description": self.description,
            "alt_text": self.alt_text,
            "tags": sorted(self.tags),
            "copyright": self.copyright,
            "focus": self.focus,
            "locales": {
                k: [v.title, v.description, v.alt_text, v.copyright]
                for k, v in sorted(self.locales.items())
            },
        }
        if self.extra:  # only when set, so the hashes of ledgers written before stay equal
            payload["extra"] = dict(sorted(self.extra.items()))
        raw = _FINGERPRINT_JSON.encode(payload).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


class _SharedEmpty(dict[str, str]):
    """An empty ``dict`` that refuses to be changed, so one can be shared by many objects."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a shared empty mapping (NO_STRINGS) cannot be changed: make a dict")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]


NO_STRINGS: Mapping[str, str] = _SharedEmpty()
"""An empty ``str -> str`` mapping shared by every asset without checksums or extra fields
(a local folder of 100,000 files lists 100,000 of each; a ``dict``, so it serialises as
one, e.g. in a Temporal payload)."""


_NO_META_FINGERPRINT = "dbc7a456ebaa8f72"
"""``AssetMeta().fingerprint()`` (pinned in the tests: every ledger holds it)."""


@dataclass(slots=True, unsafe_hash=True)
class Asset:
    """One asset (a file plus metadata) as its connector sees it.

    Never changed once made (make a changed copy with ``dataclasses.replace``), but not
    ``frozen``, as :class:`pipeline.plan.AssetAction` and :class:`state.records.ItemRecord`:
    a frozen dataclass sets each of these 20 fields through ``object.__setattr__``, and a
    plan of 100,000 assets a side builds 200,000 of them (issue 12); hashed by value as
    before."""

    source_id: str
    filename: str
    folder_path: FolderPath
    folder_id: str | None
    content_type: str
    size: int | None
    meta: AssetMeta = field(default_factory=AssetMeta)
    checksums: Mapping[str, str] = field(default_factory=dict)
    """Known digests by algorithm name (``"md5"``, ``"sha256"``), hex."""
    width: int | None = None
    height: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: str | None = None
    """The connector's change marker (``_version``, ``updated_at``...), if it has one."""
    url: str | None = None
    """Where the bytes can be fetched (public URL), if the connector has one."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Connector-specific fields that have no canonical home."""
    unreachable: str | None = None
    """Why the bytes cannot be fetched with this job's settings (the plan reports it)."""
    skipped: str | None = None
    """Why the source leaves this entry out on purpose (a FIFO, a symlink out of the root,
    operating-system clutter...). The plan lists it as a ``skip`` with this reason and the run
    report counts it as excluded, so nothing a source finds is invisible. Such an entry may
    carry no size or content type; its ``source_id`` is printable (for names that are not
    valid UTF-8, undecodable bytes are shown as ``\\xNN``)."""
    size_estimate: int | None = None
    """Approximate bytes when the source gives no exact count (Contento's ``"1.86 MB"``).

    Only for the plan's totals and for telling same-named files apart; the exact count comes
    from the download. ``size`` stays ``None`` for such an asset."""
    notes: tuple[str, ...] = ()
    """What the source wants the plan to say about this asset (where its folder came from)."""
    published: frozenset[tuple[str, str]] = frozenset()
    """``(environment, locale code)`` pairs the source has this asset published to, the
    environment as the source lists it (Contentstack ``publish_details``: its uid; see
    :class:`SupportsEnvironmentNames`); a target that publishes may carry them across."""

    def fingerprint(self) -> str:
        """What must change for a sync to send this asset again (file or metadata)."""
        file_part = self.checksums.get("sha256") or self.checksums.get("md5") or ""
        raw = "|".join(
            [
                self.filename,
                "/".join(self.folder_path),
                str(self.size),
                file_part,
                self.version or "",
                self.updated_at.isoformat() if self.updated_at else "",
                self.meta.fingerprint(),
            ]
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class StagedFile:
    """An asset's bytes in a file: a temporary copy with the digests computed while they
    streamed in, or (``temporary=False``) the source's own local file, read in place.

    ``md5`` / ``sha256`` are hex digests; a digest the target did not ask for
    (:func:`staged_digests`) may be ``""`` when the file is read in place (nothing hashed
    for nothing). ``temporary``: the pipeline deletes the file after the upload; never a
    source's own file.
    """

    path: Path
    size: int
    md5: str
    sha256: str
    content_type: str
    temporary: bool = True


DIGESTS = frozenset({"md5", "sha256"})
"""The digests a :class:`StagedFile` can carry."""


def staged_digests(target: object) -> frozenset[str]:
    """The digests ``target`` reads from a :class:`StagedFile` (its ``staged_digests``
    attribute, a frozenset of ``"md5"`` / ``"sha256"``); both for a target that does not
    say."""
    found = getattr(target, "staged_digests", DIGESTS)
    return frozenset(found) & DIGESTS if isinstance(found, frozenset) else DIGESTS


def lists_in_process(connector: object) -> bool:
    """Whether ``connector``'s listing is CPU work in this process (its ``lists_in_process``
    attribute, ``True``: a local folder's walk, a stat and an :class:`Asset` per file) rather
    than waiting on a network (an HTTP listing, the default for a connector that does not
    say). Two such listings gain nothing from running concurrently: they share one
    interpreter lock, and contend for it (at 100,000 files a side: about 2 s lost against
    one after the other); an HTTP listing beside any other gains its whole wait."""
    return getattr(connector, "lists_in_process", False) is True


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What the pipeline asks a target to create (or to replace the file of)."""

    source_id: str
    filename: str
    """Already sanitised for the target's name rules."""
    folder_id: str | None
    """The target's folder id; ``None`` is the root."""
    folder_path: FolderPath
    content_type: str
    meta: AssetMeta


@dataclass(frozen=True, slots=True)
class TargetRef:
    """Where an asset ended up in the target."""

    target_id: str
    url: str | None
    version: str | None = None
    """The target's change marker of the asset right after this write (Contentstack's
    ``_version``), where the write's answer names one: the ledger keeps it to tell a later
    edit in the target (drift) exactly."""


class UploadJournal(Protocol):
    """Durable notes of a multi-step upload, so a run killed between steps resumes safely.

    ``previous`` holds what an earlier, interrupted attempt recorded for the same item (empty
    on a first attempt). ``record`` returns only once the note is committed to the state DB:
    record a step's result (e.g. a signed upload id) before the next step's side effect.
    """

    @property
    def previous(self) -> Mapping[str, str]: ...

    async def record(self, step: str, data: Mapping[str, str]) -> None: ...


FieldKind = Literal["text", "tags", "focus"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One metadata field a target can store, as the mapping rules see it.

    ``name`` is a canonical field (``title``, ``description``, ``alt_text``, ``copyright``,
    ``focus``, ``tags``) or a target-native one carried in :attr:`AssetMeta.extra`
    (Storyblok's ``source``). ``kind``: ``"text"`` (one string), ``"tags"`` (a list of
    strings), ``"focus"`` (``"x,y"`` fractions 0..1). ``max_length``: longest value in
    characters (code points), ``None`` where the vendor documents none. ``forbidden_chars``:
    characters the target cannot hold in one value (Contentstack's upload sends tags
    comma-joined in one form field, so a tag cannot hold ``,``). ``localized``: the target
    keeps per-locale values of it (the only declaration of it: :attr:`Limits.locale_fields`
    is read from it; a canonical text field may be localized only, with no default value in
    ``metadata_fields``, as Storyblok's description). ``doc``: the vendor documentation the
    declaration comes from (shown by ``assetferry mappings show``). ``created_as``: the value
    a create that sends none gives the field: ``""`` (empty) or ``"filename"`` (the uploaded
    file's name, Contentstack's title); a write that restores the source's state over the
    target's (an update, a replace) sends that value, so no edit of the target survives it
    (:func:`mappings.fields.as_created`).
    """

    name: str
    kind: FieldKind = "text"
    max_length: int | None = None
    forbidden_chars: str = ""
    localized: bool = False
    doc: str = ""
    created_as: Literal["", "filename"] = ""


_FIELD_KINDS: Mapping[str, FieldKind] = {"tags": "tags", "focus": "focus"}
_LOCALIZED_TEXT = frozenset({"title", "description", "alt_text", "copyright"})


@dataclass(frozen=True, slots=True)
class Limits:
    """What a target accepts. ``None`` means "no documented limit"."""

    max_folder_depth: int | None = None
    max_folders: int | None = None
    max_file_size: int | None = None
    max_file_size_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Per kind (``"image"``, ``"document"``): stricter limits than ``max_file_size``."""
    metadata_fields: frozenset[str] = METADATA_FIELDS
    field_specs: tuple[FieldSpec, ...] = ()
    """Details of the fields in ``metadata_fields`` (limits, kind, vendor doc) and the
    target-native fields it has beyond them (Storyblok ``source``); see
    :meth:`declared_fields`."""
    default_max_assets: int | None = None
    """How many assets the target holds by default (a limit its vendor raises on request, so
    the plan warns on each upload past it rather than refusing; Contentstack: 10,000)."""
    min_file_size: int = 0
    """Smallest file the target stores, in bytes (Storyblok's storage policy: 1)."""
    forbidden_name_chars: str = ""
    """Characters the target refuses or rewrites in names; the mapping replaces them by ``_``."""
    filename_rewrites_whitespace: bool = False
    """Asset filenames (not folder names) get whitespace replaced by ``_`` (Contentstack)."""
    filename_rewrites_inner_dots: bool = False
    """Asset filenames get every ``.`` but the last replaced by ``_`` (Storyblok)."""
    max_name_length: int | None = None
    """Longest folder or file name, in characters (code points)."""
    max_name_bytes: int | None = None
    """Longest folder or file name in bytes of its UTF-8 form (a POSIX file system: 255)."""
    max_path_bytes: int | None = None
    """Longest path below the target's root (folder names and file name joined by ``/``), in
    UTF-8 bytes (a file system's PATH_MAX less the root's own path)."""
    case_insensitive_names: bool = False
    """Names that differ only in case are the same name in the target (macOS, Windows)."""
    folders_and_files_share_names: bool = False
    """A file and a folder in one folder cannot have the same name (a file system)."""
    reserved_names: frozenset[str] = frozenset()
    """Names the target refuses, compared as the target compares names. A name whose part
    before the first dot is reserved is reserved too (Windows' ``CON`` and ``CON.txt``)."""
    reserved_prefixes: tuple[str, ...] = ()
    """Name prefixes the target keeps for itself (the local folder's temp files)."""
    accepted_content_types: frozenset[str] | None = None
    """Content types the target takes (``None``: any); others are ``unsupported``."""
    locales: frozenset[str] | None = None
    """Locale codes the target can hold overrides for (``None``: any)."""
    version_is_file: bool = False
    """The listed :attr:`Asset.version` changes only when the file does (a local folder keeps
    metadata in its manifest), so drift it shows is an edited file: ``source-wins`` sends the
    file again, not only the metadata (where it may be either, as Contentstack's
    ``_version``, a same-size drift is taken as a metadata edit)."""
    lists_written_meta: bool = False
    """The listed :attr:`Asset.meta` is exactly the canonical metadata our last write set
    (a local folder's manifest entry), so the ledger keeps its fingerprint and a hand edit
    of it in the target is drift (where a target stores fewer fields or rewrites them, as
    the CMSs do, the listing cannot be compared with what we sent)."""
    requests_per_second: float | None = None
    requests_per_upload: int = 1
    """Paced API calls one upload takes (for the plan's estimate; storage POSTs don't count)."""
    listing_page_size: int | None = None
    """Folders or assets per paced listing request (for the plan's estimate); ``None``: the
    listing is not paced (a file system)."""
    requests_per_download: int = 0
    """Paced API calls reading one asset's bytes takes as a source (for the plan's estimate):
    0 where the file comes from a CDN or file host, which the API's rate limit does not pace."""

    def declared_fields(self) -> dict[str, FieldSpec]:
        """Every metadata field the target stores, by name, in a stable order.

        The canonical fields of ``metadata_fields`` (but ``locales``, which is a mechanism,
        not a field) with the spec given in ``field_specs`` or a default one (kind by name;
        localized when the target keeps ``locales`` and the field has per-locale text), then
        the target-native fields of ``field_specs``.
        """
        given = {spec.name: spec for spec in self.field_specs}
        out: dict[str, FieldSpec] = {}
        for name in ("title", "description", "alt_text", "copyright", "focus", "tags"):
            if name in self.metadata_fields:
                out[name] = given.get(name) or FieldSpec(
                    name, _FIELD_KINDS.get(name, "text"),
                    localized="locales" in self.metadata_fields and name in _LOCALIZED_TEXT)
        for name, spec in given.items():
            if name not in METADATA_FIELDS:
                out.setdefault(name, spec)
        return out

    @property
    def locale_fields(self) -> frozenset[str] | None:
        """Text fields a locale override can carry in the target: those ``field_specs``
        declare :attr:`FieldSpec.localized` (the one place a target says it), or ``None``
        when none does (then the text fields of ``metadata_fields``). Webflow localizes only
        ``altText`` (facts §3.10); Storyblok keeps ``<field>__i18n__<lang>`` for alt, title,
        copyright and description (§2.10)."""
        return frozenset(s.name for s in self.field_specs if s.localized) or None

    def max_size_for(self, content_type: str) -> int | None:
        kind = "image" if content_type.startswith("image/") else "document"
        limits = [x for x in (self.max_file_size, self.max_file_size_by_kind.get(kind)) if x]
        return min(limits) if limits else None


SYSTEM_FILES: Mapping[str, str] = {
    ".DS_Store": "macOS Finder settings",
    ".localized": "macOS Finder settings",
    ".Spotlight-V100": "macOS Spotlight index",
    ".fseventsd": "macOS file-system event log",
    ".Trashes": "macOS trash",
    ".TemporaryItems": "macOS temporary items",
    ".DocumentRevisions-V100": "macOS document versions",
    "Thumbs.db": "Windows thumbnail cache",
    "ehthumbs.db": "Windows thumbnail cache",
    "desktop.ini": "Windows folder settings",
    "$RECYCLE.BIN": "Windows recycle bin",
    "System Volume Information": "Windows system folder",
}
"""Operating-system clutter by exact name (Windows' names compared case-insensitively)."""


def _casefolded(names: Mapping[str, str]) -> dict[str, str]:
    """``names`` keyed by their casefolded name (the first of names that fold alike wins)."""
    out: dict[str, str] = {}
    for name, what in names.items():
        out.setdefault(name.casefold(), what)
    return out


_SYSTEM_FILES_FOLDED = _casefolded(SYSTEM_FILES)
"""One lookup per listed name, not a pass over every system file name."""


def system_file_reason(name: str) -> str | None:
    """Why ``name`` is operating-system clutter rather than an asset, or ``None``.

    Exact names from :data:`SYSTEM_FILES`, and macOS AppleDouble files (``._photo.jpg``, the
    resource fork a Mac writes beside a file on a non-Mac disk). Sources skip these by default
    (``include_system_files = true`` keeps them).
    """
    what = SYSTEM_FILES.get(name)
    if what is None:
        what = _SYSTEM_FILES_FOLDED.get(name.casefold())
    if what is None and name.startswith("._") and len(name) > 2:
        what = "macOS AppleDouble resource fork"
    if what is None:
        return None
    return f"operating-system file ({what}); set include_system_files = true to migrate it"


class Source(Protocol):
    """Every connector can be read.

    Listing raises :class:`connectors.errors.SyncError` subclasses only; a listing that cannot
    be completed must raise rather than end early.
    """

    name: str
    """Connector name, e.g. ``"contentstack"``."""

    @property
    def scope(self) -> str:
        """Which space/stack/folder this connector points at, e.g. ``"blt123@main"``.

        Part of the job's route in the state DB; never contains a secret.
        """
        ...

    def iter_folders(self) -> AsyncIterator[Folder]: ...

    def iter_assets(self) -> AsyncIterator[Asset]: ...

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream the asset's bytes. Raises ItemError when they can't be had."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SupportsListingBatches(Protocol):
    def iter_listing(self) -> AsyncIterator[Folder | Sequence[Asset]]:
        """The whole listing in one walk: each folder of :meth:`Source.iter_folders` (parents
        first) and the assets of :meth:`Source.iter_assets` a list at a time, each kind in
        its own order (a local folder: a folder's files between two of its subfolders per
        list). For a listing made in this process (100,000 files): one walk, not one for
        the folders and one for the assets, and no async step per asset; the pipeline
        lists through it where a connector has it. Raises as ``iter_assets`` does."""
        ...


@runtime_checkable
class SupportsLocalPath(Protocol):
    def local_path(self, asset: Asset) -> Path | None:
        """The asset's bytes as a local file the pipeline may read in place (never write or
        delete), or ``None`` when they must be streamed through ``open_asset``. Raises
        ItemError when the file is gone or unsafe (as ``open_asset`` would).

        Blocking (it may touch the file system, so it must stay a few stat calls): the
        pipeline calls it in a worker thread, in the same hop as the file's size check and
        digests (one thread hop per file), or on the event loop itself for a small file
        (a hop costs more than a stat)."""
        ...


@runtime_checkable
class Target(Source, Protocol):
    """A writable connector."""

    @property
    def limits(self) -> Limits: ...

    async def create_folder(self, parent_id: str | None, name: str) -> Folder:
        """Create a folder under ``parent_id`` (``None`` = root); returns it with its new id."""
        ...

    async def upload(
        self, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Create a new asset from ``staged`` with ``request.meta``."""
        ...


@runtime_checkable
class SupportsReplace(Protocol):
    async def replace(
        self, target_id: str, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Replace the file of an existing asset (keeping its id where the API allows)."""
        ...


@runtime_checkable
class SupportsUpdateMetadata(Protocol):
    async def update_metadata(self, target_id: str, meta: AssetMeta) -> None: ...


@runtime_checkable
class SupportsProvenance(Protocol):
    async def update_metadata_from(self, target_id: str, meta: AssetMeta,
                                   source_id: str) -> None:
        """Set the metadata of ``target_id`` and record it as the copy of the source asset
        ``source_id``: the whole record an upload writes (a local folder's manifest entry:
        metadata and ``source_id``), so an asset adopted after an interrupted upload, or
        taken over by another source asset, names its source as an uploaded one does.
        Raises like ``update_metadata``."""
        ...


@runtime_checkable
class SupportsDelete(Protocol):
    async def delete(self, target_id: str) -> None: ...


@runtime_checkable
class SupportsFindAsset(Protocol):
    async def find_asset(
        self, folder_id: str | None, filename: str, size: int
    ) -> TargetRef | None:
        """Look for an asset we may have created: same folder, name and size.

        Used to reconcile an upload whose outcome is unknown (killed run, ambiguous error).
        """
        ...


@runtime_checkable
class SupportsWriteCheck(Protocol):
    async def check_writable(self) -> None:
        """Raise :class:`connectors.errors.ConfigError` when the target cannot be written
        (read-only, no permission), saying what to do; what ``plan`` checks before a run."""
        ...


@runtime_checkable
class SupportsTempReclaim(Protocol):
    async def reclaim_temp_files(self) -> tuple[int, int]:
        """Remove partial temp files killed runs left in the target (only those no live
        writer can own), after the target was listed, in a run (never a dry run). Returns
        ``(files, bytes)`` removed."""
        ...


@runtime_checkable
class SupportsAssetExists(Protocol):
    async def asset_exists(self, source_id: str) -> bool:
        """Whether the asset ``source_id`` is still in this connector, by a direct read of
        that one item, never by a listing (design: "Listings you can trust").

        Prune asks it of the source before deleting a target asset: absence from a listing is
        no proof of deletion. A soft-deleted asset counts as gone. Raises
        :class:`connectors.errors.SyncError` when the answer can't be had; the caller then
        keeps the asset.
        """
        ...


@runtime_checkable
class SupportsReadAsset(Protocol):
    async def read_asset(self, asset_id: str) -> Asset | None:
        """The asset ``asset_id`` of this connector as it is now, by a direct read of that one
        item (one request: Contentstack ``GET /v3/assets/{uid}``, Storyblok ``GET
        assets/{id}``, Webflow ``GET /v2/assets/{id}``; a local folder: a stat of the file
        and its manifest entry), never by a listing; ``None`` when it is gone (a 404, a
        soft-deleted asset, no such file).

        Its change markers (``version``, ``size``, ``updated_at``) and ``meta`` are what a
        listing would show, so :func:`pipeline.plan.target_drift` reads it as it reads the
        listing; the pipeline asks it of the target right before a destructive write (a
        delete, a replace, a metadata overwrite) to see an edit made there since the plan.
        Fields a direct read cannot tell without more requests may be left out: the folder
        path is ``()`` where the folder listing is not at hand, per-locale texts a separate
        request would read are empty. Raises :class:`connectors.errors.SyncError` when the
        answer can't be had (the caller then does not write).
        """
        ...


@runtime_checkable
class SupportsChangedSince(Protocol):
    def iter_assets_changed_since(self, since: datetime) -> AsyncIterator[Asset]:
        """The assets created or changed (file, metadata, folder) at or after ``since`` (an
        aware UTC time), by the API's own filter or sort on update time; it may list more,
        never fewer. An incremental listing says nothing about deletions: prune never acts
        on it. Raises like ``iter_assets``."""
        ...


@runtime_checkable
class SupportsReferences(Protocol):
    async def reference_count(self, source_id: str) -> int:
        """How many entries (each entry and locale once) reference the asset ``source_id``,
        for the ``only_referenced`` filter (Contentstack: ``GET /v3/assets/{uid}/references``,
        CMA "Get asset references").

        One request per asset. Raises NotFoundError when the asset is gone, and other
        :class:`connectors.errors.SyncError` subclasses when the answer can't be had (the
        caller then keeps the asset, with a note).
        """
        ...


@dataclass(frozen=True, slots=True)
class Publication:
    """Where one asset is published: ``(environment name, locale code)`` pairs."""

    pairs: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def everywhere(cls, environments: Sequence[str], locales: Sequence[str]) -> Publication:
        """Every environment in every locale (the job file's ``publish`` table)."""
        return cls(frozenset((e, lc) for e in environments for lc in locales))

    def batches(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """``(environments, locales)`` per publish request, each request publishing every
        environment in every locale it names (Contentstack's publish body): environments
        with the same set of locales share one request. Sorted, so reruns send the same."""
        by_env: dict[str, set[str]] = {}
        for env, locale in self.pairs:
            by_env.setdefault(env, set()).add(locale)
        groups: dict[tuple[str, ...], list[str]] = {}
        for env, locales in by_env.items():
            groups.setdefault(tuple(sorted(locales)), []).append(env)
        return sorted((tuple(sorted(envs)), locales) for locales, envs in groups.items())

    def text(self) -> str:
        """``production (en-us, de-de); staging (en-us)`` for plan lines."""
        return "; ".join(f"{', '.join(envs)} ({', '.join(locales)})"
                         for envs, locales in self.batches())

    def key(self) -> str:
        """A stable short hash of the pairs (part of the ledger's source hash)."""
        raw = json.dumps(sorted(self.pairs), separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class PublishRule:
    """What a target's job-file section says about publishing (``[target] publish``)."""

    fixed: Publication | None = None
    """Publish every migrated asset here (``publish = {environments = [...], locales =
    [...]}``); overrides carrying."""
    carry: bool = True
    """With no fixed publication: publish where the source has the asset published
    (:attr:`Asset.published`); ``publish = false`` turns it off."""
    key: str = "target.publish"
    """The job-file key, for messages."""


@dataclass(frozen=True, slots=True)
class PublishTargets:
    """The environments (names) and locales (codes) a target can publish to."""

    environments: frozenset[str]
    locales: frozenset[str]


@runtime_checkable
class SupportsEnvironmentNames(Protocol):
    async def environment_names(self) -> Mapping[str, str]:
        """Environment id -> name, for :attr:`Asset.published` (Contentstack lists publish
        details by environment uid, and publishing takes names, which two stacks share):
        ``GET /v3/environments``. Raises SyncError when it can't be read."""
        ...


@runtime_checkable
class SupportsMove(Protocol):
    async def move(self, target_id: str, folder_id: str | None) -> None:
        """Move an asset into the folder ``folder_id`` (``None`` = root), keeping its id,
        file and metadata. Raises ItemError when the target refuses."""
        ...


@runtime_checkable
class SupportsPublish(Protocol):
    """A target that publishes assets to environments and locales (Contentstack)."""

    @property
    def publish_rule(self) -> PublishRule: ...

    async def publish_targets(self) -> PublishTargets:
        """What the target has to publish to (Contentstack: ``GET /v3/environments`` and
        ``GET /v3/locales``). Raises SyncError when it can't be read."""
        ...

    async def publish(self, target_id: str, publication: Publication) -> None:
        """Publish the asset's current version everywhere ``publication`` names (one
        request per :meth:`Publication.batches` entry; Contentstack: ``POST
        /v3/assets/{uid}/publish``). Raises ItemError when refused (the item fails; a
        resume publishes again without uploading again)."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do, computed once from the Protocols it implements."""

    target: bool
    replace: bool
    update_metadata: bool
    delete: bool
    find_asset: bool
    asset_exists: bool = False
    move: bool = False
    changed_since: bool = False
    references: bool = False
    publish: bool = False
    read_asset: bool = False

    @classmethod
    def of(cls, connector: object) -> Capabilities:
        return cls(
            target=isinstance(connector, Target),
            replace=isinstance(connector, SupportsReplace),
            update_metadata=isinstance(connector, SupportsUpdateMetadata),
            delete=isinstance(connector, SupportsDelete),
            find_asset=isinstance(connector, SupportsFindAsset),
            asset_exists=isinstance(connector, SupportsAssetExists),
            move=isinstance(connector, SupportsMove),
            changed_since=isinstance(connector, SupportsChangedSince),
            references=isinstance(connector, SupportsReferences),
            publish=isinstance(connector, SupportsPublish),
            read_asset=isinstance(connector, SupportsReadAsset),
        )
