"""HTTP calls of the Storyblok Management API (MAPI v1), one method per endpoint.

Two :class:`~connectors.http.ApiClient` instances:

- ``mapi``: the space's MAPI base URL, with the ``Authorization`` credential (a personal
  access token raw, an OAuth token as ``Bearer``), paced at the plan's requests per second;
- ``storage``: no credentials and no pacing, for the signed S3 POST, file downloads and the
  CDA signed-URL look-up of private assets. Credentials never reach the storage host or the
  asset CDN, even when an emulator serves both from the MAPI host.

Methods return wire models (:mod:`connectors.storyblok.wire`); the connector maps them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import SecretStr

from connectors.errors import (
    ConfigError,
    MalformedResponseError,
    NotFoundError,
)
from connectors.http import ApiClient, decode_json, decode_model
from connectors.jsontext import checked_loads
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.wire import (
    AssetList,
    FinishResponse,
    FolderEnvelope,
    FolderList,
    InternalTagEnvelope,
    InternalTagList,
    SignedAssetEnvelope,
    SignedResponse,
    WireAsset,
    WireFolder,
    WireTag,
)

API = "Storyblok"
STORAGE = "Storyblok file storage"


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_render(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_render(v)}" for k, v in value.items())
    return str(value)


def storyblok_error_text(response: httpx.Response) -> str:
    """The API's words from any documented error body shape.

    ``{"error": "..."}`` (string, list or map), ``{"errors": {field: [msg]}}``, a bare
    ``{field: [msg]}`` map, ``{"message": "..."}`` and a bare array of strings
    (``["This record could not be found"]``).
    """
    try:
        body = checked_loads(response.content)
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, list):
        return _render(body)[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "errors", "message"):
            if body.get(key):
                return _render(body[key])[:300]
        if body:
            return _render(body)[:300]
    return response.reason_phrase


_XML_TAG = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")


def storage_error_text(response: httpx.Response) -> str:
    """S3 answers errors in XML: ``<Code>AccessDenied</Code><Message>...</Message>``."""
    found = dict(_XML_TAG.findall(response.text[:4000]))
    if found:
        return ": ".join(v for v in (found.get("Code"), found.get("Message")) if v)
    return storyblok_error_text(response)


def _total(response: httpx.Response) -> int | None:
    raw = response.headers.get("total")
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise MalformedResponseError(
            f"{API} sent a 'total' header that is not a number ({raw[:20]!r})"
        ) from None


_NAMED_LIMIT = re.compile(r"Rate limit of (\d+(?:\.\d+)?) requests? per second")


def named_rate_limit(response: httpx.Response) -> float | None:
    """The limit a Storyblok 429 names: ``{"error": "Rate limit of 3 request per second ..."}``."""
    match = _NAMED_LIMIT.search(response.text)
    return float(match.group(1)) if match else None


class StoryblokClient:
    """Typed access to one space's MAPI; close with :meth:`aclose`."""

    def __init__(
        self, config: StoryblokConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        secret = config.token.get_secret_value()
        authorization = f"Bearer {secret}" if config.oauth else secret
        self.mapi = ApiClient(
            api=API,
            base_url=config.api_base(),
            credentials={"authorization": SecretStr(authorization)},
            headers={"accept": "application/json"},
            requests_per_second=config.rate,
            transport=transport,
            error_text=storyblok_error_text,
            rate_hint=named_rate_limit,
        )
        self.storage = ApiClient(
            api=STORAGE,
            base_url=config.cda_assets_me_url(),
            credentials=None,
            requests_per_second=None,
            timeout=600.0,
            transport=transport,
            error_text=storage_error_text,
        )

    async def aclose(self) -> None:
        await self.mapi.aclose()
        await self.storage.aclose()

    def _space_missing(self, exc: NotFoundError) -> ConfigError:
        return ConfigError(
            f"Storyblok space {self._config.space_id} was not found at "
            f"{self._config.host()} ({exc.message}). Check space_id and region.",
            status=exc.status,
        )

    # -- folders -------------------------------------------------------------------------

    async def list_folders(self) -> list[WireFolder]:
        """All asset folders (the endpoint documents no paging)."""
        try:
            response = await self.mapi.request("GET", "asset_folders/")
        except NotFoundError as exc:
            raise self._space_missing(exc) from None
        return decode_model(response, FolderList, api=API).asset_folders

    async def create_folder(self, name: str, parent_id: int | None) -> WireFolder:
        folder: dict[str, Any] = {"name": name}
        if parent_id is not None:
            folder["parent_id"] = parent_id
        response = await self.mapi.request(
            "POST", "asset_folders/", json={"asset_folder": folder}
        )
        return decode_model(response, FolderEnvelope, api=API).asset_folder

    # -- assets --------------------------------------------------------------------------

    async def list_assets(self, params: Mapping[str, Any]) -> tuple[list[WireAsset], int | None]:
        """One page of assets and the ``total`` header (``None`` when absent)."""
        try:
            response = await self.mapi.request("GET", "assets/", params=params)
        except NotFoundError as exc:
            raise self._space_missing(exc) from None
        return decode_model(response, AssetList, api=API).assets, _total(response)

    async def get_asset(self, asset_id: int) -> WireAsset:
        response = await self.mapi.request("GET", f"assets/{asset_id}")
        data = decode_json(response, api=API)
        if isinstance(data, dict) and isinstance(data.get("asset"), dict):
            data = data["asset"]
        try:
            return WireAsset.model_validate(data)
        except ValueError:
            raise MalformedResponseError(
                f"{API} answered GET assets/{asset_id} with an unexpected shape"
            ) from None

    async def sign(
        self,
        filename: str,
        *,
        folder_id: int | None,
        size: str | None,
        asset_id: int | None,
    ) -> SignedResponse:
        """Step 1: a signed storage POST; with ``asset_id`` it replaces that asset's file.

        Sent as retry-safe: a signed response whose upload is never finished leaves no
        visible asset, so a second sign after an ambiguous failure costs nothing.
        """
        body: dict[str, Any] = {"filename": filename, "validate_upload": 1}
        if asset_id is not None:
            body["id"] = asset_id
        if folder_id is not None:
            body["asset_folder_id"] = folder_id
        if size is not None:
            body["size"] = size
        response = await self.mapi.request("POST", "assets/", json=body, idempotent=True)
        return decode_model(response, SignedResponse, api=API)

    async def store(
        self, signed: SignedResponse, path: Path, filename: str, content_type: str
    ) -> None:
        """Step 2: multipart POST to storage, every signed field first and ``file`` last."""
        handles: list[IO[bytes]] = []

        def files() -> dict[str, tuple[str, IO[bytes], str]]:
            handle = path.open("rb")
            handles.append(handle)
            return {"file": (filename, handle, content_type)}

        try:
            # the key is fixed by the signature, so sending the same file twice overwrites
            await self.storage.request(
                "POST", signed.post_url, data=signed.fields, files=files, idempotent=True
            )
        finally:
            for handle in handles:
                handle.close()

    async def finish(self, asset_id: int) -> FinishResponse:
        """Step 3: Storyblok reads the stored file's type and length; the asset appears."""
        response = await self.mapi.request("GET", f"assets/{asset_id}/finish_upload")
        if not response.content.strip():
            return FinishResponse()
        return decode_model(response, FinishResponse, api=API)

    async def update_asset(self, asset_id: int, fields: Mapping[str, Any]) -> None:
        await self.mapi.request("PUT", f"assets/{asset_id}", json={"asset": dict(fields)})

    async def delete_asset(self, asset_id: int) -> None:
        await self.mapi.request("DELETE", f"assets/{asset_id}")

    # -- internal tags -------------------------------------------------------------------

    async def list_asset_tags(self) -> list[WireTag]:
        response = await self.mapi.request(
            "GET", "internal_tags", params={"by_object_type": "asset"}
        )
        return decode_model(response, InternalTagList, api=API).internal_tags

    async def create_asset_tag(self, name: str) -> WireTag:
        response = await self.mapi.request(
            "POST",
            "internal_tags",
            json={"internal_tag": {"name": name, "object_type": "asset"}},
        )
        return decode_model(response, InternalTagEnvelope, api=API).internal_tag

    # -- files ---------------------------------------------------------------------------

    async def signed_asset_url(self, url: str, asset_token: SecretStr) -> str:
        """A short-lived URL for a private asset, from the CDA (no MAPI credentials)."""
        response = await self.storage.request(
            "GET",
            self._config.cda_assets_me_url(),
            params={"filename": url, "token": asset_token.get_secret_value()},
        )
        return decode_model(response, SignedAssetEnvelope, api=API).asset.signed_url

    def download(self, url: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a file with no credentials; a refusal is this file's problem (ItemError)."""
        return self.storage.download(url)
