"""A Contento site's assets as a source (Content API v1; the API is read-only).

What Contento can and cannot tell (seed 002, reference/cms-api-facts.md §4):

- **Folders.** Folder ids (``af_...``) exist only as a ``folder_id`` filter: no folder names, no
  tree, and an asset object carries no folder id. The job file names the folders to keep
  (``[source.folders]``, ``"af_01..." = "Marketing/Heroes"``); the connector lists each named
  folder with ``folder_id`` to learn which assets it holds, then lists the whole library; every
  other asset lands at the root. Each asset's plan notes say where its folder came from. When
  an asset is listed under two named folders (a parent's filter may include its subfolders),
  the deepest path wins.
- **Sizes.** ``size`` is a display string (``"1.86 MB"``): it becomes
  :attr:`Asset.size_estimate`, and ``size`` stays ``None``; the exact byte count comes from the
  download (its ``Content-Length`` is checked against the bytes received).
- **Dimensions.** ``width`` / ``height`` come as strings or integers; ``null`` for documents.
- **Text.** ``name`` becomes the title and ``description`` the description, and for an image
  also its alt text (the asset reference: it "often maps to alt-text"); there are no tags,
  copyright or focus fields on Contento assets.
- **Freshness.** The API caches responses for 30 s: a change made just before a run may not be
  seen until the next one.

Paging is by cursor (``links.next`` / ``meta.next_cursor``), oldest first; a repeated cursor or
an asset listed twice is an error, never an endless or doubled listing.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, aclosing
from posixpath import basename
from urllib.parse import unquote, urlsplit

import httpx
import structlog

from connectors.base import Asset, AssetMeta, Folder, FolderPath, Source
from connectors.contento.client import ContentoClient
from connectors.contento.config import ContentoConfig
from connectors.contento.wire import WireAsset
from connectors.errors import ItemError, MalformedResponseError, NotFoundError
from connectors.pagination import CursorPaginator

log = structlog.get_logger(__name__)


_SIZE = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*([KMGTP]?i?B|bytes?)?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "b": 0, "byte": 0, "bytes": 0, "kb": 1, "kib": 1, "mb": 2, "mib": 2,
          "gb": 3, "gib": 3, "tb": 4, "tib": 4, "pb": 5, "pib": 5}

ROOT_NOTE = (
    "at the root: in no folder named in the job file's [source.folders] (Contento's API "
    "cannot list folders or tell an asset's folder; name a folder there to keep it)"
)


def estimate_size(value: str | int | float | None) -> int | None:
    """Bytes from a display size such as ``"1.86 MB"`` (units of 1024); ``None`` if unreadable.

    An estimate only: the display string is rounded.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) and value >= 0 else None
    match = _SIZE.match(value)
    if match is None:
        return None
    number = float(match.group(1).replace(",", "."))
    unit = (match.group(2) or "").lower()
    power = _UNITS.get(unit)
    if power is None:
        return None
    return round(number * float(1024**power))


def pixels(value: str | int | float | None) -> int | None:
    """A width or height given as ``"4844"``, ``4844`` or ``null``; junk means unknown."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return round(number)


def filename_of(record: WireAsset) -> str:
    """The stored file's name: the last segment of ``url`` percent-decoded exactly once (a
    file named ``100%20sure.png`` is ``100%2520sure.png`` in its URL), else of ``path``
    (``assets/{site}/bird.jpg``; whether the API encodes it is not documented, so it is read
    like the URL's path), else ``name`` plus ``extension``. Raises MalformedResponseError if
    none.

    The URL comes first: it is certainly encoded once, while ``path`` is an undocumented
    storage path, and decoding a name that was never encoded turns a literal ``%20`` into a
    space.
    """
    for candidate in (urlsplit(record.url).path if record.url else None, record.path):
        if candidate:
            name = unquote(basename(candidate.rstrip("/")))
            if name:
                return name
    if record.name:
        ext = f".{record.extension}" if record.extension else ""
        return record.name if record.name.endswith(ext) else f"{record.name}{ext}"
    raise MalformedResponseError(f"Contento asset {record.id} has no path, url or name")


class ContentoConnector:
    """A Contento site's assets, read through the Content API (a :class:`Source` only)."""

    name = "contento"

    def __init__(
        self, config: ContentoConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._client = ContentoClient(config, transport=transport)
        self._named = config.named_folders()
        self._listing: tuple[dict[str, tuple[str, FolderPath, WireAsset]],
                             dict[str, list[str]], dict[str, int]] | None = None
        """The named folders' listing :meth:`iter_folders` made, for the next
        :meth:`iter_assets` (used once, so a later listing is fresh)."""

    @property
    def scope(self) -> str:
        return self._config.scope()

    # -- reading -------------------------------------------------------------------------

    async def iter_folders(self) -> AsyncIterator[Folder]:
        """The folders named in the job file and their parents, parents first.

        The API has no folder listing: each named folder is listed with the ``folder_id``
        filter to learn its assets (kept for :meth:`iter_assets`). A folder under which no
        named folder lists any asset (an id that does not exist, or an empty folder) is
        yielded with :attr:`Folder.unconfirmed` saying so: the plan does not create it.
        """
        listing = await self._list_named()
        self._listing = listing
        counts = listing[2]
        ids: dict[FolderPath, str] = {path: fid for fid, path in self._named.items()}
        paths = {path[:depth] for path in self._named.values()
                 for depth in range(1, len(path) + 1)}
        for path in sorted(paths, key=lambda p: (len(p), p)):
            parent = path[:-1]
            fid = ids.get(path)
            confirmed = any(counts.get(f) for f, named in self._named.items()
                            if named[:len(path)] == path)
            unconfirmed = None
            if not confirmed and fid is not None:
                unconfirmed = (f"Contento lists no asset under folder id {fid!r} (named "
                               f"{'/'.join(path)!r} in the job file's [source.folders]): check "
                               "the id; a folder the source cannot confirm is not created")
            elif not confirmed:
                unconfirmed = ("no folder named below it in the job file's [source.folders] "
                               "holds an asset Contento lists; it is not created")
            yield Folder(
                source_id=fid or "path:" + "/".join(path),
                name=path[-1],
                parent_id=(ids.get(parent, "path:" + "/".join(parent)) if parent else None),
                path=path,
                unconfirmed=unconfirmed,
            )

    async def _list_named(self) -> tuple[dict[str, tuple[str, FolderPath, WireAsset]],
                                         dict[str, list[str]], dict[str, int]]:
        """List each named folder: ``(asset id -> (folder id, path, record), asset id ->
        paths it was also listed under, folder id -> assets listed)``."""
        placed: dict[str, tuple[str, FolderPath, WireAsset]] = {}
        also: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        # shallow folders first, so a deeper folder that also lists an asset wins
        for folder_id, path in sorted(self._named.items(), key=lambda kv: (len(kv[1]), kv[1])):
            listed = 0
            async with aclosing(self._records(folder_id=folder_id)) as records:
                async for record in records:
                    listed += 1
                    before = placed.get(record.id)
                    if before is not None:
                        also.setdefault(record.id, []).append("/".join(before[1]))
                    placed[record.id] = (folder_id, path, record)
            counts[folder_id] = listed
            log.info("contento.folder_listed", folder_id=folder_id, path="/".join(path),
                     assets=listed)
        return placed, also, counts

    async def iter_assets(self) -> AsyncIterator[Asset]:
        """Every asset of the site, each in the deepest named folder that lists it, else at
        the root. Raises MalformedResponseError when paging stops making sense."""
        listing, self._listing = self._listing, None
        placed, also, _ = listing if listing is not None else await self._list_named()
        seen: set[str] = set()
        async with aclosing(self._records()) as records:
            async for record in records:
                seen.add(record.id)
                yield self._to_asset(record, placed.get(record.id), also.get(record.id, []))
        # listed in a folder but not (yet) in the library listing: the API caches for 30 s
        for asset_id, entry in placed.items():
            if asset_id not in seen:
                yield self._to_asset(entry[2], entry, also.get(asset_id, []))
        log.info("contento.assets_listed", scope=self.scope,
                 assets=len(seen | placed.keys()), in_folders=len(placed))

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream the file from its URL (the asset host: no credentials are sent there)."""
        if not asset.url:
            raise ItemError(f"Contento asset {asset.source_id} has no url to download")
        return self._client.download(asset.url)

    async def asset_exists(self, source_id: str) -> bool:
        """Whether asset ``source_id`` is still in the site, by ``GET /v1/assets/{id}``
        (a direct read, never a listing). The API's 30 s cache may still show a just-deleted
        asset: that only keeps an asset one run longer. Raises SyncError when unsure."""
        try:
            await self._client.get_asset(source_id)
        except NotFoundError:
            return False
        return True

    # -- plumbing ------------------------------------------------------------------------

    async def _records(self, *, folder_id: str | None = None) -> AsyncGenerator[WireAsset, None]:
        pager = CursorPaginator()
        seen: set[str] = set()
        while True:
            page = await self._client.list_assets(cursor=pager.cursor, folder_id=folder_id)
            for record in page.assets:
                if record.id in seen:
                    raise MalformedResponseError(
                        f"Contento listed asset {record.id} twice while paging; the listing "
                        "can't be trusted, run again later"
                    )
                seen.add(record.id)
                yield record
            if not pager.advance(page.next_cursor):
                return

    def _to_asset(
        self, record: WireAsset, placed: tuple[str, FolderPath, WireAsset] | None,
        also: list[str],
    ) -> Asset:
        if placed is None:
            folder_path: FolderPath = ()
            folder_id = None
            notes = [ROOT_NOTE]
        else:
            folder_id, folder_path, _ = placed
            notes = [f"folder {'/'.join(folder_path)!r} from the job file's [source.folders] "
                     f"({folder_id})"]
            if also:
                notes.append(f"also listed under {', '.join(repr(p) for p in also)}; "
                             "the deepest named folder wins")
        estimate = estimate_size(record.size)
        content_type = record.mime_type or "application/octet-stream"
        is_image = record.is_image if record.is_image is not None else (
            content_type.startswith("image/"))
        updated = record.updated_at or record.created_at
        return Asset(
            source_id=record.id,
            filename=filename_of(record),
            folder_path=folder_path,
            folder_id=folder_id,
            content_type=content_type,
            size=None,
            size_estimate=estimate,
            meta=AssetMeta(
                title=record.name or None,
                description=record.description or None,
                # the asset reference: an image's description "often maps to alt-text"
                alt_text=(record.description or None) if is_image else None,
            ),
            width=pixels(record.width),
            height=pixels(record.height),
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=updated.isoformat() if updated else None,
            url=record.url,
            extra={"size_display": str(record.size)} if record.size is not None else {},
            notes=tuple(notes),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ContentoConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_source: type[Source] = ContentoConnector
