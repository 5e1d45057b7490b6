"""Shared HTTP behaviour: retries, 429 budget, adaptive pacing, credentials per host."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from connectors.errors import AmbiguousError, AuthError, ItemError, RetryableError
from connectors.http import ApiClient, Pacer, RetryPolicy


def client(handler: httpx.MockTransport, **kw: object) -> ApiClient:
    return ApiClient(api="Test", base_url="https://api.example.com/v1",
                     credentials={"authorization": SecretStr("tok-123")},
                     transport=handler, **kw)  # type: ignore[arg-type]


async def test_429s_have_their_own_larger_budget() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 9:
            return httpx.Response(429, json={"error": "slow down"})
        return httpx.Response(200, json={"ok": True})

    async with client(httpx.MockTransport(handle)) as api:
        response = await api.request("GET", "things")
    assert response.json() == {"ok": True}
    assert len(calls) == 10, "nine 429s are more than the 6 ordinary attempts, still retried"


async def test_5xx_retries_run_out_after_the_ordinary_budget() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"error": "down"})

    async with client(httpx.MockTransport(handle), retry=RetryPolicy(attempts=3)) as api:
        with pytest.raises(RetryableError, match="server error 503"):
            await api.request("GET", "things")
    assert len(calls) == 3


async def test_a_create_is_not_resent_after_a_5xx() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502, json={"error": "bad gateway"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(AmbiguousError):
            await api.request("POST", "things", json={"a": 1})
    assert len(calls) == 1


def test_pacer_slows_down_on_429_and_recovers_on_success() -> None:
    pacer = Pacer(6.0)
    request = httpx.Request("GET", "https://api.example.com/")
    for _ in range(3):
        pacer.observe(httpx.Response(429, request=request))
    assert pacer.rate == pytest.approx(6.0 * 0.97 * 0.85**3)
    slowest = pacer.rate
    for _ in range(200):
        pacer.observe(httpx.Response(200, request=request))
    assert slowest is not None
    assert pacer.rate == pytest.approx(6.0 * 0.97), "never above the configured rate"
    for _ in range(100):
        pacer.observe(httpx.Response(429, request=request))
    assert pacer.rate == pytest.approx(0.6 * 0.97), "never below a tenth of it"


async def test_credentials_only_go_to_the_api_host_and_never_with_downloads() -> None:
    seen: dict[str, httpx.Headers] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request.headers
        return httpx.Response(200, content=b"bytes")

    async with client(httpx.MockTransport(handle)) as api:
        await api.request("GET", "things")
        await api.request("GET", "https://cdn.example.com/file.png")
        async with api.download("https://api.example.com/v1/files/x.png") as chunks:
            assert b"".join([c async for c in chunks]) == b"bytes"
    assert seen["https://api.example.com/v1/things"]["authorization"] == "tok-123"
    assert "authorization" not in seen["https://cdn.example.com/file.png"]
    assert "authorization" not in seen["https://api.example.com/v1/files/x.png"]


async def test_401_is_fatal_for_the_api_but_item_level_for_a_file_host() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "nope"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(AuthError) as err:
            await api.request("GET", "things")
        assert "tok-123" not in str(err.value)
        with pytest.raises(ItemError, match="file host refused"):
            async with api.download("https://cdn.example.com/private.png"):
                pass


async def test_a_429_that_names_its_limit_caps_the_pacer() -> None:
    from connectors.storyblok.client import named_rate_limit

    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(
                429, json={"error": "Rate limit of 3 request per second reached. Retry later."})
        return httpx.Response(200, json={})

    async with client(httpx.MockTransport(handle), requests_per_second=6.0,
                      rate_hint=named_rate_limit) as api:
        await api.request("GET", "things")
        assert api.pacer.rate == pytest.approx(3.0 * 0.97)
        for _ in range(4):
            await api.request("GET", "things")
        assert api.pacer.rate == pytest.approx(3.0 * 0.97), "never climbs above the named limit"
