"""HTTP calls of the Contentstack Content Delivery API v3 (assets; read-only).

Every request carries ``api_key`` and ``access_token`` (the delivery token) as credentials, so
:class:`~connectors.http.ApiClient` sends them to the delivery host only, plus the ``branch``
header and the ``environment`` (mandatory with a delivery token), ``locale`` and
``include_fallback`` parameters (seed 000, "When using Delivery Tokens"). Downloads carry none.

Error mapping on top of :func:`connectors.http.raise_for_response`:

- 401/403/412: the api_key or delivery token was refused → :class:`AuthError`;
- 422 naming the environment or locale → :class:`ConfigError` (the job file names one the
  stack lacks, or the token is not scoped to it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pydantic

from connectors.contentstack.client import error_text
from connectors.contentstack.wire import WireAsset, WireAssetEnvelope, WireAssetList
from connectors.contentstack_delivery.config import (
    DEFAULT_REQUESTS_PER_SECOND,
    ContentstackDeliveryConfig,
)
from connectors.errors import AuthError, ConfigError, ItemError, SyncError
from connectors.http import ApiClient, Classifier, decode_model

API = "Contentstack Delivery API"
PAGE_SIZE = 100
"""Assets per page: the delivery SDKs' default is 100 (facts §1.3)."""


def make_classifier(config: ContentstackDeliveryConfig) -> Classifier:
    def classify(response: httpx.Response, text: str) -> SyncError | None:
        status = response.status_code
        where = f"{response.request.method} {response.request.url.path}"
        if status in (401, 403, 412):
            return AuthError(
                f"the Contentstack Delivery API refused the credentials ({status} {where}): "
                f"{text}. Check api_key (the stack's API key) and delivery_token (a delivery "
                f"token of environment {config.environment!r}, in its environment variable) "
                "and the region: delivery tokens are per environment, and a stack answers "
                "only on its region's host.",
                status=status,
            )
        lowered = text.lower()
        if status == 422 and ("environment" in lowered or "locale" in lowered):
            return ConfigError(
                f"the Contentstack Delivery API refused the request ({status} {where}): "
                f"{text}. Check environment = {config.environment!r}"
                + (f" and locale = {config.locale!r}" if config.locale else "")
                + " in the job file's [source]: they must exist in the stack and the "
                "delivery token must belong to that environment.",
                status=status,
            )
        return None

    return classify


class ContentstackDeliveryClient:
    """``GET /v3/assets`` of one stack, branch and environment."""

    def __init__(
        self, config: ContentstackDeliveryConfig, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._api = ApiClient(
            api=API,
            base_url=config.api_base(),
            credentials={
                # not a secret, but it names the stack: send it to the API host only
                "api_key": pydantic.SecretStr(config.api_key),
                "access_token": config.delivery_token,
            },
            requests_per_second=config.requests_per_second or DEFAULT_REQUESTS_PER_SECOND,
            transport=transport,
            error_text=error_text,
            classify=make_classifier(config),
        )

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"environment": self._config.environment}
        if self._config.locale:
            params["locale"] = self._config.locale
        if self._config.include_fallback:
            params["include_fallback"] = "true"
        return params

    async def list_assets(self, *, skip: int, limit: int = PAGE_SIZE) -> WireAssetList:
        """One page of published assets, oldest first, with width/height and the count."""
        params = {
            **self._params(),
            "include_dimension": "true",
            "include_count": "true",
            "asc": "created_at",
            "skip": skip,
            "limit": limit,
        }
        response = await self._api.request(
            "GET", "assets", params=params, headers={"branch": self._config.branch}
        )
        return decode_model(response, WireAssetList, api=API)

    async def get_asset(self, uid: str) -> WireAsset:
        """``GET /v3/assets/{uid}``: the asset as published to the environment (and locale).
        NotFoundError when it is not (deleted, or not published there)."""
        if not uid or any(c in uid for c in "/?#%"):
            raise ItemError(f"{uid!r} is not a Contentstack uid")
        response = await self._api.request(
            "GET", f"assets/{uid}", params=self._params(),
            headers={"branch": self._config.branch},
        )
        return decode_model(response, WireAssetEnvelope, api=API).asset

    def download(self, url: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a file URL; no credentials are sent (an asset CDN host)."""
        return self._api.download(url)

    async def aclose(self) -> None:
        await self._api.aclose()
