"""Contentstack stack assets as a source and a target (CMA v3, classic stack assets).

Reading lists folders with ``query={"is_dir":true}`` and files with a plain ``GET /v3/assets``
(every asset of the stack whatever its folder), 100 per page, oldest first. Folder paths are
resolved after the whole folder listing (a child may be listed before its parent) and cached
for the connector's lifetime; :meth:`ContentstackConnector.create_folder` keeps the cache
current.

Names: Contentstack replaces ``# % ^ + \\ / ? * : | " ' < > { } = ,`` and whitespace in
uploaded filenames by ``_`` (asset limitations page, facts §1.5), yet the API's own samples
show filenames and folder names with spaces. So :attr:`Limits.forbidden_name_chars` lists the
restricted characters but not whitespace (folder names such as "Demo Folder" are normal and
must survive); ``Limits.filename_rewrites_whitespace`` asks the mapping to rewrite whitespace
in filenames only, so we send the name the API would store. :meth:`find_asset` compares names
after applying the full rewrite, whitespace included, to both sides, so it matches whichever
form the API kept (also for assets uploaded by other tools).
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import replace
from datetime import UTC, datetime
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
    Publication,
    PublishRule,
    PublishTargets,
    Source,
    StagedFile,
    SupportsAssetExists,
    SupportsChangedSince,
    SupportsDelete,
    SupportsEnvironmentNames,
    SupportsFindAsset,
    SupportsMove,
    SupportsPublish,
    SupportsReadAsset,
    SupportsReferences,
    SupportsReplace,
    SupportsUpdateMetadata,
    Target,
    TargetRef,
    UploadJournal,
    UploadRequest,
)
from connectors.contentstack.client import PAGE_SIZE, ROOT_FOLDER, ContentstackClient
from connectors.contentstack.config import DEFAULT_REQUESTS_PER_SECOND, ContentstackConfig
from connectors.contentstack.wire import FOLDER_CONTENT_TYPE, WireAsset, WireDimension
from connectors.errors import ItemError, MalformedResponseError, NotFoundError
from connectors.pagination import OffsetPaginator, iter_listing

log = structlog.get_logger(__name__)

FORBIDDEN_NAME_CHARS = "#%^+\\/?*:|\"'<>{}=,"
_STORED_NAME_RE = re.compile(r"[#%^+\\/?*:|\"'<>{}=,\s]")
MAX_FILE_SIZE = 100 * 1024 * 1024
"""100 MB per file through the API (700 MB through the web app), facts §1.5."""

LIMITS = Limits(
    max_folder_depth=5,
    max_folders=300,
    max_file_size=MAX_FILE_SIZE,
    default_max_assets=10_000,  # per stack, raisable by support (asset limitations page)
    metadata_fields=frozenset({"title", "description", "tags"}),
    field_specs=(
        FieldSpec("title", created_as="filename",
                  doc="CMA Assets: Upload asset, Update asset: asset[title]; an upload "
                      "without one is titled with the file's name"),
        FieldSpec("description", doc="CMA Assets: Upload asset, Update asset: asset[description]"),
        # the upload sends every tag in one comma-joined asset[tags] field (facts §1.5), so a
        # tag holding a comma would come back as two tags
        FieldSpec("tags", "tags", forbidden_chars=",",
                  doc="CMA Assets: Upload asset: asset[tags], comma-joined"),
    ),
    forbidden_name_chars=FORBIDDEN_NAME_CHARS,
    filename_rewrites_whitespace=True,
    requests_per_second=DEFAULT_REQUESTS_PER_SECOND,
    listing_page_size=PAGE_SIZE,
)


def stored_filename(name: str) -> str:
    """``name`` after Contentstack's rewrite of restricted characters and whitespace to ``_``."""
    return _STORED_NAME_RE.sub("_", name)


def parse_size(value: str | int | None, uid: str) -> int | None:
    """``file_size`` is a string of bytes (``"42670"``); anything else non-numeric is refused."""
    if value is None:
        return None
    if isinstance(value, int):
        size = value
    else:
        text = value.strip()
        if not text.isdigit():
            raise MalformedResponseError(
                f"Contentstack asset {uid} has file_size {value[:40]!r}, not a number of bytes"
            )
        size = int(text)
    # a negative size is kept: that one asset is refused by the plan, with the reason
    # (mappings.fields.size_problem), and the rest of the listing goes on
    return size


def _pixels(value: float | str | None) -> int | None:
    # floats are possible; a doc sample even shows placeholder strings: those mean "unknown"
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return round(number)


def dimensions(dimension: WireDimension | None) -> tuple[int | None, int | None]:
    if dimension is None:
        return None, None
    return _pixels(dimension.width), _pixels(dimension.height)


def resolve_folder_paths(records: Mapping[str, WireAsset]) -> dict[str, Folder]:
    """Folders with their paths from the root; any order of records is fine.

    Raises MalformedResponseError for a parent that is not in the listing, a folder without
    a name, or a cycle.
    """
    paths: dict[str, FolderPath] = {}
    for start in records:
        chain: list[str] = []
        uid: str | None = start
        while uid is not None and uid not in paths:
            if uid in chain:
                raise MalformedResponseError(
                    f"Contentstack folders {' > '.join(chain)} form a cycle"
                )
            record = records.get(uid)
            if record is None:
                child = records[chain[-1]]
                raise MalformedResponseError(
                    f"Contentstack folder {child.name!r} ({child.uid}) has parent {uid}, "
                    "which is not in the folder listing"
                )
            if not record.name:
                raise MalformedResponseError(f"Contentstack folder {uid} has no name")
            chain.append(uid)
            uid = record.parent_uid
        base: FolderPath = paths[uid] if uid is not None else ()
        for link in reversed(chain):
            name = records[link].name
            assert name is not None  # noqa: S101 - checked above
            base = (*base, name)
            paths[link] = base
    return {
        uid: Folder(source_id=uid, name=path[-1], parent_id=records[uid].parent_uid, path=path)
        for uid, path in paths.items()
    }


def _form_fields(meta: AssetMeta, folder_id: str | None, *,
                 clear: bool = False) -> dict[str, str]:
    """The upload's form fields; ``clear`` (a replace): an empty description or tag list is
    sent empty, so it clears what the asset held (a replace keeps what it is not sent)."""
    fields: dict[str, str] = {}
    if folder_id is not None:
        fields["asset[parent_uid]"] = folder_id
    if meta.title:
        fields["asset[title]"] = meta.title
    if meta.description or clear:
        fields["asset[description]"] = meta.description or ""
    if clear and not meta.tags:
        fields["asset[tags]"] = ""
    if meta.tags:
        # one comma-joined field, as the official JS SDK sends it (facts §1.5)
        fields["asset[tags]"] = ",".join(meta.tags)
    return fields


def _ref(record: WireAsset) -> TargetRef:
    """Where a write put the asset, with its ``_version`` after the write."""
    version = str(record.version) if record.version is not None else None
    return TargetRef(target_id=record.uid, url=record.url, version=version)


class ContentstackConnector:
    """A Contentstack stack's assets on one branch: source, target and the optional extras."""

    name = "contentstack"
    staged_digests: frozenset[str] = frozenset()
    """Uploads send the file alone (multipart): no digest."""

    def __init__(
        self, config: ContentstackConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._client = ContentstackClient(config, transport=transport)
        self._folders: dict[str, Folder] | None = None
        self._folders_lock = anyio.Lock()
        self._environment_names: dict[str, str] | None = None
        # the job's [target] requests_per_second is the rate its pacer keeps; the plan's
        # estimate and a Temporal domain's share read it here (they read the documented 10/s)
        self._limits = (replace(LIMITS, requests_per_second=config.requests_per_second)
                        if config.requests_per_second else LIMITS)

    @property
    def scope(self) -> str:
        return self._config.scope()

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def publish_rule(self) -> PublishRule:
        """From ``[target] publish``: a table publishes everywhere it names; unset carries
        the source's publish details; ``false`` publishes nothing."""
        rule = self._config.publish
        if rule is None:
            return PublishRule()
        if not rule.enabled:
            return PublishRule(carry=False)
        return PublishRule(fixed=Publication.everywhere(rule.environments, rule.locales))

    async def publish_targets(self) -> PublishTargets:
        """The stack's environment names and locale codes (two requests)."""
        envs = await self._client.environments()
        locales = await self._client.locales()
        return PublishTargets(frozenset(e.name for e in envs.environments),
                              frozenset(lc.code for lc in locales.locales))

    async def publish(self, target_id: str, publication: Publication) -> None:
        """One ``POST /v3/assets/{uid}/publish`` per batch of the publication; a refusal
        (an environment or locale the stack lacks) raises ItemError."""
        for environments, locales in publication.batches():
            await self._client.publish(target_id, environments, locales)
        log.info("contentstack.published", target_id=target_id, where=publication.text())

    # -- reading -------------------------------------------------------------------------

    async def iter_folders(self) -> AsyncIterator[Folder]:
        """Every folder of the stack, parents before children.

        Lists afresh every time (what the stack holds now: a folder whose create answer was
        lost must be found). Raises MalformedResponseError when a folder's parent is missing.
        """
        folders = await self._folder_map(refresh=True)
        for folder in sorted(folders.values(), key=lambda f: (len(f.path), f.path)):
            yield folder

    async def iter_assets(self) -> AsyncIterator[Asset]:
        """Every file of the stack (folders excluded), page by page as they arrive."""
        async for asset in self._assets(None):
            yield asset

    async def iter_assets_changed_since(self, since: datetime) -> AsyncIterator[Asset]:
        """The files whose ``updated_at`` is at or after ``since``: the listing's documented
        ``query`` parameter with ``{"updated_at": {"$gte": ...}}`` (facts §1.3, the CMA query
        language), paged and checked like the full listing. A move, a metadata edit and a new
        file all set ``updated_at``."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{since.microsecond // 1000:03d}Z")
        async for asset in self._assets({"updated_at": {"$gte": stamp}}):
            yield asset

    async def _assets(self, query: Mapping[str, Any] | None) -> AsyncIterator[Asset]:
        folders = await self._folder_map()
        refreshed = False
        count = 0
        async with aclosing(self._pages(query=query)) as pages:
            async for page in pages:
                for record in page:
                    if record.is_dir or record.content_type == FOLDER_CONTENT_TYPE:
                        continue
                    if record.parent_uid is not None and record.parent_uid not in folders:
                        if refreshed:
                            raise MalformedResponseError(
                                f"Contentstack asset {record.uid} is in folder "
                                f"{record.parent_uid}, which is not in the folder listing"
                            )
                        # a folder created since we listed them: list once more
                        folders = await self._folder_map(refresh=True)
                        refreshed = True
                    count += 1
                    yield self._to_asset(record, folders)
        log.info("contentstack.assets_listed", scope=self.scope, assets=count)

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream the file from its URL (a CDN host: no credentials are sent there)."""
        if not asset.url:
            raise ItemError(f"Contentstack asset {asset.source_id} has no url to download")
        return self._client.download(asset.url)

    # -- writing -------------------------------------------------------------------------

    async def create_folder(self, parent_id: str | None, name: str) -> Folder:
        """Create ``name`` under ``parent_id`` (``None`` = root).

        Raises NotFoundError for an unknown parent, ItemError when the stack's folder limits
        (300 folders, depth 5) refuse it, AmbiguousError if the outcome is unknown.
        """
        parent_path: FolderPath = ()
        if parent_id is not None:
            folders = await self._folder_map()
            if parent_id not in folders:
                folders = await self._folder_map(refresh=True)
            parent = folders.get(parent_id)
            if parent is None:
                raise NotFoundError(
                    f"Contentstack has no folder {parent_id} to create {name!r} in"
                )
            parent_path = parent.path
        record = await self._client.create_folder(name, parent_id)
        created_name = record.name or name
        folder = Folder(
            source_id=record.uid,
            name=created_name,
            parent_id=parent_id,
            path=(*parent_path, created_name),
        )
        folders = await self._folder_map()
        folders[record.uid] = folder
        log.info("contentstack.folder_created", folder_id=record.uid, path="/".join(folder.path))
        return folder

    async def upload(
        self, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """One multipart request; nothing is journaled (there is no intermediate step).

        Raises AmbiguousError when the request may have created the asset (reconcile with
        :meth:`find_asset`), ItemError when the file is too large or refused.
        """
        self._check_size(request, staged)
        record = await self._client.upload(
            filename=request.filename,
            path=staged.path,
            content_type=request.content_type or staged.content_type,
            fields=_form_fields(request.meta, request.folder_id),
        )
        log.debug(  # the item's line is the pipeline's load.done (one line per item)
            "contentstack.uploaded",
            source_id=request.source_id,
            target_id=record.uid,
            bytes=staged.size,
        )
        return _ref(record)

    async def replace(
        self, target_id: str, request: UploadRequest, staged: StagedFile, journal: UploadJournal
    ) -> TargetRef:
        """Replace the file of ``target_id`` (its uid stays), with title/description/tags."""
        self._check_size(request, staged)
        record = await self._client.upload(
            filename=request.filename,
            path=staged.path,
            content_type=request.content_type or staged.content_type,
            fields=_form_fields(request.meta, request.folder_id, clear=True),
            replace_uid=target_id,
        )
        log.debug("contentstack.replaced", target_id=record.uid, bytes=staged.size)
        return _ref(record)

    async def update_metadata(self, target_id: str, meta: AssetMeta) -> None:
        """Set title (when given: the pipeline sends the file name a create would give an
        untitled asset, :func:`mappings.fields.as_created`), description and tags; an empty
        description or tag list clears them. Fields Contentstack has no place for (alt text,
        focus...) are ignored."""
        body: dict[str, Any] = {"description": meta.description or "", "tags": list(meta.tags)}
        if meta.title:
            body["title"] = meta.title
        await self._client.update(target_id, body)
        log.info("contentstack.metadata_updated", target_id=target_id)

    async def move(self, target_id: str, folder_id: str | None) -> None:
        """Move an asset into ``folder_id`` (``None``: the root) by ``PUT /v3/assets/{uid}``
        with ``parent_uid`` (facts §1.6: "asset[parent_uid] (moving to a folder)")."""
        await self._client.update(target_id, {"parent_uid": folder_id})
        log.info("contentstack.moved", target_id=target_id, folder_id=folder_id)

    async def delete(self, target_id: str) -> None:
        """Delete an asset; one that is already gone counts as deleted."""
        try:
            await self._client.delete(target_id)
        except NotFoundError:
            log.info("contentstack.delete_missing", target_id=target_id)
            return
        log.info("contentstack.deleted", target_id=target_id)

    async def find_asset(
        self, folder_id: str | None, filename: str, size: int
    ) -> TargetRef | None:
        """An asset in ``folder_id`` whose stored filename and size match, else ``None``.

        Asks for the rewritten name first (what the API stores), then the name as given.
        """
        wanted = stored_filename(filename)
        candidates = [wanted] if wanted == filename else [wanted, filename]
        for name in candidates:
            async with aclosing(
                self._pages(query={"filename": name}, folder=folder_id or ROOT_FOLDER)
            ) as pages:
                async for page in pages:
                    for record in page:
                        if (
                            not record.is_dir
                            and record.filename is not None
                            and stored_filename(record.filename) == wanted
                            and record.parent_uid == folder_id
                            and parse_size(record.file_size, record.uid) == size
                        ):
                            return TargetRef(target_id=record.uid, url=record.url)
        return None

    # -- plumbing ------------------------------------------------------------------------

    async def _folder_map(self, *, refresh: bool = False) -> dict[str, Folder]:
        async with self._folders_lock:
            if self._folders is None or refresh:
                records: dict[str, WireAsset] = {}
                async with aclosing(self._pages(query={"is_dir": True})) as pages:
                    async for page in pages:
                        for record in page:
                            if record.is_dir:
                                records[record.uid] = record
                self._folders = resolve_folder_paths(records)
                log.info("contentstack.folders_listed", scope=self.scope, folders=len(records))
            return self._folders

    def _pages(
        self, *, query: Mapping[str, Any] | None = None, folder: str | None = None
    ) -> AsyncGenerator[list[WireAsset], None]:
        """Pages of ``/v3/assets``, oldest first, each record once, checked against the
        announced count and listed again when the stack changed under them
        (:func:`connectors.pagination.iter_listing`); raises MalformedResponseError when
        paging stops making sense or the stack kept changing."""

        async def fetch(paging: Mapping[str, int]) -> tuple[list[WireAsset], int | None]:
            page = await self._client.list_assets(
                skip=paging["skip"], limit=paging["limit"], query=query, folder=folder
            )
            return page.assets, page.count

        return iter_listing(fetch, lambda: OffsetPaginator(limit=PAGE_SIZE),
                            key=lambda record: record.uid, what="the Contentstack asset list")

    async def asset_exists(self, source_id: str) -> bool:
        """Whether the asset is still in the stack, by ``GET /v3/assets/{uid}`` (not a
        listing); a 404, or a folder under that uid, counts as gone. Raises SyncError when
        Contentstack can't be asked."""
        try:
            record = await self._client.get(source_id)
        except NotFoundError:
            return False
        return not record.is_dir and record.content_type != FOLDER_CONTENT_TYPE

    async def read_asset(self, asset_id: str) -> Asset | None:
        """The asset as ``GET /v3/assets/{uid}`` shows it now (CMA "Get a single asset": its
        ``_version``, ``file_size``, ``updated_at``), one request; ``None`` on a 404 or a
        folder under that uid. Its folder path is the listing's when the folders were listed
        in this process, else ``()``. Raises SyncError when Contentstack can't be asked."""
        try:
            record = await self._client.get(asset_id)
        except NotFoundError:
            return None
        if record.is_dir or record.content_type == FOLDER_CONTENT_TYPE:
            return None
        return self._to_asset(record, self._folders or {}, direct=True)

    async def reference_count(self, source_id: str) -> int:
        """Entries referencing the asset, by ``GET /v3/assets/{uid}/references`` (one entry
        counted once per locale, as the API lists them)."""
        return len((await self._client.references(source_id)).references)

    async def environment_names(self) -> dict[str, str]:
        """Environment uid -> name, by ``GET /v3/environments`` (read once)."""
        if self._environment_names is None:
            listed = await self._client.environments()
            self._environment_names = {e.uid: e.name for e in listed.environments if e.uid}
        return self._environment_names

    def _to_asset(self, record: WireAsset, folders: Mapping[str, Folder], *,
                  direct: bool = False) -> Asset:
        """``direct``: a direct read, whose folder may be missing from ``folders`` (then
        its path is left ``()``)."""
        if not record.filename:
            raise MalformedResponseError(f"Contentstack asset {record.uid} has no filename")
        folder_path: FolderPath = ()
        if record.parent_uid is not None and (not direct or record.parent_uid in folders):
            folder_path = folders[record.parent_uid].path
        width, height = dimensions(record.dimension)
        extra = {"permanent_url": record.permanent_url} if record.permanent_url else {}
        return Asset(
            source_id=record.uid,
            filename=record.filename,
            folder_path=folder_path,
            folder_id=record.parent_uid,
            content_type=record.content_type or "application/octet-stream",
            size=parse_size(record.file_size, record.uid),
            meta=AssetMeta(
                title=record.title or None,
                description=record.description or None,
                tags=tuple(record.tags),
            ),
            width=width,
            height=height,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=str(record.version) if record.version is not None else None,
            url=record.url,
            extra=extra,
            unreachable=None if record.url else (
                "Contentstack lists this asset without a download URL; re-upload it there"
            ),
            published=frozenset((p.environment, p.locale) for p in record.publish_details
                                if p.environment and p.locale),
        )

    def _check_size(self, request: UploadRequest, staged: StagedFile) -> None:
        if staged.size > MAX_FILE_SIZE:
            raise ItemError(
                f"{request.filename} is {staged.size} bytes; Contentstack accepts at most "
                f"{MAX_FILE_SIZE} bytes per file through the API"
            )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ContentstackConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_source: type[Source] = ContentstackConnector
_target: type[Target] = ContentstackConnector
_replace: type[SupportsReplace] = ContentstackConnector
_update: type[SupportsUpdateMetadata] = ContentstackConnector
_delete: type[SupportsDelete] = ContentstackConnector
_find: type[SupportsFindAsset] = ContentstackConnector
_exists: type[SupportsAssetExists] = ContentstackConnector
_read: type[SupportsReadAsset] = ContentstackConnector
_move: type[SupportsMove] = ContentstackConnector
_changed: type[SupportsChangedSince] = ContentstackConnector
_references: type[SupportsReferences] = ContentstackConnector
_publish: type[SupportsPublish] = ContentstackConnector
_environments: type[SupportsEnvironmentNames] = ContentstackConnector
