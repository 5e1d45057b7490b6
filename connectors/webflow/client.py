"""HTTP calls of the Webflow Data API v2 asset endpoints, one method per endpoint.

Two :class:`~connectors.http.ApiClient` instances:

- ``api``: ``https://api.webflow.com/v2/`` (or ``base_url`` + ``/v2/``) with
  ``Authorization: Bearer <token>``, paced per minute at the plan's limit (§3.7);
- ``storage``: no credentials and no pacing, for the presigned storage POST (the ``uploadUrl``
  Create Asset returns) and file downloads. The token never reaches the storage or CDN host,
  even when an emulator serves them from the API's host.

Methods return wire models (:mod:`connectors.webflow.wire`); the connector maps them.
Sources: the v2 OpenAPI spec's asset and asset_folder paths; reference/cms-api-facts.md §3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import SecretStr

from connectors.errors import AuthError, ConfigError, NotFoundError
from connectors.http import ApiClient, decode_model
from connectors.jsontext import checked_loads
from connectors.webflow.config import WebflowConfig
from connectors.webflow.wire import (
    AssetList,
    FolderList,
    UploadTicket,
    WireAsset,
    WireFolder,
    WireSite,
)

API = "Webflow"
STORAGE = "Webflow file storage"
WINDOW = 60.0
"""Webflow counts requests per minute (§3.7)."""


def webflow_error_text(response: httpx.Response) -> str:
    """``code: message`` from the documented body ``{code, message, externalReference,
    details}`` (§3.8), plus the first details; the raw text for anything else."""
    try:
        body = checked_loads(response.content)
    except ValueError:
        return _storage_text(response)
    if not isinstance(body, dict):
        return str(body)[:200]
    code, message = body.get("code"), body.get("message")
    text = ": ".join(str(v) for v in (code, message) if v) or str(body)[:200]
    details = body.get("details")
    if isinstance(details, list) and details:
        text += f" ({'; '.join(str(d) for d in details[:3])[:200]})"
    return text


_XML_TAG = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")


def _storage_text(response: httpx.Response) -> str:
    """S3-style XML errors: ``<Code>EntityTooLarge</Code><Message>...</Message>``."""
    found = dict(_XML_TAG.findall(response.text[:4000]))
    if found:
        return ": ".join(v for v in (found.get("Code"), found.get("Message")) if v)
    return response.text[:200].strip() or response.reason_phrase


class WebflowClient:
    """Typed access to one site's assets; close with :meth:`aclose`."""

    def __init__(
        self, config: WebflowConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self.api = ApiClient(
            api=API,
            base_url=config.api_base(),
            credentials={
                "authorization": SecretStr(f"Bearer {config.token.get_secret_value()}")
            },
            headers={"accept": "application/json"},
            requests_per_second=config.requests_per_second,
            rate_window=WINDOW,
            transport=transport,
            error_text=webflow_error_text,
        )
        self.storage = ApiClient(
            api=STORAGE,
            base_url=config.api_base(),
            credentials=None,
            requests_per_second=None,
            timeout=600.0,
            transport=transport,
            error_text=webflow_error_text,
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.storage.aclose()

    def _site_missing(self, exc: NotFoundError) -> ConfigError:
        return ConfigError(
            f"Webflow site {self._config.site_id} was not found ({exc.message}). Check "
            "site_id, and that the token belongs to that site (or its workspace).",
            status=exc.status,
        )

    @staticmethod
    def _locale(locale_id: str | None) -> dict[str, str]:
        return {"localeId": locale_id} if locale_id else {}

    # -- site ----------------------------------------------------------------------------

    async def get_site(self) -> WireSite:
        """``GET /sites/{site_id}`` (scope ``sites:read``): the site and its locales, for
        ``locales = "site"``. A refused token is a ConfigError saying which scope is missing
        and how to do without it."""
        try:
            response = await self.api.request("GET", f"sites/{self._config.site_id}")
        except NotFoundError as exc:
            raise self._site_missing(exc) from None
        except AuthError as exc:
            raise AuthError(
                f"{exc.message}. locales = \"site\" reads the site's locales with Get Site, "
                "which needs the sites:read scope: add it to the token, or list the locales "
                "in the job file instead: locales = {de-DE = \"<localeId>\"}",
                status=exc.status,
            ) from None
        return decode_model(response, WireSite, api=API)

    # -- folders -------------------------------------------------------------------------

    async def list_folders(self, params: Mapping[str, Any]) -> FolderList:
        """One page of asset folders (``GET /sites/{site_id}/asset_folders``)."""
        try:
            response = await self.api.request(
                "GET", f"sites/{self._config.site_id}/asset_folders", params=params
            )
        except NotFoundError as exc:
            raise self._site_missing(exc) from None
        return decode_model(response, FolderList, api=API)

    async def create_folder(self, name: str, parent_id: str | None) -> WireFolder:
        """``POST /sites/{site_id}/asset_folders``: folders can only be created (§3.4)."""
        body: dict[str, Any] = {"displayName": name}
        if parent_id is not None:
            body["parentFolder"] = parent_id
        response = await self.api.request(
            "POST", f"sites/{self._config.site_id}/asset_folders", json=body
        )
        return decode_model(response, WireFolder, api=API)

    # -- assets --------------------------------------------------------------------------

    async def list_assets(self, params: Mapping[str, Any], *,
                          locale_id: str | None = None) -> AssetList:
        """One page of assets (``offset`` / ``limit`` at most 100), in ``locale_id``."""
        try:
            response = await self.api.request(
                "GET", f"sites/{self._config.site_id}/assets",
                params={**params, **self._locale(locale_id)},
            )
        except NotFoundError as exc:
            raise self._site_missing(exc) from None
        return decode_model(response, AssetList, api=API)

    async def get_asset(self, asset_id: str, *, locale_id: str | None = None) -> WireAsset:
        response = await self.api.request("GET", f"assets/{asset_id}",
                                          params=self._locale(locale_id) or None)
        return decode_model(response, WireAsset, api=API)

    async def create_asset(self, file_name: str, file_hash: str,
                           parent_folder: str | None) -> UploadTicket:
        """Step 1: the asset's id and its presigned storage POST.

        Not retried blindly: a 5xx or a cut connection raises AmbiguousError (the asset id
        may exist); the connector reconciles.
        """
        body: dict[str, Any] = {"fileName": file_name, "fileHash": file_hash}
        if parent_folder is not None:
            body["parentFolder"] = parent_folder
        response = await self.api.request(
            "POST", f"sites/{self._config.site_id}/assets", json=body
        )
        return decode_model(response, UploadTicket, api=API)

    async def store(self, ticket: UploadTicket, path: Path, filename: str,
                    content_type: str) -> None:
        """Step 2: multipart POST to ``uploadUrl``: every ``uploadDetails`` field verbatim
        (their casing is part of the signature), the file last (§3.5)."""
        handles: list[IO[bytes]] = []

        def files() -> dict[str, tuple[str, IO[bytes], str]]:
            handle = path.open("rb")
            handles.append(handle)
            return {"file": (filename, handle, content_type)}

        try:
            # the key is fixed by the signature: sending the same file again overwrites it
            await self.storage.request("POST", ticket.upload_url, data=ticket.upload_details,
                                       files=files, idempotent=True)
        finally:
            for handle in handles:
                handle.close()

    async def update_asset(self, asset_id: str, body: Mapping[str, Any], *,
                           locale_id: str | None = None) -> WireAsset:
        """``PATCH /assets/{asset_id}``: ``displayName`` and ``altText`` (in ``locale_id``)."""
        response = await self.api.request(
            "PATCH", f"assets/{asset_id}", json=dict(body),
            params=self._locale(locale_id) or None, idempotent=True,
        )
        return decode_model(response, WireAsset, api=API)

    async def delete_asset(self, asset_id: str) -> None:
        await self.api.request("DELETE", f"assets/{asset_id}")
