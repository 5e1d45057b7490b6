"""Storyblok space as a source and a target (Management API v1).

Mapping choices (Storyblok -> canonical, and back):

- ids are 53-bit integers, carried as exact decimal strings;
- ``filename`` is the public URL; the name is ``short_filename`` (or the URL's last segment);
  width and height come from the URL's ``/WxH/`` segment, the only place Storyblok has them;
- ``alt``/``title``/``copyright`` map to ``alt_text``/``title``/``copyright``; Storyblok has no
  description, so ``description`` is not in :data:`METADATA_FIELDS`; ``source`` goes to
  ``extra["source"]``; tags are internal tags of ``object_type: "asset"``;
- translations live in ``meta_data`` as ``<field>__i18n__<lang>`` (alt, title, copyright and
  description when present) and map to ``meta.locales``;
- ``focus`` is a pixel box ``"X1xY1:X2xY2"`` (the image service's ``focal()`` filter). A 1-px
  box names its top-left pixel, a larger box its centre; the canonical focus is that point as
  ``"x,y"`` fractions of width and height, so it exists only when the dimensions are known.
  The raw value is always kept in ``extra["focus"]``. Writing renders ``"x,y"`` as a 1-px box
  at ``round(x*W), round(y*H)`` (so a read after a write gives back the same pixel); without
  dimensions the focus is left as it is;
- private assets (``is_private``) are read through a signed URL from the CDA with
  ``asset_token``; ``extra["is_private"] = "true"`` marks them.

Uploads are Storyblok's three steps (sign, storage POST, ``finish_upload``) and then a ``PUT``
of the metadata. Each step is noted in the upload journal before the next side effect:

- ``signed`` ``{"signed_id", "signed_at", "stored": "0", "finished": "0"}``, then ``stored``,
  then ``finished`` (each sets its flag to ``"1"``). Notes are cumulative, so the last one
  alone tells how far an attempt got, and a journal that merges notes sees the reset flags;
- resume after ``finished``: only the metadata ``PUT``; after ``stored``: finish, then ``PUT``;
  after ``signed`` only: sign again *with the signed id* (Storyblok's replace-sign), store and
  finish. A signed-but-unfinished asset is not visible, so this never makes a second asset
  (if the pending id is gone, a fresh sign is used; the stale one never appears either);
- a storage refusal (an expired 10-minute signature) gets one fresh replace-sign.

The upload's ``size`` ("WxH") is read from image headers with Pillow, so the public URL carries
the dimensions like uploads from Storyblok's own tools.

``max_file_size`` and ``min_file_size`` are the bounds of the signed S3 policy
(``content-length-range`` 1 to 5,242,879,999 bytes: an empty file is refused, so the plan
reports it as unsupported); the plan-dependent limits are not documented for current plans,
nor is a limit on the length of a file or folder name.
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import structlog

from connectors.base import (
    Asset,
    AssetMeta,
    FieldSpec,
    Folder,
    FolderPath,
    Limits,
    LocalizedText,
    Source,
    StagedFile,
    SupportsAssetExists,
    SupportsChangedSince,
    SupportsDelete,
    SupportsFindAsset,
    SupportsMove,
    SupportsReadAsset,
    SupportsReplace,
    SupportsUpdateMetadata,
    Target,
    TargetRef,
    UploadJournal,
    UploadRequest,
)
from connectors.errors import ItemError, MalformedResponseError, NotFoundError, SyncError
from connectors.media import file_work, image_size
from connectors.pagination import PageNumberPaginator, iter_listing
from connectors.storyblok.client import StoryblokClient
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.wire import FinishResponse, SignedResponse, WireAsset, WireFolder

log = structlog.get_logger(__name__)

METADATA_FIELDS: frozenset[str] = frozenset(
    {"title", "alt_text", "copyright", "focus", "tags", "locales"}
)
FIELD_SPECS: tuple[FieldSpec, ...] = (
    FieldSpec("title", localized=True,
              doc="Management API, Assets: Update an asset: title, meta_data title__i18n__"),
    FieldSpec("alt_text", localized=True,
              doc="Management API, Assets: Update an asset: alt, meta_data alt__i18n__"),
    FieldSpec("copyright", localized=True,
              doc="Management API, Assets: Update an asset: copyright, meta_data "
                  "copyright__i18n__"),
    # per locale only: meta_data description__i18n__<lang>, no default description field
    FieldSpec("description", localized=True,
              doc="Management API, Assets: Update an asset: meta_data description__i18n__ only"),
    FieldSpec("focus", "focus", doc="Management API, Assets: Update an asset: focus, images only"),
    FieldSpec("tags", "tags", doc="Management API, Assets: Update an asset: internal_tag_ids"),
    FieldSpec("source", doc="Management API, Assets: Update an asset: source, meta_data source"),
)
"""What a Storyblok asset stores; ``source`` travels in :attr:`AssetMeta.extra`."""
MAX_FILE_SIZE = 5_242_879_999
MIN_FILE_SIZE = 1
"""The signed storage policy's ``content-length-range`` starts at 1 byte (facts §2.5): S3
refuses an empty file with ``EntityTooSmall``."""
PER_PAGE = 100
CDN_HOST = "https://a.storyblok.com"
LISTING_ORDER = "created_at:asc"
CHANGED_ORDER = "updated_at:desc"
JUST_READ_FRESH = 30.0
"""Seconds an asset :meth:`StoryblokConnector.read_asset` read stays the one a metadata update
merges into (the drift check's read, a moment before the write), instead of a second
``GET assets/{id}``."""
JUST_READ_KEPT = 256
"""Reads kept for that at most (one per asset in flight; a read no write followed goes)."""
"""The incremental listing's order: most recently updated first (facts §2.3 ``sort_by``)."""
"""Oldest first: the stable order the asset list offers (``sort_by``, facts §2)."""

_I18N = re.compile(r"^(alt|title|copyright|description)__i18n__(.+)$")
_DIMS = re.compile(r"^(\d+)x(\d+)$")
_BOX = re.compile(r"^\s*(\d+)x(\d+):(\d+)x(\d+)\s*$")
_POINT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*,\s*([0-9]*\.?[0-9]+)\s*$")
_LOCALE_FIELDS = {
    "alt": "alt_text",
    "title": "title",
    "copyright": "copyright",
    "description": "description",
}

Dims = tuple[int, int]


# -- pure mapping helpers ---------------------------------------------------------------


def parameterize(filename: str) -> str:
    """Storyblok's stored name: every "." except the last becomes "_"."""
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        return filename
    return f"{stem.replace('.', '_')}.{ext}"


def public_url(filename: str | None) -> str | None:
    """An absolute URL from the asset's ``filename`` (sometimes ``//host/...`` or ``/f/...``)."""
    if not filename:
        return None
    if filename.startswith("//"):
        return "https:" + filename
    if filename.startswith("/"):
        return CDN_HOST + filename
    return filename


def _url_path(url: str | None) -> str | None:
    """The path of an asset URL (in its public form), ``None`` when there is none."""
    if not url:
        return None
    try:
        return httpx.URL(public_url(url) or url).path
    except httpx.InvalidURL:
        return None


def dims_from_url(url: str | None) -> Dims | None:
    """Width and height from the ``/WxH/`` segment of an asset URL (``None`` if 0 or absent)."""
    path = _url_path(url)
    if path is None:
        return None
    segments = [s for s in path.split("/") if s]
    for segment in segments[:-1]:
        match = _DIMS.match(segment)
        if match:
            width, height = int(match.group(1)), int(match.group(2))
            return (width, height) if width > 0 and height > 0 else None
    return None


def name_from_url(url: str | None) -> str | None:
    """The file name in an asset URL's last path segment, percent-decoded exactly once.

    ``.../x%2520y.png`` names ``x%20y.png`` (a literal ``%20``), ``.../x%20y.png`` names
    ``x y.png``. Read from the raw (still encoded) path: ``httpx.URL.path`` is decoded
    already, and decoding it again would turn a literal ``%20`` into a space.
    """
    if not url:
        return None
    try:
        raw = httpx.URL(public_url(url) or url).raw_path.decode("ascii")
    except (httpx.InvalidURL, UnicodeDecodeError):
        return None
    last = raw.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return unquote(last) or None


def _fraction(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def focus_to_canonical(raw: str | None, dims: Dims | None) -> str | None:
    """``"X1xY1:X2xY2"`` pixels -> ``"x,y"`` fractions (needs the image's dimensions)."""
    if not raw or dims is None:
        return None
    match = _BOX.match(raw)
    if not match:
        return None
    x1, y1, x2, y2 = (int(g) for g in match.groups())
    width, height = dims
    x = x1 if abs(x2 - x1) <= 1 else (x1 + x2) / 2
    y = y1 if abs(y2 - y1) <= 1 else (y1 + y2) / 2
    fx = min(max(x / width, 0.0), 1.0)
    fy = min(max(y / height, 0.0), 1.0)
    return f"{_fraction(fx)},{_fraction(fy)}"


def focus_to_storyblok(focus: str | None, dims: Dims | None) -> str | None:
    """``"x,y"`` fractions -> a 1-px box ``"XxY:X+1xY+1"``; ``None`` when it can't be drawn."""
    if not focus or dims is None:
        return None
    match = _POINT.match(focus)
    if not match:
        return None
    fx, fy = float(match.group(1)), float(match.group(2))
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        return None
    width, height = dims
    x = min(round(fx * width), width - 1)
    y = min(round(fy * height), height - 1)
    return f"{x}x{y}:{x + 1}x{y + 1}"


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value != "":
        return value
    return None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _locales(meta_data: Mapping[str, Any]) -> dict[str, LocalizedText]:
    found: dict[str, dict[str, str]] = {}
    for key, value in meta_data.items():
        match = _I18N.match(key)
        text = _text(value)
        if match and text is not None:
            found.setdefault(match.group(2), {})[_LOCALE_FIELDS[match.group(1)]] = text
    return {lang: LocalizedText(**values) for lang, values in sorted(found.items())}


def _folder_key(folder_id: int | None) -> int | None:
    return folder_id or None


def _parse_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ItemError(f"{value!r} is not a Storyblok asset id (a number)") from None


class StoryblokConnector:
    """One Storyblok space. Source, Target, and replace / metadata / delete / find extras."""

    name = "storyblok"
    staged_digests: frozenset[str] = frozenset()
    """The signed upload sends the file alone: no digest."""

    def __init__(
        self, config: StoryblokConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._client = StoryblokClient(config, transport=transport)
        self._folders: dict[int, Folder] | None = None
        self._folder_lock = anyio.Lock()
        self._tags: dict[str, int] | None = None
        self._tag_lock = anyio.Lock()
        self._just_read: dict[int, tuple[float, WireAsset]] = {}
        """The asset :meth:`read_asset` read last, by id, with when (``time.monotonic``): a
        metadata update right after it (the pipeline's drift check reads the asset before
        it overwrites its metadata) merges into that answer instead of reading it again."""
        self._limits = Limits(
            max_folder_depth=None,
            max_folders=None,
            max_file_size=MAX_FILE_SIZE,
            min_file_size=MIN_FILE_SIZE,
            metadata_fields=METADATA_FIELDS,
            field_specs=FIELD_SPECS,
            forbidden_name_chars="/\\",
            filename_rewrites_inner_dots=True,  # Storyblok parameterizes names (facts §2.5)
            requests_per_second=config.rate,
            requests_per_upload=3,  # sign, finish_upload, metadata PUT
            listing_page_size=PER_PAGE,
        )

    @property
    def scope(self) -> str:
        return self._config.scope()

    @property
    def limits(self) -> Limits:
        return self._limits

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> StoryblokConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- folders -------------------------------------------------------------------------

    @staticmethod
    def _resolve_folders(wire: list[WireFolder]) -> dict[int, Folder]:
        by_id = {f.id: f for f in wire}
        resolved: dict[int, Folder] = {}

        def resolve(folder: WireFolder, trail: tuple[int, ...]) -> Folder:
            done = resolved.get(folder.id)
            if done is not None:
                return done
            if folder.id in trail:
                raise MalformedResponseError(
                    f"Storyblok asset folder {folder.id} is its own ancestor"
                )
            parent_key = _folder_key(folder.parent_id)
            if parent_key is None:
                path: FolderPath = (folder.name,)
                parent_id = None
            else:
                parent = by_id.get(parent_key)
                if parent is None:
                    raise MalformedResponseError(
                        f"Storyblok asset folder {folder.id} ({folder.name!r}) names parent "
                        f"{parent_key}, which is not in the folder list"
                    )
                parent_folder = resolve(parent, (*trail, folder.id))
                path = (*parent_folder.path, folder.name)
                parent_id = parent_folder.source_id
            result = Folder(str(folder.id), folder.name, parent_id, path)
            resolved[folder.id] = result
            return result

        for folder in wire:
            resolve(folder, ())
        return resolved

    async def _load_folders(self, *, refresh: bool = False) -> dict[int, Folder]:
        async with self._folder_lock:
            if self._folders is None or refresh:
                self._folders = self._resolve_folders(await self._client.list_folders())
            return self._folders

    async def iter_folders(self) -> AsyncIterator[Folder]:
        """Every asset folder, parents before children. Raises MalformedResponseError when a
        folder names a parent that is not listed."""
        folders = await self._load_folders(refresh=True)
        for folder in sorted(folders.values(), key=lambda f: len(f.path)):
            yield folder

    async def create_folder(self, parent_id: str | None, name: str) -> Folder:
        parent_key = _parse_id(parent_id) if parent_id else None
        parent_path: FolderPath = ()
        if parent_key is not None:
            folders = await self._load_folders()
            parent = folders.get(parent_key)
            if parent is None:
                parent = (await self._load_folders(refresh=True)).get(parent_key)
            if parent is None:
                raise NotFoundError(f"Storyblok has no asset folder {parent_id}")
            parent_path = parent.path
        wire = await self._client.create_folder(name, parent_key)
        folder = Folder(
            str(wire.id), wire.name, str(parent_key) if parent_key else None,
            (*parent_path, wire.name),
        )
        async with self._folder_lock:
            if self._folders is not None:
                self._folders[wire.id] = folder
        log.info("storyblok.folder_created", folder_id=folder.source_id, path="/".join(folder.path))
        return folder

    # -- assets --------------------------------------------------------------------------

    async def iter_assets(self) -> AsyncIterator[Asset]:
        """Every asset not deleted, oldest first, 100 a page, as pages arrive.

        The listing is checked against the ``total`` header and listed again when the space
        changed under it (:func:`connectors.pagination.iter_listing`). Raises
        MalformedResponseError when paging goes past the ``total`` header, the space kept
        changing, or an asset names a folder that does not exist.
        """
        folders = await self._load_folders()
        async with aclosing(self._asset_pages({})) as pages:
            async for page in pages:
                for wire in page:
                    if wire.deleted_at:
                        continue
                    key = _folder_key(wire.asset_folder_id)
                    if key is not None and key not in folders:
                        folders = await self._load_folders(refresh=True)
                    yield await self._to_asset(wire, folders)

    async def iter_assets_changed_since(self, since: datetime) -> AsyncIterator[Asset]:
        """The assets updated at or after ``since``: the listing sorted by the documented
        ``sort_by=updated_at:desc`` (facts §2.3; the assets listing has no filter on update
        time), read page by page until the first asset updated before ``since``. An upload,
        a metadata edit and a move all set ``updated_at``."""
        folders = await self._load_folders()
        async with aclosing(self._asset_pages({}, order=CHANGED_ORDER)) as pages:
            async for page in pages:
                for wire in page:
                    changed = _parse_time(wire.updated_at)
                    if changed is not None and changed < since:
                        return
                    if wire.deleted_at:
                        continue
                    key = _folder_key(wire.asset_folder_id)
                    if key is not None and key not in folders:
                        folders = await self._load_folders(refresh=True)
                    yield await self._to_asset(wire, folders)

    def _asset_pages(self, params: Mapping[str, Any], *, order: str = "",
                     ) -> AsyncGenerator[list[WireAsset], None]:
        """Pages of ``GET assets`` with ``params``, oldest first (``sort_by=created_at:asc``:
        a new upload lands at the end and shifts nothing already read) unless ``order``."""

        async def fetch(paging: Mapping[str, int]) -> tuple[list[WireAsset], int | None]:
            return await self._client.list_assets(
                {**params, "sort_by": order or LISTING_ORDER, **paging}
            )

        return iter_listing(fetch, lambda: PageNumberPaginator(per_page=PER_PAGE),
                            key=lambda wire: str(wire.id), what="the Storyblok asset list")

    async def asset_exists(self, source_id: str) -> bool:
        """Whether the asset is still in the space, by ``GET assets/{id}`` (not a listing).

        A soft-deleted asset (``deleted_at`` set) and a 404 count as gone. Raises SyncError
        when Storyblok can't be asked.
        """
        try:
            wire = await self._client.get_asset(_parse_id(source_id))
        except NotFoundError:
            return False
        return not wire.deleted_at

    async def read_asset(self, asset_id: str) -> Asset | None:
        """The asset as ``GET assets/{id}`` shows it now (MAPI "Retrieve one asset": its
        ``content_length``, ``updated_at``), one request; ``None`` on a 404 or a
        soft-deleted asset. Its folder path is the listing's when the folders were listed in
        this process, else ``()``; its tags are those the answer names (no tag listing is
        read for it). Raises SyncError when Storyblok can't be asked."""
        key = _parse_id(asset_id)
        try:
            wire = await self._client.get_asset(key)
        except NotFoundError:
            return None
        if wire.deleted_at:
            return None
        self._remember(key, wire)
        return await self._to_asset(wire, self._folders or {}, direct=True)

    def _remember(self, asset_id: int, wire: WireAsset) -> None:
        if len(self._just_read) >= JUST_READ_KEPT:  # the oldest goes: reads not written after
            del self._just_read[next(iter(self._just_read))]
        self._just_read[asset_id] = (time.monotonic(), wire)

    async def _current(self, asset_id: int) -> WireAsset:
        """The asset as ``GET assets/{id}`` shows it now: the answer :meth:`read_asset` got
        for it at most :data:`JUST_READ_FRESH` seconds ago (taken once: a second write reads
        again), else one request."""
        read = self._just_read.pop(asset_id, None)
        if read is not None and time.monotonic() - read[0] <= JUST_READ_FRESH:
            return read[1]
        return await self._client.get_asset(asset_id)

    async def _to_asset(self, wire: WireAsset, folders: Mapping[int, Folder], *,
                        direct: bool = False) -> Asset:
        """``direct``: a direct read (no folder or tag listing is read for it; a folder
        missing from ``folders`` leaves its path ``()``)."""
        key = _folder_key(wire.asset_folder_id)
        folder_path: FolderPath = ()
        if key is not None:
            folder = folders.get(key)
            if folder is None and not direct:
                raise MalformedResponseError(
                    f"Storyblok asset {wire.id} is in folder {key}, which is not listed"
                )
            folder_path = folder.path if folder is not None else ()
        url = public_url(wire.filename)
        name = _text(wire.short_filename) or name_from_url(url) or str(wire.id)
        dims = dims_from_url(url)
        meta_data = wire.meta_data
        extra: dict[str, str] = {}
        if wire.source:
            extra["source"] = wire.source
        if wire.focus:
            extra["focus"] = wire.focus
        if wire.is_private:
            extra["is_private"] = "true"
        meta = AssetMeta(
            title=_text(wire.title) or _text(meta_data.get("title")),
            alt_text=_text(wire.alt) or _text(meta_data.get("alt")),
            copyright=_text(wire.copyright) or _text(meta_data.get("copyright")),
            tags=(tuple(t.name for t in wire.internal_tags_list or ()) if direct
                  else await self._tag_names(wire)),
            focus=focus_to_canonical(wire.focus, dims),
            locales=_locales(meta_data),
        )
        return Asset(
            source_id=str(wire.id),
            filename=name,
            folder_path=folder_path,
            folder_id=str(key) if key is not None else None,
            content_type=_text(wire.content_type)
            or mimetypes.guess_type(name)[0]
            or "application/octet-stream",
            size=wire.content_length,
            meta=meta,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            created_at=_parse_time(wire.created_at),
            updated_at=_parse_time(wire.updated_at),
            version=wire.updated_at,
            unreachable=(
                "Storyblok lists this asset without a file URL (an unfinished upload?)"
                if url is None
                else "private asset: set [source].asset_token to download it"
                if wire.is_private and self._config.asset_token is None
                else None
            ),
            url=url,
            extra=extra,
        )

    async def _tag_names(self, wire: WireAsset) -> tuple[str, ...]:
        if wire.internal_tags_list is not None:
            return tuple(t.name for t in wire.internal_tags_list)
        if not wire.internal_tag_ids:
            return ()
        names = {v: k for k, v in (await self._load_tags()).items()}
        return tuple(names[i] for i in wire.internal_tag_ids if i in names)

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream the file without MAPI credentials; private assets through a signed URL.

        Raises ItemError for a private asset without ``asset_token``, or when the file host
        refuses or lacks the file.
        """
        return self._open(asset)

    @asynccontextmanager
    async def _open(self, asset: Asset) -> AsyncIterator[AsyncIterator[bytes]]:
        url = asset.url
        if not url:
            raise ItemError(f"Storyblok asset {asset.source_id} has no file URL")
        if asset.extra.get("is_private") == "true":
            token = self._config.asset_token
            if token is None:
                raise ItemError("private asset: set [source].asset_token to download it")
            try:
                url = await self._client.signed_asset_url(url, token)
            except ItemError as exc:
                if exc.status in (401, 403):
                    raise ItemError(
                        "Storyblok refused the asset token for a private asset: check "
                        "[source].asset_token",
                        status=exc.status,
                    ) from None
                raise
        async with self._client.download(url) as body:
            yield body

    # -- uploads -------------------------------------------------------------------------

    async def upload(
        self, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Sign, store, finish, then set the metadata; resumable from the journal."""
        return await self._send_file(None, request, staged, journal)

    async def replace(
        self, target_id: str, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Replace the file of ``target_id`` (the id and URL path stay), then set metadata."""
        return await self._send_file(_parse_id(target_id), request, staged, journal)

    async def _send_file(
        self,
        existing: int | None,
        request: UploadRequest,
        staged: StagedFile,
        journal: UploadJournal,
    ) -> TargetRef:
        if staged.size < MIN_FILE_SIZE:
            raise ItemError(
                f"{request.filename} is empty (0 bytes); Storyblok's storage accepts files of "
                "at least 1 byte"
            )
        if existing is not None:
            self._just_read.pop(existing, None)  # its file changes: what was read is stale
        previous = journal.previous
        # no worker-thread hop for a file that is no image, nor for a small one (issue 12)
        dims = (await file_work(staged.size, image_size, staged.path)
                if staged.content_type.startswith("image/") else None)
        folder_id = _parse_id(request.folder_id) if request.folder_id else None
        signed_id = previous.get("signed_id") or None
        url: str | None = None

        if signed_id and previous.get("finished") == "1":
            log.info("storyblok.upload_resumed", asset_id=signed_id, step="finished")
            asset_id = _parse_id(signed_id)
            url = previous.get("url") or None
        else:
            notes: dict[str, str] = {}
            finish: FinishResponse | None = None
            asset_id = _parse_id(signed_id) if signed_id else 0
            if signed_id and previous.get("stored") == "1":
                log.info("storyblok.upload_resumed", asset_id=signed_id, step="stored")
                notes = {k: previous[k] for k in ("signed_id", "signed_at", "stored")
                         if previous.get(k)}
                try:
                    finish = await self._client.finish(asset_id)
                except ItemError as exc:
                    if exc.status not in (404, 422):  # the stored file is gone: start over
                        raise
                    log.warning("storyblok.upload_restarted", asset_id=signed_id)
            if finish is None:
                if signed_id:
                    log.info("storyblok.upload_resumed", asset_id=signed_id, step="signed")
                pending = _parse_id(signed_id) if signed_id else existing
                signed = await self._sign(request, folder_id, dims, pending, existing)
                notes = _signed_notes(signed)
                await journal.record("signed", notes)
                try:
                    await self._client.store(
                        signed, staged.path, request.filename, staged.content_type
                    )
                except ItemError as exc:
                    if exc.status != 403:
                        raise
                    # the signature expired (10 minutes): sign again for the same asset, once
                    log.warning("storyblok.signature_refused", asset_id=str(signed.id))
                    signed = await self._sign(request, folder_id, dims, signed.id, existing)
                    notes = _signed_notes(signed)
                    await journal.record("signed", notes)
                    await self._client.store(
                        signed, staged.path, request.filename, staged.content_type
                    )
                notes = {**notes, "stored": "1"}
                await journal.record("stored", notes)
                asset_id = signed.id
                finish = await self._client.finish(asset_id)
            url = public_url(finish.filename)
            notes = {**notes, "finished": "1"}
            if url:
                notes["url"] = url
            await journal.record("finished", notes)

        current = await self._put_meta(asset_id, request.meta, dims, merge=existing is not None)
        if url is None:  # a resumed upload whose finish named no URL: the asset's, read once
            url = public_url((current or await self._client.get_asset(asset_id)).filename)
        log.debug("storyblok.uploaded", target_id=str(asset_id), bytes=staged.size,
                  replaced=existing is not None)
        return TargetRef(str(asset_id), url)

    async def _sign(
        self,
        request: UploadRequest,
        folder_id: int | None,
        dims: Dims | None,
        asset_id: int | None,
        existing: int | None,
    ) -> SignedResponse:
        size = f"{dims[0]}x{dims[1]}" if dims else None
        try:
            return await self._client.sign(
                request.filename, folder_id=folder_id, size=size, asset_id=asset_id
            )
        except NotFoundError:
            if asset_id is None or asset_id == existing:
                raise
            # the pending asset of an earlier attempt is gone: it never became visible
            log.warning("storyblok.pending_upload_gone", asset_id=str(asset_id))
            return await self._client.sign(
                request.filename, folder_id=folder_id, size=size, asset_id=None
            )

    # -- metadata ------------------------------------------------------------------------

    async def update_metadata(self, target_id: str, meta: AssetMeta) -> None:
        """Set the asset's metadata; custom ``meta_data`` keys of others are kept."""
        asset_id = _parse_id(target_id)
        await self._put_meta(asset_id, meta, None, merge=True)

    async def move(self, target_id: str, folder_id: str | None) -> None:
        """Move an asset into ``folder_id`` (``None``: the root): ``PUT assets/{id}`` with
        ``asset_folder_id`` (the asset object's folder field, facts §2.6)."""
        await self._client.update_asset(
            _parse_id(target_id), {"asset_folder_id": _parse_id(folder_id) if folder_id else None})
        log.info("storyblok.moved", target_id=target_id, folder_id=folder_id)

    async def _put_meta(
        self, asset_id: int, meta: AssetMeta, dims: Dims | None, *, merge: bool
    ) -> WireAsset | None:
        """Set the asset's metadata (``PUT assets/{id}``, none when it changes nothing);
        ``merge``: into the asset as it is (custom ``meta_data`` keys of others kept), read
        once (:meth:`_current`). Returns that read (None without ``merge``)."""
        base: dict[str, Any] = {}
        current: WireAsset | None = None
        if merge:
            current = await self._current(asset_id)
            base = dict(current.meta_data)
            dims = dims or dims_from_url(current.filename)
        meta_data = {k: v for k, v in base.items() if not _I18N.match(k)}
        meta_data.update(
            {"alt": meta.alt_text or "", "title": meta.title or "",
             "copyright": meta.copyright or ""}
        )
        for lang, text in sorted(meta.locales.items()):
            for wire_name, field_name in _LOCALE_FIELDS.items():
                value = getattr(text, field_name)
                if value is not None:
                    meta_data[f"{wire_name}__i18n__{lang}"] = value
        fields: dict[str, Any] = {
            "alt": meta.alt_text,
            "title": meta.title,
            "copyright": meta.copyright,
            "internal_tag_ids": [str(i) for i in await self._tag_ids(meta.tags)],
            "meta_data": meta_data,
        }
        if "source" in meta.extra:  # set by a mapping rule (FIELD_SPECS); else left alone
            fields["source"] = meta_data["source"] = meta.extra["source"]
        if meta.focus is None:
            fields["focus"] = None
        else:
            focus = focus_to_storyblok(meta.focus, dims)
            if focus is None:
                log.warning("storyblok.focus_dropped", asset_id=str(asset_id),
                            reason="image size unknown or focus not 'x,y' fractions")
            else:
                fields["focus"] = focus
        if _changes_nothing(fields, current):
            log.debug("storyblok.metadata_unchanged", asset_id=str(asset_id))
            return current
        await self._client.update_asset(asset_id, fields)
        return current

    async def _load_tags(self, *, refresh: bool = False) -> dict[str, int]:
        async with self._tag_lock:
            if self._tags is None or refresh:
                self._tags = {t.name: t.id for t in await self._client.list_asset_tags()}
            return self._tags

    async def _tag_ids(self, names: tuple[str, ...]) -> list[int]:
        return [await self._tag_id(name) for name in dict.fromkeys(names)]

    async def _tag_id(self, name: str) -> int:
        """The id of the asset tag ``name``, created when missing."""
        tags = await self._load_tags()
        if name in tags:
            return tags[name]
        async with self._tag_lock:
            if self._tags is not None and name in self._tags:
                return self._tags[name]
            try:
                tag = await self._client.create_asset_tag(name)
            except ItemError as exc:
                if exc.status != 422:  # 422: taken meanwhile; look again below
                    raise
            except SyncError:
                self._tags = None  # it may exist now: list again next time
                raise
            else:
                if self._tags is not None:
                    self._tags[tag.name] = tag.id
                return tag.id
        tags = await self._load_tags(refresh=True)
        if name not in tags:
            raise ItemError(f"Storyblok refused to create the asset tag {name!r}")
        return tags[name]

    # -- delete / find -------------------------------------------------------------------

    async def delete(self, target_id: str) -> None:
        """Soft-delete the asset (Storyblok keeps it under ``in_folder=-1``); gone is fine."""
        self._just_read.pop(_parse_id(target_id), None)
        try:
            await self._client.delete_asset(_parse_id(target_id))
        except NotFoundError:
            log.info("storyblok.delete_absent", target_id=target_id)

    async def find_asset(
        self, folder_id: str | None, filename: str, size: int
    ) -> TargetRef | None:
        """The newest visible asset in ``folder_id`` named ``filename`` (as Storyblok stores
        it) with ``size`` bytes, or ``None``."""
        folder_key = _parse_id(folder_id) if folder_id else None
        wanted = {filename, parameterize(filename)}
        params: dict[str, Any] = {"search": parameterize(filename)}
        if folder_key is not None:
            params["in_folder"] = folder_key
        best: WireAsset | None = None
        async with aclosing(self._asset_pages(params)) as pages:
            async for page in pages:
                for wire in page:
                    name = _text(wire.short_filename) or name_from_url(wire.filename)
                    if (
                        not wire.deleted_at
                        and _folder_key(wire.asset_folder_id) == folder_key
                        and name in wanted
                        and wire.content_length == size
                        and (best is None or wire.id > best.id)
                    ):
                        best = wire
        if best is None:
            return None
        return TargetRef(str(best.id), public_url(best.filename))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _signed_notes(signed: SignedResponse) -> dict[str, str]:
    # "0" resets the later steps, for a journal that merges notes of earlier attempts
    return {"signed_id": str(signed.id), "signed_at": _now(), "stored": "0", "finished": "0"}


_source: type[Source] = StoryblokConnector
_target: type[Target] = StoryblokConnector
_replace: type[SupportsReplace] = StoryblokConnector
_update_metadata: type[SupportsUpdateMetadata] = StoryblokConnector
_delete: type[SupportsDelete] = StoryblokConnector
_find_asset: type[SupportsFindAsset] = StoryblokConnector
_asset_exists: type[SupportsAssetExists] = StoryblokConnector
_read_asset: type[SupportsReadAsset] = StoryblokConnector
_move: type[SupportsMove] = StoryblokConnector
_changed_since: type[SupportsChangedSince] = StoryblokConnector


def _blank(value: Any) -> Any:
    """``None`` and ``""`` are the same unset text to Storyblok (an asset's fields start
    empty)."""
    return None if value in (None, "") else value


def _changes_nothing(fields: Mapping[str, Any], current: WireAsset | None) -> bool:
    """Whether ``PUT assets/{id}`` with ``fields`` would leave the asset as it is: no request
    that changes nothing (issue 12). ``current`` is the asset as read (``None``: a freshly
    uploaded one, whose alt, title, copyright, focus, tags and ``meta_data`` are all empty).
    """
    if "focus" in fields and _blank(fields["focus"]) != _blank(current.focus if current else None):
        return False
    have = current or WireAsset(id=0)
    if any(_blank(fields[k]) != _blank(getattr(have, k)) for k in ("alt", "title", "copyright")):
        return False
    tags = sorted(str(i) for i in (have.internal_tag_ids or ()))
    if sorted(fields["internal_tag_ids"]) != tags:
        return False
    wanted = {k: v for k, v in fields["meta_data"].items() if _blank(v) is not None}
    held = {k: v for k, v in have.meta_data.items() if _blank(v) is not None}
    return wanted == held
