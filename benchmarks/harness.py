"""What every benchmark shares: libraries, job files, emulator processes, timed commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.emulation import free_port  # noqa: E402

API_PREFIX = {"contentstack": "/v3/", "storyblok": "/v1/", "webflow": "/v2/"}
"""Paths of each emulator's rate-limited API (file hosts and storage are not counted)."""
LIMIT = {"contentstack": (10.0, 1.0), "storyblok": (3.0, 1.0), "webflow": (60.0, 60.0)}
"""Each target's documented limit: (requests, per seconds); see the connectors' docs."""


def write_library(root: Path, count: int, size: int = 200, per_folder: int = 500) -> None:
    """``count`` small files of ``size`` bytes, ``per_folder`` to a folder."""
    for i in range(count):
        folder = root / f"d{i // per_folder:04d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{i:06d}.txt").write_bytes((b"%06d " % i) * (size // 7 + 1))


def write_big(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for _ in range(size >> 20):
            out.write(block)


def job_file(workdir: Path, source: str, target: str, **run: Any) -> Path:
    """A job file with ``source``/``target`` tables (TOML body lines) and ``[run]`` keys."""
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in run.items())
    path = workdir / "job.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n[run]\n"
                    f'state = "{workdir / "state.db"}"\n{lines}', encoding="utf-8")
    return path


def local(path: Path) -> str:
    return f'connector = "local"\npath = "{path}"\n'


@dataclass
class Timed:
    seconds: float
    max_rss_mib: float
    code: int
    out: str
    cpu_seconds: float = float("nan")
    """User + system CPU of the assetferry process, start-up included."""


RSS = ("import resource, sys, time; t = time.monotonic(); from pipeline.cli import main; "
       "rc = main(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_SELF); "
       "print('BENCH', time.monotonic() - t, u.ru_maxrss, u.ru_utime + u.ru_stime, "
       "file=sys.stderr); sys.exit(rc)")


def assetferry(*args: str, env: dict[str, str] | None = None, timeout: float = 3600) -> Timed:
    """Run ``assetferry ARGS`` in a fresh process: wall time (process start to exit), peak
    RSS (MiB), CPU seconds and exit code."""
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-c", RSS, *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, check=False,
                         env={**os.environ, **(env or {})})
    seconds = time.monotonic() - start
    line = [x for x in run.stderr.splitlines() if x.startswith("BENCH")]
    rss = int(line[-1].split()[2]) / 1024 if line else float("nan")
    cpu = float(line[-1].split()[3]) if line else float("nan")
    if run.returncode not in (0, 1):
        raise RuntimeError(f"assetferry {' '.join(args)} exited {run.returncode}:\n"
                           f"{run.stdout[-1500:]}\n{run.stderr[-1500:]}")
    return Timed(seconds, rss, run.returncode, run.stdout, cpu)


class Served(NamedTuple):
    """One request an emulator served (benchmarks/serve.py), times in seconds since the
    emulator started."""

    start: float
    method: str
    path: str
    status: int
    end: float
    """When its response ended."""


@dataclass
class Emulator:
    cms: str
    url: str
    env: dict[str, str]
    job: str
    pid: int = 0

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator's process has used so far (Linux ``/proc``; NaN
        elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> list[Served]:
        data = httpx.get(self.url + "/__bench__/stats", timeout=30).json()
        return [Served(*r) for r in data["requests"]]

    def reset(self) -> None:
        httpx.post(self.url + "/__bench__/reset", timeout=30)

    def api(self) -> list[Served]:
        """Requests to the rate-limited API so far."""
        return [r for r in self.stats() if r[2].startswith(API_PREFIX.get(self.cms, "/"))]


@contextmanager
def emulator(cms: str, *, latency: float = 0.0, unlimited: bool = False,
             seed: int = 0) -> Iterator[Emulator]:
    """The ``cms`` emulator in its own process (benchmarks/serve.py)."""
    port = free_port()
    args = [sys.executable, str(ROOT / "benchmarks" / "serve.py"), cms, str(port),
            "--latency", str(latency), "--seed", str(seed)] + (["--unlimited"] * unlimited)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None  # noqa: S101
        info = json.loads(proc.stdout.readline())
        proc.stdout.close()
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(info["url"] + "/__bench__/stats", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{cms} emulator did not start") from None
                time.sleep(0.2)
        yield Emulator(cms, info["url"], info["env"], info["job"], proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def span(requests: list[Served]) -> float:
    """Seconds from the first request's start to the last one's."""
    return requests[-1][0] - requests[0][0] if len(requests) > 1 else 0.0


def busy_span(requests: list[Served]) -> float:
    """Seconds from the first request's start to the last response's end: the span in which
    the server was handed those requests."""
    if not requests:
        return 0.0
    return max(r.end for r in requests) - min(r.start for r in requests)
