"""Shared HTTP behaviour: retries, 429 budget, adaptive pacing, credentials per host."""

from __future__ import annotations

import asyncio
import gzip
import io
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from connectors.errors import AmbiguousError, AuthError, FatalError, ItemError, RetryableError
from connectors.http import (
    MAX_REDIRECTS,
    ApiClient,
    Pacer,
    RetryPolicy,
    duration,
    observe_waits,
)


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


async def test_a_connection_failure_gives_up_after_the_ordinary_budget_429s_apart() -> None:
    """The README tester's finding: README says connection errors get 6 tries, the message
    said "gave up after 8 tries": the two 429s between, which count apart, were in it."""
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 2:
            return httpx.Response(429, json={"error": "slow down"})
        raise httpx.ConnectError("All connection attempts failed", request=request)

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(RetryableError) as info:
            await api.request("GET", "things")
    assert len(calls) == RetryPolicy().attempts + 2 == 8
    assert re.search(r"\(gave up after 6 tries over [\d.]+ s; 2 more answered 429 \(rate "
                     r"limited\)\)$", str(info.value)), info.value


async def test_429s_running_out_name_their_own_budget_and_the_other_failures() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        return httpx.Response(429, json={"error": "slow down"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(RetryableError) as info:
            await api.request("GET", "things")
    assert len(calls) == RetryPolicy().rate_limited_attempts + 1
    assert re.search(r"\(gave up after 12 tries over [\d.]+ s; 1 more failed otherwise\)$",
                     str(info.value)), info.value


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
    assert pacer.rate == pytest.approx(6.0 * Pacer.MARGIN * 0.85**3)
    slowest = pacer.rate
    for _ in range(200):
        pacer.observe(httpx.Response(200, request=request))
    assert slowest is not None
    assert pacer.rate == pytest.approx(6.0 * Pacer.MARGIN), "never above the configured rate"
    for _ in range(100):
        pacer.observe(httpx.Response(429, request=request))
    assert pacer.rate == pytest.approx(0.6 * Pacer.MARGIN), "never below a tenth of it"


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
        assert api.pacer.rate == pytest.approx(3.0 * Pacer.MARGIN)
        for _ in range(4):
            await api.request("GET", "things")
        assert api.pacer.rate == pytest.approx(3.0 * Pacer.MARGIN), (
            "never climbs above the named limit")


# -- downloads: streaming failures, content coding, redirects (issue 6, section 2) --------


class Streamed(httpx.AsyncByteStream):
    """A body that arrives over the wire (not preloaded), as from a real file host."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 1000):
            yield self.data[i:i + 1000]


async def drain(api: ApiClient, url: str) -> bytes:
    async with api.download(url) as chunks:
        return b"".join([c async for c in chunks])


async def test_a_body_cut_short_raises_retryable_and_a_new_download_succeeds() -> None:
    """The retry is the caller's: the download never retries around its ``yield``.

    On the old code the error thrown back into the context manager was caught by a retry
    loop wrapped around the ``yield``, which then yielded again: ``RuntimeError: generator
    didn't stop after athrow()``.
    """
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = b"x" * 10 if len(calls) == 1 else b"x" * 20
        return httpx.Response(200, stream=Streamed(body), headers={"content-length": "20"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(RetryableError, match="10 of 20 bytes"):
            await drain(api, "https://cdn.example.com/f.bin")
        assert await drain(api, "https://cdn.example.com/f.bin") == b"x" * 20


async def test_an_error_while_consuming_the_body_propagates_as_itself() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"abc")

    async def consume(api: ApiClient) -> None:
        async with api.download("https://cdn.example.com/f.bin") as chunks:
            async for _ in chunks:
                raise OSError("disk full")

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(OSError, match="disk full"):
            await consume(api)


async def test_downloads_ask_for_bytes_as_stored_and_count_length_on_the_raw_stream() -> None:
    """A host that gzips anyway with the compressed Content-Length: the file arrives whole."""
    data = b"plain text that compresses well " * 200
    packed = gzip.compress(data)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=Streamed(packed), headers={
            "content-encoding": "gzip", "content-length": str(len(packed))})

    async with client(httpx.MockTransport(handle)) as api:
        assert await drain(api, "https://cdn.example.com/big.txt") == data
    assert seen[0].headers["accept-encoding"] == "identity"


async def test_a_body_that_cannot_be_decoded_is_retryable_not_a_crash() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Streamed(b"not gzip at all"),
                              headers={"content-encoding": "gzip"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(RetryableError, match="DecodingError"):
            await drain(api, "https://cdn.example.com/f.bin")


async def test_an_api_answer_that_cannot_be_decoded_is_retried() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(200, content=b"garbage", headers={"content-encoding": "gzip"})
        return httpx.Response(200, json={"ok": True})

    async with client(httpx.MockTransport(handle)) as api:
        response = await api.request("GET", "things")
    assert response.json() == {"ok": True}
    assert len(calls) == 2


async def test_downloads_follow_redirects_without_credentials() -> None:
    """Even a redirect back to the API host gets no credential: downloads never carry one."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "cdn.example.com":
            return httpx.Response(301, headers={"location": "https://files.example.net/a/f.png"})
        if request.url.host == "files.example.net":
            return httpx.Response(302, headers={
                "location": "https://api.example.com/v1/stored/f.png?sig=1"})
        return httpx.Response(200, content=b"png bytes")

    async with client(httpx.MockTransport(handle)) as api:
        assert await drain(api, "https://cdn.example.com/f.png") == b"png bytes"
    assert [str(r.url) for r in seen] == [
        "https://cdn.example.com/f.png",
        "https://files.example.net/a/f.png",
        "https://api.example.com/v1/stored/f.png?sig=1",
    ]
    for request in seen:
        assert "authorization" not in request.headers


async def test_too_many_redirects_fail_the_item_with_the_reason() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(301, headers={"location": f"/hop/{len(calls)}"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(ItemError, match=f"redirected more than {MAX_REDIRECTS} times"):
            await drain(api, "https://cdn.example.com/f.png")
    assert len(calls) == MAX_REDIRECTS + 1, "bounded, and not retried"


async def test_a_silent_server_is_named_with_the_seconds_waited() -> None:
    """A server that accepts the connection and never answers: host and seconds in the error."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    tries = 0
    try:
        api = ApiClient(api="Test", base_url=f"http://127.0.0.1:{port}", timeout=0.2)
        async with api:
            with pytest.raises(RetryableError) as info:
                await api.request("GET", "things")
        listener.setblocking(False)
        while True:  # each try was a new connection, waiting in the backlog
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                break
            tries += 1
    finally:
        listener.close()
    assert tries == RetryPolicy().no_answer_attempts == 3, "a silent server gets fewer tries"
    assert re.fullmatch(
        rf"Test: no answer from 127\.0\.0\.1:{port} in 3 tries over [\d.]+ s \(read timeout "
        rf"0\.2 s each, GET 127\.0\.0\.1:{port}/things\); the server may be overloaded or "
        "unreachable", str(info.value)), str(info.value)


async def test_a_refused_connection_names_host_port_and_the_tries() -> None:
    """No server on the port: host:port (not just the host) and how long it was tried."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    api = ApiClient(api="Test", base_url=f"http://127.0.0.1:{port}", timeout=0.2,
                    retry=RetryPolicy(attempts=2))
    async with api:
        with pytest.raises(RetryableError) as info:
            await api.request("GET", "things")
    assert f"(GET 127.0.0.1:{port}/things)" in str(info.value)
    assert re.search(r"\(gave up after 2 tries over [\d.]+ s\)$", str(info.value)), info.value


def test_durations_read_like_a_person_would_say_them() -> None:
    assert [duration(s) for s in (0.6, 45, 373, 3720)] == [
        "0.6 s", "45 s", "6 min 13 s", "1 h 2 min"]


@pytest.mark.parametrize("header", ["86400", "Wed, 21 Oct 2099 07:28:00 GMT"])
async def test_a_retry_after_beyond_the_cap_stops_at_once_naming_the_wait(header: str) -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": header}, json={"error": "quota"})

    async with client(httpx.MockTransport(handle)) as api:
        with pytest.raises(FatalError, match=r"Test asks to wait [\d.,]+ (h|days) before the next "
                                             r"request .*quota exhausted\?") as info:
            await api.request("GET", "things")
    assert len(calls) == 1, "no retry: the server asked for hours"
    if header == "86400":
        assert "wait 24 h" in str(info.value)


async def test_waits_are_reported_to_observers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("connectors.http._testing", False)  # this wait is real: 1.2 s
    seen: list[tuple[str, str, float]] = []
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "1.2"}, json={"error": "x"})
        return httpx.Response(200, json={})

    async with client(httpx.MockTransport(handle)) as api:
        with observe_waits(lambda *a: seen.append(a)):
            await api.request("GET", "things")
    assert seen, "the Retry-After was reported"
    name, reason, until = seen[0]
    assert (name, reason) == ("Test", "Retry-After 1.2 s (429 on /v1/things)")
    assert until <= time.time(), "reported before the wait, which is over now"


def test_pacer_reports_a_long_wait_for_the_rate_limit() -> None:
    seen: list[tuple[str, str, float]] = []
    pacer = Pacer(0.5, api="Slow")

    async def two() -> None:
        await pacer.wait()
        with anyio.move_on_after(0.05), observe_waits(lambda *a: seen.append(a)):
            await pacer.wait()  # the second start is 2 s away: reported, then cancelled

    anyio.run(two)
    assert seen
    assert seen[0][:2] == ("Slow", f"rate limit ({0.5 * Pacer.MARGIN:.3g} requests/s)")


@pytest.mark.parametrize(("size", "buffered"), [(1000, True), (5000, False)])
async def test_a_small_multipart_body_is_sent_as_one_buffer_a_large_one_streams(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int,
        buffered: bool) -> None:
    """A small upload leaves as one buffer (one socket write, not one per multipart piece:
    issue 12); above BUFFERED_BODY it streams, so memory stays flat. The bytes are the
    same either way, and a retry sends the whole file again."""
    from connectors import http as http_module

    monkeypatch.setattr(http_module, "BUFFERED_BODY", 4096)
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    seen: list[tuple[bool, bytes]] = []

    class Inspecting(httpx.AsyncBaseTransport):
        """Sees the request's body as the connection would (MockTransport reads it first)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            one_buffer = isinstance(request.stream, httpx.ByteStream)
            seen.append((one_buffer, await request.aread()))
            if len(seen) == 1:
                return httpx.Response(503, json={"error": "try again"})
            return httpx.Response(200, json={"ok": True})

    async with client(Inspecting()) as api:  # type: ignore[arg-type]
        response = await api.request(
            "PUT", "files/1", data={"title": "t"},
            files=lambda: {"file": ("f.bin", path.open("rb"), "application/octet-stream")})
    assert response.json() == {"ok": True}
    assert [one for one, _ in seen] == [buffered, buffered]
    assert all(path.read_bytes() in body for _, body in seen)


def test_sniffio_is_installed_so_httpcore_finds_it_without_a_search() -> None:
    """httpcore imports sniffio for every lock it makes (several per request); when it is
    absent, each import searches sys.path in vain (about a fifth of the per-request CPU in the
    overhead benchmark, issue 12). A dependency of ours for that reason alone."""
    import importlib.util

    assert importlib.util.find_spec("sniffio") is not None, "pip install sniffio (pyproject)"


async def test_the_tls_context_is_built_on_the_first_https_request_not_with_the_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the CA bundle costs 50-100 ms of CPU per client (issue 12: start-up): a client
    of an http:// API never reads it; the first https:// request does, once."""
    import ssl

    from connectors.emulation import free_port
    from connectors.http import TlsOnDemand

    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def spy(self: ssl.SSLContext, *args: object, **kw: object) -> None:
        loads.append(args or kw)
        real(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", spy)
    api = ApiClient(api="Test", base_url="http://127.0.0.1:9/v1")
    await api.aclose()
    assert loads == []
    port = free_port()  # nothing listens there: the request fails after the TLS set-up
    transport = TlsOnDemand(httpx.Limits())
    for _ in range(2):
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(
                httpx.Request("GET", f"https://127.0.0.1:{port}/"))
    await transport.aclose()
    assert len(loads) == 1


class _Server:
    """A loopback HTTP/1.1 server (optionally TLS) that answers every request ``201 {}`` on
    a kept-alive connection and records each request's body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.bodies.append(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[str]]:
    """Each write httpcore's anyio connection makes (its size), each socket look-up."""
    from httpcore._backends.anyio import AnyIOStream

    writes: list[int] = []
    lookups: list[str] = []
    real_write, real_info = AnyIOStream.write, AnyIOStream.get_extra_info

    async def write(self: AnyIOStream, buffer: bytes, timeout: float | None = None) -> None:
        writes.append(len(buffer))
        await real_write(self, buffer, timeout)

    def info(self: AnyIOStream, name: str) -> object:
        lookups.append(name)
        return real_info(self, name)

    monkeypatch.setattr(AnyIOStream, "write", write)
    monkeypatch.setattr(AnyIOStream, "get_extra_info", info)
    return writes, lookups


def _upload(size: int) -> Callable[[], object]:
    return lambda: {"asset[upload]": ("a.txt", io.BytesIO(b"x" * size), "text/plain")}


async def test_a_request_goes_out_in_one_write_and_its_socket_is_looked_up_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Head and body of a small upload leave in one write (httpcore writes them apart: two
    system calls, and two wake-ups of the server, per request), and a kept-alive
    connection's socket is looked up once, not before every request (issue 12). A body
    larger than COALESCE_BYTES still goes out as it comes: nothing big is held back."""
    from connectors.http import COALESCE_BYTES

    writes, lookups = _count_writes(monkeypatch)
    server = _Server()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with ApiClient(api="Test", base_url=f"http://127.0.0.1:{port}/v1") as api:
        for _ in range(4):
            response = await api.request("POST", "assets", data={"asset[title]": "t"},
                                         files=_upload(100), idempotent=False)
            assert response.status_code == 201
        assert len(writes) == 4, writes
        assert lookups.count("socket") + lookups.count("is_readable") == 1, lookups
        writes.clear()
        await api.request("POST", "assets", files=_upload(3 * COALESCE_BYTES + 5),
                          idempotent=False)
        assert sum(writes) > 3 * COALESCE_BYTES
        assert max(writes) > COALESCE_BYTES or len(writes) >= 2
    listener.close()
    await listener.wait_closed()
    assert len(server.bodies) == 5
    assert all(b"x" * 100 in body for body in server.bodies[:4])
    assert b"x" * (3 * COALESCE_BYTES + 5) in server.bodies[4]


@pytest.mark.skipif(shutil.which("openssl") is None,
                    reason="needs the openssl command to make a test certificate")
async def test_an_https_request_goes_through_the_coalescing_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same pool serves https: the TLS connection is wrapped too, verifies the server's
    certificate (SSL_CERT_FILE, as httpx reads it) and sends each request in one write."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = shutil.which("openssl")
    assert openssl is not None
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    writes, _ = _count_writes(monkeypatch)
    server = _Server()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    async with ApiClient(api="Test", base_url=f"https://127.0.0.1:{port}/v1") as api:
        for _ in range(2):
            response = await api.request("POST", "assets", files=_upload(100),
                                         idempotent=False)
            assert response.json() == {}
    listener.close()
    await listener.wait_closed()
    assert len(server.bodies) == 2
    assert len(writes) == 2, writes


@pytest.mark.parametrize(("body", "says"), [
    (b'{"assets": [{"title": "\\ud800"}]}', r"lone UTF-16 surrogate .* at \.assets\[0\]\.title"),
    (b"[" * 100_000, r"damaged or too deeply nested JSON"),
], ids=["lone surrogate", "nested 100,000 deep"])
def test_a_damaged_json_body_is_a_malformed_response_naming_the_url(body: bytes,
                                                                    says: str) -> None:
    """An API body json.loads accepts but nothing downstream can use (a lone surrogate
    cannot be encoded as UTF-8) or that json.loads cannot parse without RecursionError:
    MalformedResponseError naming the URL, never an unexpected error."""
    from connectors.errors import MalformedResponseError
    from connectors.http import decode_json

    response = httpx.Response(200, content=body,
                              request=httpx.Request("GET", "http://127.0.0.1:1/v3/assets"))
    with pytest.raises(MalformedResponseError, match=says) as err:
        decode_json(response, api="Contentstack")
    assert "/v3/assets" in str(err.value)


async def test_a_request_free_to_start_takes_no_task_switch_in_the_pacer() -> None:
    """With no limit to keep (or far below it), nobody waiting and the first answer in, a
    request starts without yielding to another task (issue 12: a free anyio lock still
    switched tasks, a pass of the event loop per request); every start is still counted."""
    pacer = Pacer(None)
    request = httpx.Request("GET", "https://api.example.com/")
    first = await pacer.wait()
    pacer.observe(httpx.Response(200, request=request), sent=first)  # the probe's answer
    others_ran = anyio.Event()

    async def other() -> None:
        others_ran.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        starts = [await pacer.wait() for _ in range(5)]
        assert not others_ran.is_set()
    assert starts == sorted(starts)
    assert list(pacer._starts)[-5:] == starts


async def test_a_request_behind_a_waiting_one_waits_its_turn() -> None:
    """The lock-free start never jumps the queue: while one request sleeps for the limit,
    the next one waits behind it and starts one interval later."""
    pacer = Pacer(20.0)
    request = httpx.Request("GET", "https://api.example.com/")
    first = await pacer.wait()
    pacer.observe(httpx.Response(200, request=request), sent=first)
    starts: list[float] = []

    async def one() -> None:
        starts.append(await pacer.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    interval = 1 / (20.0 * Pacer.MARGIN)
    assert starts == sorted(starts)
    gaps = [b - a for a, b in zip([first, *starts], starts, strict=False)]
    assert min(gaps) >= interval - 1e-3, gaps


@pytest.mark.parametrize(("data", "filename", "content_type"), [
    ({"asset[title]": 'Tïtle "quoted" \\ and\na line break', "asset[tags]": ""},
     'na"me\r\n é.png', "image/png"),
    (None, "plain.txt", "text/plain"),
    ({}, "", "application/octet-stream"),
])
def test_a_small_form_is_built_in_one_buffer_as_httpx_lays_it_out(
        tmp_path: Path, data: dict[str, str] | None, filename: str, content_type: str) -> None:
    """An upload's multipart body is built in one pass (issue 12: httpx's stream cost three:
    its parts, their lengths, then the read into one buffer), byte for byte the body httpx
    builds (quotes, backslashes and line breaks in names escaped the HTML form way)."""
    from connectors.http import small_form

    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 3)
    with path.open("rb") as mine_file, path.open("rb") as theirs_file:
        form = small_form(data, {"asset[upload]": (filename, mine_file, content_type)})
        theirs = httpx.Request("POST", "https://api.example.com/", data=data,
                               files={"asset[upload]": (filename, theirs_file, content_type)})
        expected = theirs.read()
    assert form is not None
    body, mine_type = form
    boundary = mine_type.removeprefix("multipart/form-data; boundary=")
    their_boundary = theirs.headers["content-type"].removeprefix(
        "multipart/form-data; boundary=")
    assert body.replace(boundary.encode(), b"B") == expected.replace(their_boundary.encode(),
                                                                     b"B")


def test_a_form_too_large_or_not_text_is_left_to_httpx(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import http as http_module

    monkeypatch.setattr(http_module, "BUFFERED_BODY", 100)
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 101)
    with path.open("rb") as file:
        assert http_module.small_form({}, {"f": ("f.bin", file, "text/plain")}) is None
        assert http_module.small_form({"n": 1}, {"f": ("f.bin", file, "text/plain")}) is None
        assert http_module.small_form({}, {"f": ("f.bin", b"bytes", "text/plain")}) is None


async def test_a_limit_that_binds_keeps_the_locked_start() -> None:
    """With a window's worth of starts kept (a limit that binds), a start takes the lock and
    so lets the answers already arrived be read first (a 429's hold, a spent window): the
    lock-free start is for a pacer far below its limit."""
    pacer = Pacer(10.0)
    request = httpx.Request("GET", "https://api.example.com/")
    first = await pacer.wait()
    pacer.observe(httpx.Response(200, request=request), sent=first)
    now = time.monotonic()
    pacer._starts.clear()
    pacer._starts.extend(now - 2.5 + i * 0.05 for i in range(10))  # a window's count, past
    pacer._next = now
    others_ran = anyio.Event()

    async def other() -> None:
        others_ran.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await pacer.wait()
        assert others_ran.is_set()


async def _get(api: ApiClient, url: str) -> bytes:
    """One GET through the API request path (``request``)."""
    return (await api.request("GET", url)).content


@pytest.mark.parametrize("fetch", [_get, drain], ids=["request", "download"])
async def test_429s_with_retry_after_are_waited_out_apart_from_the_tries_on_every_path(
        fetch: Callable[[ApiClient, str], Any]) -> None:
    """One retry rule for API requests and file downloads: nine 429s (more than the 6
    ordinary tries) are each waited out for their Retry-After and the file still arrives; a
    5xx after them still has its full budget of 6."""
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 9:
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "slow"})
        if len(calls) <= 9 + RetryPolicy().attempts - 1:
            return httpx.Response(503, json={"error": "busy"})
        return httpx.Response(200, content=b"the file")

    async with client(httpx.MockTransport(handle)) as api:
        with capture_logs() as logs:
            assert await fetch(api, "https://cdn.example.com/f.bin") == b"the file"
    assert len(calls) == 9 + RetryPolicy().attempts
    waits = [e["retry_after"] for e in logs if e["event"] == "http.rate_limited"]
    assert waits == [2.0] * 9, "each 429's Retry-After is waited out"
