"""An editor at work while we list: a transport that edits the library between two pages."""

from __future__ import annotations

from collections.abc import Callable

import httpx


class EditBetweenPages(httpx.AsyncBaseTransport):
    """Pass requests to ``inner``; right after the first one ``is_first_page`` matches is
    answered, send ``edit`` (e.g. the API's own ``DELETE`` of an asset) through ``inner``.

    ``edited`` holds the status of the edit once it was made (it must be 2xx).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *,
                 is_first_page: Callable[[httpx.Request], bool], edit: httpx.Request) -> None:
        self.inner = inner
        self.is_first_page = is_first_page
        self.edit = edit
        self.edited: int | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.edited is None and self.is_first_page(request):
            await response.aread()
            answer = await self.inner.handle_async_request(self.edit)
            await answer.aread()
            self.edited = answer.status_code
            assert answer.is_success, answer.text
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
