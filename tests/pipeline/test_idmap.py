"""The id/URL map: the live JSON Lines map a run appends as items complete (true after a
SIGKILL, repaired from the ledger by the next run), its URL variants, and export-map's
formats checked against what the vendors' importers read."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.storyblok.demo import seed as seed_storyblok
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline import cli
from pipeline.config import load_job
from pipeline.idmap import default_map_path, url_forms
from pipeline.run import execute_job
from pipeline.samples import SampleFile, sample_library
from state.store import ItemStatus, StateStore
from tests.pipeline.helpers import (
    CS_SECTION,
    EMU_TOKEN,
    cs_job_file,
    library,
    run_migrate,
)
from tests.pipeline.helpers import sb_section as storyblok_section

SB_OLD, SB_NEW = 288868932106293, 288868932106294
SB_TOKEN = "sb-map-token"


def sb_section(space: int) -> str:
    return storyblok_section(space, SB_TOKEN)


def files() -> list[SampleFile]:
    return [f for f in sample_library() if f.data][:10]


def job_file(tmp_path: Path, source: str, target: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n"
                    f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    return path


def read_map(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def without_times(lines: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in x.items() if k != "at"}, sort_keys=True)
                  for x in lines)


def last_lines(lines: list[dict[str, Any]], kind: str = "asset") -> dict[str, str | None]:
    """source id -> target id, the last line of each winning."""
    out: dict[str, str | None] = {}
    for line in lines:
        if line["kind"] == kind:
            out[line["source_id"]] = line["target_id"]
    return out


def ledger(state: Path, kind: str = "asset") -> dict[str, str | None]:
    with StateStore(str(state)) as store:
        (route,) = store.routes()
        return {r.source_id: r.target_id for (k, _), r in store.items(route).items()
                if k == kind and r.status is ItemStatus.DONE and r.target_id}


@pytest.fixture
def sb_pair() -> Iterator[tuple[StoryblokEmulator, StoryblokEmulator]]:
    old = StoryblokEmulator(space_id=SB_OLD, token=SB_TOKEN, rate_limit=None)
    new = StoryblokEmulator(space_id=SB_NEW, token=SB_TOKEN, rate_limit=None)
    yield old, new
    old.close()
    new.close()


def test_default_map_location_is_beside_a_sqlite_state_file(tmp_path: Path) -> None:
    assert default_map_path(str(tmp_path / "state" / "assetferry.db")) == \
        tmp_path / "state" / "assetferry.map.jsonl"
    assert default_map_path("postgresql://u@db/x") is None, "a server DB has no folder"
    assert default_map_path("postgresql://u@db/x", str(tmp_path / "m.jsonl")) == \
        tmp_path / "m.jsonl"


def test_url_variants_storyblok_and_contentstack() -> None:
    """Storyblok: protocol-relative ``//a.storyblok.com/f/...`` and the S3 origin form are the
    same file, ``.../m/200x0`` an image-service URL (cms-api-facts 2.1, Storyblok Image
    Service); Contentstack: ``?width=200`` parameters (Image Delivery API)."""
    sb = "https://a.storyblok.com/f/606/1920x1080/e5990a3595/hero.jpg"
    exact, prefixes = url_forms(sb, "storyblok")
    assert "//a.storyblok.com/f/606/1920x1080/e5990a3595/hero.jpg" in exact
    assert "https://s3.amazonaws.com/a.storyblok.com/f/606/1920x1080/e5990a3595/hero.jpg" in exact
    assert prefixes == [sb + "/m/", "//a.storyblok.com/f/606/1920x1080/e5990a3595/hero.jpg/m/"]
    assert any((sb + "/m/200x0").startswith(p) for p in prefixes)
    s3 = "https://s3.amazonaws.com/a.storyblok.com/f/606/e5990a3595/x.jpg"
    exact, _ = url_forms(s3, "storyblok")
    assert "https://a.storyblok.com/f/606/e5990a3595/x.jpg" in exact
    cs_url = "https://images.contentstack.io/v3/assets/blt1/blt2/blt3/hero.jpg"
    exact, prefixes = url_forms(cs_url, "contentstack")
    assert exact == ["//images.contentstack.io/v3/assets/blt1/blt2/blt3/hero.jpg"]
    assert prefixes == [cs_url + "?", exact[0] + "?"]
    assert url_forms(None, "storyblok") == ([], [])


async def test_live_map_after_a_run_equals_the_ledger_and_export_jsonl(
        tmp_path: Path, cs: ContentstackEmulator, sb_pair: tuple[StoryblokEmulator, ...],
        capsys: pytest.CaptureFixture[str]) -> None:
    seed_storyblok(sb_pair[0], files())
    path = job_file(tmp_path, sb_section(SB_OLD), CS_SECTION)
    transports = {"source": in_process_transport(sb_pair[0].app),
                  "target": in_process_transport(cs.app)}
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    live = read_map(tmp_path / "state.map.jsonl")
    assert last_lines(live) == ledger(tmp_path / "state.db")
    assert len(last_lines(live)) == len(files())
    assert last_lines(live, "folder") == ledger(tmp_path / "state.db", "folder")
    line = next(x for x in live if x["kind"] == "asset")
    assert line["target_url"] == cs.assets[line["target_id"]]["url"]
    assert f"/f/{SB_OLD}/" in line["source_url"]
    assert line["source_url_prefixes"][0] == line["source_url"] + "/m/"
    assert line["target_url_prefixes"][0] == line["target_url"] + "?"

    out = tmp_path / "map.jsonl"
    assert await export_map(["export-map", "-c", str(path), "--format", "jsonl",
                             "--out", str(out)]) == 0
    exported = read_map(out)
    assert without_times(exported) == without_times(live)

    # a second run with nothing changed appends nothing
    before = (tmp_path / "state.map.jsonl").read_bytes()
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0
    assert (tmp_path / "state.map.jsonl").read_bytes() == before


async def test_next_run_repairs_a_map_cut_short(tmp_path: Path, cs: ContentstackEmulator) -> None:
    """A kill between the ledger commit and the append (or mid-line) loses lines; the next
    run appends them before anything else, and drops the torn line."""
    root, _ = library(tmp_path, files())
    path = job_file(tmp_path, f'connector = "local"\npath = "{root}"\n', CS_SECTION)
    with path.open("a", encoding="utf-8") as f:  # [run] is the file's last table
        f.write('map_file = "maps/ids.jsonl"\n')
    transports = {"target": in_process_transport(cs.app)}
    assert (await execute_job(load_job(path, env={}), "migrate",
                              transports=transports)).exit_code() == 0
    map_path = tmp_path / "maps" / "ids.jsonl"
    raw = map_path.read_bytes().splitlines(keepends=True)
    map_path.write_bytes(b"".join(raw[:3]) + raw[3][:20])  # 3 lines kept, a 4th torn
    assert (await execute_job(load_job(path, env={}), "migrate",
                              transports=transports)).exit_code() == 0
    lines = read_map(map_path)
    assert last_lines(lines) == ledger(tmp_path / "state.db")
    assert len(lines) == len(raw), "each lost line once, no duplicate"


@pytest.mark.slow
def test_map_of_a_sigkilled_run_holds_only_completed_items_and_is_repaired(
        tmp_path: Path, emulator: str) -> None:
    """After a SIGKILL the map names only items the ledger holds as done, with their target
    ids; the last committed batch may be missing (the kill can fall between the commit and
    the append, as pipeline/idmap.py says), and the next run appends it first.

    The first kill falls exactly there (``asset.done.committed``: right after the first
    commit holding an asset's done record), whatever the group commit's schedule; the second
    run, with files added so that it has uploads of its own, dies after its first upload."""
    first, added = files()[:5], files()[5:]
    root, _ = library(tmp_path, first)
    job = cs_job_file(tmp_path, root, emulator, concurrency=2)
    state, map_path = tmp_path / "state.db", tmp_path / "state.map.jsonl"
    before: dict[str, str | None] = {}
    for point in ("asset.done.committed:1", "upload.after:1"):
        killed = run_migrate(job, {"CS_TOKEN": EMU_TOKEN}, point)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        done = ledger(state)
        assert done, "the kill came after some assets were done"
        mapped = last_lines(read_map(map_path)) if map_path.exists() else {}
        assert mapped.items() <= done.items(), "a map line for an item not done"
        assert before.items() <= mapped.items(), "the next run did not repair the map"
        if not before:
            assert mapped.items() < done.items(), "the kill was meant to cut the map short"
            for f in added:  # new files only: the others keep their mtime (unchanged)
                root.joinpath(*f.folder).mkdir(parents=True, exist_ok=True)
                root.joinpath(*f.folder, f.name).write_bytes(f.data)
        before = done
    final = run_migrate(job, {"CS_TOKEN": EMU_TOKEN})
    assert final.returncode == 0, final.stderr[-2000:]
    assert last_lines(read_map(map_path)) == ledger(state)
    assert len(ledger(state)) == len(files())


async def export_map(argv: list[str]) -> int:
    """``assetferry ARGV`` from an async test (the command runs its own event loop)."""
    return await anyio.to_thread.run_sync(cli.main, argv)


def manifest_entry_is_valid(entry: dict[str, Any]) -> bool:
    """The Storyblok CLI's test for a manifest line it uses (storyblok/monoblok,
    packages/cli/src/commands/assets/utils.ts ``isValidManifestEntry``: ``old_id`` and
    ``new_id`` are numbers, ``new_filename`` is set); ``ManifestEntry`` in
    packages/cli/src/utils/filesystem.ts names the keys."""
    return (isinstance(entry.get("old_id"), int) and isinstance(entry.get("new_id"), int)
            and bool(entry.get("new_filename"))
            and set(entry) <= {"old_id", "new_id", "old_filename", "new_filename",
                               "created_at"})


async def test_storyblok_manifest_is_what_the_storyblok_cli_reads(
        tmp_path: Path, sb_pair: tuple[StoryblokEmulator, StoryblokEmulator],
        capsys: pytest.CaptureFixture[str]) -> None:
    old, new = sb_pair
    seed_storyblok(old, files())
    path = job_file(tmp_path, sb_section(SB_OLD), sb_section(SB_NEW))
    transports = {"source": in_process_transport(old.app), "target": in_process_transport(new.app)}
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    out = tmp_path / ".storyblok" / "assets" / str(SB_OLD) / "manifest.jsonl"
    assert await export_map(["export-map", "-c", str(path), "--format", "storyblok-manifest",
                     "--out", str(out)]) == 0
    entries = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(entries) == len(files())
    assert all(manifest_entry_is_valid(e) for e in entries)
    for e in entries:
        assert old.assets[e["old_id"]]["short_filename"] == new.assets[e["new_id"]][
            "short_filename"]
        assert unquote(e["new_filename"]).endswith(new.assets[e["new_id"]]["short_filename"])
        assert f"/f/{SB_NEW}/" in e["new_filename"]
        assert f"/f/{SB_OLD}/" in e["old_filename"]


async def test_storyblok_manifest_needs_a_storyblok_target_and_numeric_ids(
        tmp_path: Path, sb_pair: tuple[StoryblokEmulator, StoryblokEmulator],
        capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = library(tmp_path, files()[:3])
    path = job_file(tmp_path, f'connector = "local"\npath = "{root}"\n', sb_section(SB_NEW))
    summary = await execute_job(load_job(path, env={}), "migrate",
                                transports={"target": in_process_transport(sb_pair[1].app)})
    assert summary.exit_code() == 0, summary.text()
    out = tmp_path / "manifest.jsonl"
    assert await export_map(["export-map", "-c", str(path), "--format", "storyblok-manifest",
                             "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == ""
    assert "3 assets left out" in capsys.readouterr().err
    csv_job = job_file(tmp_path, f'connector = "local"\npath = "{root}"\n', CS_SECTION)
    assert await export_map(["export-map", "-c", str(csv_job), "--format",
                             "storyblok-manifest"]) == 2


async def test_contentstack_mapper_is_what_cm_stacks_import_reads(
        tmp_path: Path, cs: ContentstackEmulator,
        sb_pair: tuple[StoryblokEmulator, StoryblokEmulator]) -> None:
    """``mapper/assets/uid-mapping.json`` and ``url-mapping.json``: flat JSON objects of
    strings, old -> new (contentstack/cli-plugins,
    packages/contentstack-import/src/import/modules/assets.ts writes them,
    packages/contentstack-import/src/utils/asset-helper.ts reads them)."""
    old = sb_pair[0]
    seed_storyblok(old, files())
    path = job_file(tmp_path, sb_section(SB_OLD), CS_SECTION)
    transports = {"source": in_process_transport(old.app), "target": in_process_transport(cs.app)}
    assert (await execute_job(load_job(path, env={}), "migrate",
                              transports=transports)).exit_code() == 0
    data = tmp_path / "import-data"
    assert await export_map(["export-map", "-c", str(path), "--format", "contentstack-mapper",
                     "--out", str(data)]) == 0
    folder = data / "mapper" / "assets"
    uids = json.loads((folder / "uid-mapping.json").read_text(encoding="utf-8"))
    urls = json.loads((folder / "url-mapping.json").read_text(encoding="utf-8"))
    folders = json.loads((folder / "folder-mapping.json").read_text(encoding="utf-8"))
    assert len(uids) == len(urls) == len(files())
    assert all(isinstance(k, str) and isinstance(v, str) for m in (uids, urls, folders)
               for k, v in m.items())
    by_url = {rec["url"]: uid for uid, rec in cs.assets.items()}
    for old_id, new_uid in uids.items():
        assert cs.assets[new_uid]["filename"] == old.assets[int(old_id)]["short_filename"].replace(
            " ", "_")
    assert set(urls.values()) == set(by_url)
    assert set(folders.values()) <= set(cs.folders)
    assert folders, "the library's folders are mapped too"

    assert await export_map(["export-map", "-c", str(path), "--format", "contentstack-mapper"]) == 2
    (tmp_path / "a-file").write_text("x")
    assert await export_map(["export-map", "-c", str(path), "--format", "contentstack-mapper",
                     "--out", str(tmp_path / "a-file")]) == 2
