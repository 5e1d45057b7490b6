"""Speed and memory figures, each against a baseline measured in the same run.

    python benchmarks/run.py [--quick]

1. Pacing: local -> Storyblok at the documented 3 requests/s. Baseline: the emulator without
   a limit (only our pacer). Storms: the emulator enforcing 3 requests/s (429 beyond it) with
   our pacer at 3/s, and at 6/s (a job file that claims a paid plan on a Starter space).
   Figure: successful API requests per second, its ratio to the 3/s limit and to baseline.
2. Memory: peak RSS of `assetferry migrate` moving one 1 MB file vs one 90 MB file into the
   Contentstack emulator (a separate process). Streaming to disk keeps the ratio near 1.

Prints figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.emulation import LoopbackServer  # noqa: E402
from connectors.storyblok.emulator import StoryblokEmulator  # noqa: E402
from pipeline import logs  # noqa: E402
from pipeline.config import load_job  # noqa: E402
from pipeline.run import execute_job  # noqa: E402

SPACE = 288868932106293
TOKEN = "sb-emulator-token"


def write_library(root: Path, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"file-{i:03d}.txt").write_bytes(f"benchmark file {i}\n".encode() * 20)


def pacing_run(workdir: Path, files: int, emulator_limit: float | None,
               our_rate: float) -> tuple[float, int, int, int]:
    """Returns (successful API requests per second, 429s, requests, exit code)."""
    emu = StoryblokEmulator(space_id=SPACE, token=TOKEN, rate_limit=emulator_limit)
    lib = workdir / "lib"
    write_library(lib, files)
    try:
        with LoopbackServer(emu.app) as server:
            job_path = workdir / "job.toml"
            job_path.write_text(
                f'[source]\nconnector = "local"\npath = "{lib}"\n\n'
                f'[target]\nconnector = "storyblok"\nspace_id = {SPACE}\ntoken = "{TOKEN}"\n'
                f'base_url = "{server.url}"\nrequests_per_second = {our_rate}\n\n'
                f'[run]\nstate = "{workdir / "state.db"}"\nconcurrency = 4\n',
                encoding="utf-8")
            job = load_job(job_path, env={})
            start = time.monotonic()
            summary = anyio.run(lambda: execute_job(job, "migrate"))
            elapsed = time.monotonic() - start
        rejected = emu.limiter.rejected
        ok = emu.requests - rejected
        return ok / elapsed, rejected, emu.requests, summary.exit_code()
    finally:
        emu.close()


def memory_run(workdir: Path, size: int) -> int:
    """Peak RSS (KiB) of a migrate subprocess moving one file of ``size`` bytes."""
    lib = workdir / "lib"
    lib.mkdir(parents=True)
    with (lib / "big.bin").open("wb") as out:
        block = os.urandom(1024 * 1024)
        for _ in range(size // len(block)):
            out.write(block)
    from connectors.emulation import free_port

    port = free_port()
    emu = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "emulate", "contentstack",
                            "--port", str(port), "--rate-limit", "1000"],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        job = workdir / "job.toml"
        job.write_text(
            f'[source]\nconnector = "local"\npath = "{lib}"\n\n'
            '[target]\nconnector = "contentstack"\napi_key = "blt0123456789abcdef"\n'
            'management_token = "cs-emulator-token"\n'
            f'base_url = "http://127.0.0.1:{port}"\nrequests_per_second = 100\n\n'
            f'[run]\nstate = "{workdir / "state.db"}"\n', encoding="utf-8")
        code = (
            "import resource, sys; from pipeline.cli import main; rc = main(['migrate', '-c', "
            f"{str(job)!r}]); print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
            " file=sys.stderr); sys.exit(rc)"
        )
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, check=False)
        if run.returncode != 0:
            raise RuntimeError(run.stdout + run.stderr[-2000:])
        line = [x for x in run.stderr.splitlines() if x.startswith("MAXRSS")][-1]
        return int(line.split()[1])
    finally:
        emu.terminate()
        emu.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer files, smaller big file")
    args = parser.parse_args()
    logs.quiet()
    files = 8 if args.quick else 15
    limit = 3.0
    print(f"1. pacing, local -> Storyblok emulator, {files} files, documented limit {limit}/s")
    with tempfile.TemporaryDirectory() as tmp:
        base_rate, _, base_requests, base_rc = pacing_run(Path(tmp), files, None, limit)
    print(f"   baseline (no server limit, pacer {limit}/s): {base_rate:.2f} req/s "
          f"({base_rate / limit:.0%} of the limit), {base_requests} requests, exit {base_rc}")
    for label, ours in (("documented pacing", limit), ("job file claims 6/s", 2 * limit)):
        with tempfile.TemporaryDirectory() as tmp:
            rate, rejected, requests, rc = pacing_run(Path(tmp), files, limit, ours)
        print(f"   429 storm, server {limit}/s, pacer {ours}/s ({label}): {rate:.2f} successful "
              f"req/s = {rate / limit:.0%} of the limit, {rate / base_rate:.2f} x baseline; "
              f"{rejected} of {requests} requests answered 429; exit {rc}")

    big = (20 if args.quick else 90) * 1024 * 1024
    print(f"2. memory, one file into the Contentstack emulator: 1 MB vs {big >> 20} MB")
    with tempfile.TemporaryDirectory() as tmp:
        small_rss = memory_run(Path(tmp), 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        big_rss = memory_run(Path(tmp), big)
    print(f"   peak RSS: 1 MB file {small_rss / 1024:.1f} MiB, {big >> 20} MB file "
          f"{big_rss / 1024:.1f} MiB, ratio {big_rss / small_rss:.2f} "
          f"(file size ratio {big / (1024 * 1024):.0f})")


if __name__ == "__main__":
    main()
