"""``assetferry demo`` and ``assetferry emulate``: everything offline, nothing but the install.

The demo builds a sample library (real PNG/JPEG images, a PDF, text, a zero-byte file, unicode
and space-laden names, folders 7 levels deep), serves the emulators on loopback, and runs
``plan`` then ``migrate`` through the same code a real job uses.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from connectors.base import Source
from connectors.emulation import LoopbackServer
from connectors.errors import ConfigError
from connectors.plugin import EmulatedCMS, EmulatorSettings
from pipeline import logs
from pipeline.aio import run_async
from pipeline.config import load_job
from pipeline.html_report import plan_html, run_html
from pipeline.plan import Op, Plan
from pipeline.registry import plugin_for
from pipeline.report import plan_json, plan_summary, plan_table
from pipeline.run import execute_job, plan_job
from pipeline.samples import sample_library, write_local_library
from pipeline.thumbnails import candidates, fetch_thumbnails

DEFAULT_ORIGIN = "storyblok"
DEFAULT_DESTINATION = "contentstack"


def _emulator(name: str, settings: EmulatorSettings) -> EmulatedCMS:
    factory = plugin_for(name).emulator
    if factory is None:
        raise ValueError(f"{name} has no emulator")
    return factory(settings)


def _job_text(source: str, target: str) -> str:
    return (
        f"[source]\n{source}\n[target]\n{target}\n"
        '[mapping]\nfolder_overflow = "collapse"\n\n'
        '[run]\nstate = "state/assetferry.db"\nconcurrency = 8\n'
    )


DEMO_MARKER = ".assetferry-demo"


def claim_demo_dir(workdir: Path) -> Path:
    """``workdir`` resolved and marked as the demo's own; refuse a folder with a user's files."""
    workdir = workdir.resolve()
    marker = workdir / DEMO_MARKER
    if workdir.is_dir() and not marker.exists():
        theirs = sorted(p.name for p in workdir.iterdir())
        if theirs:
            shown = ", ".join(theirs[:5]) + (", ..." if len(theirs) > 5 else "")
            raise ConfigError(
                f"demo --dir {workdir} already holds files the demo did not make ({shown}); "
                "the demo writes job.toml, report.*, plan.* and state/ there and never "
                "overwrites a user's file: give a new or empty folder"
            )
    workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by `assetferry demo`, which may overwrite the files here\n",
                      encoding="utf-8")
    return workdir


def run_demo(workdir: Path, *, thumbnails: int, origin: str = DEFAULT_ORIGIN,
             destination: str = DEFAULT_DESTINATION, temporal: bool = False) -> int:
    """Seed ``origin`` (an emulated CMS, or ``"local"``), migrate it into ``destination``
    (with ``temporal``: on a Temporal dev server and two worker processes started here).
    ``thumbnails``: images in the HTML plan, at most (``plan --thumbnails``'s default).

    Never overwrites a user's file: ``workdir`` must be new, empty, or made by an earlier
    demo (it holds ``DEMO_MARKER``); otherwise ConfigError (exit 2) names it.
    """
    workdir = claim_demo_dir(workdir)
    files = list(sample_library())
    say = sys.stdout.write
    target_plugin = plugin_for(destination)
    say(f"assetferry demo: {len(files)} sample files, source {origin}, target "
        f"{target_plugin.label} emulator (its documented rate limit)\n")
    dst = _emulator(destination, EmulatorSettings())
    src = None if origin == "local" else _emulator(origin, EmulatorSettings(unlimited=True))
    if src is not None:
        src.seed(files)
    else:
        lib = workdir / "library"
        if not lib.exists():
            write_local_library(lib, files)
    logs.quiet()
    try:
        with LoopbackServer(dst.app) as dst_server, \
                (LoopbackServer(src.app) if src else nullcontext()) as src_server:
            for emu in (dst, src):
                os.environ.update(emu.env if emu else {})
            source_section = (src.job_section(src_server.url)
                              if src and src_server else
                              'connector = "local"\npath = "./library"\n')
            job_path = workdir / "job.toml"
            job_path.write_text(_job_text(source_section, dst.job_section(dst_server.url)),
                                encoding="utf-8")
            job = load_job(job_path)
            where = f"{target_plugin.label} {dst_server.url}"
            if src_server is not None:
                where += f", {plugin_for(origin).label} {src_server.url}"
            say(f"emulators: {where}\n"
                f"job file: {job_path}\n\n1. plan (dry run, touches nothing)\n")
            thumbs: dict[str, str] = {}

            async def read_thumbnails(source: Source, plan: Plan) -> None:
                thumbs.update(await fetch_thumbnails(
                    source, candidates(plan, thumbnails)))

            plan = run_async(lambda: plan_job(job, with_source=read_thumbnails))
            (workdir / "plan.json").write_text(plan_json(plan), encoding="utf-8")
            (workdir / "plan.txt").write_text(plan_table(plan), encoding="utf-8")
            (workdir / "plan.html").write_text(plan_html(plan, thumbnails=thumbs),
                                               encoding="utf-8")
            summary = plan_summary(plan)
            say(f"   {summary['create']} assets and {summary['folders_create']} folders to "
                f"create, {summary['warnings']} warnings\n")
            for left in plan.assets:  # what will not be migrated, and why, before it runs
                if left.op in (Op.UNSUPPORTED, Op.CONFLICT) or (
                        left.asset is not None and left.asset.skipped):
                    say(f"   {left.op.value} {left.path}: {left.reason}\n")
            warnings = [w for f in plan.folders for w in f.warnings]
            warnings += [w for a in plan.assets for w in a.warnings]
            kinds: dict[str, tuple[int, str]] = {}
            for w in warnings:
                kind = w.split(":")[0] if "dropped" in w or "depth" in w else w.split(" ")[0]
                count, example = kinds.get(kind, (0, w))
                kinds[kind] = (count + 1, example)
            for count, example in list(kinds.values())[:10]:
                say(f"   what the mapping changes ({count}x), e.g.: {example}\n")
            if temporal:
                say("\n2. migrate on Temporal\n")
                return _migrate_on_temporal(job_path, workdir, dst, target_plugin.label,
                                            len(files), job.run.state)
            say("\n2. migrate\n")
            result = run_async(lambda: execute_job(job, "migrate"))
            report = workdir / "report.json"
            report.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False),
                              encoding="utf-8")
            (workdir / "report.html").write_text(run_html(result), encoding="utf-8")
            say("   " + result.text().replace("\n", "\n   ") + "\n")
            held, held_folders = dst.holdings()
            say(f"   {target_plugin.label} now holds {held} assets in {held_folders} "
                "folders; what went where (a few of them):\n")
            planned = {a.source_id: a for a in plan.assets}
            shown_paths = 0
            for outcome in result.assets():
                action = planned.get(outcome.source_id)
                if action is None or action.target_folder is None or shown_paths >= 5:
                    continue
                if len(action.target_folder) < 5 and shown_paths >= 2:
                    continue  # prefer the reshaped deep ones
                shown_paths += 1
                target_path = "/".join((*action.target_folder, action.filename))
                say(f"     {outcome.path}\n       -> {target_path} ({outcome.target_id})\n")
            say("\n3. where things are\n")
            say(f"   plan:   {workdir / 'plan.txt'}, plan.json and plan.html (open it in a "
                "browser)\n"
                f"   report: {report} and report.html\n"
                f"   state:  {job.run.state}\n"
                f"   id map: assetferry export-map -c {job_path}\n"
                f"   status: assetferry status -c {job_path}\n")
            if result.exit_code() == 0 and held < len(files):
                say("demo: the target holds fewer assets than the library\n")
                return 1
            return result.exit_code()
    finally:
        dst.close()
        if src is not None:
            src.close()


def _migrate_on_temporal(job_path: Path, workdir: Path, dst: EmulatedCMS, label: str,
                         files: int, state: str) -> int:
    """The demo's step 2 on Temporal (pipeline.temporal.demo); its exit code."""
    from pipeline.temporal.demo import migrate_on_temporal

    def say(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    result = migrate_on_temporal(job_path, workdir, say)
    report = workdir / "report.json"
    report.write_text(json.dumps({k: v for k, v in result.items() if k != "text"}, indent=2,
                                 ensure_ascii=False), encoding="utf-8")
    say("   " + str(result.get("text", "")).replace("\n", "\n   ") + "\n")
    held, held_folders = dst.holdings()
    say(f"   {label} now holds {held} assets in {held_folders} folders\n"
        "\n3. where things are\n"
        f"   report: {report}\n   state:  {state}\n"
        f"   status: assetferry status -c {job_path}\n")
    code = result.get("exit_code")
    if not isinstance(code, int):
        return 2
    if code == 0 and held < files:
        say("demo: the target holds fewer assets than the library\n")
        return 1
    return code


def serve_emulator(cms: str, port: int, *, seed: str = "empty",
                   rate_limit: float | None = None, space_id: int | None = None) -> None:
    """Serve one emulator in the foreground until Ctrl-C; the first line printed names its
    credentials (for Storyblok the space: ``space_id`` or a random one)."""
    import uvicorn

    plugin = plugin_for(cms)
    emu = _emulator(cms, EmulatorSettings(rate_limit=rate_limit, space_id=space_id))
    if seed == "demo":
        emu.seed(sample_library())
    sys.stdout.write(f"{cms} emulator on http://127.0.0.1:{port} ({seed}); {emu.credentials}\n"
                     f"rate limit in {plugin.unit}; Ctrl-C to stop\n")
    sys.stdout.flush()
    try:
        uvicorn.run(emu.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    finally:
        emu.close()
