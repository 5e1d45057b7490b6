"""HTTP calls of the Contento Content API v1 (assets only; the API is read-only).

Speaks wire models (:mod:`connectors.contento.wire`). Every request carries
``Authorization: Bearer <token>`` and ``X-CONTENTO-SITE: <site_id>`` as credentials, so
:class:`~connectors.http.ApiClient` sends them to the API host only; file downloads from the
asset host carry none.

Error mapping on top of :func:`connectors.http.raise_for_response` (facts §4.2, §4.7):

- 401 ``{"message":"Unauthenticated."}``: the token was refused → :class:`AuthError`;
- 403 ``{"message":"You must supply the Site ID..."}`` / ``"You are not permitted to access
  this Site."``: the site id is wrong for this token → :class:`AuthError` naming ``site_id``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pydantic

from connectors.contento.config import DEFAULT_REQUESTS_PER_SECOND, ContentoConfig
from connectors.contento.wire import WireAsset, WireAssetPage
from connectors.errors import AuthError, ItemError, MalformedResponseError, SyncError
from connectors.http import ApiClient, Classifier, decode_json

API = "Contento"
PAGE_SIZE = 100
"""Assets per page; the documented default is 20 and no maximum is documented (facts §4.3)."""
SORT = "created_at:asc"
"""Oldest first: assets added while we list land on pages still to come."""


@dataclass(frozen=True, slots=True)
class AssetPage:
    """One page: its assets and the cursor of the next page (``None`` at the end)."""

    assets: list[WireAsset]
    next_cursor: str | None


def make_classifier(config: ContentoConfig) -> Classifier:
    def classify(response: httpx.Response, text: str) -> SyncError | None:
        status = response.status_code
        where = f"{response.request.method} {response.request.url.path}"
        if status == 401:
            return AuthError(
                f"Contento refused the token (401 {where}): {text} Check token in the job "
                "file's [source] (its environment variable): an API key from Contento's "
                "Account settings > API Keys.",
                status=status,
            )
        if status == 403:
            return AuthError(
                f"Contento refused access to site {config.site_id} (403 {where}): {text} "
                "Check site_id in the job file's [source]: the token's account must be "
                "allowed on that site.",
                status=status,
            )
        return None

    return classify


def _cursor_of(page: WireAssetPage) -> str | None:
    """The next cursor: ``meta.next_cursor``, else the ``cursor`` parameter of ``links.next``."""
    if page.meta.next_cursor:
        return page.meta.next_cursor
    if page.links.next:
        try:
            cursor: str | None = httpx.URL(page.links.next).params.get("cursor")
        except httpx.InvalidURL:
            cursor = None
        if not cursor:
            raise MalformedResponseError(
                f"Contento's links.next {page.links.next[:80]!r} carries no cursor; "
                "the listing cannot go on"
            )
        return cursor
    return None


def parse_page(body: Any) -> AssetPage:
    """A list response, enveloped or (exactly one result) a bare asset object."""
    try:
        if isinstance(body, dict) and "data" not in body and "id" in body:
            return AssetPage([WireAsset.model_validate(body)], None)
        page = WireAssetPage.model_validate(body)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise MalformedResponseError(
            f"Contento answered the asset listing with an unexpected shape ({problems})."
        ) from None
    return AssetPage(page.data, _cursor_of(page))


class ContentoClient:
    """The ``/v1/assets`` endpoints of one site."""

    def __init__(
        self, config: ContentoConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._api = ApiClient(
            api=API,
            base_url=config.api_base(),
            credentials={
                "Authorization": pydantic.SecretStr(f"Bearer {config.token.get_secret_value()}"),
                "X-CONTENTO-SITE": pydantic.SecretStr(config.site_id),
            },
            headers={"Accept": "application/json"},
            requests_per_second=config.requests_per_second or DEFAULT_REQUESTS_PER_SECOND,
            transport=transport,
            classify=make_classifier(config),
        )

    async def list_assets(
        self, *, cursor: str | None = None, folder_id: str | None = None,
        limit: int = PAGE_SIZE,
    ) -> AssetPage:
        """One page of ``GET /v1/assets`` (optionally only folder ``folder_id``), oldest first."""
        params: dict[str, Any] = {"limit": limit, "sort": SORT}
        if folder_id is not None:
            params["folder_id"] = folder_id
        if cursor is not None:
            params["cursor"] = cursor
        response = await self._api.request("GET", "assets", params=params)
        return parse_page(decode_json(response, api=API))

    async def get_asset(self, asset_id: str) -> WireAsset:
        """``GET /v1/assets/{id}``: a bare asset object. NotFoundError when it is gone."""
        if not asset_id or any(c in asset_id for c in "/?#%"):
            raise ItemError(f"{asset_id!r} is not a Contento asset id")
        response = await self._api.request("GET", f"assets/{asset_id}")
        body = decode_json(response, api=API)
        try:
            return WireAsset.model_validate(body)
        except pydantic.ValidationError:
            raise MalformedResponseError(
                f"Contento answered GET /v1/assets/{asset_id} with an unexpected shape"
            ) from None

    def download(self, url: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a file URL; no credentials are sent (the asset host is not the API)."""
        return self._api.download(url)

    async def aclose(self) -> None:
        await self._api.aclose()
