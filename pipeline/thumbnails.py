"""Small image thumbnails for the HTML plan, read through the source connector.

The HTML page must open without any network (no image-service URL of the source in it), so
a thumbnail is made here from the file's bytes with Pillow and put into the page as a
``data:`` URI. Reading a file costs a download (and, for sources whose files come through the
rate-limited API, a paced request), so the cost is bounded, not proportional to the plan:

- at most ``limit`` images (``plan --thumbnails N``, default
  :data:`pipeline.cli.DEFAULT_THUMBNAILS`), chosen in the order a reviewer needs them:
  conflicts, replacements, creations, updates, then the rest;
- only raster types Pillow reads (:data:`THUMBNAIL_TYPES`) whose listed size (or the source's
  estimate) is at most :data:`MAX_SOURCE_BYTES`; a download that grows past it is dropped;
- through ``source.open_asset``, so the connector's pacer, retries and timeouts apply;
  :data:`CONCURRENCY` downloads at a time.

A file that cannot be read or decoded simply has no thumbnail (logged at debug level); a fatal
error of the source (credentials, quota) stops the thumbnails, never the plan.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import anyio
import structlog
from PIL import Image, UnidentifiedImageError

from connectors.base import Asset, Source
from connectors.errors import FatalError, SyncError
from pipeline.plan import AssetAction, Op, Plan

log = structlog.get_logger(__name__)

MAX_SOURCE_BYTES = 8 * 1024 * 1024
"""Larger files get no thumbnail (their download would cost more than the page is worth)."""
MAX_PIXELS = 40_000_000
"""Images with more pixels are not decoded (a decompression bomb must not stall the plan)."""
THUMBNAIL_PX = 96
"""The longer side of a thumbnail, in CSS pixels."""
CONCURRENCY = 4
THUMBNAIL_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/gif",
                             "image/webp", "image/bmp", "image/tiff"})
"""Raster types Pillow decodes; SVG and the rest get no thumbnail."""

_ORDER = {Op.CONFLICT: 0, Op.REPLACE: 1, Op.CREATE: 2, Op.UPDATE: 3, Op.UNSUPPORTED: 4,
          Op.SKIP: 5}


def candidates(plan: Plan, limit: int) -> list[AssetAction]:
    """The first ``limit`` asset actions that get a thumbnail, most useful to review first."""
    if limit <= 0:
        return []
    fit = [a for a in plan.assets if a.op in _ORDER and a.asset is not None and _fits(a.asset)]
    fit.sort(key=lambda a: _ORDER[a.op])  # stable: the plan's order within each op
    return fit[:limit]


def _fits(asset: Asset) -> bool:
    size = asset.size if asset.size is not None else asset.size_estimate
    return (not asset.skipped and not asset.unreachable and size is not None
            and 0 < size <= MAX_SOURCE_BYTES
            and asset.content_type.split(";")[0].strip().lower() in THUMBNAIL_TYPES)


def thumbnail_uri(data: bytes) -> str | None:
    """A ``data:image/...;base64,`` URI of a small thumbnail of the image ``data``, or None
    when Pillow cannot read it or it has more than :data:`MAX_PIXELS` pixels."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                return None
            img.draft("RGB", (THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))  # JPEG: decode smaller
            img.seek(0)
            frame = img.convert("RGBA")
        frame.thumbnail((THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))  # 2x for sharp high-dpi screens
        out = io.BytesIO()
        if frame.getchannel("A").getextrema()[0] != 255:  # transparent pixels: keep (PNG)
            frame.save(out, "PNG", optimize=True)
            kind = "png"
        else:
            frame.convert("RGB").save(out, "JPEG", quality=70)
            kind = "jpeg"
    except (UnidentifiedImageError, OSError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    return f"data:image/{kind};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"


async def _read_capped(source: Source, asset: Asset) -> bytes | None:
    buf = io.BytesIO()
    async with source.open_asset(asset) as chunks:
        async for chunk in chunks:
            buf.write(chunk)
            if buf.tell() > MAX_SOURCE_BYTES:
                return None
    return buf.getvalue()


async def fetch_thumbnails(source: Source, actions: Sequence[AssetAction]) -> dict[str, str]:
    """Thumbnails of ``actions`` (see :func:`candidates`) by source id, as ``data:`` URIs.

    Downloads each file once through ``source`` (its pacer applies), :data:`CONCURRENCY` at a
    time. Files that fail to download or decode are left out; a FatalError of the source
    stops the rest (logged as a warning). Never raises SyncError or FatalError.
    """
    out: dict[str, str] = {}
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    stopped: list[str] = []

    async def one(action: AssetAction) -> None:
        assert action.asset is not None  # noqa: S101 - candidates() keeps only these
        async with limiter:
            if stopped:
                return
            try:
                data = await _read_capped(source, action.asset)
            except FatalError as exc:
                stopped.append(str(exc))
                return
            except (SyncError, OSError) as exc:
                log.debug("thumbnail.unread", source_id=action.source_id, error=str(exc))
                return
        uri = None if data is None else await anyio.to_thread.run_sync(thumbnail_uri, data)
        if uri is not None:
            out[action.source_id] = uri

    async with anyio.create_task_group() as tg:
        for action in actions:
            tg.start_soon(one, action)
    if stopped:
        log.warning("thumbnail.stopped", reason=stopped[0], made=len(out))
    log.info("thumbnail.done", wanted=len(actions), made=len(out))
    return out
