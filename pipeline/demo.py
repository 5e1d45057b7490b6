"""``assetferry demo`` and ``assetferry emulate``: everything offline, nothing but the install.

The demo builds a sample library (real PNG/JPEG images, a PDF, text, a zero-byte file, unicode
and space-laden names, folders 7 levels deep), serves the emulators on loopback, and runs
``plan`` then ``migrate`` through the same code a real job uses.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import LoopbackServer
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline import logs
from pipeline.config import load_job
from pipeline.report import plan_json, plan_summary, plan_table
from pipeline.run import execute_job, plan_job
from pipeline.samples import SampleFile, sample_library, write_local_library

CS_API_KEY = "blt0123456789abcdef"
CS_TOKEN = "cs-emulator-token"
SB_SPACE = 288868932106293
SB_TOKEN = "sb-emulator-token"

def _sb_focus(value: str | None) -> str | None:
    # Storyblok keeps focus as a pixel box "x1xy1:x2xy2"; the sample images are ~64x48
    return "32x24:33x25" if value else None


def seed_storyblok(emu: StoryblokEmulator, files: list[SampleFile]) -> None:
    ids: dict[tuple[str, ...], int | None] = {(): None}
    for f in files:
        for depth in range(1, len(f.folder) + 1):
            path = f.folder[:depth]
            if path not in ids:
                ids[path] = emu.add_folder(path[-1], ids[path[:-1]])
        meta = {"alt__i18n__de": f.alt_de} if f.alt_de else None
        emu.add_asset(f.name, f.data, folder_id=ids[f.folder], alt=f.alt, title=f.title,
                      copyright="© assetferry demo" if f.alt else None,
                      focus=_sb_focus(f.focus), tags=f.tags, meta_data=meta,
                      content_type=f.content_type)


def _job_text(origin: str, dirs: dict[str, str]) -> str:
    if origin == "storyblok":
        source = (f'[source]\nconnector = "storyblok"\nspace_id = {SB_SPACE}\n'
                  f'token = "${{STORYBLOK_TOKEN}}"\nbase_url = "{dirs["sb"]}"\n'
                  "requests_per_second = 20\n")
    else:
        source = '[source]\nconnector = "local"\npath = "./library"\n'
    return (
        f"{source}\n[target]\nconnector = \"contentstack\"\napi_key = \"{CS_API_KEY}\"\n"
        'management_token = "${CONTENTSTACK_MANAGEMENT_TOKEN}"\n'
        f'region = "eu"\nbase_url = "{dirs["cs"]}"\nbranch = "main"\n\n'
        '[mapping]\nfolder_overflow = "collapse"\n\n'
        '[run]\nstate = "state/assetferry.db"\nconcurrency = 8\n'
    )


def run_demo(workdir: Path, *, origin: str = "storyblok") -> int:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    files = list(sample_library())
    say = sys.stdout.write
    say(f"assetferry demo: {len(files)} sample files, source {origin}, target Contentstack "
        "emulator (10 requests/s, as documented)\n")
    cs = ContentstackEmulator(api_key=CS_API_KEY, management_token=CS_TOKEN)
    sb = StoryblokEmulator(space_id=SB_SPACE, token=SB_TOKEN, rate_limit=None)
    if origin == "storyblok":
        seed_storyblok(sb, files)
    else:
        lib = workdir / "library"
        if not lib.exists():
            write_local_library(lib, files)
    logs.quiet()
    try:
        with LoopbackServer(cs.app) as cs_server, LoopbackServer(sb.app) as sb_server:
            os.environ["CONTENTSTACK_MANAGEMENT_TOKEN"] = CS_TOKEN
            os.environ["STORYBLOK_TOKEN"] = SB_TOKEN
            job_path = workdir / "job.toml"
            job_path.write_text(_job_text(origin, {"cs": cs_server.url, "sb": sb_server.url}),
                                encoding="utf-8")
            job = load_job(job_path)
            say(f"emulators: Contentstack {cs_server.url}, Storyblok {sb_server.url}\n"
                f"job file: {job_path}\n\n1. plan (dry run, touches nothing)\n")
            plan = anyio.run(lambda: plan_job(job))
            (workdir / "plan.json").write_text(plan_json(plan), encoding="utf-8")
            (workdir / "plan.txt").write_text(plan_table(plan), encoding="utf-8")
            summary = plan_summary(plan)
            say(f"   {summary['create']} assets and {summary['folders_create']} folders to "
                f"create, {summary['warnings']} warnings\n")
            warnings = [w for f in plan.folders for w in f.warnings]
            warnings += [w for a in plan.assets for w in a.warnings]
            kinds: dict[str, tuple[int, str]] = {}
            for w in warnings:
                kind = w.split(":")[0] if "dropped" in w or "depth" in w else w.split(" ")[0]
                count, example = kinds.get(kind, (0, w))
                kinds[kind] = (count + 1, example)
            for count, example in list(kinds.values())[:10]:
                say(f"   what the mapping changes ({count}x), e.g.: {example}\n")
            say("\n2. migrate\n")
            result = anyio.run(lambda: execute_job(job, "migrate"))
            report = workdir / "report.json"
            report.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False),
                              encoding="utf-8")
            say("   " + result.text().replace("\n", "\n   ") + "\n")
            say(f"   Contentstack now holds {len(cs.assets)} assets in {len(cs.folders)} "
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
            say(f"   plan:   {workdir / 'plan.txt'} and plan.json\n   report: {report}\n"
                f"   state:  {job.run.state}\n"
                f"   id map: assetferry export-map -c {job_path}\n"
                f"   status: assetferry status -c {job_path}\n")
            if result.exit_code() == 0 and len(cs.assets) < len(files):
                say("demo: the target holds fewer assets than the library\n")
                return 1
            return result.exit_code()
    finally:
        cs.close()
        sb.close()


def serve_emulator(cms: str, port: int, *, seed: str = "empty",
                   rate_limit: float | None = None) -> None:
    """Serve one emulator in the foreground until Ctrl-C."""
    import uvicorn

    files = list(sample_library()) if seed == "demo" else []
    if cms == "contentstack":
        cs = ContentstackEmulator(api_key=CS_API_KEY, management_token=CS_TOKEN,
                                  rate_limit=rate_limit or 10.0)
        ids: dict[tuple[str, ...], str | None] = {(): None}
        for f in files:
            for depth in range(1, min(len(f.folder), 5) + 1):
                path = f.folder[:depth]
                if path not in ids:
                    ids[path] = cs.add_folder(path[-1], ids[path[:-1]])
            cs.add_asset(f.name, f.data, parent_uid=ids[f.folder[:5]], title=f.title,
                         tags=f.tags, content_type=f.content_type)
        app = cs.app
        creds = f"api_key {CS_API_KEY}, management_token {CS_TOKEN}"
    else:
        sb = StoryblokEmulator(space_id=SB_SPACE, token=SB_TOKEN, rate_limit=rate_limit or 3.0)
        seed_storyblok(sb, files)
        app = sb.app
        creds = f"space_id {SB_SPACE}, token {SB_TOKEN}"
    sys.stdout.write(f"{cms} emulator on http://127.0.0.1:{port} ({seed}); {creds}\n"
                     "Ctrl-C to stop\n")
    sys.stdout.flush()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
