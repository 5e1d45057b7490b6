"""Shared test set-up: retries don't wait unless a test asks for real waits; logging is
restored after each test; a throw-away PostgreSQL server for the tests that ask for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from connectors import http
from tests import pgserver


@pytest.fixture(autouse=True)
def _no_retry_waits(request: pytest.FixtureRequest) -> Iterator[None]:
    http.set_testing(request.node.get_closest_marker("real_waits") is None)
    yield
    http.set_testing(False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that runs the CLI binds logging to its (then closed) captured stderr: undo it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """One throw-away PostgreSQL server for the session (started on first use, stopped and
    deleted at the end, also on Ctrl-C); skips, saying why, where none can be started."""
    why = pgserver.unavailable()
    if why is not None:
        pytest.skip(f"no PostgreSQL for the tests: {why}")
    server = pgserver.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg_url(pg_server: pgserver.PgServer) -> str:
    """A fresh, empty database on the test server for this test module: its URL (with the
    server's password)."""
    return pg_server.new_database("m")


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every function the code under test hands to a worker thread
    (``anyio.to_thread.run_sync``), in order; the hops still run (issue 12: a hop costs the
    event loop two wake-ups and a GIL hand-over, so small work stays on the loop)."""
    import anyio.to_thread

    hops: list[object] = []
    real = anyio.to_thread.run_sync

    async def counting(func: object, *args: object, **kw: object) -> object:
        hops.append(func)
        return await real(func, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return hops
