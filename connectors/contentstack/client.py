"""HTTP calls of the Contentstack Content Management API v3 (assets and asset folders).

Speaks wire models (:mod:`connectors.contentstack.wire`); the connector maps them. Every
request carries ``api_key`` plus the token (``authorization`` for a management token,
``authtoken`` for a user session) as credentials, so :class:`~connectors.http.ApiClient` sends
them to the API host only, and the ``branch`` header. File downloads carry none of them.

Error mapping on top of :func:`connectors.http.raise_for_response`:

- 412: the ``api_key`` is missing or wrong (facts §1.2) → :class:`AuthError` naming api_key;
- 401/403: the token was refused → :class:`AuthError` naming the configured token key;
- 422 on folder create: the 300-folder / depth-5 limits → :class:`ItemError` with the API's words.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any

import httpx
import pydantic

from connectors.contentstack.config import DEFAULT_REQUESTS_PER_SECOND, ContentstackConfig
from connectors.contentstack.wire import (
    WireAsset,
    WireAssetEnvelope,
    WireAssetList,
    WireEnvironments,
    WireLocales,
    WireNotice,
    WireReferences,
)
from connectors.errors import AuthError, ItemError, SyncError
from connectors.http import ApiClient, Classifier, decode_model
from connectors.jsontext import checked_loads

API = "Contentstack"
PAGE_SIZE = 100
"""Assets per page: the official CLI pages by 100; the CMA maximum is not documented."""

ROOT_FOLDER = "cs_root"
"""``folder=cs_root`` lists the root folder's contents."""


def error_text(response: httpx.Response) -> str:
    """The API's message plus its per-field errors, e.g. ``Asset was not found. (uid: is not
    valid.)``; the body shape is ``{error_message, error_code, errors}`` (facts §1.8)."""
    try:
        body = checked_loads(response.content)
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:200]
    message = ""
    for key in ("error_message", "message", "error", "notice"):
        value = body.get(key)
        if isinstance(value, str) and value:
            message = value
            break
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        details = "; ".join(
            f"{field}: {' '.join(str(m) for m in msgs) if isinstance(msgs, list) else msgs}"
            for field, msgs in errors.items()
        )
        message = f"{message} ({details})" if message else details
    if not message:
        message = json.dumps(body)[:200]
    code = body.get("error_code")
    if isinstance(code, int):
        message = f"{message} [error_code {code}]"
    return message[:300]


def make_classifier(config: ContentstackConfig) -> Classifier:
    token_name = config.token_name

    def classify(response: httpx.Response, text: str) -> SyncError | None:
        status = response.status_code
        request = response.request
        where = f"{request.method} {request.url.path}"
        if status == 412:
            return AuthError(
                f"Contentstack says the api_key is not valid (412 {where}): {text}. "
                "Check api_key in the job file's contentstack [source]/[target] section: "
                "it must be the stack's API key (Settings > Stack), not a token.",
                status=status,
            )
        if status in (401, 403):
            return AuthError(
                f"Contentstack refused the {token_name} ({status} {where}): {text}. "
                f"Check {token_name} in the job file (its environment variable), that it "
                f"belongs to stack {config.api_key}, and that it may manage assets on "
                f"branch {config.branch!r}.",
                status=status,
            )
        if (
            status == 422
            and request.method == "POST"
            and request.url.path.rstrip("/").endswith("/assets/folders")
        ):
            return ItemError(
                f"Contentstack refused to create the folder: {text}. "
                "A stack holds at most 300 folders, nested at most 5 deep.",
                status=status,
            )
        return None

    return classify


FileParts = dict[str, tuple[str, IO[bytes], str]]


class ContentstackClient:
    """The CMA asset endpoints of one stack and branch."""

    def __init__(
        self, config: ContentstackConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        header, token = config.token_header()
        credentials: dict[str, pydantic.SecretStr] = {
            # not a secret, but it names the stack: send it to the API host only
            "api_key": pydantic.SecretStr(config.api_key),
            header: token,
        }
        self._branch = config.branch
        self._api = ApiClient(
            api=API,
            base_url=config.api_base(),
            credentials=credentials,
            requests_per_second=config.requests_per_second or DEFAULT_REQUESTS_PER_SECOND,
            transport=transport,
            error_text=error_text,
            classify=make_classifier(config),
        )

    @property
    def _headers(self) -> dict[str, str]:
        return {"branch": self._branch}

    async def list_assets(
        self,
        *,
        skip: int,
        limit: int = PAGE_SIZE,
        query: Mapping[str, Any] | None = None,
        folder: str | None = None,
    ) -> WireAssetList:
        """One page of ``GET /v3/assets`` (with ``include_count``), oldest first."""
        params: dict[str, Any] = {
            "include_count": "true",
            "asc": "created_at",
            "skip": skip,
            "limit": limit,
        }
        if folder is not None:
            params["folder"] = folder
        if query is not None:
            params["query"] = json.dumps(query, separators=(",", ":"), ensure_ascii=False)
        response = await self._api.request("GET", "assets", params=params, headers=self._headers)
        return decode_model(response, WireAssetList, api=API)

    async def create_folder(self, name: str, parent_uid: str | None) -> WireAsset:
        """``POST /v3/assets/folders``; not retried once it may have reached the API."""
        body: dict[str, str] = {"name": name}
        if parent_uid is not None:
            body["parent_uid"] = parent_uid
        response = await self._api.request(
            "POST", "assets/folders", json={"asset": body}, headers=self._headers,
            idempotent=False,
        )
        return decode_model(response, WireAssetEnvelope, api=API).asset

    async def upload(
        self,
        *,
        filename: str,
        path: Path,
        content_type: str,
        fields: Mapping[str, str],
        replace_uid: str | None = None,
    ) -> WireAsset:
        """Multipart ``POST /v3/assets`` (new asset) or ``PUT /v3/assets/{uid}`` (replace).

        The file goes in ``asset[upload]``; ``fields`` are the other ``asset[...]`` parts. The
        file is reopened for every attempt. A create that may have reached the API raises
        :class:`~connectors.errors.AmbiguousError` instead of being sent again.
        """
        handles: list[IO[bytes]] = []

        def files() -> FileParts:
            handle = path.open("rb")
            handles.append(handle)
            return {"asset[upload]": (filename, handle, content_type)}

        try:
            if replace_uid is None:
                response = await self._api.request(
                    "POST", "assets", data=dict(fields), files=files, headers=self._headers,
                    idempotent=False,
                )
            else:
                response = await self._api.request(
                    "PUT", f"assets/{_segment(replace_uid)}", data=dict(fields), files=files,
                    headers=self._headers,
                )
        finally:
            for handle in handles:
                handle.close()
        return decode_model(response, WireAssetEnvelope, api=API).asset

    async def get(self, uid: str) -> WireAsset:
        """``GET /v3/assets/{uid}``: one asset (or folder); NotFoundError when there is none."""
        response = await self._api.request(
            "GET", f"assets/{_segment(uid)}", headers=self._headers
        )
        return decode_model(response, WireAssetEnvelope, api=API).asset

    async def references(self, uid: str) -> WireReferences:
        """``GET /v3/assets/{uid}/references``: the entries that reference the asset (CMA
        "Get asset references"); NotFoundError when the asset is gone."""
        response = await self._api.request(
            "GET", f"assets/{_segment(uid)}/references", headers=self._headers
        )
        return decode_model(response, WireReferences, api=API)

    async def environments(self) -> WireEnvironments:
        """``GET /v3/environments``: the stack's publishing environments (CMA "Environment")."""
        response = await self._api.request("GET", "environments", headers=self._headers)
        return decode_model(response, WireEnvironments, api=API)

    async def locales(self) -> WireLocales:
        """``GET /v3/locales``: the stack's languages (CMA "Languages")."""
        response = await self._api.request("GET", "locales", headers=self._headers)
        return decode_model(response, WireLocales, api=API)

    async def publish(self, uid: str, environments: Sequence[str],
                      locales: Sequence[str]) -> str | None:
        """``POST /v3/assets/{uid}/publish`` with ``{"asset": {"environments": [...],
        "locales": [...]}}`` (CMA "Publish an asset"; environments by name, the latest
        version). Publishing again is harmless, so it is retried like a read."""
        body = {"asset": {"environments": list(environments), "locales": list(locales)}}
        response = await self._api.request(
            "POST", f"assets/{_segment(uid)}/publish", json=body, headers=self._headers
        )
        return decode_model(response, WireNotice, api=API).notice

    async def update(self, uid: str, asset: Mapping[str, Any]) -> WireAsset:
        """``PUT /v3/assets/{uid}`` with a JSON body ``{"asset": {...}}``."""
        response = await self._api.request(
            "PUT", f"assets/{_segment(uid)}", json={"asset": dict(asset)}, headers=self._headers
        )
        return decode_model(response, WireAssetEnvelope, api=API).asset

    async def delete(self, uid: str) -> str | None:
        """``DELETE /v3/assets/{uid}``; returns the API's notice."""
        response = await self._api.request(
            "DELETE", f"assets/{_segment(uid)}", headers=self._headers
        )
        return decode_model(response, WireNotice, api=API).notice

    def download(self, url: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a file URL; no credentials are sent (it is a CDN host)."""
        return self._api.download(url)

    async def aclose(self) -> None:
        await self._api.aclose()


def _segment(uid: str) -> str:
    """A uid as one path segment (uids are ``blt…`` strings; refuse anything else)."""
    if not uid or any(c in uid for c in "/?#%") or uid in (".", ".."):
        raise ItemError(f"{uid!r} is not a Contentstack uid")
    return uid

