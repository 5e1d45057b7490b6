"""Fixtures for end-to-end tests that need an emulator in its own process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from connectors.emulation import free_port


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
