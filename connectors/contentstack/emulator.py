"""Contentstack Content Management API v3 emulator: stack assets and asset folders.

Written from Contentstack's documentation (``CMA | Assets`` page, the official Postman
collection, the asset-limits page) and recorded traffic, never from our connector, so the two
check each other. Facts and their sources: ``reference/cms-api-facts.md`` §1.

What it serves (all API routes under ``/v3``, header ``api_key`` plus ``authorization`` or
``authtoken``):

* ``GET /v3/assets`` (``skip``/``limit``/``include_count``/``count``/``folder``/
  ``include_folders``/``query``/``asc``/``desc``/``environment``/``relative_urls``/
  ``include_dimension``/``include_branch``), ``GET /v3/assets/{images,videos}``,
  ``GET /v3/assets/rt`` (a bare JSON array).
* ``GET|PUT|DELETE /v3/assets/{uid}``, ``POST /v3/assets`` (multipart ``asset[upload]``,
  ``asset[parent_uid]``, ``asset[title]``, ``asset[description]``, ``asset[tags]``).
* ``POST /v3/assets/folders``, ``GET|PUT|DELETE /v3/assets/folders/{uid}`` (300 folders,
  depth 5, no cycles; deleting a folder deletes everything in it).
* ``GET /v3/assets/{uid}/versions``, ``POST|DELETE /v3/assets/{uid}/versions/{n}/name``,
  ``GET /v3/assets/{uid}/references`` (the entries seeded with
  :meth:`ContentstackEmulator.add_reference`; the emulator stores no entries themselves),
  ``POST /v3/assets/{uid}/publish|unpublish``, ``GET /v3/assets/{api_key}/{uid}/{slug}``
  (download through a permanent URL).
* File bytes at ``GET /files/v3/assets/{api_key}/{uid}/{upload_uid}/{filename}``: no auth, not
  rate limited; a request carrying credential headers is recorded in ``credential_leaks``.

The Content Delivery API (``CDA | Assets``, seed 000) is a second app on the same data,
:attr:`ContentstackEmulator.delivery_app` (the real CDA lives on other hosts, ``cdn.…``):
``GET /v3/assets`` and ``GET /v3/assets/{uid}`` with headers ``api_key`` + ``access_token`` (a
delivery token, scoped to one environment) and ``branch``; ``environment`` (mandatory),
``locale`` (default: the master locale), ``include_fallback``, ``include_dimension``,
``include_count``, ``skip``/``limit``, ``asc``/``desc``, ``query``, ``include_branch``. Only
assets published (through the management API's ``publish``, or :meth:`publish`) to that
environment and locale are served, in the version that was published, with
``publish_details`` as one object ``{environment, locale, time, user}`` (the environment's
uid) and no ``parent_uid`` (neither the documented sample nor recorded traffic carries one).
Unverified choices: a wrong ``api_key`` or delivery token → 412 (error codes 109 / 104), an
environment the token is not scoped to, or none → 422 naming ``environment``.

Choices where the documentation is silent (all **unverified** against a live stack):

* Error codes: 105 (401), 109 (412, seen in a third party's live probe) and 145 (404 asset, in
  recorded CDA traffic; reused for a missing folder) are the vendor's; everywhere else
  ``error_code`` repeats the HTTP status (429 included).
* Unknown branch → 422. All branches share one set of assets; urls carry no branch id.
* ``limit`` above ``max_limit`` is clamped to it (default and maximum 100); a negative or
  non-numeric ``skip``/``limit`` → 422.
* Default order: ``created_at`` ascending, ties by creation order.
* Upload answers 201; too large a file → 413; a missing ``asset[upload]`` → 422.
* ``description`` is always present (``""`` when unset, as in recorded CDA bodies), although
  some CMA list samples leave it out. Title defaults to the uploaded file's original name;
  the stored ``filename`` has the restricted characters replaced by ``_``. A replace keeps
  the title unless one is given.
* Every PUT adds one to ``_version``; ``"version": N`` in a PUT restores version N's file
  and metadata first. Publishing is immediate (``scheduled_at`` is ignored).
* ``/v3/assets/rt`` lists every image asset (the emulator can't tell RTE uploads apart).
* Records in :attr:`ContentstackEmulator.assets` carry the url built from the base URL of the
  last API request before their last write; responses always build it from the request.
"""

from __future__ import annotations

import copy
import hashlib
import json
import mimetypes
import re
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import structlog
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
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
    request_path,
    url_path,
)
from connectors.media import image_size

log = structlog.get_logger(__name__)

FOLDER_CONTENT_TYPE = "application/vnd.contenstack.folder"
"""Sic: the vendor's own spelling."""

_RESTRICTED = re.compile(r"""[#%^+\\/?*:|"'<>\s{}=,]""")
_FORM_OVERHEAD = 64 * 1024
"""Room for the multipart envelope and text fields when pre-checking Content-Length."""
_TRUE = {"true", "1"}

Handler = Callable[[Request], Awaitable[Response]]


class _ApiError(Exception):
    """Raised inside a handler; becomes the vendor's error body."""

    def __init__(
        self, status: int, message: str, code: int | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = status if code is None else code
        self.errors = errors or {}

    def response(self) -> JSONResponse:
        return _error_response(self.status, self.message, self.code, self.errors)


def _error_response(
    status: int, message: str, code: int, errors: dict[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error_message": message, "error_code": code, "errors": errors or {}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _fault_body(status: int) -> bytes:
    body = {
        "error_message": "Something went wrong. Please try again later.",
        "error_code": status,
        "errors": {},
    }
    return json.dumps(body).encode()


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _new_uid() -> str:
    return "blt" + secrets.token_hex(8)


def _new_upload_uid() -> str:
    return secrets.token_hex(12)


def sanitize_filename(name: str) -> str:
    """The stored filename: restricted characters ``# % ^ + \\ / ? * : | " ' < > whitespace
    { } = ,`` become ``_`` (documented asset limitation)."""
    cleaned = _RESTRICTED.sub("_", name)
    return cleaned or "file"


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in _TRUE


def _dimension(path: Path, content_type: str) -> dict[str, int] | None:
    size = image_size(path) if content_type.startswith("image/") else None
    return {"height": size[1], "width": size[0]} if size else None


def _guess_type(filename: str, declared: str | None) -> str:
    if declared and declared != "application/octet-stream":
        return declared.split(";")[0].strip()
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or declared or "application/octet-stream"


@dataclass(slots=True)
class _Upload:
    upload_uid: str
    blob_key: str
    dimension: dict[str, int] | None


@dataclass(slots=True)
class _Version:
    number: int
    record: dict[str, Any]
    upload: _Upload
    name: dict[str, str] | None = None


@dataclass(slots=True)
class _AssetState:
    upload: _Upload
    seq: int
    versions: list[_Version] = field(default_factory=list)
    slug: str | None = None


class ContentstackEmulator(FaultSwitch):
    """An in-memory Contentstack stack holding assets and asset folders.

    ``app`` is the whole ASGI app (faults around the routes). ``assets`` and ``folders`` hold
    the wire records by uid; tests may read them, and seed data with :meth:`add_folder` and
    :meth:`add_asset`, which enforce no limits.
    """

    def __init__(
        self,
        *,
        api_key: str = "blt0123456789abcdef",
        management_token: str | None = "cs-emulator-token",  # noqa: S107  (a test fixture)
        authtoken: str | None = None,
        rate_limit: float | None = 10.0,
        faults: Faults | None = None,
        max_folders: int = 300,
        max_depth: int = 5,
        max_file_size: int = 100 * 1024 * 1024,
        max_limit: int = 100,
        blob_root: Path | None = None,
        branches: Sequence[str] = ("main",),
        delivery_tokens: Mapping[str, str] | None = None,
        master_locale: str = "en-us",
        fallback_locales: Mapping[str, str] | None = None,
        environments: Sequence[str] = ("development",),
    ) -> None:
        self.api_key = api_key
        self._management_token = management_token
        self._authtoken = authtoken
        self.rate_limit = rate_limit
        self.max_folders = max_folders
        self.max_depth = max_depth
        self.max_file_size = max_file_size
        self.max_limit = max_limit
        self.branches = frozenset(("main", *branches))
        self.user_uid = _new_uid()
        self._created = _now()
        self.assets: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.credential_leaks: list[str] = []
        self.requests = 0
        self.limiter = RateLimiter(rate_limit)
        self._state: dict[str, _AssetState] = {}
        self._folder_seq: dict[str, int] = {}
        self._seq = 0
        self._base = "http://localhost"
        self._blobs = BlobStore(blob_root)
        self.delivery_tokens: dict[str, str] = dict(
            delivery_tokens if delivery_tokens is not None
            else {"cs-delivery-token": "production"}
        )
        """Delivery token -> the environment (name) it may read."""
        self.master_locale = master_locale
        self.fallback_locales: dict[str, str] = dict(fallback_locales or {})
        """Locale -> its fallback locale (the master locale when not listed)."""
        self.environments: dict[str, str] = {}
        """Environment name -> uid (made on first use)."""
        self.publish_requests: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        """``(asset uid, environment uids, locales)`` of every accepted publish request."""
        self.references: dict[str, list[dict[str, Any]]] = {}
        """Asset uid -> the entries that reference it, as ``/references`` lists them."""
        for name in (*environments, *self.delivery_tokens.values()):
            self.environment_uid(name)
        api = self._route
        routes = [
            api("/v3/assets", GET=self._list_assets, POST=self._upload_asset),
            api("/v3/assets/rt", GET=self._rte_assets),
            api("/v3/assets/folders", POST=self._create_folder),
            api("/v3/assets/folders/{uid}", GET=self._get_folder, PUT=self._update_folder,
                DELETE=self._delete_folder),
            api("/v3/assets/{uid}/versions", GET=self._versions),
            api("/v3/assets/{uid}/versions/{number:int}/name", POST=self._name_version,
                DELETE=self._name_version),
            api("/v3/assets/{uid}/references", GET=self._references),
            api("/v3/assets/{uid}/publish", POST=self._publish),
            api("/v3/assets/{uid}/unpublish", POST=self._unpublish),
            api("/v3/assets/{key}/{uid}/{slug}", GET=self._permanent_download),
            api("/v3/assets/{uid}", GET=self._get_asset, PUT=self._update_asset,
                DELETE=self._delete_asset),
            api("/v3/environments", GET=self._list_environments),
            api("/v3/environments/{name}", GET=self._get_environment),
            api("/v3/locales", GET=self._list_locales),
            api("/v3/locales/{code}", GET=self._get_locale),
            api("/v3/stacks/branches", GET=self._list_branches),
            api("/v3/stacks/branches/{uid}", GET=self._get_branch),
            Route("/files/v3/assets/{key}/{uid}/{upload_uid}/{filename}", self._serve_file,
                  methods=["GET"]),
        ]
        routes_app = Starlette(
            routes=routes, exception_handlers={HTTPException: self._http_error}
        )
        self.fault_middleware = FaultMiddleware(
            routes_app, faults or Faults(), error_body=_fault_body,
            is_download=lambda path: path.startswith("/files/"),
        )
        self.app: ASGIApp = self.fault_middleware
        delivery_routes = [
            Route("/v3/assets", self._delivery(self._cda_list), methods=["GET"]),
            Route("/v3/assets/{uid}", self._delivery(self._cda_get), methods=["GET"]),
            Route("/files/v3/assets/{key}/{uid}/{upload_uid}/{filename}", self._serve_file,
                  methods=["GET"]),
        ]
        self.delivery_middleware = FaultMiddleware(
            Starlette(routes=delivery_routes,
                      exception_handlers={HTTPException: self._http_error}),
            self.fault_middleware.faults, error_body=_fault_body,
            is_download=lambda path: path.startswith("/files/"),
        )
        self.delivery_app: ASGIApp = self.delivery_middleware

    def fault_middlewares(self) -> list[FaultMiddleware]:
        """The management and the delivery app share one set of faults."""
        return [self.fault_middleware, self.delivery_middleware]

    # -- public helpers ------------------------------------------------------------------

    def add_folder(self, name: str, parent_uid: str | None = None) -> str:
        """Create a folder directly (no limits checked); return its uid."""
        return self._insert_folder(name, parent_uid)

    def add_asset(
        self,
        filename: str,
        data: bytes,
        *,
        parent_uid: str | None = None,
        title: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        content_type: str | None = None,
    ) -> str:
        """Create an asset directly (no limits checked); return its uid."""
        uid = _new_uid()
        upload_uid = _new_upload_uid()
        blob = self._blobs.put_bytes(f"{uid}/{upload_uid}", data)
        ctype = _guess_type(filename, content_type)
        upload = _Upload(upload_uid, blob.key, _dimension(blob.path, ctype))
        self._insert_asset(
            uid, upload, filename=filename, size=blob.size, content_type=ctype,
            parent_uid=parent_uid, title=title, description=description, tags=list(tags),
        )
        return uid

    def add_reference(self, asset_uid: str, entry_uid: str, *, content_type_uid: str = "page",
                      locale: str | None = None, title: str | None = None) -> None:
        """Record that entry ``entry_uid`` (in ``locale``, default the master locale)
        references asset ``asset_uid`` (seeding: the emulator stores no entries)."""
        self.assets[asset_uid]  # KeyError for an unknown asset
        self.references.setdefault(asset_uid, []).append({
            "entry_uid": entry_uid, "content_type_uid": content_type_uid,
            "locale": locale or self.master_locale, "_version": 1,
            "title": title or entry_uid, "content_type_title": content_type_uid.title(),
        })

    def publish(self, uid: str, environments: Sequence[str],
                locales: Sequence[str] | None = None) -> None:
        """Publish asset ``uid``'s current version directly (seeding; no request, nothing
        checked; an environment not yet known is made)."""
        record = self.assets[uid]
        pairs = {(self.environment_uid(e), lc) for e in environments
                 for lc in (locales or [self.master_locale])}
        now = _now()
        record["publish_details"] = [
            p for p in record["publish_details"] if (p["environment"], p["locale"]) not in pairs
        ] + [{"environment": e, "locale": lc, "time": now, "user": self.user_uid,
              "version": record["_version"]} for e, lc in sorted(pairs)]

    def environment_uid(self, name: str) -> str:
        if name not in self.environments:
            self.environments[name] = "blt" + hashlib.sha256(name.encode()).hexdigest()[:16]
        return self.environments[name]

    def blob(self, uid: str) -> bytes:
        """Current bytes of asset ``uid``; KeyError if there is none."""
        blob = self._blobs.get(self._state[uid].upload.blob_key)
        if blob is None:
            raise KeyError(uid)
        return blob.path.read_bytes()

    def close(self) -> None:
        """Remove the file store (when the emulator created it)."""
        self._blobs.close()

    # -- records -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _file_url(self, base: str, uid: str, upload_uid: str, filename: str) -> str:
        return f"{base}/files/v3/assets/{self.api_key}/{uid}/{upload_uid}/{url_path(filename)}"

    def _insert_folder(self, name: str, parent_uid: str | None) -> str:
        uid = _new_uid()
        now = _now()
        self.folders[uid] = {
            "uid": uid,
            "created_at": now,
            "updated_at": now,
            "created_by": self.user_uid,
            "updated_by": self.user_uid,
            "content_type": FOLDER_CONTENT_TYPE,
            "tags": [],
            "name": name,
            "ACL": {},
            "is_dir": True,
            "parent_uid": parent_uid,
            "_version": 1,
        }
        self._folder_seq[uid] = self._next_seq()
        return uid

    def _insert_asset(
        self, uid: str, upload: _Upload, *, filename: str, size: int, content_type: str,
        parent_uid: str | None, title: str | None, description: str | None, tags: list[str],
    ) -> dict[str, Any]:
        now = _now()
        stored = sanitize_filename(filename)
        record: dict[str, Any] = {
            "uid": uid,
            "created_at": now,
            "updated_at": now,
            "created_by": self.user_uid,
            "updated_by": self.user_uid,
            "content_type": content_type,
            "file_size": str(size),
            "tags": tags,
            "filename": stored,
            "url": self._file_url(self._base, uid, upload.upload_uid, stored),
            "ACL": {},
            "is_dir": False,
            "parent_uid": parent_uid,
            "_version": 1,
            "title": title or filename,
            "description": description or "",
            "publish_details": [],
        }
        self.assets[uid] = record
        state = _AssetState(upload=upload, seq=self._next_seq())
        state.versions.append(_Version(1, copy.deepcopy(record), upload))
        self._state[uid] = state
        return record

    def _render(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        out = dict(record)
        uid = record["uid"]
        if not record["is_dir"]:
            state = self._state[uid]
            base = "" if _flag(request, "relative_urls") else str(request.base_url).rstrip("/")
            out["url"] = self._file_url(base, uid, state.upload.upload_uid, record["filename"])
            if _flag(request, "include_dimension") and state.upload.dimension is not None:
                out["dimension"] = dict(state.upload.dimension)
        if _flag(request, "include_path"):
            out["path"] = self._path_of(record["parent_uid"])
        if _flag(request, "include_branch"):
            out["_branch"] = request.headers.get("branch", "main")
        return out

    def _path_of(self, folder_uid: str | None) -> list[dict[str, str]]:
        chain: list[dict[str, str]] = []
        while folder_uid is not None and folder_uid in self.folders:
            folder = self.folders[folder_uid]
            chain.append({"uid": folder_uid, "name": folder["name"]})
            folder_uid = folder["parent_uid"]
        chain.reverse()
        return chain

    def _depth(self, folder_uid: str | None) -> int:
        """Nesting level of a folder: a root folder is 1; the root itself is 0."""
        return len(self._path_of(folder_uid))

    def _subtree_height(self, folder_uid: str) -> int:
        children = [u for u, f in self.folders.items() if f["parent_uid"] == folder_uid]
        return 1 + max((self._subtree_height(c) for c in children), default=0)

    def _descendants(self, folder_uid: str) -> set[str]:
        found = {folder_uid}
        frontier = [folder_uid]
        while frontier:
            parent = frontier.pop()
            for uid, folder in self.folders.items():
                if folder["parent_uid"] == parent and uid not in found:
                    found.add(uid)
                    frontier.append(uid)
        return found

    # -- plumbing ------------------------------------------------------------------------

    def _route(self, path: str, **handlers: Handler) -> Route:
        """One API path; its methods share auth, rate limiting and the 405 ``Allow`` list."""

        async def dispatch(request: Request) -> Response:
            return await handlers[request.method if request.method != "HEAD" else "GET"](
                request
            )

        return Route(path, self._api(dispatch), methods=list(handlers))

    def _api(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests += 1
            denied = self._authenticate(request)
            if denied is not None:
                return denied
            headers: dict[str, str] = {}
            if self.rate_limit:
                if self.limiter.check(self.api_key) is not None:
                    log.debug("emulator.rate_limited", api="contentstack",
                              path=request_path(request.scope))
                    return _error_response(
                        429, "You have exceeded the rate limit. Please try again later.", 429,
                        headers={"X-RateLimit-Limit": str(int(self.rate_limit)),
                                 "X-RateLimit-Remaining": "0"},
                    )
                headers = {"X-RateLimit-Limit": str(int(self.rate_limit)),
                           "X-RateLimit-Remaining": str(self.limiter.remaining(self.api_key))}
            self._base = str(request.base_url).rstrip("/")
            try:
                response = await handler(request)
            except _ApiError as exc:
                response = exc.response()
            response.headers.update(headers)
            return response

        return endpoint

    def _authenticate(self, request: Request) -> Response | None:
        if request.headers.get("api_key") != self.api_key:
            return _error_response(
                412, "We can't find that Stack. Please try again.", 109,
                {"api_key": ["is not valid."]},
            )
        if not self._credentials_ok(request):
            return _error_response(
                401, "You're not allowed in here unless you're logged in.", 105,
                {"authtoken": ["is not valid."]},
            )
        branch = request.headers.get("branch", "main")
        if branch not in self.branches:
            return _error_response(
                422, f"The branch '{branch}' does not exist.", 422, {"branch": ["is not valid."]}
            )
        return None

    def _credentials_ok(self, request: Request) -> bool:
        authorization = request.headers.get("authorization")
        if authorization is not None and self._management_token is not None:
            token = authorization.removeprefix("Bearer ").strip()
            if secrets.compare_digest(token, self._management_token):
                return True
        authtoken = request.headers.get("authtoken")
        return (
            authtoken is not None and self._authtoken is not None
            and secrets.compare_digest(authtoken, self._authtoken)
        )

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101  (registered for HTTPException only)
        if exc.status_code == 405:
            message = "The requested method is not allowed for this URL."
        elif exc.status_code == 404:
            message = "The requested URL was not found."
        else:
            message = str(exc.detail)
        return _error_response(exc.status_code, message, exc.status_code, headers=exc.headers)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _ApiError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _ApiError(400, "The request body must be a JSON object.")
        return body

    async def _form(self, request: Request) -> FormData:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_file_size + _FORM_OVERHEAD:
            raise self._too_large()
        try:
            return await request.form(max_files=1, max_fields=100, max_part_size=1024 * 1024)
        except HTTPException as exc:
            raise _ApiError(400, f"Invalid multipart body: {exc.detail}") from None

    def _too_large(self) -> _ApiError:
        mb = self.max_file_size // (1024 * 1024)
        return _ApiError(
            413, f"The file exceeds the maximum upload size of {mb} MB.", None,
            {"file_size": [f"must be at most {mb} MB."]},
        )

    def _asset_or_404(self, uid: str) -> dict[str, Any]:
        record = self.assets.get(uid)
        if record is None:
            raise _ApiError(404, "Asset was not found.", 145, {"uid": ["is not valid."]})
        return record

    def _folder_or_404(self, uid: str) -> dict[str, Any]:
        record = self.folders.get(uid)
        if record is None:
            raise _ApiError(404, "Folder was not found.", 145, {"uid": ["is not valid."]})
        return record

    def _check_parent(self, parent_uid: Any) -> str | None:
        if parent_uid in (None, "", "cs_root"):
            return None
        if not isinstance(parent_uid, str) or parent_uid not in self.folders:
            raise _ApiError(
                422, "The parent folder does not exist.", None, {"parent_uid": ["is not valid."]}
            )
        return parent_uid

    # -- listing -------------------------------------------------------------------------

    def _paging(self, request: Request) -> tuple[int, int]:
        try:
            skip = int(request.query_params.get("skip", "0"))
            limit = int(request.query_params.get("limit", str(self.max_limit)))
        except ValueError:
            raise _ApiError(422, "skip and limit must be integers.") from None
        if skip < 0 or limit < 0:
            raise _ApiError(422, "skip and limit must not be negative.")
        return skip, min(limit, self.max_limit)

    def _query(self, request: Request) -> dict[str, Any]:
        raw = request.query_params.get("query")
        if not raw:
            return {}
        try:
            query = json.loads(raw)
        except ValueError:
            raise _ApiError(422, "The query is not valid JSON.", None,
                            {"query": ["is not valid."]}) from None
        if not isinstance(query, dict):
            raise _ApiError(422, "The query must be a JSON object.", None,
                            {"query": ["is not valid."]})
        return query

    def _select(self, request: Request, kind: str | None = None) -> list[dict[str, Any]]:
        query = self._query(request)
        with_folders = kind is None and (
            _flag(request, "include_folders") or query.get("is_dir") is True
        )
        candidates: list[tuple[dict[str, Any], int]] = [
            (r, self._state[u].seq) for u, r in self.assets.items()
        ]
        if kind is not None:
            candidates = [(r, s) for r, s in candidates if r["content_type"].startswith(kind)]
        if with_folders:
            candidates += [(r, self._folder_seq[u]) for u, r in self.folders.items()]
        folder = request.query_params.get("folder")
        if folder:
            parent = None if folder == "cs_root" else self._folder_or_404(folder)["uid"]
            candidates = [(r, s) for r, s in candidates if r["parent_uid"] == parent]
        environment = request.query_params.get("environment")
        if environment:  # the documented parameter is the name; a uid is taken too
            env_uid = self.environments.get(environment, environment)
            candidates = [
                (r, s) for r, s in candidates
                if any(p.get("environment") == env_uid for p in r.get("publish_details", []))
            ]
        candidates = [(r, s) for r, s in candidates if _matches(r, query)]
        asc, desc = request.query_params.get("asc"), request.query_params.get("desc")
        sort_field = asc or desc or "created_at"
        candidates.sort(key=lambda rs: (_sort_key(rs[0].get(sort_field)), rs[1]),
                        reverse=bool(desc and not asc))
        return [r for r, _ in candidates]

    async def _list(self, request: Request, kind: str | None = None) -> Response:
        records = self._select(request, kind)
        if _flag(request, "count"):
            return JSONResponse({"assets": len(records)})
        skip, limit = self._paging(request)
        page = records[skip: skip + limit]
        body: dict[str, Any] = {"assets": [self._render(r, request) for r in page]}
        if _flag(request, "include_count"):
            body["count"] = len(records)
        return JSONResponse(body)

    async def _list_assets(self, request: Request) -> Response:
        return await self._list(request)

    async def _rte_assets(self, request: Request) -> Response:
        out = []
        for record in self._select(request, "image/"):
            url = self._render(record, request)["url"]
            out.append({"image": url, "thumb": url, "title": record["filename"]})
        return JSONResponse(out)

    # -- single assets -------------------------------------------------------------------

    async def _get_asset(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if uid in ("images", "videos"):
            return await self._list(request, "image/" if uid == "images" else "video/")
        if uid in self.folders:
            return JSONResponse({"asset": self._render(self.folders[uid], request)})
        record = self._asset_or_404(uid)
        version = request.query_params.get("version")
        if version:
            record = self._version(uid, version).record
        return JSONResponse({"asset": self._render(record, request)})

    def _version(self, uid: str, number: Any) -> _Version:
        for version in self._state[uid].versions:
            if str(version.number) == str(number):
                return version
        raise _ApiError(422, "The version does not exist.", None, {"version": ["is not valid."]})

    async def _upload_asset(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise _missing_upload()
        form = await self._form(request)
        try:
            upload = _file_part(form)
            if upload is None:
                raise _missing_upload()
            if upload.size is not None and upload.size > self.max_file_size:
                raise self._too_large()
            parent = self._check_parent(_text(form, "asset[parent_uid]"))
            uid = _new_uid()
            filename = upload.filename or "file"
            stored, ctype = await self._store(uid, upload, filename)
            blob = self._blobs.get(stored.blob_key)
            assert blob is not None  # noqa: S101  (just stored)
            record = self._insert_asset(
                uid, stored, filename=filename, size=blob.size, content_type=ctype,
                parent_uid=parent, title=_text(form, "asset[title]"),
                description=_text(form, "asset[description]"), tags=_form_tags(form),
            )
        finally:
            await form.close()
        log.debug("emulator.asset_created", api="contentstack", uid=uid, bytes=blob.size)
        return JSONResponse(
            {"notice": "Asset created successfully.", "asset": self._render(record, request)},
            status_code=201,
        )

    async def _store(self, uid: str, upload: UploadFile, filename: str) -> tuple[_Upload, str]:
        """Copy the spooled upload into the blob store (off the event loop)."""
        upload_uid = _new_upload_uid()
        ctype = _guess_type(filename, upload.content_type)

        def copy_in() -> _Upload:
            with tempfile.NamedTemporaryFile(
                dir=self._blobs.root, prefix="incoming-", delete=False
            ) as out:
                upload.file.seek(0)
                shutil.copyfileobj(upload.file, out, 1024 * 1024)
                spooled = Path(out.name)
            try:
                blob = self._blobs.put_file(f"{uid}/{upload_uid}", spooled)
            finally:
                spooled.unlink(missing_ok=True)
            return _Upload(upload_uid, blob.key, _dimension(blob.path, ctype))

        return await anyio.to_thread.run_sync(copy_in), ctype

    async def _update_asset(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        record = self._asset_or_404(uid)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await self._form(request)
            try:
                changes: dict[str, Any] = {
                    key: form[f"asset[{key}]"]
                    for key in ("title", "description", "parent_uid", "permanent_url")
                    if f"asset[{key}]" in form and isinstance(form[f"asset[{key}]"], str)
                }
                if "asset[tags]" in form or "asset[tags][]" in form:
                    changes["tags"] = _form_tags(form)
                version = _text(form, "version")
                await self._apply_update(uid, record, changes, version, _file_part(form))
            finally:
                await form.close()
        else:
            body = await self._json_body(request)
            inner = body.get("asset")
            if not isinstance(inner, dict):
                raise _ApiError(422, "Asset update failed. Please enter valid data.", None,
                                {"asset": ["is required."]})
            await self._apply_update(uid, record, inner, body.get("version"), None)
        return JSONResponse(
            {"notice": "Asset updated successfully.",
             "asset": self._render(self.assets[uid], request)}
        )

    async def _apply_update(
        self, uid: str, record: dict[str, Any], changes: dict[str, Any], version: Any,
        upload: UploadFile | None,
    ) -> None:
        # validate everything before changing anything
        parent = (self._check_parent(changes["parent_uid"]) if "parent_uid" in changes
                  else record["parent_uid"])
        tags = changes.get("tags", record["tags"])
        if isinstance(tags, str):
            tags = _split_tags([tags])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _ApiError(422, "Tags must be a list of strings.", None,
                            {"tags": ["is not valid."]})
        for key in ("title", "description"):
            if key in changes and not isinstance(changes[key], str):
                raise _ApiError(422, f"{key} must be a string.", None, {key: ["is not valid."]})
        if "title" in changes and not changes["title"].strip():
            raise _ApiError(422, "Title can't be blank.", None, {"title": ["is required."]})
        state = self._state[uid]
        slug = state.slug
        if changes.get("permanent_url"):
            slug = self._check_permanent_url(uid, state, changes["permanent_url"])
        restore = self._version(uid, version) if version not in (None, "") else None
        if upload is not None and upload.size is not None and upload.size > self.max_file_size:
            raise self._too_large()

        new = dict(record)
        if restore is not None:
            for key in ("content_type", "file_size", "filename", "title", "description",
                        "tags"):
                new[key] = copy.deepcopy(restore.record[key])
            state.upload = restore.upload
        if upload is not None:
            filename = upload.filename or record["filename"]
            stored, ctype = await self._store(uid, upload, filename)
            blob = self._blobs.get(stored.blob_key)
            assert blob is not None  # noqa: S101  (just stored)
            state.upload = stored
            new.update(content_type=ctype, file_size=str(blob.size),
                       filename=sanitize_filename(filename))
        for key in ("title", "description"):
            if key in changes:
                new[key] = changes[key]
        if "tags" in changes:
            new["tags"] = tags
        new["parent_uid"] = parent
        if slug is not None:
            new["permanent_url"] = changes.get("permanent_url") or record.get("permanent_url")
        state.slug = slug
        new["url"] = self._file_url(self._base, uid, state.upload.upload_uid, new["filename"])
        new["_version"] = record["_version"] + 1
        new["updated_at"] = _now()
        new["updated_by"] = self.user_uid
        self.assets[uid] = new
        state.versions.append(_Version(new["_version"], copy.deepcopy(new), state.upload))

    def _check_permanent_url(self, uid: str, state: _AssetState, url: Any) -> str:
        if not isinstance(url, str):
            raise _ApiError(422, "permanent_url must be a string.", None,
                            {"permanent_url": ["is not valid."]})
        parts = url.rstrip("/").split("/")
        if len(parts) < 3 or parts[-2] != uid or parts[-3] != self.api_key:
            raise _ApiError(
                422, "The permanent URL must end in /{stack_api_key}/{asset_uid}/{slug}.", None,
                {"permanent_url": ["is not valid."]},
            )
        if state.slug is not None and state.slug != parts[-1]:
            raise _ApiError(422, "The permanent URL of this asset has already been set.", None,
                            {"permanent_url": ["can be set only once."]})
        return parts[-1]

    async def _delete_asset(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        self._asset_or_404(uid)
        self._drop_asset(uid)
        return JSONResponse({"notice": "Asset deleted successfully."})

    def _drop_asset(self, uid: str) -> None:
        self.assets.pop(uid, None)
        self.references.pop(uid, None)
        state = self._state.pop(uid, None)
        if state is not None:
            for key in {v.upload.blob_key for v in state.versions} | {state.upload.blob_key}:
                self._blobs.delete(key)

    # -- versions, references, publishing ----------------------------------------------

    async def _versions(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        self._asset_or_404(uid)
        versions = sorted(self._state[uid].versions, key=lambda v: v.number, reverse=True)
        if _flag(request, "named"):
            versions = [v for v in versions if v.name is not None]
        skip, limit = self._paging(request)
        out = []
        for version in versions[skip: skip + limit]:
            item: dict[str, Any] = {"_version": version.number}
            if version.name is not None:
                item["_version_name"] = dict(version.name)
            if _flag(request, "include_updated_at"):
                item["updated_at"] = version.record["updated_at"]
            if _flag(request, "include_updated_by"):
                item["updated_by"] = version.record["updated_by"]
            out.append(item)
        body: dict[str, Any] = {"versions": out}
        if _flag(request, "include_count"):
            body["count"] = len(versions)
        return JSONResponse(body)

    async def _name_version(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        self._asset_or_404(uid)
        version = self._version(uid, request.path_params["number"])
        if request.method == "DELETE":
            version.name = None
            return JSONResponse({"notice": "Version name deleted successfully"})
        body = await self._json_body(request)
        inner = body.get("upload") or body.get("asset") or {}
        name = inner.get("_version_name") if isinstance(inner, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise _ApiError(422, "Version name is required.", None,
                            {"_version_name": ["is required."]})
        version.name = {"title": name, "updated_by": self.user_uid, "updated_at": _now()}
        return JSONResponse({"notice": "Version name assigned successfully."})

    async def _references(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        self._asset_or_404(uid)
        refs = copy.deepcopy(self.references.get(uid, []))
        if _flag(request, "include_publish_details"):
            for ref in refs:
                ref["publish_details"] = []
        body: dict[str, Any] = {"references": refs}
        if _flag(request, "include_count"):
            body["count"] = len(refs)
        return JSONResponse(body)

    def _publish_target(self, body: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The environments (as uids) and locales of a publish or unpublish body.

        Environments are named as the Postman collection and the SDK docs show
        (``"development"``); a uid is taken too. An environment or a locale the stack does
        not have → 422 naming it under ``errors`` (unverified: the docs show no such error).
        """
        inner = body.get("asset")
        envs = inner.get("environments") if isinstance(inner, dict) else None
        locales = inner.get("locales") if isinstance(inner, dict) else None
        if not (isinstance(envs, list) and envs and isinstance(locales, list) and locales):
            raise _ApiError(422, "Please select at least one environment and one locale.", None,
                            {"environments": ["is required."], "locales": ["is required."]})
        uids = set(self.environments.values())
        unknown_envs = [str(e) for e in envs if str(e) not in self.environments
                        and str(e) not in uids]
        codes = self._locale_codes()
        unknown_locales = [str(lc) for lc in locales if str(lc) not in codes]
        if unknown_envs or unknown_locales:
            errors: dict[str, list[str]] = {}
            if unknown_envs:
                errors["environments"] = [f"{e!r} is not valid." for e in unknown_envs]
            if unknown_locales:
                errors["locales"] = [f"{lc!r} is not valid." for lc in unknown_locales]
            raise _ApiError(422, "The environment or locale you selected does not exist.",
                            None, errors)
        return ([self.environments.get(str(e), str(e)) for e in envs],
                [str(loc) for loc in locales])

    async def _publish(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        record = self._asset_or_404(uid)
        body = await self._json_body(request)
        envs, locales = self._publish_target(body)
        self.publish_requests.append((uid, tuple(envs), tuple(locales)))
        version = body.get("version") or record["_version"]
        self._version(uid, version)
        keep = [p for p in record["publish_details"]
                if (p["environment"], p["locale"]) not in {(e, lc) for e in envs for lc in locales}]
        now = _now()
        record["publish_details"] = keep + [
            {"environment": e, "locale": lc, "time": now, "user": self.user_uid,
             "version": int(version)}
            for e in envs for lc in locales
        ]
        return JSONResponse({"notice": "Asset sent for publishing."})

    async def _unpublish(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        record = self._asset_or_404(uid)
        envs, locales = self._publish_target(await self._json_body(request))
        record["publish_details"] = [
            p for p in record["publish_details"]
            if not (p["environment"] in envs and p["locale"] in locales)
        ]
        return JSONResponse({"notice": "Asset sent for unpublishing."})

    # -- Content Delivery API --------------------------------------------------------------

    def _delivery(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests += 1
            if request.headers.get("api_key") != self.api_key:
                return _error_response(412, "We can't find that Stack. Please try again.", 109,
                                       {"api_key": ["is not valid."]})
            token = request.headers.get("access_token", "")
            scoped = next((env for known, env in self.delivery_tokens.items()
                           if token and secrets.compare_digest(token, known)), None)
            if scoped is None:
                return _error_response(412, "The access token is not valid.", 104,
                                       {"access_token": ["is not valid."]})
            branch = request.headers.get("branch", "main")
            if branch not in self.branches:
                return _error_response(422, f"The branch '{branch}' does not exist.", 422,
                                       {"branch": ["is not valid."]})
            environment = request.query_params.get("environment")
            if not environment or environment not in (scoped, self.environment_uid(scoped)):
                return _error_response(
                    422, "The environment is missing or this delivery token may not read it.",
                    141, {"environment": ["is not valid."]})
            if self.rate_limit and self.limiter.check(self.api_key + ":cda") is not None:
                return _error_response(
                    429, "You have exceeded the rate limit. Please try again later.", 429)
            try:
                return await handler(request)
            except _ApiError as exc:
                return exc.response()

        return endpoint

    def _published(self, uid: str, request: Request) -> dict[str, Any] | None:
        """The published version of asset ``uid`` as the CDA renders it, or ``None``."""
        record = self.assets[uid]
        environment = request.query_params.get("environment", "")
        locale = request.query_params.get("locale", "").lower() or self.master_locale
        chain = [locale]
        if _flag(request, "include_fallback"):
            while chain[-1] != self.master_locale and len(chain) < 10:
                chain.append(self.fallback_locales.get(chain[-1], self.master_locale))
        for wanted in chain:
            for p in record["publish_details"]:
                env = str(p["environment"])  # a uid, as the API lists it
                if p["locale"] != wanted or self.environments.get(environment,
                                                                  environment) != env:
                    continue
                version = next(v for v in self._state[uid].versions
                               if v.number == int(p["version"]))
                out = copy.deepcopy(version.record)
                out.pop("parent_uid", None)
                out["url"] = self._file_url(str(request.base_url).rstrip("/"), uid,
                                            version.upload.upload_uid, out["filename"])
                if _flag(request, "include_dimension") and version.upload.dimension:
                    out["dimension"] = dict(version.upload.dimension)
                if _flag(request, "include_branch"):
                    out["_branch"] = request.headers.get("branch", "main")
                out["publish_details"] = {
                    "environment": env, "locale": wanted,
                    "time": p["time"], "user": p["user"],
                }
                return out
        return None

    async def _cda_list(self, request: Request) -> Response:
        query = self._query(request)
        rows = []
        for uid in sorted(self.assets, key=lambda u: self._state[u].seq):
            rendered = self._published(uid, request)
            if rendered is not None and _matches(rendered, query):
                rows.append(rendered)
        asc, desc = request.query_params.get("asc"), request.query_params.get("desc")
        sort_field = asc or desc
        if sort_field:
            rows.sort(key=lambda r: _sort_key(r.get(sort_field)), reverse=bool(desc and not asc))
        skip, limit = self._paging(request)
        body: dict[str, Any] = {"assets": rows[skip: skip + limit]}
        if _flag(request, "include_count"):
            body["count"] = len(rows)
        return JSONResponse(body)

    async def _cda_get(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        rendered = self._published(uid, request) if uid in self.assets else None
        if rendered is None:
            raise _ApiError(404, "Asset was not found.", 145, {"uid": ["is not valid."]})
        return JSONResponse({"asset": rendered})

    # -- folders -------------------------------------------------------------------------

    async def _get_folder(self, request: Request) -> Response:
        record = self._folder_or_404(request.path_params["uid"])
        return JSONResponse({"asset": self._render(record, request)})

    def _folder_body(self, body: dict[str, Any]) -> dict[str, Any]:
        inner = body.get("asset")
        if not isinstance(inner, dict):
            raise _ApiError(422, "Folder details are missing.", None, {"asset": ["is required."]})
        if "name" in inner and (not isinstance(inner["name"], str) or not inner["name"].strip()):
            raise _ApiError(422, "Folder name can't be blank.", None, {"name": ["is required."]})
        return inner

    def _depth_error(self) -> _ApiError:
        return _ApiError(
            422, f"Folders can be nested only up to {self.max_depth} levels.", None,
            {"parent_uid": [f"exceeds the maximum nesting level of {self.max_depth}."]},
        )

    async def _create_folder(self, request: Request) -> Response:
        inner = self._folder_body(await self._json_body(request))
        if "name" not in inner:
            raise _ApiError(422, "Folder name can't be blank.", None, {"name": ["is required."]})
        parent = self._check_parent(inner.get("parent_uid"))
        if len(self.folders) >= self.max_folders:
            raise _ApiError(
                422, f"You can create a maximum of {self.max_folders} folders.", None,
                {"asset": [f"exceeds the maximum of {self.max_folders} folders."]},
            )
        if self._depth(parent) + 1 > self.max_depth:
            raise self._depth_error()
        uid = self._insert_folder(inner["name"], parent)
        log.debug("emulator.folder_created", api="contentstack", uid=uid)
        return JSONResponse(
            {"notice": "Folder created successfully.",
             "asset": self._render(self.folders[uid], request)},
            status_code=201,
        )

    async def _update_folder(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        record = self._folder_or_404(uid)
        inner = self._folder_body(await self._json_body(request))
        parent = record["parent_uid"]
        if "parent_uid" in inner:
            parent = self._check_parent(inner["parent_uid"])
            if parent is not None and parent in self._descendants(uid):
                raise _ApiError(
                    422, "You cannot move a folder into itself or one of its subfolders.", None,
                    {"parent_uid": ["is not valid."]},
                )
            if self._depth(parent) + self._subtree_height(uid) > self.max_depth:
                raise self._depth_error()
        record.update(
            name=inner.get("name", record["name"]), parent_uid=parent,
            _version=record["_version"] + 1, updated_at=_now(), updated_by=self.user_uid,
        )
        return JSONResponse(
            {"notice": "Folder updated successfully.", "asset": self._render(record, request)}
        )

    async def _delete_folder(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        self._folder_or_404(uid)
        doomed = self._descendants(uid)
        for asset_uid in [u for u, r in self.assets.items() if r["parent_uid"] in doomed]:
            self._drop_asset(asset_uid)
        for folder_uid in doomed:
            self.folders.pop(folder_uid, None)
            self._folder_seq.pop(folder_uid, None)
        return JSONResponse({"notice": "Folder deleted successfully."})

    # -- stack settings: environments, languages, branches --------------------------------
    # What the vendor's SDKs and CLI read before touching assets (the CLI's import needs all
    # three). Read-only here; shapes from the CMA pages "Environment", "Languages" and
    # "Branches" and the key sets of the official SDKs' mocks.

    def _system_fields(self, uid: str) -> dict[str, Any]:
        return {"uid": uid, "created_by": self.user_uid, "updated_by": self.user_uid,
                "created_at": self._created, "updated_at": self._created}

    def _environment(self, name: str) -> dict[str, Any]:
        return {**self._system_fields(self.environments[name]), "name": name, "servers": [],
                "urls": [], "deploy_content": False, "ACL": [], "_version": 1}

    def _locale_codes(self) -> list[str]:
        """The master locale, then every locale the fallback chains name."""
        codes = [self.master_locale]
        for code, fallback in self.fallback_locales.items():
            codes += [c for c in (fallback, code) if c not in codes]
        return codes

    def _locale(self, code: str) -> dict[str, Any]:
        """choice: a locale's name is its code (the emulator knows no language names)."""
        fallback = (None if code == self.master_locale
                    else self.fallback_locales.get(code, self.master_locale))
        uid = "blt" + hashlib.sha256(f"locale:{code}".encode()).hexdigest()[:16]
        return {**self._system_fields(uid), "code": code, "name": code,
                "fallback_locale": fallback, "ACL": [], "_version": 1}

    def _branch(self, uid: str) -> dict[str, Any]:
        """choice: every branch but ``main`` is a branch of ``main``; no aliases."""
        return {**self._system_fields(uid), "source": "" if uid == "main" else "main",
                "deleted_at": False, "alias": []}

    @staticmethod
    def _collection(key: str, records: list[dict[str, Any]], request: Request) -> Response:
        body: dict[str, Any] = {key: records}
        if _flag(request, "include_count"):
            body["count"] = len(records)
        return JSONResponse(body)

    async def _list_environments(self, request: Request) -> Response:
        return self._collection("environments",
                                [self._environment(n) for n in self.environments], request)

    async def _get_environment(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.environments:
            raise _ApiError(404, "Environment was not found.", None,  # unverified text
                            {"name": ["is not valid."]})
        return JSONResponse({"environment": self._environment(name)})

    async def _list_locales(self, request: Request) -> Response:
        return self._collection("locales", [self._locale(c) for c in self._locale_codes()],
                                request)

    async def _get_locale(self, request: Request) -> Response:
        code = request.path_params["code"]
        if code not in self._locale_codes():
            raise _ApiError(404, "Language was not found.", None,  # unverified text
                            {"code": ["is not valid."]})
        return JSONResponse({"locale": self._locale(code)})

    async def _list_branches(self, request: Request) -> Response:
        return self._collection("branches", [self._branch(b) for b in sorted(self.branches)],
                                request)

    async def _get_branch(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if uid not in self.branches:
            raise _ApiError(404, f"The branch '{uid}' does not exist.", None,  # unverified
                            {"branch": ["is not valid."]})
        return JSONResponse({"branch": self._branch(uid)})

    # -- file bytes ----------------------------------------------------------------------

    def _file_response(self, uid: str, request: Request) -> Response:
        state = self._state[uid]
        blob = self._blobs.get(state.upload.blob_key)
        if blob is None:
            raise _ApiError(404, "The requested file was not found.")
        return FileResponse(blob.path, media_type=self.assets[uid]["content_type"],
                            stat_result=blob.path.stat())

    async def _serve_file(self, request: Request) -> Response:
        leaked = leaked_credentials(request.headers)
        if leaked:
            self.credential_leaks.append(request_path(request.scope))
            log.warning("emulator.credential_leak", api="contentstack",
                        path=request_path(request.scope),
                        headers=",".join(leaked))
        p = request.path_params
        state = self._state.get(p["uid"])
        record = self.assets.get(p["uid"])
        # the current file, or the file of an earlier version that is still published (the
        # CDA serves the published version until the new one is published)
        version = None if state is None or record is None else next(
            (v for v in reversed(state.versions) if v.upload.upload_uid == p["upload_uid"]
             and (v.upload is state.upload or any(
                 int(d.get("version", 0)) == v.number for d in record["publish_details"]))),
            None)
        if (
            p["key"] != self.api_key or state is None or record is None or version is None
            or p["filename"] not in (record["filename"], version.record["filename"])
        ):
            return _error_response(404, "The requested file was not found.", 404)
        if version.upload is not state.upload:
            blob = self._blobs.get(version.upload.blob_key)
            if blob is None:
                return _error_response(404, "The requested file was not found.", 404)
            return FileResponse(blob.path, media_type=version.record["content_type"],
                                stat_result=blob.path.stat())
        try:
            return self._file_response(p["uid"], request)
        except _ApiError as exc:
            return exc.response()

    async def _permanent_download(self, request: Request) -> Response:
        p = request.path_params
        state = self._state.get(p["uid"])
        if p["key"] != self.api_key or state is None or state.slug != p["slug"]:
            raise _ApiError(404, "Asset was not found.", 145, {"uid": ["is not valid."]})
        return self._file_response(p["uid"], request)


def _missing_upload() -> _ApiError:
    return _ApiError(422, "Asset creation failed. Please select a file to upload.", None,
                     {"upload": ["is required."]})


_FILE_PARTS = ("asset[upload]", "asset")
"""Where a multipart upload or replace carries the file: ``asset[upload]`` (the CMA pages and
the Postman collection) or ``asset`` (what the official Python SDK's ``Assets.replace`` sends).
unverified: the live API's answer to ``asset`` (the SDK's own live test of replace is xfail)."""


def _file_part(form: FormData) -> UploadFile | None:
    """The uploaded file of a form; a file under any other name is refused (422), never
    silently dropped while the answer says the asset was updated."""
    files = [(name, value) for name, value in form.multi_items() if isinstance(value, UploadFile)]
    stray = sorted(name for name, _ in files if name not in _FILE_PARTS)
    if stray:
        raise _ApiError(422, "Asset update failed. Please select a file to upload.", None,
                        {name: ["is not a valid file field."] for name in stray})
    if len(files) > 1:
        raise _ApiError(422, "Please upload one file at a time.", None,
                        {"upload": ["is invalid."]})
    return files[0][1] if files else None


def _text(form: FormData, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) else None


def _split_tags(values: Sequence[str]) -> list[str]:
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def _form_tags(form: FormData) -> list[str]:
    values = [v for key in ("asset[tags]", "asset[tags][]") for v in form.getlist(key)
              if isinstance(v, str)]
    return _split_tags(values)


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, bool):
        return (1, float(value), "")
    if isinstance(value, int | float):
        return (1, float(value), "")
    text = str(value)
    try:
        return (1, float(text), "")
    except ValueError:
        return (2, 0.0, text)


def _compare(value: Any, op: str, arg: Any) -> bool:
    a, b = _sort_key(value), _sort_key(arg)
    if value is None or a[0] != b[0]:
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _equals(value: Any, expected: Any) -> bool:
    if isinstance(value, list) and not isinstance(expected, list):
        return expected in value
    return bool(value == expected)


def _matches(record: dict[str, Any], query: dict[str, Any]) -> bool:
    """A small subset of the documented query language: equality, $ne, $in, $nin, $exists,
    $regex, $gt/$gte/$lt/$lte, $and, $or."""
    for key, cond in query.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not all(isinstance(c, dict) for c in cond):
                raise _ApiError(422, f"{key} takes a list of queries.", None,
                                {"query": ["is not valid."]})
            results = (_matches(record, c) for c in cond)
            if not (all(results) if key == "$and" else any(results)):
                return False
            continue
        value = record.get(key)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            for op, arg in cond.items():
                if not _operator(value, key in record, op, arg, cond.get("$options")):
                    return False
        elif not _equals(value, cond):
            return False
    return True


def _operator(value: Any, present: bool, op: str, arg: Any, options: Any) -> bool:
    if op == "$options":
        return True
    if op == "$ne":
        return not _equals(value, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise _ApiError(422, f"{op} takes a list.", None, {"query": ["is not valid."]})
        found = any(_equals(value, a) for a in arg)
        return found if op == "$in" else not found
    if op == "$exists":
        return present == bool(arg)
    if op == "$regex":
        flags = re.IGNORECASE if isinstance(options, str) and "i" in options else 0
        try:
            return isinstance(value, str) and re.search(str(arg), value, flags) is not None
        except re.error:
            raise _ApiError(422, "The $regex is not valid.", None,
                            {"query": ["is not valid."]}) from None
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(value, op, arg)
    raise _ApiError(422, f"The query operator {op} is not supported.", None,
                    {"query": ["is not valid."]})
