"""Fixtures for end-to-end tests: the Storyblok and Contentstack emulators in process, and
emulators in their own process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import free_port
from connectors.storyblok.emulator import StoryblokEmulator
from tests.pipeline import helpers


@contextmanager
def emulator_process(cms: str, rate_limit: float = 1000, *extra: str) -> Iterator[str]:
    """``assetferry emulate CMS`` in its own process (it outlives killed runs); yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "emulate", cms, "--port", str(port),
         "--rate-limit", str(rate_limit), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded 2-core machine starts Python slowly
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{cms} emulator did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture
def emulator() -> Iterator[str]:
    with emulator_process("contentstack") as url:
        yield url


@pytest.fixture
def sb_emulator() -> Iterator[str]:
    # the space test_storyblok_kill.py's jobs name
    with emulator_process("storyblok", 1000, "--space-id", "288868932106293") as url:
        yield url


@pytest.fixture
def sb(request: pytest.FixtureRequest) -> Iterator[StoryblokEmulator]:
    """A Storyblok emulator in process, unpaced, for the test module's ``SB_SPACE`` and
    ``SB_TOKEN`` (each module names its own, so no two share a space or a token)."""
    e = StoryblokEmulator(space_id=request.module.SB_SPACE, token=request.module.SB_TOKEN,
                          rate_limit=None)
    yield e
    e.close()


@pytest.fixture
def cs(request: pytest.FixtureRequest) -> Iterator[ContentstackEmulator]:
    """A Contentstack emulator in process, unpaced, with the module's ``CS_KEY`` and
    ``CS_TOKEN`` (:mod:`tests.pipeline.helpers`' by default)."""
    e = ContentstackEmulator(api_key=getattr(request.module, "CS_KEY", helpers.CS_KEY),
                             management_token=getattr(request.module, "CS_TOKEN",
                                                      helpers.CS_TOKEN),
                             rate_limit=None)
    yield e
    e.close()


@pytest.fixture
def emu(cs: ContentstackEmulator) -> ContentstackEmulator:
    """:func:`cs` under the name the Contentstack-only modules use."""
    return cs
