"""``assetferry emulate``: the Storyblok space id is random unless ``--space-id`` sets it, and
the first line printed names it with the token."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from connectors.emulation import free_port
from pipeline.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("space_args", [(), ("--space-id", "321388")])
def test_emulate_storyblok_prints_the_space_it_serves(space_args: tuple[str, ...]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "emulate", "storyblok", "--port", str(port),
         *space_args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.search(r"space_id (\d+), token (\S+)\n", first)
        assert found, first
        space, token = int(found[1]), found[2]
        if space_args:
            assert space == 321388
        url = f"http://127.0.0.1:{port}/v1/spaces/{space}/assets"
        deadline = time.monotonic() + 20
        while True:  # the line is printed just before the server starts listening
            try:
                answer = httpx.get(url, headers={"authorization": token}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the emulator exited"
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.json() == {"assets": []}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_space_id_must_be_a_positive_integer_below_2_53(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for bad in ("0", "-3", "x", str(2**53)):
        assert main(["emulate", "storyblok", "--space-id", bad]) == 2
        assert "is not a space id" in capsys.readouterr().err


def test_space_id_is_refused_for_contentstack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "contentstack", "--space-id", "5"]) == 2
    assert "'--space-id': the contentstack emulator has no spaces" in capsys.readouterr().err
