"""Contento Content API v1 emulator: a site's assets, read-only.

Written from Contento's documentation (``/v1/assets`` page, seed 002; authentication,
pagination and rate-limit pages) and the official JS client's types, never from our
connector, so the two check each other. Facts and sources: ``reference/cms-api-facts.md`` §4.

What it serves (API under ``/api/v1``, ``Authorization: Bearer <token>`` and
``X-CONTENTO-SITE: <site_id>``):

* ``GET /api/v1/assets``: ``folder_id`` (one value or ``folder_id[0]=..&folder_id[1]=..``,
  AND-ed), ``is_image``, ``limit`` (default 20), ``sort`` (``created_at|updated_at|name`` with
  ``:asc|:desc``, one or ``sort[0]=..``; default ``created_at:desc``) and ``cursor``. The body is
  ``{"data": [...], "links": {first, last, prev, next}, "meta": {path, per_page, next_cursor,
  prev_cursor}}`` with ``links.first`` / ``links.last`` always ``null``; **a result of exactly
  one asset is that asset's object, without the envelope** (facts §4.3).
* ``GET /api/v1/assets/{id}``: one asset object.
* Every other method: 405 (the API is read-only).
* File bytes at ``GET /assets/{site_id}/{filename}`` (the asset host's path shape): no auth,
  not rate limited; a request carrying a credential header is recorded in
  ``credential_leaks``.

Asset objects carry ``size`` as a display string (``"1.86 MB"``, units of 1024, two decimals),
``width`` / ``height`` as strings (``dimensions_as_int=True`` sends integers, as the object
reference documents) and no folder id; folders exist only as the ``folder_id`` filter.

Choices where the documentation is silent (all **unverified** against a live site):

* 401 ``{"message":"Unauthenticated."}``, 403 ``{"message":"You must supply the Site ID in the
  appropriate header."}`` or ``"You are not permitted to access this Site."`` (documented);
  404 ``{"message":"Asset not found."}``; 429 ``{"message":"Too Many Attempts."}`` with
  ``Retry-After`` (Laravel's throttle; seconds until a request leaves the window) once 600
  requests fall in a sliding minute. ``rate_limit`` is in requests per second averaged over
  that minute (10 = the documented 600 per minute).
* ``limit`` above ``max_limit`` (100) is clamped; a bad ``limit``, ``sort`` or ``cursor`` → 422.
* The 30 s response cache is off by default (``cache_seconds``); ``assetferry emulate``
  turns it on, so a rehearsal shows the same staleness as the real API.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from connectors.emulation import (
    ASGIApp,
    BlobStore,
    FaultMiddleware,
    Faults,
    FaultSwitch,
    RateLimiter,
    leaked_credentials,
)
from connectors.media import image_size

log = structlog.get_logger(__name__)

DOCUMENTED_RATE_PER_MINUTE = 600.0
_ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz"
_SORT = re.compile(r"^(created_at|updated_at|name):(asc|desc)$")
_INDEXED = re.compile(r"^(folder_id|sort)\[(\d+)\]$")

Handler = Callable[[Request], Awaitable[Response]]


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ULID) for _ in range(26))


def display_size(size: int) -> str:
    """``1952645`` -> ``"1.86 MB"``: units of 1024, two decimals, as the API shows sizes."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"message": self.message}, status_code=self.status,
                            headers=self.headers)


@dataclass(slots=True)
class _Stored:
    record: dict[str, Any]
    folder_id: str | None
    blob_key: str
    seq: int


class ContentoEmulator(FaultSwitch):
    """An in-memory Contento site. Seed it with :meth:`add_folder` and :meth:`add_asset`.

    ``short_downloads`` (asset ids) makes those files announce their full length but send
    fewer bytes, like a CDN edge cutting a body short.
    """

    def __init__(
        self,
        *,
        site_id: str = "s_01jDSh2WkN8Kp6SvRA8Ne5CJ69",
        token: str = "contento-emulator-token",  # noqa: S107  (a test fixture)
        rate_limit: float | None = DOCUMENTED_RATE_PER_MINUTE / 60,
        faults: Faults | None = None,
        max_limit: int = 100,
        cache_seconds: float = 0.0,
        dimensions_as_int: bool = False,
        blob_root: Path | None = None,
    ) -> None:
        self.site_id = site_id
        self._token = token
        self.rate_limit = rate_limit
        self.max_limit = max_limit
        self.cache_seconds = cache_seconds
        self.dimensions_as_int = dimensions_as_int
        # the documented limit is per minute: enforce it over a sliding 60 s window
        self.limiter = RateLimiter(rate_limit * 60 if rate_limit else None, window=60.0)
        self.assets: dict[str, _Stored] = {}
        self.folders: dict[str, str] = {}
        """Folder id -> its name (never served: the API has no folder endpoint)."""
        self.credential_leaks: list[str] = []
        self.short_downloads: set[str] = set()
        self.requests = 0
        self.downloads = 0
        self._seq = 0
        self._clock = datetime(2024, 11, 27, 12, 0, 0, tzinfo=UTC)
        self._cache: dict[tuple[str, str, str], tuple[float, Response]] = {}
        self._blobs = BlobStore(blob_root)
        routes = [
            Route("/api/v1/assets", self._api(self._list_assets),
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/api/v1/assets/{asset_id}", self._api(self._get_asset),
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/assets/{site}/{filename}", self._serve_file, methods=["GET"]),
        ]
        inner = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})
        self.fault_middleware = FaultMiddleware(
            inner, faults or Faults(),
            error_body=lambda status: json.dumps({"message": "Server Error"}).encode(),
            is_download=lambda path: path.startswith("/assets/"),
        )
        self.app: ASGIApp = self.fault_middleware

    # -- seeding -------------------------------------------------------------------------

    def add_folder(self, name: str) -> str:
        """A folder (``af_...``); the API never shows its name."""
        folder_id = _new_id("af_")
        self.folders[folder_id] = name
        return folder_id

    def add_asset(
        self, filename: str, data: bytes, *, name: str | None = None,
        description: str | None = None, folder_id: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """Store an asset (each one a second newer than the last); return its id."""
        if folder_id is not None and folder_id not in self.folders:
            raise KeyError(folder_id)
        asset_id = _new_id("a_")
        self._seq += 1
        self._clock += timedelta(seconds=1)
        stored_name = self._unique_name(filename)
        blob = self._blobs.put_bytes(asset_id, data)
        ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        dims = image_size(blob.path) if ctype.startswith("image/") else None
        ext = stored_name.rsplit(".", 1)[-1].lower() if "." in stored_name else ""
        path = f"assets/{self.site_id}/{stored_name}"
        record: dict[str, Any] = {
            "id": asset_id,
            "name": name if name is not None else stored_name.rsplit(".", 1)[0],
            "description": description,
            "path": path,
            "url": path,  # made absolute per request
            "extension": ext,
            "size": display_size(blob.size),
            "mime_type": ctype,
            "is_image": ctype.startswith("image/"),
            "width": None if dims is None else dims[0],
            "height": None if dims is None else dims[1],
            "created_at": _stamp(self._clock),
            "updated_at": _stamp(self._clock),
        }
        self.assets[asset_id] = _Stored(record, folder_id, blob.key, self._seq)
        return asset_id

    def remove_asset(self, asset_id: str) -> None:
        stored = self.assets.pop(asset_id)
        self._blobs.delete(stored.blob_key)

    def blob(self, asset_id: str) -> bytes:
        blob = self._blobs.get(self.assets[asset_id].blob_key)
        if blob is None:
            raise KeyError(asset_id)
        return blob.path.read_bytes()

    def close(self) -> None:
        self._blobs.close()

    def _unique_name(self, filename: str) -> str:
        taken = {s.record["path"].rsplit("/", 1)[-1] for s in self.assets.values()}
        stem, dot, ext = filename.rpartition(".")
        if not dot:
            stem, ext = filename, ""
        candidate, n = filename, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}.{ext}" if dot else f"{stem}-{n}"
        return candidate

    # -- plumbing ------------------------------------------------------------------------

    def _api(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests += 1
            try:
                self._authenticate(request)
                if request.method not in ("GET", "HEAD"):
                    route = request.url.path.lstrip("/")
                    raise _ApiError(405, f"The {request.method} method is not supported for "
                                         f"route {route}. Supported methods: GET, HEAD.")
                wait = self.limiter.check(self._token) if self.rate_limit else None
                if wait is not None:
                    raise _ApiError(429, "Too Many Attempts.",
                                    {"Retry-After": str(max(1, math.ceil(wait)))})
                key = (request.url.path, str(request.url.query),
                       request.headers.get("x-contento-site", ""))
                cached = self._cache.get(key)
                if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                    return cached[1]
                response = await handler(request)
                if self.cache_seconds:
                    self._cache[key] = (time.monotonic(), response)
                return response
            except _ApiError as exc:
                return exc.response()

        return endpoint

    def _authenticate(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not token or not secrets.compare_digest(token, self._token):
            raise _ApiError(401, "Unauthenticated.")
        site = request.headers.get("x-contento-site")
        if not site:
            raise _ApiError(403, "You must supply the Site ID in the appropriate header.")
        if site != self.site_id:
            raise _ApiError(403, "You are not permitted to access this Site.")

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101  (registered for HTTPException only)
        message = "Not Found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"message": message}, status_code=exc.status_code)

    def _render(self, stored: _Stored, request: Request) -> dict[str, Any]:
        out = dict(stored.record)
        base = str(request.base_url).rstrip("/")
        folder, _, name = out["path"].rpartition("/")
        out["url"] = f"{base}/{folder}/{quote(name)}"
        for key in ("width", "height"):
            if out[key] is not None and not self.dimensions_as_int:
                out[key] = str(out[key])
        return out

    # -- endpoints -----------------------------------------------------------------------

    def _multi(self, request: Request, name: str) -> list[str]:
        values = request.query_params.getlist(name)
        indexed = sorted(
            (int(m.group(2)), v) for k, v in request.query_params.multi_items()
            if (m := _INDEXED.match(k)) and m.group(1) == name
        )
        return [v for v in values if v] + [v for _, v in indexed if v]

    def _selection(self, request: Request) -> list[_Stored]:
        rows = list(self.assets.values())
        for folder_id in self._multi(request, "folder_id"):  # several values are AND-ed
            rows = [s for s in rows if s.folder_id == folder_id]
        is_image = request.query_params.get("is_image")
        if is_image is not None:
            wanted = is_image.lower() in ("true", "1")
            rows = [s for s in rows if s.record["is_image"] is wanted]
        sorts = self._multi(request, "sort") or ["created_at:desc"]
        for spec in reversed(sorts):  # stable sorts, last key first
            match = _SORT.match(spec)
            if match is None:
                raise _ApiError(422, f"The sort value {spec!r} is invalid.")
            attr, direction = match.groups()
            if attr == "name":
                rows.sort(key=lambda s: (str(s.record["name"]).lower(), s.seq),
                          reverse=direction == "desc")
            else:
                rows.sort(key=lambda s, a=attr: (s.record[a], s.seq),  # type: ignore[misc]
                          reverse=direction == "desc")
        return rows

    async def _list_assets(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            raise _ApiError(422, "The limit must be an integer.") from None
        if limit < 1:
            raise _ApiError(422, "The limit must be at least 1.")
        limit = min(limit, self.max_limit)
        rows = self._selection(request)
        offset = _decode_cursor(request.query_params.get("cursor"))
        page = rows[offset: offset + limit]
        if len(page) == 1:
            # documented: a result of exactly one object comes without the envelope
            return JSONResponse(self._render(page[0], request))
        base = f"{str(request.base_url).rstrip('/')}{request.url.path}"
        more = offset + limit < len(rows)
        next_cursor = _encode_cursor(offset + limit) if more else None
        prev_cursor = _encode_cursor(max(0, offset - limit), back=True) if offset else None
        return JSONResponse({
            "data": [self._render(s, request) for s in page],
            "links": {
                "first": None,
                "last": None,
                "prev": f"{base}?cursor={prev_cursor}" if prev_cursor else None,
                "next": f"{base}?cursor={next_cursor}" if next_cursor else None,
            },
            "meta": {"path": base, "per_page": limit, "next_cursor": next_cursor,
                     "prev_cursor": prev_cursor},
        })

    async def _get_asset(self, request: Request) -> Response:
        stored = self.assets.get(request.path_params["asset_id"])
        if stored is None:
            raise _ApiError(404, "Asset not found.")
        return JSONResponse(self._render(stored, request))

    async def _serve_file(self, request: Request) -> Response:
        leaked = leaked_credentials(request.headers)
        if leaked:
            self.credential_leaks.append(request.url.path)
            log.warning("emulator.credential_leak", api="contento", path=request.url.path,
                        headers=",".join(leaked))
        path = f"assets/{request.path_params['site']}/{request.path_params['filename']}"
        stored = next((s for s in self.assets.values() if s.record["path"] == path), None)
        blob = self._blobs.get(stored.blob_key) if stored is not None else None
        if stored is None or blob is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        self.downloads += 1
        if stored.record["id"] in self.short_downloads:
            data = blob.path.read_bytes()
            return Response(data[: max(0, len(data) - max(1, len(data) // 3))],
                            media_type=stored.record["mime_type"],
                            headers={"content-length": str(len(data))})
        return FileResponse(blob.path, media_type=stored.record["mime_type"],
                            stat_result=blob.path.stat())


def _encode_cursor(offset: int, *, back: bool = False) -> str:
    raw = json.dumps({"_offset": offset, "_pointsToNextItems": not back}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["_offset"]
    except (ValueError, KeyError, TypeError):
        raise _ApiError(422, "The cursor is invalid.") from None
    if not isinstance(offset, int) or offset < 0:
        raise _ApiError(422, "The cursor is invalid.")
    return offset
