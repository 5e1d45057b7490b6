"""An emulator of the Storyblok Management API (v1): assets, asset folders, internal tags.

Written from Storyblok's documentation (``reference/cms-api-facts.md`` §2, the MAPI OpenAPI
spec, the old docs' examples and the official PHP client's fixtures), never from our connector,
so that the two check each other. Besides ``/v1/spaces/{space_id}/...`` it serves what sits
around the API:

* ``POST /s3/a.storyblok.com`` is the S3 bucket of the signed upload (step 2). It checks the
  policy signature, the expiry, every signed field, the size range and that ``file`` is the
  last part, and answers as S3 does: 204, or an XML ``<Error>``.
* ``GET /f/{space_id}/{W}x{H}/{hash}/{name}`` is the public asset host (``a.storyblok.com``).
  Asset ``filename`` URLs point here, on the request's own host, so downloads work offline.
* ``GET /v2/cdn/assets/me?filename=<url>&token=<asset token>`` is the Content Delivery API's
  signed-URL endpoint for private assets.

None of these three needs Storyblok credentials. A credential header sent to them is recorded
in :attr:`StoryblokEmulator.credential_leaks`.

What the official clients call before anything else answers too: ``GET /v1/users/me`` and
``GET /v1/spaces/{space_id}/shared_asset_folders`` (shapes from the official ``mapi-client``'s
types, generated from Storyblok's OpenAPI). Assets are updated with ``PATCH`` (the official
clients) or ``PUT`` (the spec). Each emulator is its own space (a random id unless given) with
its own block of asset/folder/tag ids, so two emulators never share an id. File URLs are
percent-encoded and decoded once by the rules in :mod:`connectors.emulation`.

Where the docs are silent the code says ``choice:``; texts nobody has seen on the wire say
``unverified:``.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import itertools
import json
import mimetypes
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

import anyio
import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from starlette.applications import Starlette
from starlette.datastructures import FormData, QueryParams, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
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
    request_path,
    url_path,
)
from connectors.media import image_size

BUCKET = "a.storyblok.com"
"""The S3 bucket of Storyblok's assets; the emulator's bucket path is ``/s3/a.storyblok.com``."""

MAX_UPLOAD_BYTES = 5_242_879_999
"""``content-length-range`` upper bound of the policy in Storyblok's documented example."""

DEFAULT_ASSET_TOKEN = "sb-emulator-asset-token"
"""The CDA token accepted by ``/v2/cdn/assets/me`` when no ``asset_token`` is given."""

FIRST_ID = 89_293_614_204_583
"""An asset id from Storyblok's examples: ids are 53-bit, so ours start above 2**40."""

ID_BLOCKS = 2**20
"""Spaces share ids from :data:`FIRST_ID` up in blocks of 2**32, one per ``space_id % 2**20``:
two spaces differing there never hand out the same asset, folder or tag id, and every id stays
below 2**53 (Storyblok's ids are JavaScript-safe integers)."""

_spaces_in_use: set[int] = set()
"""Id blocks of the emulators made in this process with a random space id."""


def space_id_block(space_id: int) -> int:
    """The first asset/folder/tag id an emulator of ``space_id`` hands out."""
    return FIRST_ID + (space_id % ID_BLOCKS) * 2**32


def random_space_id() -> int:
    """A fresh 15-digit space id (as new Storyblok spaces have), its id block unused here."""
    while True:
        space_id = 10**14 + secrets.randbelow(9 * 10**14)
        if space_id % ID_BLOCKS not in _spaces_in_use:
            _spaces_in_use.add(space_id % ID_BLOCKS)
            return space_id

RECORD_NOT_FOUND = ["This record could not be found"]
"""404 body of a missing asset: a bare JSON array (PHP client fixture ``empty-asset.json``)."""

SORTS = frozenset(
    f"{field}:{order}"
    for field in ("created_at", "updated_at", "short_filename")
    for order in ("asc", "desc")
)

_TEXT_FIELDS = ("alt", "copyright", "title", "source", "focus")
_DEFAULT_META = ("alt", "title", "copyright", "source")
"""Default fields that ``meta_data`` may carry too (the docs: it "includes the default ones")."""
_SIZE = re.compile(r"^(\d+)[xX](\d+)$")
_CACHE_CONTROL = "public; max-age=31536000"
_ACCESS_KEY_ID = "AKIAEMULATOR00000000"  # not a secret: a fake key id shown in x-amz-credential


class _Invalid(Exception):
    """A request value has the wrong type or format."""


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss.SSSZ``, as in the recorded list response."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _amz_date(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _int_value(value: Any, name: str) -> int | None:
    """An optional integer from JSON or a query string; ``None`` for null or ``""``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Invalid(f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _Invalid(f"{name} must be an integer")


def _flag(value: Any) -> bool:
    """Booleans as Rails reads them: true, 1, "1", "true" are true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in {"1", "true"}


def parameterize(filename: str) -> str:
    """Storyblok's file name rule: every "." except the last becomes "_".

    choice: path separators also become "_" (the key is a path), nothing else is changed.
    """
    name = filename.replace("/", "_").replace("\\", "_").strip()
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return name
    return f"{stem.replace('.', '_')}.{ext}"


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _image_size(data: bytes) -> str:
    """``WxH`` of an image, ``0x0`` for anything Pillow can't read."""
    size = image_size(data)
    return f"{size[0]}x{size[1]}" if size else "0x0"


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=dict(headers or {}))


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


def _unprocessable(errors: Mapping[str, list[str]]) -> Response:
    """422 as a bare ``{field: [message]}`` map, one of the documented ErrorsObject forms."""
    return _json(dict(errors), 422)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _not_found_route() -> Response:
    return _error("Not Found", 404)  # unverified: Rails' routing 404 text


class StoryblokEmulator(FaultSwitch):
    """The MAPI v1 asset endpoints of one space, plus its S3 bucket, asset host and CDA.

    ``requests`` counts calls to ``/v1`` (the rate-limited Management API), including those
    answered 401 or 429; uploads to S3 and downloads are not counted.
    ``assets`` holds finished assets, soft-deleted ones too (``deleted_at`` set). A record's
    ``key`` is the storage path ``f/{space_id}/{W}x{H}/{hash}/{name}``; the wire ``filename``
    is ``{request base URL}/{key}``. ``internal_tag_ids`` are ints here.
    ``credential_leaks`` holds ``"<header> <METHOD> <path>"`` (never the value) for each
    credential header sent to S3, the file host or the CDA.
    Folder 404s use the same bare-array body as asset 404s (choice: one Rails handler).
    """

    def __init__(
        self,
        *,
        space_id: int | None = None,
        token: str = "sb-emulator-token",  # noqa: S107 - a fixed test token, no secret
        oauth_token: str | None = None,
        rate_limit: float | None = 3.0,
        faults: Faults | None = None,
        signature_ttl: float = 600.0,
        max_per_page: int = 100,
        asset_token: str | None = None,
        blob_root: Path | None = None,
    ) -> None:
        self.space_id = random_space_id() if space_id is None else space_id
        self.signature_ttl = signature_ttl
        self.max_per_page = max_per_page
        self.rate_limit = rate_limit
        self.limiter = RateLimiter(rate_limit)
        self.assets: dict[int, dict[str, Any]] = {}
        self.folders: dict[int, dict[str, Any]] = {}
        self.pending_uploads: dict[int, dict[str, Any]] = {}
        self.internal_tags: dict[int, dict[str, Any]] = {}
        self.credential_leaks: list[str] = []
        self.requests = 0
        self.calls: collections.Counter[str] = collections.Counter()
        """Management API requests served, by method and resource (``"PUT assets"``)."""
        self._token = token
        self._oauth_token = oauth_token
        self._asset_token = asset_token or DEFAULT_ASSET_TOKEN
        self._secret = secrets.token_bytes(32)
        self._ids = itertools.count(space_id_block(self.space_id))
        self.user_id = 100_000 + secrets.randbelow(900_000)
        self._user_created = _stamp(_now())
        self._store = BlobStore(blob_root)
        self._by_key: dict[str, int] = {}
        inner = Starlette(
            routes=[
                Route("/{path:path}", self._endpoint,
                      methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )
        self.fault_middleware = FaultMiddleware(
            inner,
            faults or Faults(),
            error_body=lambda status: json.dumps({"error": "Internal Server Error"}).encode(),
            is_download=lambda path: path.startswith("/f/"),
        )
        self.app: ASGIApp = self.fault_middleware

    # ------------------------------------------------------------------ seeding and inspection

    def add_folder(self, name: str, parent_id: int | None = None) -> int:
        """Create an asset folder directly; raises KeyError for an unknown parent."""
        if parent_id is not None and parent_id not in self.folders:
            raise KeyError(f"no asset folder {parent_id}")
        folder_id = next(self._ids)
        self.folders[folder_id] = {
            "id": folder_id, "name": name, "parent_id": parent_id, "uuid": str(uuid.uuid4()),
        }
        return folder_id

    def add_asset(
        self,
        filename: str,
        data: bytes,
        *,
        folder_id: int | None = None,
        alt: str | None = None,
        title: str | None = None,
        copyright: str | None = None,
        source: str | None = None,
        focus: str | None = None,
        tags: Sequence[str] = (),
        meta_data: Mapping[str, str] | None = None,
        is_private: bool = False,
        content_type: str | None = None,
    ) -> int:
        """Create a finished asset directly (tags are internal tags, created when missing)."""
        if folder_id is not None and folder_id not in self.folders:
            raise KeyError(f"no asset folder {folder_id}")
        name = parameterize(filename)
        key = f"f/{self.space_id}/{_image_size(data)}/{secrets.token_hex(5)}/{name}"
        blob = self._store.put_bytes(key, data)
        asset_id = next(self._ids)
        now = _stamp(_now())
        asset = self._new_asset(asset_id, key, name, content_type or _content_type(name),
                                blob.size, now)
        asset.update(asset_folder_id=folder_id, alt=alt, title=title, copyright=copyright,
                     source=source, focus=focus, is_private=is_private,
                     meta_data=dict(meta_data or {}),
                     internal_tag_ids=[self._tag_id(tag) for tag in tags])
        for field in _DEFAULT_META:
            if asset[field] is None and field in asset["meta_data"]:
                asset[field] = asset["meta_data"][field]
        self.assets[asset_id] = asset
        self._by_key[key] = asset_id
        return asset_id

    def blob(self, asset_id: int) -> bytes:
        """The current file of a finished asset; raises KeyError when there is none."""
        stored = self._store.get(self.assets[asset_id]["key"])
        if stored is None:
            raise KeyError(f"asset {asset_id} has no file")
        return stored.path.read_bytes()

    def close(self) -> None:
        """Remove the stored files (when the emulator made its own temporary directory)."""
        self._store.close()

    def _tag_id(self, name: str) -> int:
        for tag in self.internal_tags.values():
            if tag["name"] == name and tag["object_type"] == "asset":
                tag_id: int = tag["id"]
                return tag_id
        tag_id = next(self._ids)
        self.internal_tags[tag_id] = {"id": tag_id, "name": name, "object_type": "asset"}
        return tag_id

    def _new_asset(
        self, asset_id: int, key: str, name: str, content_type: str, size: int, created: str
    ) -> dict[str, Any]:
        return {
            "id": asset_id, "key": key, "short_filename": name, "space_id": self.space_id,
            "content_type": content_type, "content_length": size,
            "created_at": created, "updated_at": created, "deleted_at": None,
            "asset_folder_id": None, "alt": None, "copyright": None, "title": None,
            "source": None, "focus": None, "expire_at": None, "publish_at": None,
            "ext_id": None, "internal_tag_ids": [], "locked": False, "is_private": False,
            "meta_data": {},
        }

    # ------------------------------------------------------------------ routing

    async def _endpoint(self, request: Request) -> Response:
        parts = [part for part in request_path(request.scope).split("/") if part]
        if parts[:1] == ["v1"]:
            return await self._mapi(request, parts[1:])
        if parts[:1] == ["f"]:
            self._record_leaks(request)
            return self._serve_file(request, "/".join(parts))
        if parts[:1] == ["s3"] and len(parts) >= 2:
            self._record_leaks(request)
            if request.method == "POST" and len(parts) == 2:
                return await self._s3_post(request, parts[1])
            if request.method in {"GET", "HEAD"} and parts[1] == BUCKET and len(parts) > 2:
                return self._serve_file(request, "/".join(parts[2:]))
            return _s3_error(405, "MethodNotAllowed",
                             "The specified method is not allowed against this resource.")
        if parts == ["v2", "cdn", "assets", "me"] and request.method in {"GET", "HEAD"}:
            self._record_leaks(request)
            return self._cdn_signed_url(request)
        return _not_found_route()

    def _record_leaks(self, request: Request) -> None:
        for name in leaked_credentials(request.headers):
            self.credential_leaks.append(f"{name} {request.method} {request_path(request.scope)}")

    def _authorized(self, header: str | None) -> bool:
        """A personal token as the raw header, or the OAuth token after ``Bearer``."""
        if not header:
            return False
        if hmac.compare_digest(header, self._token):
            return True
        scheme, _, value = header.partition(" ")
        return (
            self._oauth_token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(value.strip(), self._oauth_token)
        )

    async def _mapi(self, request: Request, parts: list[str]) -> Response:
        self.requests += 1
        header = request.headers.get("authorization")
        if header is None or not self._authorized(header):
            # unverified: the docs give only the shape {"error": "<message>"} for 401
            return _error("Unauthorized", 401)
        if self.limiter.check(hashlib.sha256(header.encode()).hexdigest()) is not None:
            # documented body; no Retry-After or rate-limit headers are documented for MAPI
            per_second = int(self.rate_limit or 0)
            return _error(
                f"Rate limit of {per_second} request per second reached. Retry later.", 429
            )
        if parts == ["users", "me"] and request.method == "GET":
            return _json({"user": self._user_json()})
        if len(parts) < 3 or parts[0] != "spaces":
            return _not_found_route()
        if parts[1] != str(self.space_id):
            return _error("Space not found", 404)  # unverified text
        resource, rest, method = parts[2], parts[3:], request.method
        self.calls[f"{method} {resource}"] += 1
        try:
            if resource == "assets":
                return await self._assets_route(request, method, rest)
            if resource == "asset_folders":
                return await self._folders_route(request, method, rest)
            if resource == "shared_asset_folders" and method == "GET":
                return self._shared_folders(rest)
            if resource == "internal_tags" and not rest:
                if method == "GET":
                    return self._list_tags(request)
                if method == "POST":
                    return self._create_tag(await self._body(request))
        except _BadBody as exc:
            return _error(str(exc), 400)
        return _not_found_route()

    async def _assets_route(self, request: Request, method: str, rest: list[str]) -> Response:
        if not rest:
            if method == "GET":
                return self._list_assets(request)
            if method == "POST":
                return await self._sign(request)
            return _not_found_route()
        if len(rest) == 1 and method == "POST":
            body = await self._body(request)
            if rest[0] == "bulk_destroy":
                return self._bulk_destroy(body)
            if rest[0] == "bulk_restore":
                return self._bulk_restore(body)
            if rest[0] == "bulk_update":
                return self._bulk_update(body)
            return _not_found_route()
        try:
            asset_id = _int_value(rest[0], "asset_id")
        except _Invalid:
            return _json(RECORD_NOT_FOUND, 404)
        if asset_id is None:
            return _json(RECORD_NOT_FOUND, 404)
        if len(rest) == 2 and rest[1] == "finish_upload" and method == "GET":
            return self._finish(request, asset_id)
        if len(rest) != 1:
            return _not_found_route()
        if method == "GET":
            asset = self.assets.get(asset_id)
            if asset is None:
                return _json(RECORD_NOT_FOUND, 404)
            return _json(self._asset_json(asset, request, full=True))
        if method in {"PUT", "PATCH"}:
            return self._update_asset(asset_id, await self._body(request))
        if method == "DELETE":
            return self._delete_asset(asset_id, request)
        return _not_found_route()

    async def _folders_route(self, request: Request, method: str, rest: list[str]) -> Response:
        if not rest:
            if method == "GET":
                return self._list_folders(request.query_params)
            if method == "POST":
                return self._create_folder(await self._body(request))
            return _not_found_route()
        if len(rest) != 1:
            return _not_found_route()
        try:
            folder_id = _int_value(rest[0], "asset_folder_id")
        except _Invalid:
            folder_id = None
        folder = self.folders.get(folder_id) if folder_id is not None else None
        if folder is None:
            return _json(RECORD_NOT_FOUND, 404)
        if method == "GET":
            return _json({"asset_folder": self._folder_json(folder)})
        if method == "PUT":
            return self._update_folder(folder, await self._body(request))
        if method == "DELETE":
            return self._delete_folder(folder, _flag(request.query_params.get("recursive")))
        return _not_found_route()

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _BadBody("The request body is not valid JSON") from None  # unverified text
        if not isinstance(body, dict):
            raise _BadBody("The request body must be a JSON object")
        return body

    # ------------------------------------------------------------------ assets: read

    def _asset_json(self, asset: Mapping[str, Any], request: Request, *, full: bool
                    ) -> dict[str, Any]:
        """The asset object; list rows ("IndexAsset") lack ``file`` and ``permanently_deleted``.

        choice: an empty ``meta_data`` is ``{}`` (the spec's object); the PHP fixtures show
        ``[]``, probably a PHP re-encoding artefact.
        """
        tags = [self.internal_tags[t] for t in asset["internal_tag_ids"] if t in self.internal_tags]
        row: dict[str, Any] = {
            "id": asset["id"],
            "filename": self._file_url(request, asset["key"]),
            "space_id": asset["space_id"],
            "created_at": asset["created_at"],
            "updated_at": asset["updated_at"],
        }
        if full:
            row["file"] = None
        row.update(
            asset_folder_id=asset["asset_folder_id"],
            deleted_at=asset["deleted_at"],
            short_filename=asset["short_filename"],
            content_type=asset["content_type"],
            content_length=asset["content_length"],
        )
        if full:
            row["permanently_deleted"] = False
        row.update(
            alt=asset["alt"], copyright=asset["copyright"], title=asset["title"],
            focus=asset["focus"], ext_id=asset["ext_id"], expire_at=asset["expire_at"],
            source=asset["source"],
            # choice: ids as strings, as the docs and the spec type them (string[])
            internal_tag_ids=[str(t) for t in asset["internal_tag_ids"]],
            locked=asset["locked"], is_private=asset["is_private"],
            publish_at=asset["publish_at"], meta_data=dict(asset["meta_data"]),
            internal_tags_list=[{"id": t["id"], "name": t["name"]} for t in tags],
        )
        return row

    @staticmethod
    def _file_url(request: Request, key: str) -> str:
        return f"{str(request.base_url).rstrip('/')}/{url_path(key)}"

    def _list_assets(self, request: Request) -> Response:
        """``GET assets``: paged, newest first by default; totals in ``total``/``per-page``.

        choice: a malformed ``page``/``per_page``/``in_folder`` or an unknown ``sort_by``
        is a 400 ``{"error": ...}`` (the spec lists 400 for the list); ``per_page`` above
        ``max_per_page`` is clamped; ``in_folder=0`` lists assets at the root.
        """
        query = request.query_params
        try:
            page = _int_value(query.get("page"), "page") or 1
            per_page = _int_value(query.get("per_page"), "per_page") or 25
            in_folder = _int_value(query.get("in_folder"), "in_folder")
        except _Invalid as exc:
            return _error(str(exc), 400)
        if page < 1 or per_page < 1:
            return _error("page and per_page must be at least 1", 400)
        per_page = min(per_page, self.max_per_page)
        sort_by = query.get("sort_by") or "created_at:desc"
        if sort_by not in SORTS:
            return _error(f"sort_by must be one of {', '.join(sorted(SORTS))}", 400)

        deleted = in_folder == -1
        rows = [a for a in self.assets.values() if (a["deleted_at"] is not None) == deleted]
        if in_folder is not None and in_folder != -1:
            wanted = None if in_folder == 0 else in_folder
            rows = [a for a in rows if a["asset_folder_id"] == wanted]
        if search := query.get("search"):
            rows = [a for a in rows if search.lower() in a["short_filename"].lower()]
        for param, field in (("by_alt", "alt"), ("by_title", "title"),
                             ("by_copyright", "copyright")):
            if needle := query.get(param):
                rows = [a for a in rows if needle.lower() in (a[field] or "").lower()]
        if _flag(query.get("is_private")):
            rows = [a for a in rows if a["is_private"]]
        tag_param = query.get("with_tags") or query.get("with_tag")
        if tag_param:
            names = {n.strip() for n in tag_param.split(",") if n.strip()}
            rows = [a for a in rows if names & self._tag_names(a)]
        field, _, order = sort_by.partition(":")
        rows.sort(key=lambda a: (a[field], a["id"]), reverse=order == "desc")
        start = (page - 1) * per_page
        body = {"assets": [self._asset_json(a, request, full=False)
                           for a in rows[start:start + per_page]]}
        return _json(body, headers={"total": str(len(rows)), "per-page": str(per_page)})

    def _tag_names(self, asset: Mapping[str, Any]) -> set[str]:
        return {self.internal_tags[t]["name"] for t in asset["internal_tag_ids"]
                if t in self.internal_tags}

    # ------------------------------------------------------------------ assets: upload

    async def _sign(self, request: Request) -> Response:
        """Step 1: a signed response object for a new file, or to replace asset ``id``."""
        params: dict[str, Any] = dict(request.query_params)  # the mapi-client sends a query
        params.update(await self._body(request))  # the docs send a JSON body
        filename = params.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            return _unprocessable({"filename": ["can't be blank"]})
        try:
            replace_id = _int_value(params.get("id"), "id")
            folder_id = _int_value(params.get("asset_folder_id"), "asset_folder_id")
        except _Invalid as exc:
            return _error(str(exc), 400)
        if replace_id is not None and replace_id not in self.assets:
            return _json(RECORD_NOT_FOUND, 404)
        if folder_id == 0:
            folder_id = None
        if folder_id is not None and folder_id not in self.folders:
            return _unprocessable({"asset_folder_id": ["does not exist"]})  # choice
        size = str(params.get("size") or "0x0")
        matched = _SIZE.match(size)
        if matched is None:
            return _unprocessable({"size": ["is invalid"]})  # choice: "<width>x<height>" only
        dims = f"{matched[1]}x{matched[2]}"
        meta: dict[str, Any] = {}
        for field in (*_TEXT_FIELDS, "ext_id"):
            value = params.get(field)
            if value is not None and not isinstance(value, str):
                return _unprocessable({field: ["is invalid"]})
            if field in params:
                meta[field] = value
        if "is_private" in params:
            meta["is_private"] = _flag(params["is_private"])
        if "asset_folder_id" in params:
            meta["asset_folder_id"] = folder_id
        is_private = bool(meta.get("is_private", self.assets[replace_id]["is_private"]
                                   if replace_id is not None else False))

        name = parameterize(filename)
        key = f"f/{self.space_id}/{dims}/{secrets.token_hex(5)}/{name}"
        asset_id = replace_id if replace_id is not None else next(self._ids)
        signed_at = _now().replace(microsecond=0)
        expiration = signed_at + timedelta(seconds=self.signature_ttl)
        fields = {
            "key": key,
            "acl": "private" if is_private else "public-read",
            "Expires": format_datetime(signed_at + timedelta(days=365), usegmt=True),
            "Cache-Control": _CACHE_CONTROL,
            "Content-Type": _content_type(name),
            "x-amz-credential": f"{_ACCESS_KEY_ID}/{signed_at:%Y%m%d}/s3/aws4_request",
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-date": _amz_date(signed_at),
        }
        policy_doc = {
            "expiration": _stamp(expiration),
            "conditions": [
                {"bucket": BUCKET},
                *({name: value} for name, value in fields.items()),
                ["content-length-range", 1, MAX_UPLOAD_BYTES],
            ],
        }
        policy = base64.b64encode(json.dumps(policy_doc).encode()).decode()
        fields["policy"] = policy
        fields["x-amz-signature"] = self._sign_text(policy)
        # a new signature for the same asset replaces the earlier, unfinished one
        old = self.pending_uploads.get(asset_id)
        if old is not None and old["key"] != key:
            self._store.delete(old["key"])
        self.pending_uploads[asset_id] = {
            "id": asset_id, "key": key, "short_filename": name,
            "content_type": fields["Content-Type"], "replace": replace_id is not None,
            "signed_at": _stamp(signed_at), "validate_upload": _flag(params.get("validate_upload")),
            "meta": meta,
        }
        base = str(request.base_url).rstrip("/")
        post_url = f"{base}/s3/{BUCKET}"
        return _json({
            "pretty_url": f"//{request.base_url.netloc}/{url_path(key)}",
            "public_url": f"{post_url}/{url_path(key)}",
            "fields": fields,
            "post_url": post_url,
            "id": asset_id,
            "locked": False,
            "meta_data": {},
        })

    def _sign_text(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    async def _s3_post(self, request: Request, bucket: str) -> Response:
        """Step 2: an S3 browser-based POST upload (form fields, then ``file`` last)."""
        if bucket != BUCKET:
            return _s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            return _s3_error(412, "PreconditionFailed",
                             "Bucket POST must be of the enclosure-type multipart/form-data")
        try:
            async with request.form(max_files=2, max_fields=100) as form:
                return await self._s3_accept(request, bucket, form)
        except (HTTPException, MultiPartException, MultipartParseError):
            return _s3_error(400, "MalformedPOSTRequest",
                             "The body of your POST request is not well-formed "
                             "multipart/form-data.")

    async def _s3_accept(self, request: Request, bucket: str, form: FormData) -> Response:
        items = form.multi_items()
        names = [name for name, _ in items]
        if names.count("file") != 1:
            return _s3_error(400, "InvalidArgument",
                             "POST requires exactly one file upload per request.")
        upload = items[-1][1]
        if names[-1] != "file" or not isinstance(upload, UploadFile):
            # choice: S3 ignores fields after the file; we refuse them so a client that
            # sends the file first (and its signed fields unseen) fails loudly
            return _s3_error(400, "InvalidArgument",
                             "Bucket POST must contain a field named 'file' as the last "
                             "form field.")
        fields: dict[str, str] = {}
        for name, value in items[:-1]:
            if not isinstance(value, str):
                return _s3_error(400, "InvalidArgument",
                                 "POST requires exactly one file upload per request.")
            fields[name] = value
        key, policy, signature = (fields.get("key"), fields.get("policy"),
                                  fields.get("x-amz-signature"))
        if not key:
            return _s3_error(400, "InvalidArgument",
                             "Bucket POST must contain a field named 'key'.  If it is "
                             "specified, please check the order of the fields.")
        if not policy or not signature:
            return _s3_error(403, "AccessDenied", "Access Denied")
        if not hmac.compare_digest(signature, self._sign_text(policy)):
            return _s3_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the "
                             "signature you provided. Check your key and signing method.")
        document = json.loads(base64.b64decode(policy))
        expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%S.%f%z")
        if _now() >= expiration:
            return _s3_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        low, high, allowed = 0, MAX_UPLOAD_BYTES, {"policy", "x-amz-signature", "file"}
        for condition in document["conditions"]:
            if isinstance(condition, list):
                _, low, high = condition
                continue
            ((name, expected),) = condition.items()
            allowed.add(name)
            actual = bucket if name == "bucket" else fields.get(name)
            if actual != expected:
                return _s3_error(
                    403, "AccessDenied",
                    f'Invalid according to Policy: Policy Condition failed: ["eq", "${name}", '
                    f'"{expected}"]',
                )
        extra = sorted(n for n in fields if n not in allowed
                       and not n.lower().startswith("x-ignore-"))
        if extra:
            return _s3_error(403, "AccessDenied",
                             f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
        incoming = self._store.root / f"incoming-{uuid.uuid4().hex}"
        try:
            size = 0
            async with await anyio.open_file(incoming, "wb") as out:
                while chunk := await upload.read(1024 * 1024):
                    size += len(chunk)
                    await out.write(chunk)
            if size < low:
                return _s3_error(400, "EntityTooSmall",
                                 "Your proposed upload is smaller than the minimum allowed size")
            if size > high:
                return _s3_error(400, "EntityTooLarge",
                                 "Your proposed upload exceeds the maximum allowed size")
            stored = await anyio.to_thread.run_sync(self._store.put_file, key, incoming)
        finally:
            await anyio.Path(incoming).unlink(missing_ok=True)
        location = f"{str(request.base_url).rstrip('/')}/s3/{bucket}/{url_path(key)}"
        # S3's default answer without success_action_status (unverified for Storyblok)
        return Response(status_code=204, headers={"ETag": f'"{stored.md5}"',
                                                  "Location": location})

    def _finish(self, request: Request, asset_id: int) -> Response:
        """Step 3: make a signed and uploaded file a visible asset (or the new file of one).

        choice: finishing an already finished asset again answers 200 with the same body, so
        a client that lost the first answer can retry.
        """
        pending = self.pending_uploads.get(asset_id)
        if pending is None:
            existing = self.assets.get(asset_id)
            if existing is None:
                return _json(RECORD_NOT_FOUND, 404)
            return _json(self._finished_json(existing, request))
        stored = self._store.get(pending["key"])
        if stored is None:
            return _error("The file was not uploaded", 422)  # unverified text and status
        now = _stamp(_now())
        asset = self.assets.get(asset_id)
        if asset is None:
            asset = self._new_asset(asset_id, pending["key"], pending["short_filename"],
                                    pending["content_type"], stored.size, pending["signed_at"])
        else:
            if asset["key"] != pending["key"]:
                self._by_key.pop(asset["key"], None)
                self._store.delete(asset["key"])
            asset.update(key=pending["key"], short_filename=pending["short_filename"],
                         content_type=pending["content_type"], content_length=stored.size)
        asset.update(pending["meta"])
        asset["updated_at"] = now
        del self.pending_uploads[asset_id]
        self.assets[asset_id] = asset
        self._by_key[asset["key"]] = asset_id
        return _json(self._finished_json(asset, request))

    def _finished_json(self, asset: Mapping[str, Any], request: Request) -> dict[str, Any]:
        return {
            "id": asset["id"], "filename": self._file_url(request, asset["key"]),
            "alt": asset["alt"], "copyright": asset["copyright"], "title": asset["title"],
            "focus": asset["focus"], "is_private": asset["is_private"],
        }

    # ------------------------------------------------------------------ assets: write

    def _update_asset(self, asset_id: int, body: dict[str, Any]) -> Response:
        """``PATCH`` (what the official mapi-client and CLI send) or ``PUT`` (the OpenAPI
        spec) ``assets/{id}``: body ``{"asset": {...}}`` or the fields un-wrapped; 204.

        Only the fields given change, with either method.

        Unknown fields are ignored (Rails strong parameters). choice: a bad value of a known
        field is a 422 ``{field: [message]}`` and changes nothing.
        """
        asset = self.assets.get(asset_id)
        if asset is None:
            return _json(RECORD_NOT_FOUND, 404)
        fields = body["asset"] if isinstance(body.get("asset"), dict) else body
        changes: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for field in (*_TEXT_FIELDS, "expire_at", "publish_at"):
            if field not in fields:
                continue
            value = fields[field]
            if value is not None and not isinstance(value, str):
                errors[field] = ["is invalid"]
            elif field.endswith("_at") and value:
                try:
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    errors[field] = ["is not a valid date"]
            changes[field] = value or None if field.endswith("_at") else value
        for field in ("is_private", "locked"):
            if field in fields:
                if isinstance(fields[field], bool):
                    changes[field] = fields[field]
                else:
                    errors[field] = ["is not a boolean"]
        if "asset_folder_id" in fields:
            try:
                folder_id = _int_value(fields["asset_folder_id"], "asset_folder_id")
            except _Invalid:
                folder_id = -1
            folder_id = None if folder_id == 0 else folder_id
            if folder_id is not None and folder_id not in self.folders:
                errors["asset_folder_id"] = ["does not exist"]
            changes["asset_folder_id"] = folder_id
        if "internal_tag_ids" in fields:
            tag_ids = self._tag_ids(fields["internal_tag_ids"])
            if tag_ids is None:
                errors["internal_tag_ids"] = ["contains unknown internal tags"]
            changes["internal_tag_ids"] = tag_ids
        meta = fields.get("meta_data")
        if "meta_data" in fields:
            if meta is None or meta == []:
                meta = {}
            if not isinstance(meta, dict):
                errors["meta_data"] = ["is invalid"]
        if errors:
            return _unprocessable(errors)
        if isinstance(meta, dict):
            # meta_data carries the default fields too; explicit fields below win
            asset["meta_data"] = dict(meta)
            for field in _DEFAULT_META:
                if field in meta:
                    asset[field] = meta[field]
        asset.update(changes)
        for field in _DEFAULT_META:
            if field in asset["meta_data"]:
                asset["meta_data"][field] = asset[field]
        asset["updated_at"] = _stamp(_now())
        return Response(status_code=204)

    def _tag_ids(self, value: Any) -> list[int] | None:
        """Internal asset tag ids from ints or digit strings; None if any is unknown."""
        if not isinstance(value, list):
            return None
        ids: list[int] = []
        for item in value:
            try:
                tag_id = _int_value(item, "internal_tag_ids")
            except _Invalid:
                return None
            tag = self.internal_tags.get(tag_id) if tag_id is not None else None
            if tag is None or tag["object_type"] != "asset":
                return None
            ids.append(tag["id"])
        return ids

    def _delete_asset(self, asset_id: int, request: Request) -> Response:
        """Soft delete: ``deleted_at`` is set and the asset is listed only with in_folder=-1."""
        asset = self.assets.get(asset_id)
        if asset is None:
            return _json(RECORD_NOT_FOUND, 404)
        if asset["deleted_at"] is None:
            asset["deleted_at"] = asset["updated_at"] = _stamp(_now())
        return _json({"asset": self._asset_json(asset, request, full=True)})

    def _bulk_ids(self, body: Mapping[str, Any]) -> list[int] | Response:
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            return _unprocessable({"ids": ["can't be blank"]})
        try:
            parsed = [_int_value(item, "ids") for item in ids]
        except _Invalid:
            return _unprocessable({"ids": ["is invalid"]})
        # choice: ids that are not assets of this space are skipped
        return [i for i in parsed if i is not None and i in self.assets]

    def _bulk_destroy(self, body: Mapping[str, Any]) -> Response:
        ids = self._bulk_ids(body)
        if isinstance(ids, Response):
            return ids
        now = _stamp(_now())
        for asset_id in ids:
            if self.assets[asset_id]["deleted_at"] is None:
                self.assets[asset_id]["deleted_at"] = now
        joined = ", ".join(str(i) for i in ids)
        return _json({"message": f"Asset(s) {joined} deleted successfully"})

    def _bulk_restore(self, body: Mapping[str, Any]) -> Response:
        ids = self._bulk_ids(body)
        if isinstance(ids, Response):
            return ids
        for asset_id in ids:
            self.assets[asset_id]["deleted_at"] = None
        return _json({"message": "Assets restored successfully"})  # the spec's example

    def _bulk_update(self, body: Mapping[str, Any]) -> Response:
        ids = self._bulk_ids(body)
        if isinstance(ids, Response):
            return ids
        try:
            folder_id = _int_value(body.get("asset_folder_id"), "asset_folder_id")
        except _Invalid:
            return _unprocessable({"asset_folder_id": ["is invalid"]})
        folder_id = None if folder_id == 0 else folder_id
        if folder_id is not None and folder_id not in self.folders:
            return _unprocessable({"asset_folder_id": ["does not exist"]})
        for asset_id in ids:
            self.assets[asset_id]["asset_folder_id"] = folder_id
        return _json({"message": "Assets moved successfully"})  # the spec's example

    # ------------------------------------------------------------------ asset folders

    def _folder_json(self, folder: Mapping[str, Any]) -> dict[str, Any]:
        parent = self.folders.get(folder["parent_id"]) if folder["parent_id"] else None
        return {
            "id": folder["id"], "name": folder["name"], "parent_id": folder["parent_id"],
            "uuid": folder["uuid"], "parent_uuid": parent["uuid"] if parent else None,
        }

    def _list_folders(self, query: QueryParams) -> Response:
        """All folders (no paging is documented), filtered by the documented parameters."""
        rows = list(self.folders.values())
        if (with_parent := query.get("with_parent")) not in (None, ""):
            try:
                parent_id = _int_value(with_parent, "with_parent")
            except _Invalid as exc:
                return _error(str(exc), 400)
            wanted = None if parent_id == 0 else parent_id
            rows = [f for f in rows if f["parent_id"] == wanted]
        if by_ids := query.get("by_ids"):
            ids = {part.strip() for part in by_ids.split(",")}
            rows = [f for f in rows if str(f["id"]) in ids]
        if by_uuids := query.get("by_uuids"):
            uuids = {part.strip() for part in by_uuids.split(",")}
            rows = [f for f in rows if f["uuid"] in uuids]
        if search := query.get("search"):
            rows = [f for f in rows if search.lower() in f["name"].lower()]
        return _json({"asset_folders": [self._folder_json(f) for f in rows]})

    def _parent_or_errors(
        self, fields: Mapping[str, Any]
    ) -> tuple[int | None, dict[str, list[str]]]:
        try:
            parent_id = _int_value(fields.get("parent_id"), "parent_id")
        except _Invalid:
            return None, {"parent_id": ["is invalid"]}
        parent_id = None if parent_id == 0 else parent_id
        if parent_id is not None and parent_id not in self.folders:
            return None, {"parent_id": ["does not exist"]}  # choice: 422, not 404
        return parent_id, {}

    def _create_folder(self, body: Mapping[str, Any]) -> Response:
        fields = body["asset_folder"] if isinstance(body.get("asset_folder"), dict) else body
        name = fields.get("name")
        if not isinstance(name, str) or not name.strip():
            return _unprocessable({"name": ["can't be blank"]})
        parent_id, errors = self._parent_or_errors(fields)
        if errors:
            return _unprocessable(errors)
        folder_id = self.add_folder(name, parent_id)
        return _json({"asset_folder": self._folder_json(self.folders[folder_id])}, 201)

    def _update_folder(self, folder: dict[str, Any], body: Mapping[str, Any]) -> Response:
        fields = body["asset_folder"] if isinstance(body.get("asset_folder"), dict) else body
        if "name" in fields and (not isinstance(fields["name"], str)
                                 or not fields["name"].strip()):
            return _unprocessable({"name": ["can't be blank"]})
        parent_id = folder["parent_id"]
        if "parent_id" in fields:
            parent_id, errors = self._parent_or_errors(fields)
            if errors:
                return _unprocessable(errors)
            if parent_id is not None and (parent_id == folder["id"]
                                          or folder["id"] in self._ancestors(parent_id)):
                return _unprocessable({"parent_id": ["can't be the folder or its descendant"]})
        if "name" in fields:
            folder["name"] = fields["name"]
        folder["parent_id"] = parent_id
        return Response(status_code=204)

    def _ancestors(self, folder_id: int) -> list[int]:
        chain: list[int] = []
        parent = self.folders[folder_id]["parent_id"]
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = self.folders[parent]["parent_id"]
        return chain

    def _delete_folder(self, folder: Mapping[str, Any], recursive: bool) -> Response:
        """Assets of removed folders go to the root; children move up unless ``recursive``."""
        doomed = {folder["id"]}
        if recursive:
            doomed |= {f for f in self.folders if folder["id"] in self._ancestors(f)}
        else:
            for child in self.folders.values():
                if child["parent_id"] == folder["id"]:
                    child["parent_id"] = folder["parent_id"]
        for asset in self.assets.values():
            if asset["asset_folder_id"] in doomed:
                asset["asset_folder_id"] = None
        for pending in self.pending_uploads.values():
            if pending["meta"].get("asset_folder_id") in doomed:
                pending["meta"]["asset_folder_id"] = None
        for folder_id in doomed:
            del self.folders[folder_id]
        return Response(status_code=204)

    def _shared_folders(self, rest: list[str]) -> Response:
        """``GET shared_asset_folders[/{id}]``: the organisation's asset libraries this space
        may read. The emulated space belongs to no organisation, so there are none
        (mapi-client ``ListSpaceSharedAssetFoldersResponses``: ``{"shared_asset_folders": []}``).
        """
        if not rest:
            return _json({"shared_asset_folders": []})
        if len(rest) == 1:
            return _json(RECORD_NOT_FOUND, 404)
        return _not_found_route()

    # ------------------------------------------------------------------ the token's user

    def _user_json(self) -> dict[str, Any]:
        """``GET /v1/users/me`` body's ``user``: the required fields of mapi-client's ``User``
        (generated from Storyblok's OpenAPI), with an emulator identity."""
        return {
            "userid": "emulator@assetferry.invalid", "email": "emulator@assetferry.invalid",
            "organization": None, "username": None, "use_username": False,
            "alt_email": None, "firstname": "Storyblok", "lastname": "Emulator", "phone": None,
            "id": self.user_id, "login_strategy": "password", "created_at": self._user_created,
            "org_role": None, "has_org": False, "has_partner": False, "partner_status": None,
            "org": {}, "timezone": "UTC", "avatar": None, "friendly_name": "Storyblok Emulator",
            "notified": [], "lang": "en", "partner_role": None,
            "favourite_spaces": [self.space_id], "favourite_ideas": [], "role": "normal",
            "beta_user": False, "track_statistics": False, "ui_theme": {}, "is_editor": False,
            "sso": False, "job_role": None, "job_title": None, "totp_factor_verified": False,
            "configured_2fa_options": [], "disclaimer_ids": [], "company_name": None,
            "live_chat_enabled": False, "confirmed": True,
        }

    # ------------------------------------------------------------------ internal tags

    def _list_tags(self, request: Request) -> Response:
        wanted = request.query_params.get("by_object_type")
        tags = [t for t in self.internal_tags.values() if not wanted or t["object_type"] == wanted]
        return _json({"internal_tags": [dict(t) for t in tags]})

    def _create_tag(self, body: Mapping[str, Any]) -> Response:
        """``POST internal_tags``; choice: only ``object_type: "asset"`` is supported here."""
        fields = body["internal_tag"] if isinstance(body.get("internal_tag"), dict) else body
        name = fields.get("name")
        if not isinstance(name, str) or not name.strip():
            return _unprocessable({"name": ["can't be blank"]})
        if fields.get("object_type", "asset") != "asset":
            return _unprocessable({"object_type": ["is not included in the list"]})
        if any(t["name"] == name for t in self.internal_tags.values()):
            return _unprocessable({"name": ["has already been taken"]})
        tag_id = self._tag_id(name)
        return _json({"internal_tag": dict(self.internal_tags[tag_id])}, 201)

    # ------------------------------------------------------------------ files

    def _serve_file(self, request: Request, key: str) -> Response:
        """A file by storage key; private files only with a valid signed query."""
        asset_id = self._by_key.get(key)
        stored = self._store.get(key)
        if asset_id is None or stored is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        asset = self.assets[asset_id]
        if asset["is_private"] and not self._valid_signed_query(key, request.query_params):
            return _s3_error(403, "AccessDenied", "Access Denied")
        return FileResponse(stored.path, media_type=asset["content_type"])

    def _cdn_signed_url(self, request: Request) -> Response:
        """``GET /v2/cdn/assets/me``: a time-limited URL of a (private) asset's file."""
        query = request.query_params
        if not hmac.compare_digest(query.get("token", ""), self._asset_token):
            return _error("Unauthorized", 401)  # unverified text
        key = unquote(urlsplit(query.get("filename", "")).path).lstrip("/")
        asset_id = self._by_key.get(key)
        if asset_id is None:
            return _error("Not Found", 404)  # unverified text
        asset = self.assets[asset_id]
        date = _amz_date(_now())
        expires = str(max(1, int(self.signature_ttl)))
        signed_query = urlencode({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": date,
            "X-Amz-Expires": expires, "X-Amz-Signature": self._url_signature(key, date, expires),
        })
        url = self._file_url(request, key)
        return _json({"asset": {
            "filename": url, "content_type": asset["content_type"],
            "created_at": asset["created_at"], "updated_at": asset["updated_at"],
            "expire_at": asset["expire_at"], "signed_url": f"{url}?{signed_query}",
        }})

    def _url_signature(self, key: str, date: str, expires: str) -> str:
        return self._sign_text(f"{key}\n{date}\n{expires}")

    def _valid_signed_query(self, key: str, query: QueryParams) -> bool:
        date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        signature = query.get("X-Amz-Signature", "")
        if not hmac.compare_digest(signature, self._url_signature(key, date, expires)):
            return False
        signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return _now() < signed_at + timedelta(seconds=int(expires))


class _BadBody(Exception):
    """The request body is not a JSON object."""
