"""End to end with Storyblok: to and from Contentstack and a local folder, item by item."""

from __future__ import annotations

import json
import re
from pathlib import Path

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.storyblok.demo import seed as seed_storyblok
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline.config import load_job
from pipeline.run import execute_job
from pipeline.samples import SampleFile, sample_library
from tests.pipeline.helpers import (
    CS_SECTION,
    cs_inventory,
    job_toml,
    local_inventory,
    sb_section,
    sha,
)

SB_SPACE = 288868932106293
SB_TOKEN = "sb-e2e-token-41c9"
SB = "http://sb.emulator"
CS = "http://cs.emulator"


SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)


def job(tmp_path: Path, source: str, target: str, name: str = "job") -> Path:
    return job_toml(tmp_path, source, target, name=name, state=f"{name}.db")


def sb_tree(emu: StoryblokEmulator) -> dict[int, tuple[str, ...]]:
    paths: dict[int, tuple[str, ...]] = {}

    def path(fid: int) -> tuple[str, ...]:
        if fid not in paths:
            rec = emu.folders[fid]
            parent = rec.get("parent_id")
            paths[fid] = (*(path(parent) if parent else ()), rec["name"])
        return paths[fid]

    for fid in emu.folders:
        path(fid)
    return paths


def sb_inventory(emu: StoryblokEmulator) -> list[tuple[tuple[str, ...], str, str]]:
    tree = sb_tree(emu)
    out = []
    for aid, rec in emu.assets.items():
        if rec.get("deleted_at"):
            continue
        folder = rec.get("asset_folder_id")
        out.append((tree[folder] if folder else (), rec["short_filename"], sha(emu.blob(aid))))
    return sorted(out)


def collapsed(folder: tuple[str, ...]) -> tuple[str, ...]:
    return folder if len(folder) <= 5 else (*folder[:4], " - ".join(folder[4:]))


def cs_name(name: str) -> str:
    return re.sub(r"\s", "_", name)


async def test_storyblok_to_contentstack(tmp_path: Path, sb: StoryblokEmulator,
                                         cs: ContentstackEmulator) -> None:
    files = list(sample_library())
    seed_storyblok(sb, files)
    config = load_job(job(tmp_path, SB_SECTION, CS_SECTION), env={})
    transports = {"source": in_process_transport(sb.app), "target": in_process_transport(cs.app)}
    summary = await execute_job(config, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert cs_inventory(cs) == sorted(
        (collapsed(f.folder), cs_name(f.name), sha(f.data)) for f in files)
    titles = {rec["filename"]: rec["title"] for rec in cs.assets.values()}
    assert all(titles[cs_name(f.name)] == f.title for f in files)
    tags = {rec["filename"]: sorted(rec["tags"]) for rec in cs.assets.values()}
    assert all(tags[cs_name(f.name)] == sorted(f.tags) for f in files)
    assert sb.credential_leaks == []
    assert cs.credential_leaks == []


async def test_contentstack_to_storyblok(tmp_path: Path, sb: StoryblokEmulator,
                                         cs: ContentstackEmulator) -> None:
    brand = cs.add_folder("Brand")
    logos = cs.add_folder("Logos", brand)
    files = list(sample_library())[:12]
    placed: list[tuple[tuple[str, ...], SampleFile]] = []
    for i, f in enumerate(files):
        parent, folder = ((logos, ("Brand", "Logos")) if i % 3 == 0 else
                          (brand, ("Brand",)) if i % 3 == 1 else (None, ()))
        cs.add_asset(cs_name(f.name), f.data, parent_uid=parent, title=f.title,
                     description=f"about {f.title}", tags=f.tags, content_type=f.content_type)
        placed.append((folder, f))
    config = load_job(job(tmp_path, CS_SECTION, SB_SECTION), env={})
    transports = {"source": in_process_transport(cs.app), "target": in_process_transport(sb.app)}
    summary = await execute_job(config, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert sb_inventory(sb) == sorted((folder, cs_name(f.name), sha(f.data))
                                      for folder, f in placed)
    by_name = {rec["short_filename"]: rec for rec in sb.assets.values()}
    for _, f in placed:
        rec = by_name[cs_name(f.name)]
        assert rec["title"] == f.title
        tag_names = {sb.internal_tags[int(t)]["name"] for t in rec["internal_tag_ids"]}
        assert tag_names == set(f.tags)
    assert sb.credential_leaks == []


async def test_storyblok_to_local_keeps_every_field(tmp_path: Path,
                                                    sb: StoryblokEmulator) -> None:
    files = list(sample_library())
    seed_storyblok(sb, files)
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, SB_SECTION, f'connector = "local"\npath = "{dest}"\n'),
                      env={})
    summary = await execute_job(config, "migrate",
                                transports={"source": in_process_transport(sb.app)})
    assert summary.exit_code() == 0, summary.text()
    assert local_inventory(dest) == sorted((f.folder, f.name, sha(f.data)) for f in files)
    manifest = json.loads((dest / ".assetferry.json").read_text())["assets"]
    for f in files:
        entry = manifest["/".join((*f.folder, f.name))]
        assert entry.get("title") == f.title
        assert entry.get("alt_text") == f.alt
        assert sorted(entry.get("tags", [])) == sorted(f.tags)
        if f.alt_de:
            assert entry["locales"]["de"]["alt_text"] == f.alt_de
        if f.focus:
            assert entry.get("focus"), f.name
        if f.alt:
            assert entry.get("copyright") == "© assetferry demo"


async def test_private_asset_without_asset_token_is_unreachable_in_the_plan(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    from pipeline.plan import Op
    from pipeline.run import plan_job

    sb.add_asset("public.png", b"public bytes", title="public")
    sb.add_asset("secret.pdf", b"private bytes", title="secret", is_private=True)
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, SB_SECTION, f'connector = "local"\npath = "{dest}"\n'),
                      env={})
    plan = await plan_job(config, transports={"source": in_process_transport(sb.app)})
    ops = {a.path: (a.op, a.reason) for a in plan.assets}
    assert ops["public.png"][0] is Op.CREATE
    assert ops["secret.pdf"][0] is Op.UNSUPPORTED
    assert "asset_token" in ops["secret.pdf"][1]
    summary = await execute_job(config, "migrate",
                                transports={"source": in_process_transport(sb.app)})
    assert summary.exit_code() == 1, "a private asset left behind is not success"
    assert [o.path for o in summary.not_migrated()] == ["secret.pdf"]
    assert (dest / "public.png").read_bytes() == b"public bytes"


async def test_lost_answers_to_storyblok_writes_still_give_one_asset_with_its_metadata(
    tmp_path: Path,
) -> None:
    """Every write to Storyblok does its work, then answers 502 (sign, storage, tags, PUT)."""
    from connectors.emulation import Faults
    from tests.pipeline.helpers import library

    files = [f for f in sample_library() if f.alt_de and len(f.folder) <= 1][:6]
    root, _ = library(tmp_path, files)
    emu = StoryblokEmulator(space_id=SB_SPACE, token=SB_TOKEN, rate_limit=None,
                            faults=Faults(error_after_commit_rate=0.3, seed=5))
    try:
        config = load_job(job(tmp_path, f'connector = "local"\npath = "{root}"\n', SB_SECTION),
                          env={})
        transports = {"target": in_process_transport(emu.app)}
        summary = await execute_job(config, "migrate", transports=transports)
        for _ in range(3):  # items out of tries are finished by re-runs, never duplicated
            if summary.exit_code() == 0:
                break
            summary = await execute_job(config, "migrate", transports=transports)
        assert summary.exit_code() == 0, summary.text()
        assert emu.fault_middleware.injected["after_commit"] > 0
        emu.faults = Faults()
        assert sb_inventory(emu) == sorted((f.folder, f.name, sha(f.data)) for f in files)
        by_name = {rec["short_filename"]: rec for rec in emu.assets.values()}
        for f in files:
            rec = by_name[f.name]
            assert rec["alt"] == f.alt, f.name
            assert rec["meta_data"].get("alt__i18n__de") == f.alt_de, f.name
    finally:
        emu.close()
