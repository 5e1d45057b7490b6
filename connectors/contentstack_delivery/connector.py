"""A Contentstack stack's published assets as a source, read with a delivery token (CDA v3).

For teams that can only be given a delivery token. What the Delivery API can and cannot tell
(seed 000, reference/cms-api-facts.md §1):

- **Only published assets**: those published to the job's ``environment`` (and ``locale``, or
  the master locale; ``include_fallback`` takes the fallback locale's version of an asset not
  published in ``locale``), in the version that was published, not later edits.
- **Folders**: the delivery asset objects carry no folder and the API has no folder endpoint,
  so every asset lands at the target's root; each asset's plan notes say so. Use the
  ``contentstack`` connector with a management token to keep the folder tree.
- **Sizes, dimensions, text**: ``file_size`` (a string of bytes) is exact; ``include_dimension``
  gives width and height (floats are rounded); title, description and tags are read; the
  ``publish_details`` object (environment, locale, time, user) lands in ``extra``.
- **Locales**: without ``locale`` a stack may list an asset once per published locale (seen in
  recorded traffic despite the docs); the first record is the asset, the others' titles and
  descriptions become its per-locale overrides. The same asset twice in one locale is an error.

Paging is ``skip``/``limit`` by 100, oldest first, through the shared checked listing
(:func:`connectors.pagination.iter_listing`: totals, de-duplication, bounded re-list).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing

import httpx
import structlog

from connectors.base import Asset, AssetMeta, Folder, LocalizedText, Source
from connectors.contentstack.connector import dimensions, parse_size
from connectors.contentstack.wire import FOLDER_CONTENT_TYPE, WireAsset
from connectors.contentstack_delivery.client import PAGE_SIZE, ContentstackDeliveryClient
from connectors.contentstack_delivery.config import ContentstackDeliveryConfig
from connectors.errors import ItemError, MalformedResponseError, NotFoundError
from connectors.pagination import OffsetPaginator, iter_listing

log = structlog.get_logger(__name__)


FLAT_NOTE = (
    "at the root: the Contentstack Delivery API exposes no asset folders (use the "
    "contentstack connector with a management token to keep the folder tree)"
)


class ContentstackDeliveryConnector:
    """Published assets of one stack, branch, environment and locale (a :class:`Source`)."""

    name = "contentstack-delivery"

    def __init__(
        self, config: ContentstackDeliveryConfig, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._client = ContentstackDeliveryClient(config, transport=transport)

    @property
    def scope(self) -> str:
        return self._config.scope()

    async def iter_folders(self) -> AsyncIterator[Folder]:
        """None: the Delivery API exposes no asset folders (the assets land at the root)."""
        return
        yield  # pragma: no cover - makes this an async generator

    async def iter_assets(self) -> AsyncIterator[Asset]:
        """Every asset published to the environment (and locale), each once.

        The whole listing is read before the first asset is yielded, so that an asset listed
        once per locale becomes one asset with per-locale overrides. Raises
        MalformedResponseError when paging stops making sense.
        """
        first: dict[str, WireAsset] = {}
        others: dict[str, list[WireAsset]] = {}
        async with aclosing(self._pages()) as pages:
            async for page in pages:
                for record in page:
                    if record.is_dir or record.content_type == FOLDER_CONTENT_TYPE:
                        continue
                    if record.uid not in first:
                        first[record.uid] = record
                        continue
                    known = [first[record.uid], *others.get(record.uid, [])]
                    if _locale(record) is None or _locale(record) in {_locale(r) for r in known}:
                        raise MalformedResponseError(
                            f"the Contentstack Delivery API listed asset {record.uid} twice "
                            "for the same locale while paging; the listing can't be trusted, "
                            "run again later"
                        )
                    others.setdefault(record.uid, []).append(record)
        for uid, record in first.items():
            yield self._to_asset(record, others.get(uid, []))
        log.info("contentstack_delivery.assets_listed", scope=self.scope, assets=len(first))

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream the file from its URL (an asset CDN host: no credentials are sent there)."""
        if not asset.url:
            raise ItemError(f"Contentstack asset {asset.source_id} has no url to download")
        return self._client.download(asset.url)

    async def asset_exists(self, source_id: str) -> bool:
        """Whether asset ``source_id`` is still published to the environment (and locale), by
        ``GET /v3/assets/{uid}``: for a delivery source, unpublished is gone. Raises SyncError
        when unsure."""
        try:
            await self._client.get_asset(source_id)
        except NotFoundError:
            return False
        return True

    def _pages(self) -> AsyncGenerator[list[WireAsset], None]:
        """Pages of ``GET /v3/assets``, oldest first, each (asset, locale) once, checked
        against the announced count and listed again when the stack changed under them
        (:func:`connectors.pagination.iter_listing`)."""

        async def fetch(paging: Mapping[str, int]) -> tuple[list[WireAsset], int | None]:
            page = await self._client.list_assets(skip=paging["skip"], limit=paging["limit"])
            return page.assets, page.count

        return iter_listing(fetch, lambda: OffsetPaginator(limit=PAGE_SIZE),
                            key=lambda record: f"{record.uid} ({_locale(record) or '-'})",
                            what="the Contentstack Delivery asset list")

    def _to_asset(self, record: WireAsset, other_locales: list[WireAsset]) -> Asset:
        if not record.filename:
            raise MalformedResponseError(f"Contentstack asset {record.uid} has no filename")
        width, height = dimensions(record.dimension)
        extra: dict[str, str] = {}
        published = record.publish_details[0] if record.publish_details else None
        if published is not None:
            for key in ("environment", "locale", "time", "user"):
                value = getattr(published, key)
                if value:
                    extra[f"publish_{key}"] = str(value)
        if record.parent_uid:
            extra["parent_uid"] = record.parent_uid
        locales = {
            loc: LocalizedText(title=r.title if r.title != record.title else None,
                               description=(r.description or None)
                               if r.description != record.description else None)
            for r in other_locales if (loc := _locale(r)) is not None
        }
        return Asset(
            source_id=record.uid,
            filename=record.filename,
            folder_path=(),
            folder_id=None,
            content_type=record.content_type or "application/octet-stream",
            size=parse_size(record.file_size, record.uid),
            meta=AssetMeta(
                title=record.title or None,
                description=record.description or None,
                tags=tuple(record.tags),
                locales={k: v for k, v in locales.items() if v.title or v.description},
            ),
            width=width,
            height=height,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=str(record.version) if record.version is not None else None,
            url=record.url,
            extra=extra,
            notes=(FLAT_NOTE,),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ContentstackDeliveryConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _locale(record: WireAsset) -> str | None:
    return record.publish_details[0].locale if record.publish_details else None


_source: type[Source] = ContentstackDeliveryConnector
