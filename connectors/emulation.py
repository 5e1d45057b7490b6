"""What every API emulator shares: rate limiting, switchable faults, a file store, serving.

Emulators are Starlette apps written from each vendor's documentation (never from our own
client code). Tests mount them in-process with :func:`in_process_transport` or serve them on
loopback with :class:`LoopbackServer`; ``assetferry emulate`` and ``demo`` use the same apps.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import socket
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ConnectionResetFault(Exception):
    """Raised inside an emulator to drop the connection without an answer."""


@dataclass
class Faults:
    """Switchable misbehaviour; shares are probabilities per request (0..1)."""

    error_rate: float = 0.0
    """Answer 5xx before doing anything."""
    error_after_commit_rate: float = 0.0
    """Do the work (e.g. create the asset), then answer 5xx: the client can't know it worked."""
    reset_rate: float = 0.0
    """Drop the connection with no answer."""
    throttle_rate: float = 0.0
    """Answer 429 with ``Retry-After: throttle_retry_after`` before doing anything: a rate
    limit the client could not see coming (another client on the same key)."""
    throttle_retry_after: int = 1
    """Seconds in the injected 429's ``Retry-After`` header."""
    truncate_rate: float = 0.0
    """Send half of a file download's body, then stop."""
    gzip_rate: float = 0.0
    """Answer a file download gzip-compressed (``Content-Encoding: gzip`` and the compressed
    ``Content-Length``) whatever the client's ``Accept-Encoding`` says: a CDN that compresses
    on the fly."""
    redirect_rate: float = 0.0
    """Answer a file download with a redirect (``redirect_status``) to where the file is."""
    redirect_hops: int = 1
    """How many redirects in a row one redirected download meets before the file."""
    redirect_status: int = 301
    latency: float = 0.0
    """Seconds added to every request."""
    seed: int | None = 1234
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def roll(self, share: float) -> bool:
        return share > 0 and self._random.random() < share


class RateLimiter:
    """Sliding window of ``window`` seconds (1 by default): at most ``per_second`` requests
    per key in it. For a per-minute limit (Webflow) pass the limit and ``window=60``."""

    def __init__(self, per_second: float | None, *, window: float = 1.0) -> None:
        self.per_second = per_second
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.rejected = 0

    def check(self, key: str = "") -> float | None:
        """Record a request; return seconds to wait if it is over the limit, else None."""
        if not self.per_second:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.per_second:
                self.rejected += 1
                return max(0.0, self.window - (now - hits[0]))
            hits.append(now)
            return None

    def remaining(self, key: str = "") -> int:
        if not self.per_second:
            return 0
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key, deque())
            live = sum(1 for hit in hits if now - hit < self.window)
            return max(0, int(self.per_second) - live)


@dataclass(frozen=True, slots=True)
class Blob:
    key: str
    path: Path
    size: int
    md5: str
    sha256: str


class BlobStore:
    """Files held by an emulator, on disk (never whole in memory)."""

    def __init__(self, root: Path | None = None) -> None:
        self._own = root is None
        self.root = Path(tempfile.mkdtemp(prefix="assetferry-emu-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self._blobs: dict[str, Blob] = {}

    def put_file(self, key: str, source: Path) -> Blob:
        """Copy ``source`` into the store under ``key`` (streamed, hashed)."""
        dest = self.root / hashlib.sha256(key.encode()).hexdigest()
        md5, sha, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
        with source.open("rb") as src, dest.open("wb") as out:
            while chunk := src.read(1024 * 1024):
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
                out.write(chunk)
        blob = Blob(key, dest, size, md5.hexdigest(), sha.hexdigest())
        self._blobs[key] = blob
        return blob

    def put_bytes(self, key: str, data: bytes) -> Blob:
        dest = self.root / hashlib.sha256(key.encode()).hexdigest()
        dest.write_bytes(data)
        blob = Blob(
            key, dest, len(data),
            hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest(),
        )
        self._blobs[key] = blob
        return blob

    def get(self, key: str) -> Blob | None:
        return self._blobs.get(key)

    def delete(self, key: str) -> None:
        blob = self._blobs.pop(key, None)
        if blob is not None:
            blob.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._own:
            shutil.rmtree(self.root, ignore_errors=True)


CREDENTIAL_HEADERS = frozenset(
    {"authorization", "authtoken", "api_key", "access_token", "x-contento-site"}
)


def leaked_credentials(headers: Any) -> list[str]:
    """Credential header names present on a request to a file (CDN/storage) URL."""
    return sorted(name for name in CREDENTIAL_HEADERS if name in headers)


def url_path(key: str) -> str:
    """The URL path of a stored file's ``key`` (``/``-separated, unencoded), percent-encoded.

    Every byte outside RFC 3986's unreserved set (``A-Z a-z 0-9 - . _ ~``) and ``/`` is
    encoded from UTF-8: ``#`` ``?`` ``%`` ``+`` ``^``, spaces and non-ASCII included, so
    a listed URL never ends early at ``?``/``#``, a literal ``%20`` stays ``%2520`` and ``+``
    is never read as a space. :func:`request_path` undoes it exactly once.
    """
    return quote(key, safe="/")


def request_path(scope: Scope) -> str:
    """A request's path decoded exactly once (ASGI ``scope["path"]``).

    Never ``starlette.Request.url.path``: that re-parses the decoded path as a URL, so a
    name holding ``?`` or ``#`` loses everything after it.
    """
    path: str = scope.get("path", "")
    return path


def in_process_transport(app: ASGIApp) -> httpx.AsyncBaseTransport:
    """An httpx transport that calls ``app`` directly; a reset fault becomes a ReadError."""
    return _ResettingASGITransport(app=app)


class _ResettingASGITransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionResetFault:
            raise httpx.ReadError("connection reset by emulator", request=request) from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackServer:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        import uvicorn  # local: only needed when serving

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"emulator did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FaultSwitch:
    """Gives an emulator a ``faults`` attribute that can be switched while it serves.

    Setting it reaches every :class:`FaultMiddleware` the emulator serves through (the ones
    :meth:`fault_middlewares` names), so ``emu.faults = Faults()`` really turns faults off.
    """

    fault_middleware: FaultMiddleware

    def fault_middlewares(self) -> list[FaultMiddleware]:
        return [self.fault_middleware]

    @property
    def faults(self) -> Faults:
        return self.fault_middleware.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        for middleware in self.fault_middlewares():
            middleware.faults = value


class FaultMiddleware:
    """Wraps an emulator app with the switchable :class:`Faults`.

    ``error_body(status)`` renders the API's own error body for injected 5xx answers;
    ``is_download(path)`` tells which paths serve file bytes (the only ones truncated,
    gzipped or redirected).
    """

    def __init__(
        self,
        app: ASGIApp,
        faults: Faults,
        *,
        error_body: Callable[[int], bytes],
        is_download: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.faults = faults
        self._error_body = error_body
        self._is_download = is_download
        self.injected: dict[str, int] = {"error": 0, "after_commit": 0, "reset": 0, "truncate": 0,
                                         "gzip": 0, "redirect": 0, "throttle": 0}
        self.requests = 0
        """HTTP requests seen, faulted or not (what a run cost the API and file hosts)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        f = self.faults
        if f.latency:
            import anyio

            await anyio.sleep(f.latency)
        if f.roll(f.reset_rate):
            self.injected["reset"] += 1
            raise ConnectionResetFault
        if f.roll(f.throttle_rate):
            self.injected["throttle"] += 1
            wait = str(f.throttle_retry_after).encode()
            await self._send_error(send, 429, [(b"retry-after", wait)])
            return
        if f.roll(f.error_rate):
            self.injected["error"] += 1
            await self._send_error(send, 503)
            return
        path: str = scope.get("path", "")
        hops = 0
        while path.startswith(MOVED_PREFIX + "/"):
            hops += 1
            path = path[len(MOVED_PREFIX):]
        if hops:  # a redirected download: the file is at the path without the prefixes
            raw = path.encode()
            scope = {**scope, "path": path, "raw_path": raw}
        if self._is_download(path) and f.roll(f.truncate_rate):
            self.injected["truncate"] += 1
            await self.app(scope, receive, _truncating(send))
            return
        if self._is_download(path) and scope.get("method") == "GET":
            if (hops == 0 and f.roll(f.redirect_rate)) or 0 < hops < f.redirect_hops:
                self.injected["redirect"] += 1
                await _send_redirect(scope, send, f.redirect_status, hops + 1)
                return
            if f.roll(f.gzip_rate):
                self.injected["gzip"] += 1
                await self.app(scope, receive, _gzipping(send))
                return
        if scope.get("method") != "GET" and f.roll(f.error_after_commit_rate):
            self.injected["after_commit"] += 1

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await self._send_error(send, 502)
            return
        await self.app(scope, receive, send)

    async def _send_error(self, send: Send, status: int,
                          headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = self._error_body(status)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *(headers or [])]})
        await send({"type": "http.response.body", "body": body})


MOVED_PREFIX = "/_moved"
"""Path prefix of a redirected download: one per hop, stripped before the app sees it."""


async def _send_redirect(scope: Scope, send: Send, status: int, hops: int) -> None:
    """Redirect to the same file behind ``hops`` :data:`MOVED_PREFIX` segments (absolute URL)."""
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"localhost").decode("latin-1")
    raw = scope.get("raw_path") or scope.get("path", "").encode()
    target = MOVED_PREFIX * hops + raw.decode("latin-1")
    query: bytes = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    location = f"{scope.get('scheme', 'http')}://{host}{target}"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"location", location.encode("latin-1")),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _gzipping(send: Send) -> Send:
    """Compress a 200 answer's body; held until complete so Content-Length is the compressed one.

    (A fault for tests: the compressed body is held in memory.)
    """
    state: dict[str, Any] = {"start": None, "zip": None, "out": []}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            if message.get("status") != 200:
                await send(message)
                return
            state["start"] = message
            state["zip"] = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            return
        if message["type"] != "http.response.body" or state["start"] is None:
            await send(message)
            return
        z = state["zip"]
        state["out"].append(z.compress(message.get("body", b"")))
        if message.get("more_body", False):
            return
        state["out"].append(z.flush())
        body = b"".join(state["out"])
        start = state["start"]
        headers = [(k, v) for k, v in start.get("headers", [])
                   if k.lower() not in (b"content-length", b"content-encoding", b"etag")]
        headers += [(b"content-encoding", b"gzip"), (b"content-length", str(len(body)).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def _truncating(send: Send) -> Send:
    state = {"sent": False}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            if state["sent"]:
                return
            body: bytes = message.get("body", b"")
            state["sent"] = True
            await send({"type": "http.response.body", "body": body[: len(body) // 2]})
            raise ConnectionResetFault
        await send(message)

    return wrapped
