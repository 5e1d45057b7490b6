"""Shared test set-up: retries don't wait unless a test asks for real waits; logging is
restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from connectors import http


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
