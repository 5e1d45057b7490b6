"""A Webflow site's assets as a source and a target (Data API v2, reference/cms-api-facts.md §3).

Mapping choices (Webflow -> canonical, and back):

- ids are 24-hex object ids, kept as they are;
- the filename is ``originalFileName`` (the name the file was uploaded with); ``displayName``
  (usually ``<id>_<name>``) goes to ``extra["display_name"]``; an upload sets ``displayName``
  to the filename;
- the file is ``hostedUrl``; ``variants`` are Webflow's resized copies and never move;
- a folder's path comes from ``parentFolder`` links; an asset's folder from its ``folderId``
  or, where the API does not send it, from the folder whose ``assets`` list holds its id;
- ``altText`` is the only metadata field; per locale it is read and written with ``localeId``
  for the locales the job file maps (``locales = {de = "<localeId>"}``), or, with
  ``locales = "site"``, for each secondary locale of the site under its tag (``de-DE``), read
  once from Get Site before the first listing. Title, description, copyright, tags and focus
  have no place in Webflow: the plan warns, per field.

Uploads are two steps (§3.5), journaled so a run killed between them resumes safely:

1. ``POST /sites/{site_id}/assets`` with ``fileName``, the MD5 ``fileHash`` and
   ``parentFolder``; the journal notes ``created`` ``{"asset_id", "stored": "0"}``;
2. the multipart storage POST to ``uploadUrl`` (``uploadDetails`` verbatim, the file last);
   the journal notes ``stored`` ``{"stored": "1", "url"}``; then a ``PATCH`` sets
   ``displayName`` and ``altText`` (and ``altText`` per mapped locale).

On resume after ``stored``: only the ``PATCH``. After ``created`` only: the asset is looked
up; if its bytes arrived (Webflow shows it) it is finished with the ``PATCH``; if not, Webflow
never lists it, so the orphaned id is reported in the log (``webflow.upload_orphaned``) and a
fresh upload is made: never a second visible asset.

Folders can only be created and read (no rename, move or delete in v2), and files cannot be
replaced: the connector claims neither capability, so the plan says so.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

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
    SupportsDelete,
    SupportsFindAsset,
    SupportsReadAsset,
    SupportsUpdateMetadata,
    Target,
    TargetRef,
    UploadJournal,
    UploadRequest,
)
from connectors.errors import ItemError, MalformedResponseError, NotFoundError
from connectors.pagination import OffsetPaginator, iter_listing
from connectors.webflow.client import WebflowClient
from connectors.webflow.config import WebflowConfig
from connectors.webflow.wire import WireAsset, WireFolder

log = structlog.get_logger(__name__)

PAGE = 100
"""``limit`` maximum of the list endpoints (§3.3)."""
MAX_NAME_LENGTH = 99
"""``fileName`` must be less than 100 characters (Create Asset, §3.5)."""
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
""""Images must not exceed 4MB", "Documents are capped at 10MB" (Working with Assets)."""

ACCEPTED_TYPES: frozenset[str] = frozenset({
    # images (Working with Assets: PNG, JPEG and JPG, GIF, SVG, WebP, AVIF)
    "image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp", "image/avif",
    # Lottie animations (JSON)
    "application/json",
    # documents: the Data API page names the kind without a list; these are the document
    # types of Webflow's Assets panel (help centre, "Supported file types")
    "application/pdf", "text/plain", "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
})
"""Content types Webflow accepts; anything else is ``unsupported`` in the plan."""

METADATA_FIELDS: frozenset[str] = frozenset({"alt_text", "locales"})

_Listed = tuple[WireAsset, dict[str, str]]
"""A listed asset and its alt text overrides per mapped locale code."""


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _text(value: str | None) -> str | None:
    return value if value else None


def file_name(wire: WireAsset) -> str:
    """The asset's name: ``originalFileName``, else ``displayName`` without its id prefix."""
    if wire.original_file_name:
        return wire.original_file_name
    display = wire.display_name or wire.id
    prefix = f"{wire.id}_"
    return display[len(prefix):] if display.startswith(prefix) else display


class WebflowConnector:
    """One Webflow site. Source, Target, and metadata / delete / find extras."""

    name = "webflow"
    staged_digests: frozenset[str] = frozenset({"md5"})
    """An upload is created with the file's MD5 (fileHash)."""

    def __init__(
        self, config: WebflowConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._client = WebflowClient(config, transport=transport)
        self._folders: dict[str, Folder] | None = None
        self._members: dict[str, str] = {}
        """asset id -> folder id, from the folders' ``assets`` lists."""
        self._folder_lock = anyio.Lock()
        self._locale_ids: dict[str, str] | None = (
            None if config.locales == "site" else dict(config.locales))
        """Locale code -> ``localeId``; ``None`` until the site's are read (``"site"``)."""
        self._locale_lock = anyio.Lock()
        self._limits = self._make_limits(self._locale_ids)

    def _make_limits(self, locale_ids: Mapping[str, str] | None) -> Limits:
        """Limits with the locales known so far (``None``: the site's, not read yet)."""
        config = self._config
        return Limits(
            max_file_size_by_kind={"image": MAX_IMAGE_BYTES, "document": MAX_DOCUMENT_BYTES},
            metadata_fields=METADATA_FIELDS,
            field_specs=(FieldSpec(
                "alt_text", localized=True,
                doc="Data API v2, Assets: Update Asset (PATCH /v2/assets/{id}): altText, "
                    "per localeId"),),
            forbidden_name_chars="/\\",
            max_name_length=MAX_NAME_LENGTH,
            accepted_content_types=ACCEPTED_TYPES,
            locales=None if locale_ids is None else frozenset(locale_ids),
            requests_per_second=config.requests_per_second,
            # create asset, metadata PATCH, one PATCH per mapped locale (storage is unpaced)
            requests_per_upload=2 + len(locale_ids or ()),
            listing_page_size=PAGE,
        )

    async def _locales(self) -> dict[str, str]:
        """Locale code -> ``localeId``: the job file's, or (``locales = "site"``) the site's
        secondary locales by tag, read once with Get Site; a locale without an id or tag is
        left out. Raises AuthError when the token lacks ``sites:read``."""
        async with self._locale_lock:
            if self._locale_ids is None:
                site = await self._client.get_site()
                found = site.locales.secondary if site.locales else []
                self._locale_ids = {loc.tag: loc.id for loc in found if loc.tag and loc.id}
                self._limits = self._make_limits(self._locale_ids)
                log.info("webflow.site_locales", site_id=self._config.site_id,
                         locales=sorted(self._locale_ids))
            return self._locale_ids

    @property
    def scope(self) -> str:
        return self._config.scope()

    @property
    def limits(self) -> Limits:
        return self._limits

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- folders -------------------------------------------------------------------------

    async def _list_folders(self) -> list[WireFolder]:
        """Every asset folder, through the checked listing (each once, against the total)."""

        async def fetch(paging: Mapping[str, int]) -> tuple[list[WireFolder], int | None]:
            page = await self._client.list_folders(paging)
            return page.asset_folders, page.pagination.total if page.pagination else None

        pages = iter_listing(fetch, lambda: OffsetPaginator(limit=PAGE, offset_key="offset"),
                             key=lambda folder: folder.id, what="the Webflow asset folder list")
        return [folder async for page in pages for folder in page]

    @staticmethod
    def _resolve(wire: list[WireFolder]) -> dict[str, Folder]:
        by_id = {f.id: f for f in wire}
        resolved: dict[str, Folder] = {}

        def resolve(folder: WireFolder, trail: tuple[str, ...]) -> Folder:
            done = resolved.get(folder.id)
            if done is not None:
                return done
            if folder.id in trail:
                raise MalformedResponseError(f"Webflow asset folder {folder.id} is its own "
                                             "ancestor")
            path: FolderPath = (folder.display_name,)
            parent_id = folder.parent_folder or None
            if parent_id is not None:
                parent = by_id.get(parent_id)
                if parent is None:
                    raise MalformedResponseError(
                        f"Webflow asset folder {folder.id} ({folder.display_name!r}) names "
                        f"parent {parent_id}, which is not in the folder list")
                path = (*resolve(parent, (*trail, folder.id)).path, folder.display_name)
            result = Folder(folder.id, folder.display_name, parent_id, path)
            resolved[folder.id] = result
            return result

        for folder in wire:
            resolve(folder, ())
        return resolved

    async def _load_folders(self, *, refresh: bool = False) -> dict[str, Folder]:
        async with self._folder_lock:
            if self._folders is None or refresh:
                wire = await self._list_folders()
                self._folders = self._resolve(wire)
                self._members = {a: f.id for f in wire for a in f.assets}
            return self._folders

    async def iter_folders(self) -> AsyncIterator[Folder]:
        """Every asset folder, parents before children. Raises MalformedResponseError when a
        folder names a parent that is not listed."""
        await self._locales()  # "site": known before the plan reads the limits
        folders = await self._load_folders(refresh=True)
        for folder in sorted(folders.values(), key=lambda f: len(f.path)):
            yield folder

    async def create_folder(self, parent_id: str | None, name: str) -> Folder:
        """Create an asset folder (Webflow folders can never be renamed, moved or deleted)."""
        parent_path: FolderPath = ()
        if parent_id is not None:
            parent = (await self._load_folders()).get(parent_id)
            if parent is None:
                parent = (await self._load_folders(refresh=True)).get(parent_id)
            if parent is None:
                raise NotFoundError(f"Webflow has no asset folder {parent_id}")
            parent_path = parent.path
        wire = await self._client.create_folder(name, parent_id)
        folder = Folder(wire.id, wire.display_name, parent_id, (*parent_path, wire.display_name))
        async with self._folder_lock:
            if self._folders is not None:
                self._folders[wire.id] = folder
        log.info("webflow.folder_created", folder_id=folder.source_id, path="/".join(folder.path))
        return folder

    # -- assets --------------------------------------------------------------------------

    def _pages(self, *, alts: bool = False) -> AsyncGenerator[list[_Listed], None]:
        """Pages of assets, each asset once, checked against the announced total and listed
        again when the site changed under them (:func:`connectors.pagination.iter_listing`).

        With ``alts``, each asset comes with its alt text overrides per mapped locale code
        (:meth:`_locale_alts`), read with the page that listed it. Raises
        MalformedResponseError when paging stops making sense or the site kept changing.
        """

        async def fetch(paging: Mapping[str, int]) -> tuple[list[_Listed], int | None]:
            page = await self._client.list_assets(paging)
            total = page.pagination.total if page.pagination else None
            found = (await self._locale_alts(paging, page.assets)
                     if alts and page.assets and await self._locales() else {})
            return [(wire, found.get(wire.id, {})) for wire in page.assets], total

        return iter_listing(fetch, lambda: OffsetPaginator(limit=PAGE, offset_key="offset"),
                            key=lambda listed: listed[0].id, what="the Webflow asset list")

    async def _locale_alts(self, paging: Mapping[str, int],
                           primary: Sequence[WireAsset]) -> dict[str, dict[str, str]]:
        """Alt text overrides per asset id per locale code, for the assets of one page.

        Each mapped locale's page is asked with the same ``paging``; an asset that is not on it
        (an edit between the two requests shifted the page) is read directly
        (``GET /assets/{id}?localeId=``), and one deleted meanwhile has no override. A locale
        without its own alt text answers with the primary locale's (Localization falls back
        to it): only a text that differs from the primary one is an override.
        """
        texts = {wire.id: wire.alt_text for wire in primary}
        found: dict[str, dict[str, str]] = {}
        for code, locale_id in sorted((await self._locales()).items()):
            page = await self._client.list_assets(paging, locale_id=locale_id)
            localized = {wire.id: wire for wire in page.assets if wire.id in texts}
            for asset_id in texts.keys() - localized.keys():
                try:
                    localized[asset_id] = await self._client.get_asset(asset_id,
                                                                       locale_id=locale_id)
                except NotFoundError:
                    continue
            for asset_id, wire in localized.items():
                if wire.alt_text and wire.alt_text != texts[asset_id]:
                    found.setdefault(asset_id, {})[code] = wire.alt_text
        return found

    async def iter_assets(self) -> AsyncIterator[Asset]:
        """Every asset, 100 a page, as pages arrive (alt text per mapped locale with it).

        The listing is checked and re-listed when the site changes under it (:meth:`_pages`).
        Raises MalformedResponseError when the listing can't be trusted or an asset names a
        folder that is not listed.
        """
        folders = await self._load_folders()  # fresh from iter_folders, or loaded now
        async for page in self._pages(alts=True):
            for wire, alts in page:
                folder_id = wire.folder_id or self._members.get(wire.id)
                if folder_id is not None and folder_id not in folders:
                    folders = await self._load_folders(refresh=True)
                yield self._to_asset(wire, folders, alts)

    def _to_asset(self, wire: WireAsset, folders: Mapping[str, Folder],
                  alts: Mapping[str, str], *, direct: bool = False) -> Asset:
        """``direct``: a direct read, whose folder may be missing from ``folders`` (then
        its path is left ``()``)."""
        folder_id = wire.folder_id or self._members.get(wire.id)
        folder_path: FolderPath = ()
        if folder_id is not None:
            folder = folders.get(folder_id)
            if folder is None and not direct:
                raise MalformedResponseError(
                    f"Webflow asset {wire.id} is in folder {folder_id}, which is not listed")
            folder_path = folder.path if folder is not None else ()
        name = file_name(wire)
        extra = {"display_name": wire.display_name} if wire.display_name else {}
        if wire.variants:
            extra["variants"] = str(len(wire.variants))
        return Asset(
            source_id=wire.id,
            filename=name,
            folder_path=folder_path,
            folder_id=folder_id,
            content_type=_text(wire.content_type) or mimetypes.guess_type(name)[0]
            or "application/octet-stream",
            size=wire.size,
            meta=AssetMeta(
                alt_text=_text(wire.alt_text),
                locales={code: LocalizedText(alt_text=text) for code, text in alts.items()},
            ),
            created_at=_parse_time(wire.created_on),
            updated_at=_parse_time(wire.last_updated),
            version=wire.last_updated,
            url=wire.hosted_url,
            extra=extra,
        )

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream ``hostedUrl`` (the original, not a variant) without the token."""
        return self._open(asset)

    @asynccontextmanager
    async def _open(self, asset: Asset) -> AsyncIterator[AsyncIterator[bytes]]:
        if not asset.url:
            raise ItemError(f"Webflow asset {asset.source_id} has no hostedUrl")
        async with self._client.storage.download(asset.url) as body:
            yield body

    async def asset_exists(self, source_id: str) -> bool:
        """Whether asset ``source_id`` is still in the site, by ``GET /assets/{id}`` (a direct
        read, never a listing: prune's proof that a source asset is gone). Raises SyncError
        when unsure."""
        try:
            await self._client.get_asset(source_id)
        except NotFoundError:
            return False
        return True

    async def read_asset(self, asset_id: str) -> Asset | None:
        """The asset as ``GET /v2/assets/{id}`` shows it now (its ``size``,
        ``lastUpdated``), one request; ``None`` on a 404. Its folder path is the listing's
        when the folders were listed in this process, else ``()``; no per-locale alt text
        is read for it. Raises SyncError when Webflow can't be asked."""
        try:
            wire = await self._client.get_asset(asset_id)
        except NotFoundError:
            return None
        return self._to_asset(wire, self._folders or {}, {}, direct=True)

    # -- uploads -------------------------------------------------------------------------

    async def upload(
        self, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Create the asset, POST its bytes to storage, then set its metadata; resumable
        from the journal (module docstring). Raises ItemError when Webflow refuses it."""
        previous = journal.previous
        asset_id = previous.get("asset_id") or None
        url = previous.get("url") or None
        stored = bool(asset_id) and previous.get("stored") == "1"
        if stored:
            log.info("webflow.upload_resumed", asset_id=asset_id, step="stored")
        elif asset_id:
            try:
                wire = await self._client.get_asset(asset_id)
            except NotFoundError:
                log.warning("webflow.upload_orphaned", asset_id=asset_id,
                            reason="an interrupted run created the asset but its bytes never "
                                   "arrived; Webflow does not list it. Uploading afresh.")
                asset_id = None
            else:
                log.info("webflow.upload_resumed", asset_id=asset_id, step="stored")
                stored, url = True, wire.hosted_url
        if asset_id is None or not stored:
            ticket = await self._client.create_asset(request.filename, staged.md5,
                                                     request.folder_id)
            asset_id = ticket.id
            await journal.record("created", {"asset_id": asset_id, "stored": "0", "url": ""})
            await self._client.store(ticket, staged.path, request.filename,
                                     staged.content_type)
            url = ticket.hosted_url
            await journal.record("stored", {"asset_id": asset_id, "stored": "1",
                                            "url": url or ""})
        await self._patch(asset_id, request.meta, display_name=request.filename)
        log.debug("webflow.uploaded", target_id=asset_id, bytes=staged.size)
        return TargetRef(asset_id, url)

    # -- metadata ------------------------------------------------------------------------

    async def update_metadata(self, target_id: str, meta: AssetMeta) -> None:
        """Set ``altText`` (and per mapped locale); the other fields have no place."""
        await self._patch(target_id, meta, display_name=None, always=True)

    async def _patch(self, asset_id: str, meta: AssetMeta, *, display_name: str | None,
                     always: bool = False) -> None:
        body: dict[str, Any] = {}
        if display_name is not None:
            body["displayName"] = display_name
        if meta.alt_text is not None or always:
            body["altText"] = meta.alt_text or ""
        if meta.alt_text is not None or always:  # displayName alone: create set it already
            await self._client.update_asset(asset_id, body)
        locale_ids = await self._locales() if meta.locales else {}
        for code, text in sorted(meta.locales.items()):
            locale_id = locale_ids.get(code)
            if locale_id is None or text.alt_text is None:
                continue
            await self._client.update_asset(asset_id, {"altText": text.alt_text},
                                            locale_id=locale_id)

    # -- delete / find -------------------------------------------------------------------

    async def delete(self, target_id: str) -> None:
        """Delete the asset; already gone is fine."""
        try:
            await self._client.delete_asset(target_id)
        except NotFoundError:
            log.info("webflow.delete_absent", target_id=target_id)

    async def find_asset(
        self, folder_id: str | None, filename: str, size: int
    ) -> TargetRef | None:
        """An asset in ``folder_id`` uploaded as ``filename`` with ``size`` bytes, or None."""
        await self._load_folders(refresh=True)
        async for page in self._pages():
            for wire, _ in page:
                where = wire.folder_id or self._members.get(wire.id)
                if where == folder_id and file_name(wire) == filename and wire.size == size:
                    return TargetRef(wire.id, wire.hosted_url)
        return None


_source: type[Source] = WebflowConnector
_target: type[Target] = WebflowConnector
_update_metadata: type[SupportsUpdateMetadata] = WebflowConnector
_delete: type[SupportsDelete] = WebflowConnector
_find_asset: type[SupportsFindAsset] = WebflowConnector
_read_asset: type[SupportsReadAsset] = WebflowConnector
