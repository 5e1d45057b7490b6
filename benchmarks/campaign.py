"""Fault campaign: kill and fault a migration into every target, then count what went wrong.

    python benchmarks/campaign.py [--assets 500] [--kills 30] [--targets contentstack,...]
                                  [--skip-kills] [--skip-faults] [--seed 7]

Never part of the test suite; it prints a Markdown table. Each target emulator runs in this
process on loopback (it outlives the killed runs); every `assetferry migrate` is a separate
process, so a SIGKILL is a real one.

1. Kill: a library of ``--assets`` small files in nested folders is migrated from a local
   folder; the run is SIGKILLed ``--kills`` times in the middle of its work and resumed each
   time, then run to the end. Each kill falls once a random number of that run's assets
   have landed (read from its JSON log; uniform, seeded, around the share of what is left
   that spreads the kills evenly over the migration), so a fast target is killed mid-run as
   often as a slow one (a kill at a random time up to 1 s after the first asset missed most
   runs into a local folder: they had finished).
2. Faults: a seeded Contentstack emulator (the source, so downloads are faulted too) into the
   target, both answering 10% 5xx, 5% 429 with ``Retry-After``, 2% connection resets and 1%
   truncated file bodies, re-run until it exits 0 (at most 10 runs); the requests both hosts
   saw are compared with the same migration without faults.

After each, the target is read back through its connector (a listing and every asset's
bytes) and compared with the library by folder path + filename: duplicates (more than one
asset at one path), missing (a library file absent) and different (other bytes). All three
must be 0.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.emulation import Faults, FaultSwitch, LoopbackServer  # noqa: E402
from connectors.plugin import DemoFile, EmulatedCMS, EmulatorSettings  # noqa: E402
from pipeline import logs  # noqa: E402
from pipeline.config import load_job  # noqa: E402
from pipeline.registry import open_connector, plugin_for  # noqa: E402

TARGETS = ("contentstack", "storyblok", "webflow", "local")
FOLDERS: tuple[tuple[str, ...], ...] = (
    (), ("brand",), ("brand", "logos"), ("campaigns", "2026", "spring"), ("docs",),
)
CAMPAIGN_FAULTS = Faults(error_rate=0.10, throttle_rate=0.05, reset_rate=0.02,
                         truncate_rate=0.01, seed=None)
Inventory = dict[str, list[str]]
"""``folder/path/filename`` -> sha256 of every asset stored there (more than one: duplicate)."""


def library(n: int, seed: int) -> list[DemoFile]:
    """``n`` text files of 1 B to 40 KB in five folders, reproducible from ``seed``."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz \n"
    files = []
    for i in range(n):
        size = rng.randint(1, 40_000)
        data = "".join(rng.choices(alphabet, k=size)).encode()
        files.append(DemoFile(folder=FOLDERS[i % len(FOLDERS)], name=f"asset-{i:04d}.txt",
                              data=data, content_type="text/plain", title=f"asset {i}"))
    return files


def write_library(root: Path, files: list[DemoFile]) -> None:
    for f in files:
        folder = root.joinpath(*f.folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f.name).write_bytes(f.data)


def expected(files: list[DemoFile]) -> Inventory:
    return {"/".join((*f.folder, f.name)): [hashlib.sha256(f.data).hexdigest()] for f in files}


@dataclass
class Side:
    """One end of a migration: its job-file table, environment and (for a CMS) emulator."""

    section: str
    env: Mapping[str, str] = field(default_factory=dict)
    cms: EmulatedCMS | None = None
    server: LoopbackServer | None = None

    def switch(self) -> FaultSwitch | None:
        emu = getattr(self.cms, "emulator", None)
        return emu if isinstance(emu, FaultSwitch) else None

    def set_faults(self, faults: Faults) -> None:
        switch = self.switch()
        if switch is not None:
            switch.faults = faults

    def requests(self) -> int:
        switch = self.switch()
        return sum(m.requests for m in switch.fault_middlewares()) if switch else 0

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.cms is not None:
            self.cms.close()


def _fast(section: str) -> str:
    """The emulator's job table without its pacing cap: the campaign measures faults, not
    waiting (the emulators run without a rate limit)."""
    section = re.sub(r"requests_per_second = [0-9.]+", "requests_per_second = 200", section)
    return re.sub(r"rate_limit_per_minute = [0-9.]+", "rate_limit_per_minute = 12000", section)


def open_side(name: str, work: Path, files: list[DemoFile] | None = None) -> Side:
    """An empty target ``name`` (or, with ``files``, a source seeded with them)."""
    if name == "local":
        path = work / "local-target"
        return Side(f'connector = "local"\npath = "{path}"\n')
    factory = plugin_for(name).emulator
    if factory is None:
        raise SystemExit(f"{name} has no emulator; pick from {', '.join(TARGETS)}")
    cms = factory(EmulatorSettings(unlimited=True))
    if files is not None:
        cms.seed(files)
    server = LoopbackServer(cms.app).start()
    # uvicorn sets its loggers up as it starts: killed clients and injected resets are on purpose
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    return Side(_fast(cms.job_section(server.url)), dict(cms.env), cms, server)


def write_job(work: Path, source: str, target: str) -> Path:
    job = work / "job.toml"
    job.write_text(f"[source]\n{source}\n[target]\n{target}\n"
                   f'[run]\nstate = "{work / "state.db"}"\nconcurrency = 8\n', encoding="utf-8")
    return job


def migrate(job: Path, env: Mapping[str, str], kill_after: int | None = None
            ) -> tuple[str, int]:
    """One ``assetferry migrate`` process: (``"killed"`` or ``"exit N"``, how many assets it
    landed, as its JSON log says).

    With ``kill_after``, SIGKILL it as soon as it has landed that many assets (its log polled
    every 5 ms: the kill falls a few assets later, at whatever step the loaders are in), so
    every kill falls in the middle of work, however fast the target or slow the start-up.
    """
    log = job.parent / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "--log-format", "json", "migrate", "-c",
             str(job)], env={**os.environ, **env}, stdout=out, stderr=out, cwd=job.parent)
        if kill_after is None:
            code = proc.wait()
            return f"exit {code}", log.read_bytes().count(b'"load.done"')
        while proc.poll() is None and log.read_bytes().count(b'"load.done"') < kill_after:
            time.sleep(0.005)
        if proc.poll() is not None:
            return f"exit {proc.returncode}", log.read_bytes().count(b'"load.done"')
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return "killed", log.read_bytes().count(b'"load.done"')


async def _read_back(job: Path) -> Inventory:
    config = load_job(job).target
    connector = open_connector(config, role="source")
    found: Inventory = {}
    try:
        async for asset in connector.iter_assets():
            if asset.skipped:
                continue
            digest = hashlib.sha256()
            async with connector.open_asset(asset) as chunks:
                async for chunk in chunks:
                    digest.update(chunk)
            key = "/".join((*asset.folder_path, asset.filename))
            found.setdefault(key, []).append(digest.hexdigest())
    finally:
        await connector.aclose()
    return found


def read_back(job: Path, env: Mapping[str, str]) -> Inventory:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return anyio.run(_read_back, job)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def compare(want: Inventory, got: Inventory) -> dict[str, int]:
    dup = sum(len(v) - 1 for v in got.values() if len(v) > 1)
    missing = sum(1 for k in want if k not in got)
    different = sum(1 for k, v in want.items() if k in got and set(got[k]) != set(v))
    extra = sum(1 for k in got if k not in want)
    return {"duplicates": dup, "missing": missing, "different": different, "extra": extra}


def kill_campaign(name: str, files: list[DemoFile], kills: int, rng: random.Random,
                  work: Path) -> dict[str, Any]:
    work.mkdir(parents=True)
    write_library(work / "library", files)
    target = open_side(name, work)
    try:
        job = write_job(work, f'connector = "local"\npath = "{work / "library"}"\n',
                        target.section)
        outcomes: Counter[str] = Counter()
        started = time.monotonic()
        landed = 0
        for i in range(kills):
            # spread the kills over what is left: about one share each, at a random point
            share = max(1, (len(files) - landed) // (kills - i + 1))
            outcome, done = migrate(job, target.env, kill_after=rng.randint(1, 2 * share))
            outcomes[outcome] += 1
            landed += done
        final, _ = migrate(job, target.env)
        elapsed = time.monotonic() - started
        counts = compare(expected(files), read_back(job, target.env))
        return {"target": name, "killed": outcomes["killed"],
                "finished before the kill": kills - outcomes["killed"], "final": final,
                "seconds": round(elapsed, 1), **counts}
    finally:
        target.close()


def fault_run(name: str, files: list[DemoFile], work: Path, faults: Faults | None
              ) -> dict[str, Any]:
    work.mkdir(parents=True)
    source = open_side("contentstack", work / "src", files)
    target = open_side(name, work)
    try:
        for side in (source, target):
            side.set_faults(faults or Faults())
        section, env = source.section, dict(target.env)
        for key, value in source.env.items():  # the same CMS on both sides: own variables
            section = section.replace(f"${{{key}}}", f"${{SOURCE_{key}}}")
            env[f"SOURCE_{key}"] = value
        job = write_job(work, section, target.section)
        runs = []
        for _ in range(10):
            runs.append(migrate(job, env)[0])
            if runs[-1] == "exit 0":
                break
        for side in (source, target):
            side.set_faults(Faults())
        requests = source.requests() + target.requests()
        counts = compare(expected(files), read_back(job, env))
        return {"target": name, "runs": len(runs), "final": runs[-1], "requests": requests,
                **counts}
    finally:
        source.close()
        target.close()


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    args = parser.parse_args()
    logs.quiet()
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    files = library(args.assets, args.seed)
    rng = random.Random(args.seed)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="assetferry-campaign-") as tmp:
        work = Path(tmp)
        if not args.skip_kills:
            rows = [kill_campaign(n, files, args.kills, rng, work / f"kill-{n}") for n in names]
            print(f"## Kill: {args.kills} SIGKILLs across {args.assets} assets per target\n")
            print(table(rows) + "\n")
            bad += sum(r["duplicates"] + r["missing"] + r["different"] for r in rows)
        if not args.skip_faults:
            rows = []
            for n in names:
                clean = fault_run(n, files, work / f"clean-{n}", None)
                faulty = fault_run(n, files, work / f"faults-{n}", CAMPAIGN_FAULTS)
                faulty["extra requests"] = (f"{faulty['requests'] - clean['requests']:+d} "
                                            f"({faulty['requests'] / clean['requests'] - 1:+.0%})")
                bad += clean["duplicates"] + clean["missing"] + clean["different"]
                rows.append(faulty)
            print("## Faults: 10% 5xx, 5% 429 + Retry-After, 2% resets, 1% truncated bodies, "
                  f"on the API and file hosts of both sides, {args.assets} assets "
                  "(Contentstack emulator as the source)\n")
            print(table(rows) + "\n")
            bad += sum(r["duplicates"] + r["missing"] + r["different"] for r in rows)
    print("all counts 0" if bad == 0 else f"FAILED: {bad} duplicate/missing/different assets")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
