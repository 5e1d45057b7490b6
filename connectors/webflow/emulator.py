"""Webflow Data API v2 emulator: a site's assets and asset folders, and their file storage.

Written from Webflow's documentation (the v2 OpenAPI spec's asset paths and examples, the
"Get Asset" page, "Working with Assets", "Rate Limits", "Error handling"; facts and sources in
``reference/cms-api-facts.md`` §3), never from our connector, so the two check each other.

What it serves (API under ``/v2``, ``Authorization: Bearer <token>``):

* ``GET|POST /v2/sites/{site_id}/assets`` (``offset``, ``limit`` ≤ 100, ``localeId``,
  ``folderId`` with descendants), ``GET|PATCH|DELETE /v2/assets/{asset_id}`` (``localeId`` in
  the query, or for PATCH also in the JSON body; DELETE answers 204);
* ``GET /v2/sites/{site_id}`` (Get Site, scope ``sites:read``): the site with its ``locales``
  (``primary`` and ``secondary[]``, each ``id``, ``cmsLocaleId``, ``enabled``, ``displayName``,
  ``subdirectory``, ``tag``), ``null`` when the site has no secondary locale; a token without
  ``sites:read`` (``sites_read=False``) gets 403 ``missing_scopes``;
* ``GET|POST /v2/sites/{site_id}/asset_folders``, ``GET /v2/asset_folders/{id}``: create and
  read only, each folder with the ids of the assets it holds;
* the presigned storage POST at ``/storage/{bucket}`` (its own path, as S3 is its own host):
  multipart, every ``uploadDetails`` field must come back verbatim (name casing included), the
  file last; the MD5 of the file must equal the ``fileHash`` of step 1; images over 4 MB and
  documents over 10 MB are refused (S3-style XML); success is 201
  (``success_action_status``). No credentials are needed there; any sent are recorded in
  ``credential_leaks``;
* files at ``GET /files/{site_id}/{asset_id}_{name}`` (names percent-encoded: spaces, ``#``,
  ``?``, ``%`` and non-ASCII survive).

Rules where the documentation is silent (**unverified** against a live site):

* An asset whose bytes never arrived (step 1 without step 2) is neither listed nor found.
* ``fileName`` of 100 characters or more, an unknown ``parentFolder`` or ``localeId``, and a
  file type Webflow does not take → 400 ``validation_error``.
* Listing order: creation order. Errors use ``{code, message, externalReference, details}``.
* The per-minute limit counts API requests per token in a sliding minute; a 429 carries
  ``Retry-After: 60`` and every API answer ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import mimetypes
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
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

MAX_LIMIT = 100
MAX_IMAGE = 4 * 1024 * 1024
MAX_DOCUMENT = 10 * 1024 * 1024
BUCKET = "webflow-emulator-assets"
_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".svg": "image/svg+xml", ".webp": "image/webp", ".avif": "image/avif",
    ".json": "application/json", ".lottie": "application/zip",
    ".pdf": "application/pdf", ".txt": "text/plain", ".csv": "text/csv",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
}
"""File types the emulated site accepts, by extension ("Working with Assets": images,
documents, Lottie)."""

Handler = Callable[[Request], Awaitable[Response]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_body(status: int, code: str, message: str, details: list[Any] | None = None) -> bytes:
    return json.dumps({"code": code, "message": message, "externalReference": None,
                       "details": details or []}).encode()


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> Response:
        return Response(_error_body(self.status, self.code, self.message, self.details),
                        status_code=self.status, media_type="application/json")


DEFAULT_TAGS: Mapping[str, str] = {"65427cf400e02b306eaa04a0": "de-DE"}
"""Tags of locale ids given without one (the demo's German locale); others show their id."""


def _not_found(what: str) -> _ApiError:
    return _ApiError(404, "resource_not_found", f"Requested resource not found: {what}")


def _invalid(message: str, param: str) -> _ApiError:
    return _ApiError(400, "validation_error", f"Validation Error: {message}",
                     [{"param": param, "description": message}])


class WebflowEmulator(FaultSwitch):
    """One Webflow site. ``assets`` and ``folders`` hold the records by id (tests may read
    them); seed with :meth:`add_folder` / :meth:`add_asset`, which enforce no limits."""

    def __init__(
        self,
        *,
        site_id: str = "6390c49674a71f84b51a08d8",
        token: str = "wf-emulator-token",  # noqa: S107 - a fixed test token, no secret
        locales: Iterable[str] | Mapping[str, str] = ("65427cf400e02b306eaa04a0",),
        primary_locale: tuple[str, str] = ("653fd9af6a07fc9cfd7a5e57", "en-US"),
        sites_read: bool = True,
        rate_limit_per_minute: float | None = 60,
        faults: Faults | None = None,
        blob_root: Path | None = None,
    ) -> None:
        self.site_id = site_id
        self.locales = frozenset(locales)
        """Secondary locale ids (``localeId`` values the asset endpoints take)."""
        self.locale_tags: dict[str, str] = (
            dict(locales) if isinstance(locales, Mapping)
            else {locale_id: DEFAULT_TAGS.get(locale_id, locale_id) for locale_id in locales})
        """Locale id -> tag (``de-DE``), as Get Site shows them."""
        self.primary_locale = primary_locale
        self.sites_read = sites_read
        self.rate_limit = rate_limit_per_minute
        self.limiter = RateLimiter(rate_limit_per_minute, window=60.0)
        self.assets: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        """Step-1 assets whose bytes have not arrived, with their signed upload details."""
        self.folders: dict[str, dict[str, Any]] = {}
        self.credential_leaks: list[str] = []
        self.requests = 0
        self.storage_posts = 0
        self._token = token
        self._secret = secrets.token_bytes(32)
        self._seq = itertools.count(int(time.time()))
        self._blobs = BlobStore(blob_root)
        api = self._route
        routes = [
            api("/v2/sites/{site_id}", GET=self._get_site),
            api("/v2/sites/{site_id}/assets", GET=self._list_assets, POST=self._create_asset),
            api("/v2/assets/{asset_id}", GET=self._get_asset, PATCH=self._patch_asset,
                DELETE=self._delete_asset),
            api("/v2/sites/{site_id}/asset_folders", GET=self._list_folders,
                POST=self._create_folder),
            api("/v2/asset_folders/{folder_id}", GET=self._get_folder),
            Route("/storage/{bucket}", self._storage_post, methods=["POST"]),
            Route("/files/{site_id}/{name:path}", self._serve_file, methods=["GET"]),
        ]
        inner = Starlette(routes=routes)
        self.fault_middleware = FaultMiddleware(
            inner, faults or Faults(),
            error_body=lambda status: _error_body(status, "internal_error",
                                                  "Internal Server Error"),
            is_download=lambda path: path.startswith("/files/"),
        )
        self.app: ASGIApp = self.fault_middleware

    # -- seeding and inspection ----------------------------------------------------------

    def _new_id(self) -> str:
        return f"{next(self._seq):08x}{secrets.token_hex(8)}"

    def add_folder(self, name: str, parent_id: str | None = None) -> str:
        """Create an asset folder directly; KeyError for an unknown parent."""
        if parent_id is not None and parent_id not in self.folders:
            raise KeyError(f"no asset folder {parent_id}")
        folder_id = self._new_id()
        now = _now()
        self.folders[folder_id] = {"id": folder_id, "displayName": name,
                                   "parentFolder": parent_id, "siteId": self.site_id,
                                   "createdOn": now, "lastUpdated": now}
        return folder_id

    def add_asset(self, filename: str, data: bytes, *, folder_id: str | None = None,
                  alt: str | None = None, alt_by_locale: Mapping[str, str] | None = None,
                  content_type: str | None = None) -> str:
        """Create a finished asset directly (no limits checked); returns its id."""
        if folder_id is not None and folder_id not in self.folders:
            raise KeyError(f"no asset folder {folder_id}")
        asset_id = self._new_id()
        record = self._record(asset_id, filename, folder_id,
                              content_type or _content_type(filename)
                              or "application/octet-stream")
        self._blobs.put_bytes(asset_id, data)
        record.update(size=len(data), altText=alt, alt_by_locale=dict(alt_by_locale or {}))
        self.assets[asset_id] = record
        return asset_id

    def blob(self, asset_id: str) -> bytes:
        stored = self._blobs.get(asset_id)
        if stored is None:
            raise KeyError(asset_id)
        return stored.path.read_bytes()

    def close(self) -> None:
        self._blobs.close()

    def _record(self, asset_id: str, filename: str, folder_id: str | None,
                content_type: str) -> dict[str, Any]:
        now = _now()
        return {"id": asset_id, "contentType": content_type, "size": 0,
                "siteId": self.site_id, "originalFileName": filename,
                "displayName": f"{asset_id}_{filename}", "createdOn": now, "lastUpdated": now,
                "altText": None, "alt_by_locale": {}, "folderId": folder_id,
                "file": f"{asset_id}_{filename}"}

    # -- the API's plumbing: auth, rate limit, errors ------------------------------------

    def _route(self, path: str, **handlers: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            self.requests += 1
            auth = request.headers.get("authorization", "")
            if not hmac.compare_digest(auth, f"Bearer {self._token}"):
                return _ApiError(401, "not_authorized", "Request not authorized").response()
            headers: dict[str, str] = {}
            if self.rate_limit:
                limit = str(int(self.rate_limit))
                if self.limiter.check(self._token) is not None:
                    response = _ApiError(429, "too_many_requests", "Too many requests").response()
                    response.headers.update({"Retry-After": "60", "X-RateLimit-Limit": limit,
                                             "X-RateLimit-Remaining": "0"})
                    return response
                headers = {"X-RateLimit-Limit": limit,
                           "X-RateLimit-Remaining": str(self.limiter.remaining(self._token))}
            site = request.path_params.get("site_id")
            try:
                if site is not None and site != self.site_id:
                    raise _not_found("The site cannot be found")
                response = await handlers[request.method](request)
            except _ApiError as exc:
                response = exc.response()
            response.headers.update(headers)
            return response

        return Route(path, endpoint, methods=list(handlers))

    def _locale(self, request: Request, body: Mapping[str, Any] | None = None) -> str | None:
        locale = request.query_params.get("localeId") or (body or {}).get("localeId")
        if locale is None or locale == "":
            return None
        if locale not in self.locales:
            raise _invalid(f"localeId {locale} is not a locale of this site", "localeId")
        return str(locale)

    def _asset_json(self, record: Mapping[str, Any], request: Request,
                    locale: str | None) -> dict[str, Any]:
        alt = record["altText"]
        if locale is not None:
            alt = record["alt_by_locale"].get(locale, alt)
        hosted = f"{str(request.base_url).rstrip('/')}/files/{self.site_id}/" + quote(
            record["file"], safe="")
        return {
            "id": record["id"], "contentType": record["contentType"], "size": record["size"],
            "siteId": record["siteId"], "hostedUrl": hosted,
            "originalFileName": record["originalFileName"],
            "displayName": record["displayName"], "lastUpdated": record["lastUpdated"],
            "createdOn": record["createdOn"], "variants": [], "altText": alt,
            "folderId": record["folderId"],
        }

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _ApiError(400, "bad_request", "Request body was incorrectly formatted.") \
                from None
        if not isinstance(body, dict):
            raise _ApiError(400, "bad_request", "Request body was incorrectly formatted.")
        return body

    @staticmethod
    def _paging(request: Request) -> tuple[int, int]:
        try:
            offset = int(request.query_params.get("offset", "0"))
            limit = int(request.query_params.get("limit", str(MAX_LIMIT)))
        except ValueError:
            raise _invalid("offset and limit must be integers", "offset") from None
        if offset < 0 or limit < 1:
            raise _invalid("offset must be >= 0 and limit >= 1", "limit")
        return offset, min(limit, MAX_LIMIT)

    # -- assets --------------------------------------------------------------------------

    def _descendants(self, folder_id: str) -> set[str]:
        found = {folder_id}
        changed = True
        while changed:
            changed = False
            for f in self.folders.values():
                if f["parentFolder"] in found and f["id"] not in found:
                    found.add(f["id"])
                    changed = True
        return found

    async def _list_assets(self, request: Request) -> Response:
        locale = self._locale(request)
        offset, limit = self._paging(request)
        rows = list(self.assets.values())
        folder = request.query_params.get("folderId")
        if folder:
            if folder not in self.folders:
                raise _not_found("The asset folder cannot be found")
            inside = self._descendants(folder)
            rows = [r for r in rows if r["folderId"] in inside]
        page = rows[offset:offset + limit]
        return JSONResponse({
            "assets": [self._asset_json(r, request, locale) for r in page],
            "pagination": {"limit": limit, "offset": offset, "total": len(rows)},
        })

    async def _create_asset(self, request: Request) -> Response:
        body = await self._json(request)
        name, file_hash = body.get("fileName"), body.get("fileHash")
        if not isinstance(name, str) or not name:
            raise _invalid("fileName is required", "fileName")
        if len(name) >= 100:
            raise _invalid("File names must be less than 100 characters", "fileName")
        if not isinstance(file_hash, str) or len(file_hash) != 32:
            raise _invalid("fileHash must be the MD5 hash of the file", "fileHash")
        parent = body.get("parentFolder")
        if parent is not None and parent not in self.folders:
            raise _invalid(f"parentFolder {parent} is not an asset folder", "parentFolder")
        content_type = _content_type(name)
        if content_type is None:
            raise _invalid(f"{name}: unsupported file type", "fileName")
        asset_id = self._new_id()
        record = self._record(asset_id, name, parent, content_type)
        key = f"{self.site_id}/{asset_id}_{name}"
        details = {
            "acl": "public-read", "bucket": BUCKET, "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"EMULATOR/{datetime.now(UTC):%Y%m%d}/us-east-1/s3/aws4_request",
            "X-Amz-Date": f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}", "key": key,
            "Policy": secrets.token_urlsafe(48) + "=",
            "success_action_status": "201", "content-type": content_type,
            "Cache-Control": "max-age=31536000, must-revalidate",
        }
        details["X-Amz-Signature"] = hmac.new(
            self._secret, json.dumps(details, sort_keys=True).encode(), hashlib.sha256
        ).hexdigest()
        self.pending[asset_id] = {"record": record, "details": details, "hash": file_hash}
        base = str(request.base_url).rstrip("/")
        hosted = f"{base}/files/{self.site_id}/" + quote(record["file"], safe="")
        return JSONResponse({
            "uploadDetails": details, "contentType": content_type, "id": asset_id,
            "parentFolder": parent, "uploadUrl": f"{base}/storage/{BUCKET}",
            "assetUrl": hosted, "hostedUrl": hosted, "originalFileName": name,
            "createdOn": record["createdOn"], "lastUpdated": record["lastUpdated"],
        })

    def _find(self, asset_id: str) -> dict[str, Any]:
        record = self.assets.get(asset_id)
        if record is None:
            raise _not_found("The asset cannot be found")
        return record

    async def _get_asset(self, request: Request) -> Response:
        locale = self._locale(request)
        record = self._find(request.path_params["asset_id"])
        return JSONResponse(self._asset_json(record, request, locale))

    async def _patch_asset(self, request: Request) -> Response:
        body = await self._json(request)
        locale = self._locale(request, body)
        record = self._find(request.path_params["asset_id"])
        if "displayName" in body:
            if locale is not None:
                raise _invalid("displayName is not localizable", "displayName")
            if not isinstance(body["displayName"], str) or not body["displayName"]:
                raise _invalid("displayName must be a non-empty string", "displayName")
            record["displayName"] = body["displayName"]
        if "altText" in body:
            alt = body["altText"]
            if alt is not None and not isinstance(alt, str):
                raise _invalid("altText must be a string", "altText")
            if locale is None:
                record["altText"] = alt
            else:
                record["alt_by_locale"][locale] = alt
        record["lastUpdated"] = _now()
        return JSONResponse(self._asset_json(record, request, locale))

    async def _delete_asset(self, request: Request) -> Response:
        asset_id = request.path_params["asset_id"]
        self._find(asset_id)
        del self.assets[asset_id]
        self._blobs.delete(asset_id)
        return Response(status_code=204)

    # -- folders -------------------------------------------------------------------------

    def _folder_json(self, folder: Mapping[str, Any]) -> dict[str, Any]:
        held = [a["id"] for a in self.assets.values() if a["folderId"] == folder["id"]]
        return {**folder, "assets": held}

    async def _get_site(self, request: Request) -> Response:
        if not self.sites_read:
            raise _ApiError(403, "missing_scopes", "OAuthForbidden: You are missing the "
                                                   "following scopes - sites:read")

        def locale(locale_id: str, tag: str, primary: bool) -> dict[str, Any]:
            return {"id": locale_id, "cmsLocaleId": locale_id[::-1], "enabled": True,
                    "displayName": tag, "displayImageId": None, "redirect": primary,
                    "subdirectory": "" if primary else tag.lower(), "tag": tag}

        primary_id, primary_tag = self.primary_locale
        locales = {
            "primary": locale(primary_id, primary_tag, True),
            "secondary": [locale(i, t, False) for i, t in sorted(self.locale_tags.items())],
        } if self.locale_tags else None
        return JSONResponse({
            "id": self.site_id, "workspaceId": "42e63e98c9a982ac9b8b742",
            "displayName": "Emulated site", "shortName": "emulated-site",
            "timeZone": "UTC", "createdOn": "2024-01-01T00:00:00.000Z",
            "lastUpdated": _now(), "lastPublished": None, "previewUrl": None,
            "customDomains": [], "locales": locales,
            "dataCollectionEnabled": False, "dataCollectionType": "never",
        })

    async def _list_folders(self, request: Request) -> Response:
        offset, limit = self._paging(request)
        rows = list(self.folders.values())
        return JSONResponse({
            "assetFolders": [self._folder_json(f) for f in rows[offset:offset + limit]],
            "pagination": {"limit": limit, "offset": offset, "total": len(rows)},
        })

    async def _create_folder(self, request: Request) -> Response:
        body = await self._json(request)
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("displayName is required", "displayName")
        parent = body.get("parentFolder")
        if parent is not None and parent not in self.folders:
            raise _invalid(f"parentFolder {parent} is not an asset folder", "parentFolder")
        folder_id = self.add_folder(name, parent)
        return JSONResponse(self._folder_json(self.folders[folder_id]))

    async def _get_folder(self, request: Request) -> Response:
        folder = self.folders.get(request.path_params["folder_id"])
        if folder is None:
            raise _not_found("The asset folder cannot be found")
        return JSONResponse(self._folder_json(folder))

    # -- storage and files ---------------------------------------------------------------

    async def _storage_post(self, request: Request) -> Response:
        self.storage_posts += 1
        self.credential_leaks.extend(leaked_credentials(request.headers))
        if request.path_params["bucket"] != BUCKET:
            return _s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
        async with request.form(max_files=1, max_fields=100) as form:
            names = list(form.keys())
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or names[-1:] != ["file"]:
                return _s3_error(400, "InvalidArgument",
                                 "POST requires exactly one file upload per request, last")
            fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
            pending = next((p for p in self.pending.values()
                            if p["details"]["key"] == fields.get("key")), None)
            if pending is None:
                return _s3_error(403, "AccessDenied", "Invalid according to Policy: key")
            for name, value in pending["details"].items():
                if fields.get(name) != value:
                    return _s3_error(403, "AccessDenied",
                                     f"Invalid according to Policy: Policy Condition failed: "
                                     f"[\"eq\", \"${name}\", ...] (field {name!r} missing or "
                                     "changed; names are case-sensitive)")
            extra = sorted(set(fields) - set(pending["details"]))
            if extra:
                return _s3_error(403, "AccessDenied", "Invalid according to Policy: Extra "
                                 f"input fields: {', '.join(extra)}")
            record = pending["record"]
            tmp = self._blobs.root / f"incoming-{record['id']}"
            size, md5 = await anyio.to_thread.run_sync(_spool, upload, tmp)
        limit = MAX_IMAGE if record["contentType"].startswith("image/") else MAX_DOCUMENT
        if size > limit:
            tmp.unlink(missing_ok=True)
            return _s3_error(400, "EntityTooLarge",
                             "Your proposed upload exceeds the maximum allowed size")
        if md5 != pending["hash"]:
            tmp.unlink(missing_ok=True)
            return _s3_error(400, "BadDigest", "The MD5 of the file does not match the "
                             "fileHash given when the asset was created")
        await anyio.to_thread.run_sync(self._blobs.put_file, record["id"], tmp)
        tmp.unlink(missing_ok=True)
        record["size"] = size
        del self.pending[record["id"]]
        self.assets[record["id"]] = record
        return Response(status_code=201)

    async def _serve_file(self, request: Request) -> Response:
        self.credential_leaks.extend(leaked_credentials(request.headers))
        name = request.path_params["name"]
        asset_id = name.split("_", 1)[0]
        record = self.assets.get(asset_id)
        blob = self._blobs.get(asset_id)
        if (record is None or blob is None or request.path_params["site_id"] != self.site_id
                or record["file"] != name):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return FileResponse(blob.path, media_type=record["contentType"])


def _content_type(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or (mimetypes.guess_type(name)[0] if suffix in _TYPES else None)


def _spool(upload: UploadFile, dest: Path) -> tuple[int, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    upload.file.seek(0)
    with dest.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            md5.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return size, md5.hexdigest()


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return Response(body, status_code=status, media_type="application/xml")
