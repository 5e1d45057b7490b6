"""HTTP behaviour shared by every connector: one client, pacing, retries, error mapping.

- :class:`ApiClient` wraps one ``httpx.AsyncClient``. Credentials are attached per request and
  only when the request goes to the API host they belong to; downloads never carry them, and
  follow a bounded number of redirects (:meth:`ApiClient.download`).
- :class:`Pacer` spaces request starts at the documented rate and backs off when the server
  says so (429, ``X-RateLimit-Remaining: 0``).
- :class:`RetryPolicy` retries 429, 5xx and transport errors with exponential backoff and
  jitter, honouring ``Retry-After`` with a floor, so ``Retry-After: 0`` cannot spin, and a cap
  (``max_retry_after``, 10 min): a server asking for longer (a daily quota) stops the run at
  once with the wait it named (RFC 9110 section 10.2.3: seconds or an HTTP date).
- Every wait is named: a timeout says the host and the seconds waited; pacer and retry
  waits of a second or more go to the observers registered with :func:`observe_waits`
  (the pipeline's progress display), which this module knows nothing else about.
- :func:`raise_for_response` is the only place a status or transport error becomes one of
  our errors (:mod:`connectors.errors`). A request that creates something (``idempotent=False``)
  is never resent blindly after it may have reached the server: it raises
  :class:`~connectors.errors.AmbiguousError` so the caller can reconcile first.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import anyio
import httpcore
import httpx
import pydantic
import structlog

from connectors.errors import (
    AmbiguousError,
    AuthError,
    FatalError,
    ItemError,
    MalformedResponseError,
    NotFoundError,
    RetryableError,
    SyncError,
)
from connectors.jsontext import UntrustedJSONError, checked_loads

log = structlog.get_logger("connectors.http")

SocketOption = (tuple[int, int, int] | tuple[int, int, bytes | bytearray]
                | tuple[int, int, None, int])
"""A ``setsockopt`` argument tuple, as httpcore takes them."""

M = TypeVar("M", bound=pydantic.BaseModel)
ErrorText = Callable[[httpx.Response], str]
RateHint = Callable[[httpx.Response], float | None]
"""Reads the limit a 429 names (e.g. Storyblok's "Rate limit of 3 request per second")."""
Classifier = Callable[[httpx.Response, str], SyncError | None]
FilesFactory = Callable[[], Any]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_REDIRECTS = 5
"""Redirects a file download follows before it fails the item."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DOWNLOAD_HEADERS = {"Accept-Encoding": "identity"}
"""Binary files are asked for as stored: no transfer compression to undo or miscount."""
_testing = False


def set_testing(on: bool) -> None:
    """Turn retry waits off (tests); pacing still applies."""
    global _testing
    _testing = on


WaitObserver = Callable[[str, str, float], None]
"""``(api, reason, until)``: no request of ``api`` starts before ``until`` (``time.time()``)."""
_observers: list[WaitObserver] = []
NOTIFY_AFTER = 1.0
"""Waits shorter than this (ordinary pacing) are not reported."""


@contextmanager
def observe_waits(observer: WaitObserver) -> Iterator[None]:
    """Call ``observer`` for every wait of a second or more while the block runs."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


def _notify(api: str, reason: str, seconds: float) -> None:
    if seconds >= NOTIFY_AFTER:
        until = time.time() + seconds
        for observer in _observers:
            observer(api, reason, until)


def human_seconds(seconds: float) -> str:
    """``86400`` -> ``"24 h"``, ``900`` -> ``"15 min"``, ``42`` -> ``"42 s"``."""
    if seconds >= 48 * 3600:
        return f"{round(seconds / 86400):,} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    rate_limited_attempts: int = 12
    """429s only say "not now": they get a larger budget of their own."""
    no_answer_attempts: int = 3
    """A server that accepts and never answers costs a full read timeout per try: fewer."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    min_delay: float = 0.25
    """Floor on every wait, whatever ``Retry-After`` says."""
    max_retry_after: float = 600.0
    """A ``Retry-After`` longer than this stops the run instead of sleeping through it."""

    def delay(self, attempt: int, retry_after: float | None, *, api: str = "the API",
              where: str = "") -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1).

        Raises FatalError when the server's ``Retry-After`` exceeds ``max_retry_after``: a
        quota, not a burst; waiting would hold the run (and cron) for hours.
        """
        if retry_after is not None and retry_after > self.max_retry_after:
            raise FatalError(
                f"{api} asks to wait {human_seconds(retry_after)} before the next request "
                f"(Retry-After: {retry_after:.0f} s{f' on {where}' if where else ''}): quota "
                f"exhausted? assetferry waits at most {human_seconds(self.max_retry_after)}, so "
                "the run stops here with its state saved; run the same command again after "
                "that time.",
                status=429,
            )
        if _testing:
            return 0.0
        if retry_after is not None:
            return max(retry_after, self.min_delay)
        backoff = min(self.max_delay, self.base_delay * float(2 ** (attempt - 1)))
        return max(self.min_delay, backoff * (0.5 + random.random() / 2))


_HISTORY: dict[str, deque[float]] = {}
"""Recent request starts per rate-limit key (API, host and a digest of the credentials), kept
for the process: ``plan`` then ``migrate`` in one process (the demo) are two clients on one
limit, and the second must count the first's last starts."""
_TIMED: dict[str, dict[float, float | None]] = {}
"""Round trip (seconds) of each of those starts that was ours, per key: ``None`` while the
answer is awaited. Starts without an entry are others' (read from the headers)."""


def pacing_key(api: str, base_url: str, credentials: Mapping[str, pydantic.SecretStr]) -> str:
    """The key clients on one rate limit share; holds no secret (a SHA-256 digest)."""
    digest = hashlib.sha256(repr(sorted((k, v.get_secret_value())
                                        for k, v in credentials.items())).encode()).hexdigest()
    return f"{api}|{httpx.URL(base_url).host}|{digest[:16]}"


class Pacer:
    """Spaces request starts to at most ``rate`` per second, shared by all tasks of a client.

    No burst, ever: a fresh pacer sends its first request alone and lets the server's answer
    (``X-RateLimit-Limit`` / ``X-RateLimit-Remaining``) say how much of the current window an
    earlier process (the ``plan`` before this ``migrate``) or another integration already
    used; then starts are spaced at the interval, released one at a time in real time (tasks
    that wake late on a loaded machine do not leave together), and no request starts sooner
    than one window plus that start's lateness after the start ``limit`` requests before it
    (any earlier one too), so arrival jitter stays under the server's count. The lateness of
    a start is a time, not a share of the window: its round trip less the fastest recent one
    (how much later than the others it can have reached the server's count), plus
    :attr:`JITTER_FLOOR`; a start still awaiting its answer counts :attr:`SLACK` of the
    window. Only the requests that really were late cost pace: at 3 requests/s a 20 ms late
    wake of the server no longer lets a fourth request into its second (issue 12), and a
    quiet link keeps the pace at the limit's 99%. A response whose headers report fewer
    requests left than our own recent starts account for fills the rest of the window with
    the others' (``X-RateLimit-Remaining: 0``: nothing starts for a window).

    Adaptive: a 429 lowers the rate by 15% (never below a tenth of the documented rate) and
    each success wins back 3%, so a job file that claims a higher plan than the
    account has, or another integration sharing the limit, converges on what the server
    allows instead of burning retries.
    """

    DECREASE = 0.85
    INCREASE = 0.03
    MARGIN = 0.99
    """Space starts at 99% of the documented rate. The windowed count (see ``SLACK``) is what
    keeps arrival jitter under the server's count; a wider margin here (97%) only cost pace
    (issue 12: the share of the rate-limit ideal)."""
    SLACK = 0.1
    """Lateness, as a share of the window, of a start still awaiting its answer or made
    before enough answers were timed (see :meth:`_lateness`); and the most by which the
    count of our starts the server saw (:meth:`_count_others`) looks back beyond its window."""
    MIN_SLACK = 0.02
    """The least by which that count looks back beyond the window: jitter is never nil."""
    JITTER_FLOOR = 0.01
    """Seconds added to every start's measured lateness: what a round trip cannot show (the
    return path's own jitter). Whatever the limit's size (3/s, 10/s, 60/min), jitter is a
    time; under the spacing's 1% margin it costs no pace."""
    TIMED = 32
    """How many recent round trips the jitter is measured over."""
    PROBE_WAIT = 10.0
    """Longest wait, in seconds, for the first answer before the others start anyway."""
    KEEP = 3.0
    """Starts are remembered for this many windows: an answer read after its round trip is
    compared with the starts of the whole window the server counted when it arrived."""

    def __init__(self, rate: float | None, *, window: float = 1.0,
                 api: str = "", key: str | None = None) -> None:
        """``rate`` in requests per second; ``window`` is the length in seconds of the
        server's counting window (1 for per-second limits, 60 for Webflow's per-minute one):
        ``X-RateLimit-Remaining: 0`` holds every request for one window. Pacers with one
        ``key`` (see :func:`pacing_key`) count each other's starts."""
        self._window = window
        self.api = api
        self._max_rate = rate * self.MARGIN if rate else None
        self._rate = self._max_rate
        self._next = 0.0
        self._lock = anyio.Lock()
        self._starts: deque[float] = (_HISTORY.setdefault(key, deque()) if key
                                      else deque())
        """Starts (ours, and others' the headers revealed), monotonic seconds."""
        self._timed: dict[float, float | None] = _TIMED.setdefault(key, {}) if key else {}
        """Round trip of each of our starts (``None`` in flight); see :data:`_TIMED`."""
        self._probe: anyio.Event | None = None
        self._cold = True
        self._round_trips: deque[float] = deque(maxlen=self.TIMED)

    @property
    def rate(self) -> float | None:
        return self._rate

    def _cap(self, rate: float) -> int:
        """Starts allowed in one window at ``rate`` (the documented limit at first)."""
        return max(1, int(rate * self._window / self.MARGIN + 1e-6))

    def _earliest(self, now: float) -> float:
        """When the next request may start: the interval and the windowed count."""
        start = max(now, self._next)
        if not self._rate:
            return start
        if self._starts:  # another client on this limit may have started since
            start = max(start, self._starts[-1] + 1.0 / self._rate)
        while self._starts and self._starts[0] <= now - self.KEEP * self._window:
            self._timed.pop(self._starts.popleft(), None)
        cap = self._cap(self._rate)
        if len(self._starts) < cap:  # fewer starts kept than the window allows: no count
            return start
        recent = sorted(self._starts)
        for t in recent[:len(recent) - cap + 1]:  # `cap` starts since t, this one too
            start = max(start, t + self._window + self._lateness(t))
        return start

    def _lateness(self, start: float) -> float:
        """Seconds by which the request started at ``start`` may have reached the server's
        count later than a prompt one: its round trip less the fastest of the recent ones,
        plus :attr:`JITTER_FLOOR`. Still in flight, or before enough answers were timed:
        :attr:`SLACK` of the window. Others' starts (read from the headers, stamped when
        the answer came, so never early): the floor."""
        if start not in self._timed:
            return self.JITTER_FLOOR
        trip = self._timed[start]
        if trip is None or len(self._round_trips) < self.TIMED // 4:
            return max(self.JITTER_FLOOR, self.SLACK * self._window)
        return max(0.0, trip - min(self._round_trips)) + self.JITTER_FLOOR

    def _slack(self) -> float:
        """How much longer than the server's window our count spans, as a share of it: the
        spread of recent round trips (slowest minus fastest, seconds), which bounds how far
        the server's arrival times can drift from our start times; between
        :attr:`MIN_SLACK` and :attr:`SLACK`. On a quiet loopback that is the minimum (the
        pace is the limit's 98%); a loaded machine or a jittery network widens it."""
        if len(self._round_trips) < self.TIMED // 4:
            return self.SLACK
        spread = (max(self._round_trips) - min(self._round_trips)) / self._window
        return min(self.SLACK, max(self.MIN_SLACK, spread))

    async def wait(self) -> float:
        """Wait until the next request may start; return its start (``time.monotonic()``),
        to pass to :meth:`observe` as ``sent``.

        A request that may start at once, with nobody waiting before it (the lock free: a
        released lock passes straight to its next waiter, so it is never free while one
        waits), the first answer in and fewer starts kept than one window allows (no limit
        to keep, or one far above the pace: a limit that binds keeps the locked path, which
        lets the answers already arrived be read first), starts without taking the lock:
        the check and the start's bookkeeping have no await between them, so no other task
        can come in between, and taking a free anyio lock still switches tasks (a pass of
        the event loop per request; issue 12: the pacer with no limit to keep cost 0.1 ms a
        request)."""
        if (not self._lock.locked() and self._probe is not None and self._probe.is_set()
                and (not self._rate or len(self._starts) < self._cap(self._rate))):
            now = time.monotonic()
            if self._earliest(now) <= now + 1e-6:
                return self._start(now)
        async with self._lock:  # one at a time: each start is measured after the last one
            while True:
                now = time.monotonic()
                start = self._earliest(now)
                if start <= now + 1e-6:  # a microsecond: rounding must not spin
                    break
                _notify(self.api, f"rate limit ({self._rate:.3g} requests/s)" if self._rate
                        else "the server asked for a pause", start - now)
                await anyio.sleep(start - now)
            if self._probe is not None and not self._probe.is_set():
                with anyio.move_on_after(min(self._window, self.PROBE_WAIT)):
                    await self._probe.wait()  # the first answer says what is left
                now = max(time.monotonic(), self._earliest(time.monotonic()))
                if now > time.monotonic():
                    await anyio.sleep(now - time.monotonic())
                now = time.monotonic()
            return self._start(now)

    def _start(self, now: float) -> float:
        """Count a request starting ``now`` (monotonic seconds) and return ``now``."""
        self._next = now + (1.0 / self._rate if self._rate else 0.0)
        self._starts.append(now)
        self._timed[now] = None
        if self._cold:
            self._cold = False
            self._probe = anyio.Event()
        return now

    def hold(self, seconds: float) -> None:
        """No request starts for ``seconds`` (the server asked us to slow down)."""
        self._next = max(self._next, time.monotonic() + seconds)

    def limit_to(self, rate: float) -> None:
        """The server named its limit: never go above it again (with the usual margin)."""
        if rate > 0 and (self._max_rate is None or rate * self.MARGIN < self._max_rate):
            self._max_rate = rate * self.MARGIN
            self._rate = min(self._rate or self._max_rate, self._max_rate)

    def slow_down(self) -> None:
        if self._rate and self._max_rate:
            self._rate = max(self._max_rate / 10, self._rate * self.DECREASE)

    def _count_others(self, response: httpx.Response, sent: float | None) -> bool:
        """``X-RateLimit-Limit`` minus ``X-RateLimit-Remaining`` is what the server counts in
        its window; what our own starts up to this request do not explain is someone else's
        (an earlier process, another integration): count it as started now.

        The server counted when the request arrived, so its window ends at the request's
        start (``sent``), not at the answer: our starts in the window (widened by the slack
        for arrival jitter) before ``sent`` are the ones it saw. Counting only those of the
        last window before the answer missed the requests of the round trip's length at its
        beginning, and every answer then invented others' starts, holding a 10/s pace near
        7/s (issue 12)."""
        try:
            remaining = int(response.headers.get("x-ratelimit-remaining", ""))
            limit = int(response.headers.get("x-ratelimit-limit", ""))
        except ValueError:
            return False
        if self._max_rate and limit > 2 * self._cap(self._max_rate):
            return False  # a quota over a longer window (per hour, per day): not this count
        now = time.monotonic()
        upto = now if sent is None else sent
        since = upto - self._window * (1 + self._slack())
        ours = sum(1 for t in self._starts if since < t <= upto)
        for _ in range(max(0, limit - remaining - ours)):
            self._starts.append(now)
        return True

    def observe(self, response: httpx.Response, *, sent: float | None = None) -> None:
        """Learn from one response: its rate-limit headers and whether it was a 429.

        ``sent`` is when the request started (``time.monotonic()``), to tell our own requests
        in the server's count from others'."""
        if self._probe is not None:
            self._probe.set()
        if sent is not None:
            trip = time.monotonic() - sent
            if sent in self._timed:  # a 429's lateness counts too: it may have been late
                self._timed[sent] = trip
            if response.status_code != 429:
                self._round_trips.append(trip)
        remaining = response.headers.get("x-ratelimit-remaining")
        counted = response.status_code != 429 and self._count_others(response, sent)
        if (not counted and remaining is not None and remaining.strip() == "0"
                and response.status_code != 429):
            self.hold(self._window)  # a 429's own Retry-After governs its pause
        if response.status_code == 429:
            self.slow_down()
        elif self._rate and self._max_rate and self._rate < self._max_rate:
            self._rate = min(self._max_rate, self._rate * (1 + self.INCREASE))


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def default_error_text(response: httpx.Response) -> str:
    """The API's own words from an error body, whatever its shape; never the whole body."""
    try:
        body = checked_loads(response.content)
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error_message", "message", "error", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return json.dumps(body)[:200]
    if isinstance(body, list) and body:
        return "; ".join(str(x) for x in body)[:200]
    return response.reason_phrase


def host_port(url: httpx.URL) -> str:
    """``host:port`` without scheme or credentials (the port when the URL names one)."""
    return f"{url.host}:{url.port}" if url.port is not None else url.host


def _where(request: httpx.Request) -> str:
    # method, host:port and path only: query strings may carry tokens (secured asset URLs)
    return f"{request.method} {host_port(request.url)}{request.url.path}"


def duration(seconds: float) -> str:
    """``6 min 13 s``, ``45 s``, ``1 h 2 min``: a wait a person reads."""
    total = round(seconds)
    if total < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{total} s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


class NoAnswerError(RetryableError):
    """A timeout: no connection or no answer within the client's limit (``seconds``)."""

    def __init__(self, message: str, *, host: str, kind: str, seconds: float | None,
                 where: str) -> None:
        super().__init__(message)
        self.host, self.kind, self.seconds, self.where = host, kind, seconds, where


def _gave_up(error: RetryableError, tries: int, elapsed: float, api: str, *,
             besides: str = "") -> RetryableError:
    """The error that ends the retries: what happened, how many tries of the budget that ran
    out (:class:`RetryPolicy`), the total waited, and ``besides``, the tries of the other
    budget (``"; 2 more answered 429 (rate limited)"``): a 429 counts apart, so "6 tries"
    reads as ``RetryPolicy.attempts`` however many 429s came between."""
    over = f"{tries} tries over {duration(elapsed)}{besides}"
    if isinstance(error, NoAnswerError):
        each = f"{error.kind} timeout {error.seconds:g} s each" if error.seconds else (
            f"{error.kind} timeout")
        what = "accepted no connection" if error.kind == "connect" else "no answer"
        message = (f"{api}: {what} from {error.host} in {over} ({each}, {error.where}); the "
                   "server may be overloaded or unreachable")
    else:
        message = f"{error.message} (gave up after {over})"
    error.message = message
    error.args = (message,)
    return error


class _Tries:
    """One request's tries against its :class:`RetryPolicy` budgets: 429s (rate limited)
    count apart, up to ``rate_limited_attempts``; every other failure counts against
    ``attempts``, and read timeouts also against ``no_answer_attempts``."""

    __slots__ = ("_policy", "attempt", "first", "limited", "silent")

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self.attempt = self.limited = self.silent = 0
        self.first = time.monotonic()

    def count(self, error: RetryableError, api: str) -> None:
        """Count one failed try; raise ``error`` (its message naming the tries and the time
        spent) when its budget has run out."""
        self.attempt += 1
        elapsed = time.monotonic() - self.first
        if error.status == 429:
            self.limited += 1
            if self.limited >= self._policy.rate_limited_attempts:
                failed = self.attempt - self.limited
                raise _gave_up(error, self.limited, elapsed, api,
                               besides=f"; {failed} more failed otherwise" if failed else "")
            return
        self.silent += isinstance(error, NoAnswerError) and error.kind == "read"
        if (self.attempt - self.limited >= self._policy.attempts
                or self.silent >= self._policy.no_answer_attempts):
            raise _gave_up(error, self.attempt - self.limited, elapsed, api,
                           besides=f"; {self.limited} more answered 429 (rate limited)"
                           if self.limited else "")


def raise_for_response(
    response: httpx.Response,
    *,
    api: str,
    idempotent: bool = True,
    error_text: ErrorText = default_error_text,
    classify: Classifier | None = None,
) -> None:
    """Turn a non-2xx response into our error type; return quietly on success."""
    if response.is_success:
        return
    text = error_text(response)
    if classify is not None:
        special = classify(response, text)
        if special is not None:
            raise special
    status = response.status_code
    where = _where(response.request)
    if status == 429:
        raise RetryableError(
            f"{api} rate limit hit ({where}): {text}",
            status=status,
            retry_after=retry_after_seconds(response),
        )
    if status >= 500:
        cls = RetryableError if idempotent else AmbiguousError
        raise cls(f"{api} server error {status} ({where}): {text}", status=status)
    if status in (401, 403):
        raise AuthError(
            f"{api} refused the credentials ({status} {where}): {text}. "
            "Check the token in the job file's environment variable and its permissions.",
            status=status,
        )
    if status == 404:
        raise NotFoundError(f"{api} has no such record ({where}): {text}", status=status)
    raise ItemError(f"{api} rejected the request ({status} {where}): {text}", status=status)


def decode_json(response: httpx.Response, *, api: str) -> Any:
    try:
        return checked_loads(response.content)
    except UntrustedJSONError as exc:
        raise MalformedResponseError(
            f"{api} answered {_where(response.request)} with a body that {exc}; the API or a "
            "proxy sent a damaged response: try again later, and report it to the vendor if "
            "it persists") from None
    except ValueError:
        snippet = response.text[:80].replace("\n", " ")
        raise MalformedResponseError(
            f"{api} answered {_where(response.request)} with a body that is not JSON "
            f"({snippet!r}...). The API may be down or a proxy in the way; try again later."
        ) from None


def decode_model(response: httpx.Response, model: type[M], *, api: str) -> M:
    """Parse a JSON body into a wire model; a shape mismatch becomes MalformedResponseError."""
    data = decode_json(response, api=api)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise MalformedResponseError(
            f"{api} answered {_where(response.request)} with an unexpected shape ({problems})."
        ) from None


BUFFERED_BODY = 1 << 20
"""A streamed request body (a multipart upload) of at most this many bytes is read into one
buffer before it is sent: one socket write instead of one per multipart piece (boundaries,
part headers, each field, the file), about ten for a small file with its metadata (issue 12:
per-request CPU). Larger bodies stream, so memory stays flat with file size."""


_FORM_ESCAPES = {'"': "%22", "\\": "\\\\"} | {
    chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}
_FORM_ESCAPE = re.compile("|".join(re.escape(c) for c in _FORM_ESCAPES))


def _form_param(name: str, value: str) -> bytes:
    """``name="value"`` of a part's Content-Disposition, ``value`` escaped as the HTML
    form encoding does (WHATWG HTML, "multipart/form-data encoding algorithm": ``"`` as
    %22, line breaks and other controls as %XX; httpx's own rule)."""
    return f'{name}="{_FORM_ESCAPE.sub(lambda m: _FORM_ESCAPES[m.group(0)], value)}"'.encode()


def small_form(data: Mapping[str, Any] | None,
               files: Mapping[str, Any]) -> tuple[bytes, str] | None:
    """A multipart/form-data body (RFC 7578) of text fields and files whose files come to at
    most :data:`BUFFERED_BODY` bytes, built in one buffer: ``(body, content type)``; the
    fields first, in order, then the files, laid out byte for byte as httpx lays them out.
    ``files`` maps a field to ``(filename, open binary file, content type)``.

    ``None`` when the form is not of that kind (a field that is not text, a file part of
    another shape or with no content type, files larger than that, or of unknown size):
    httpx then builds it as a stream (:func:`_buffer_small_body`). Building it here is
    what httpx's stream costs three passes for (its parts, their lengths for
    Content-Length, then the reading into one buffer; issue 12: per-request CPU of an
    upload)."""
    fields = data or {}
    if not all(isinstance(v, str) for v in fields.values()):
        return None
    total = 0
    for part in files.values():
        if not (isinstance(part, tuple) and len(part) == 3 and isinstance(part[0], str)
                and isinstance(part[2], str) and hasattr(part[1], "fileno")):
            return None
        try:
            total += os.fstat(part[1].fileno()).st_size
        except (OSError, ValueError):
            return None
        if total > BUFFERED_BODY:
            return None
    boundary = os.urandom(16).hex().encode("ascii")
    out = bytearray()
    for name, value in fields.items():
        out += b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\n%s\r\n" % (
            boundary, _form_param("name", name), value.encode())
    for name, (filename, handle, content_type) in files.items():
        handle.seek(0)
        out += b"--%s\r\nContent-Disposition: form-data; %s" % (
            boundary, _form_param("name", name))
        if filename:
            out += b"; " + _form_param("filename", filename)
        out += b"\r\nContent-Type: %s\r\n\r\n%s\r\n" % (
            content_type.encode(), handle.read())
    out += b"--%s--\r\n" % boundary
    return bytes(out), f"multipart/form-data; boundary={boundary.decode('ascii')}"


async def _buffer_small_body(request: httpx.Request) -> None:
    """Read ``request``'s streamed body into memory when its announced length is at most
    :data:`BUFFERED_BODY` (a multipart body of files whose sizes are known announces it)."""
    length = request.headers.get("content-length")
    if (length is not None and length.isdigit() and int(length) <= BUFFERED_BODY
            and not isinstance(request.stream, httpx.ByteStream)):
        await request.aread()


def _refusal_without_credentials(response: httpx.Response, text: str) -> SyncError | None:
    """A 401/403 to a request that carried none of our credentials fails that one item.

    File hosts and storage endpoints never get a credential, so their refusal says nothing
    about ours (a private asset, an expired signature): it must not stop the run.
    """
    if response.status_code in (401, 403):
        return ItemError(
            f"the file host refused the request ({response.status_code} "
            f"{_where(response.request)}): {text}. The asset may be private or its "
            "signature expired.",
            status=response.status_code,
        )
    return None


_TIMEOUT_KIND = ((httpx.ConnectTimeout, "connect"), (httpx.ReadTimeout, "read"),
                 (httpx.WriteTimeout, "write"), (httpx.PoolTimeout, "pool"))


def _transport_error(exc: httpx.RequestError, *, api: str, idempotent: bool) -> RetryableError:
    """A request that got no usable answer (connection, timeout, undecodable body).

    A timeout names the host, its kind and the seconds waited (the client's limit).
    """
    has_request = _has_request(exc)
    where = _where(exc.request) if has_request else api
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    cls = RetryableError if (idempotent or never_sent) else AmbiguousError
    if isinstance(exc, httpx.TimeoutException):
        kind = next((k for t, k in _TIMEOUT_KIND if isinstance(exc, t)), "read")
        limits = exc.request.extensions.get("timeout", {}) if has_request else {}
        seconds = limits.get(kind) if isinstance(limits, dict) else None
        seconds = float(seconds) if isinstance(seconds, int | float) else None
        host = host_port(exc.request.url) if has_request else api
        waited = f"within {seconds:g} s" if seconds is not None else "in time"
        what = "accepted no connection" if kind == "connect" else "sent no answer"
        message = (f"{api}: {host} {what} {waited} ({kind} timeout, {where}); the server may "
                   "be overloaded or unreachable")
        if cls is AmbiguousError:
            return AmbiguousError(message)
        return NoAnswerError(message, host=host, kind=kind, seconds=seconds, where=where)
    what = "answer could not be decoded" if isinstance(exc, httpx.DecodingError) else (
        "connection problem")
    detail = str(exc) or "no detail given"
    return cls(f"{api} {what} ({where}): {type(exc).__name__}: {detail}")


def _has_request(exc: httpx.RequestError) -> bool:
    try:
        exc.request  # noqa: B018 - property raises when unset
    except RuntimeError:
        return False
    return True


COALESCE_BYTES = 64 * 1024
"""Bytes of a request a connection holds back before sending them (see
:class:`CoalescingStream`): larger bodies go out in pieces of about this size, so memory
stays flat with file size."""


class CoalescingStream(httpcore.AsyncNetworkStream):
    """A connection that sends a request's pieces in one write, when it starts waiting for
    the answer (or once :data:`COALESCE_BYTES` are held): httpcore writes the head and the
    body of every request separately, each a system call and, on loopback, a wake-up of the
    server for half a request (issue 12: per-request CPU on both sides). Its socket is
    looked up once: httpcore asks whether it is readable before every request it sends on a
    kept-alive connection (has the server closed it?), and anyio rebuilt its whole
    attribute table, a ``getpeername`` call included, to find the socket each time.

    A write that fails surfaces at the next read (the request's answer), as the transport
    error it is: a request that may have reached the server is never resent blindly
    (:func:`raise_for_response`, ``idempotent``). The ``timeout`` parameters are httpcore's
    interface (``AsyncNetworkStream``)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held = bytearray()
        self._socket: Any = None
        self._socket_known = False

    async def _flush(self, timeout: float | None) -> None:  # noqa: ASYNC109
        if self._held:
            data = bytes(self._held)
            self._held.clear()
            await self._inner.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        await self._flush(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._held += buffer
        if len(self._held) >= COALESCE_BYTES:
            await self._flush(timeout)

    async def aclose(self) -> None:
        self._held.clear()  # a connection closed before its answer: nothing more to send
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None,  # noqa: ASYNC109
                        ) -> httpcore.AsyncNetworkStream:
        await self._flush(timeout)
        return CoalescingStream(await self._inner.start_tls(
            ssl_context, server_hostname=server_hostname, timeout=timeout))

    def get_extra_info(self, info: str) -> Any:
        if info not in ("socket", "is_readable"):
            return self._inner.get_extra_info(info)
        if not self._socket_known:
            self._socket = self._inner.get_extra_info("socket")
            self._socket_known = True
        return self._socket if info == "socket" else _readable(self._socket)


def _readable(sock: socket.socket | None) -> bool:
    """Whether ``sock`` has bytes to read now (or is gone): an idle kept-alive connection
    that is readable was closed by the server (httpcore's ``is_readable`` check)."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class CoalescingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, its connections wrapped in :class:`CoalescingStream`."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int,
                          timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        return CoalescingStream(await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options))

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[SocketOption] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        return CoalescingStream(await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def http_transport(limits: httpx.Limits, *, tls: bool) -> httpx.AsyncHTTPTransport:
    """httpx's transport over a connection pool of :class:`CoalescingBackend` connections
    (``tls``: verifying certificates against the system's CA bundle, or ``SSL_CERT_FILE``,
    as httpx does by default; without it no certificate is ever checked, so none is
    loaded). Built as httpx builds it; with an httpx whose transport no longer keeps its
    pool in ``_pool`` (pinned in constraints.txt; a test says so), httpx's own pool stays."""
    context = httpx.create_ssl_context(verify=tls)  # (the CA bundle read once)
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=context)
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CoalescingBackend(),
        )
    return transport


class TlsOnDemand(httpx.AsyncBaseTransport):
    """httpx's own transport, with the TLS context (verifying, the system's CA bundle read and
    parsed: 50-100 ms of CPU) built on the first ``https://`` request rather than with the
    client: a run against an ``http://`` API (an emulator, a proxy on loopback) never pays
    it, and one that needs it pays it once (issue 12: start-up CPU). ``http://`` requests go
    through a transport of their own, which never negotiates TLS."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._plain: httpx.AsyncHTTPTransport | None = None
        self._tls: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            if self._tls is None:
                self._tls = http_transport(self._limits, tls=True)
            return await self._tls.handle_async_request(request)
        if self._plain is None:
            # plain HTTP: no certificate is ever checked, so no CA bundle to load
            self._plain = http_transport(self._limits, tls=False)
        return await self._plain.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                await transport.aclose()


class ApiClient:
    """One connector's HTTP client. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        *,
        api: str,
        base_url: str,
        credentials: Mapping[str, pydantic.SecretStr] | None = None,
        headers: Mapping[str, str] | None = None,
        requests_per_second: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        error_text: ErrorText = default_error_text,
        classify: Classifier | None = None,
        rate_hint: RateHint | None = None,
        rate_window: float = 1.0,
    ) -> None:
        """``requests_per_second`` paces request starts; for a per-minute limit pass
        ``limit / 60`` and ``rate_window=60`` (see :class:`Pacer`)."""
        self.api = api
        self._rate_hint = rate_hint
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._joined: dict[str, httpx.URL] = {}
        self._credentials = dict(credentials or {})
        self._retry = retry or RetryPolicy()
        self._pacer = Pacer(requests_per_second, window=rate_window, api=api,
                            key=pacing_key(api, base_url, self._credentials))
        self._error_text = error_text
        self._classify = classify
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=8)
        self._client = httpx.AsyncClient(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=limits,
            transport=transport if transport is not None else TlsOnDemand(limits),
            follow_redirects=False,
        )

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    def url(self, path: str) -> httpx.URL:
        """An API URL; ``path`` is relative to the base URL unless it is absolute."""
        if path.startswith(("http://", "https://")):
            return httpx.URL(path)
        url = self._joined.get(path)
        if url is None:
            # joining parses and normalises the URL (3% of an upload's CPU): the few paths
            # every request uses ("assets", "assets/folders") are joined once
            url = self.base_url.join(path.lstrip("/"))
            if len(self._joined) < 256:
                self._joined[path] = url
        return url

    def _is_api_host(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (
            self.base_url.scheme,
            self.base_url.host,
            self.base_url.port,
        )

    def _auth_headers(self, url: httpx.URL) -> dict[str, str]:
        if not self._is_api_host(url):
            return {}
        return {k: v.get_secret_value() for k, v in self._credentials.items()}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: FilesFactory | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authed: bool = True,
    ) -> httpx.Response:
        """Send a request with pacing and retries; return the successful response.

        ``files`` is a factory (called on every attempt, so file handles start at 0).
        Raises RetryableError when retries run out, AmbiguousError at once when a
        non-idempotent request may have taken effect, other SyncErrors as classified.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in _IDEMPOTENT
        url = self.url(path)
        send_headers = dict(headers or {})
        credentials = self._auth_headers(url) if authed else {}
        send_headers.update(credentials)
        classify = self._classify or (None if credentials else _refusal_without_credentials)
        tries = _Tries(self._retry)
        while True:
            sent = await self._pacer.wait()
            try:
                parts = files() if files else None
                form = None if parts is None else small_form(data, parts)
                if form is not None:
                    # (the file handles stay open: the caller's factory closes them)
                    body, content_type = form
                    request = self._client.build_request(
                        method, url, params=params, content=body,
                        headers={**send_headers, "Content-Type": content_type})
                else:
                    request = self._client.build_request(
                        method,
                        url,
                        params=params,
                        json=json,
                        data=data,
                        files=parts,
                        headers=send_headers,
                    )
                    await _buffer_small_body(request)
                response = await self._client.send(request)
                await response.aread()
                log.debug("http.request", api=self.api, method=method, path=url.path,
                          status=response.status_code,
                          ms=round((time.monotonic() - sent) * 1000))
                self._pacer.observe(response, sent=sent)
                if response.status_code == 429 and self._rate_hint is not None:
                    named = self._rate_hint(response)
                    if named:
                        self._pacer.limit_to(named)
                raise_for_response(
                    response,
                    api=self.api,
                    idempotent=idempotent,
                    error_text=self._error_text,
                    classify=classify,
                )
            except httpx.RequestError as exc:
                error: SyncError = _transport_error(exc, api=self.api, idempotent=idempotent)
            except RetryableError as exc:
                error = exc
            else:
                return response
            if isinstance(error, AmbiguousError) or not isinstance(error, RetryableError):
                raise error
            await anyio.sleep(self._wait_to_retry(tries, error, method, url))

    def _wait_to_retry(self, tries: _Tries, error: RetryableError, method: str,
                       url: httpx.URL) -> float:
        """Seconds to wait before the next try of ``method url`` after ``error``; raises the
        gave-up error when its budget is spent (:class:`_Tries`).

        The one retry rule of every request and download open: a 429 counts against its own
        budget and its ``Retry-After`` is waited out (held on the pacer when the 429 came
        from the API host: nobody starts before it); other failures count against
        ``RetryPolicy.attempts``."""
        tries.count(error, self.api)
        wait = self._retry.delay(tries.attempt, error.retry_after, api=self.api,
                                 where=f"{method} {host_port(url)}{url.path}")
        if error.status == 429 and error.retry_after is not None:
            if self._is_api_host(url):
                self._pacer.hold(wait)  # the server named a pause: nobody starts before it
            until = datetime.now(UTC) + timedelta(seconds=error.retry_after)
            log.warning(
                "http.rate_limited",
                api=self.api,
                message=f"waiting for the {self.api} rate limit until "
                        f"{until.isoformat(timespec='seconds')} "
                        f"(Retry-After: {error.retry_after:g} s)",
                until=until.isoformat(timespec="seconds"),
                retry_after=error.retry_after,
            )
        _notify(self.api, f"Retry-After {error.retry_after:g} s ({error.status} on "
                f"{url.path})" if error.retry_after is not None
                else f"backing off after {error.status or 'a connection error'}", wait)
        # a 429 is the server pacing us (the pacer adapts, the display shows the wait):
        # info, not a warning per request
        (log.info if error.status == 429 else log.warning)(
            "http.retry",
            api=self.api,
            method=method,
            path=url.path,
            status=error.status,
            attempt=tries.attempt,
            wait=round(wait, 2),
        )
        return wait

    @asynccontextmanager
    async def download(self, url: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[
        AsyncIterator[bytes]
    ]:
        """Stream a file from ``url`` with no credentials; yields an iterator of its bytes.

        Opening retries 429, 5xx and transport errors, and follows up to
        :data:`MAX_REDIRECTS` redirects (a credential is never sent to any file host). The
        bytes are asked for as stored (``Accept-Encoding: identity``); a host that compresses
        anyway is decoded, and ``Content-Length`` is checked against the raw bytes received.

        Raises ItemError (refused, missing, too many redirects, bad URL) or RetryableError
        (retries spent) on opening. Any failure while the body streams (cut short, reset,
        undecodable, wrong length) raises RetryableError from the iterator: the caller
        retries the whole item, as the retry loop here never wraps the ``yield``.
        """
        response = await self._open_download(url)
        try:
            yield self._iter_body(response, chunk_size)
        finally:
            await response.aclose()

    async def _open_download(self, url: str) -> httpx.Response:
        """The open (streaming) 2xx response for ``url``, after retries and redirects."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ItemError(f"{self.api} file URL is not valid: {exc}") from None
        tries = _Tries(self._retry)
        while True:
            try:
                return await self._follow(target)
            except httpx.RequestError as exc:
                error: RetryableError = _transport_error(exc, api=self.api, idempotent=True)
            except RetryableError as exc:
                error = exc
            await anyio.sleep(self._wait_to_retry(tries, error, "GET", target))

    async def _follow(self, url: httpx.URL) -> httpx.Response:
        """One try: GET ``url`` and its redirects, no credentials; a 2xx stays open."""
        for _ in range(MAX_REDIRECTS + 1):
            if url.scheme not in ("http", "https"):
                raise ItemError(f"{self.api} file URL is not http(s): {url.scheme}:...")
            request = self._client.build_request("GET", url, headers=DOWNLOAD_HEADERS)
            response = await self._client.send(request, stream=True)
            if response.is_success:
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                try:
                    url = url.join(location)
                except httpx.InvalidURL as exc:
                    raise ItemError(
                        f"{self.api} file host redirected {_where(request)} to an invalid "
                        f"URL: {exc}"
                    ) from None
                log.debug("http.redirect", api=self.api, status=response.status_code,
                          frm=_where(request), to=f"{host_port(url)}{url.path}")
                continue
            raise_for_response(response, api=self.api, error_text=self._error_text,
                               classify=_refusal_without_credentials)
        raise ItemError(
            f"{self.api} file host redirected more than {MAX_REDIRECTS} times "
            f"(last {_where(request)} -> {host_port(url)}{url.path}); the file URL may be stale "
            "or loop: open it in a browser to check"
        )

    async def _iter_body(self, response: httpx.Response, chunk_size: int) -> AsyncIterator[bytes]:
        """The decoded body; its length is checked on the raw (still encoded) stream."""
        expected = response.headers.get("content-length")
        where = _where(response.request)
        # a body already read into memory (in-process test transports) has no raw count:
        # its decoded size stands in
        streamed = not response.is_stream_consumed
        decoded = 0
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                decoded += len(chunk)
                yield chunk
        except httpx.RequestError as exc:
            raise RetryableError(
                f"{self.api} download failed while the body streamed ({where}): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        received = response.num_bytes_downloaded if streamed else decoded
        if expected is not None and expected.isdigit() and received != int(expected):
            raise RetryableError(
                f"{self.api} download cut short ({where}): {received} of {expected} bytes"
            )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
