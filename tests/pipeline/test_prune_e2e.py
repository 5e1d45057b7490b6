"""`sync --prune` never deletes or orphans a live asset (issue 6 §1), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.errors import ConfigError
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import map_rows
from pipeline.run import execute_job, plan_job
from state.store import StateStore
from tests.connectors.editing import EditBetweenPages
from tests.pipeline.helpers import (
    CS_SECTION,
    job_toml,
    local_inventory,
    sb_section,
    sha,
)

SB_SPACE = 288868932106293
SB_TOKEN = "sb-prune-token-5d1e"
SB = "http://sb.emulator"
CS = "http://cs.emulator"
SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)


def job_file(tmp_path: Path, source: str, target: str, run: str = "") -> Path:
    return job_toml(tmp_path, source, target, run=run)


async def test_reupload_under_a_new_id_takes_over_the_target_asset(
    tmp_path: Path, sb: StoryblokEmulator, cs: ContentstackEmulator
) -> None:
    """Storyblok -> Contentstack: logo.png deleted in Storyblok and the same bytes uploaded
    again under the same name. One action on the target asset; it survives the prune, and
    export-map names the new id, never the deleted one."""
    brand = sb.add_folder("Brand")
    logo = b"\x89PNG logo bytes"
    old_id = sb.add_asset("logo.png", logo, folder_id=brand, title="Logo")
    sb.add_asset("other.txt", b"other", folder_id=brand)
    job = load_job(job_file(tmp_path, SB_SECTION, CS_SECTION), env={})
    transports = {"source": in_process_transport(sb.app), "target": in_process_transport(cs.app)}
    first = await execute_job(job, "sync", transports=transports)
    assert first.exit_code() == 0, first.text()
    [target_uid] = [uid for uid, rec in cs.assets.items() if rec["filename"] == "logo.png"]

    sb.assets[old_id]["deleted_at"] = "2026-11-29T10:00:00.000Z"   # deleted in the source...
    new_id = sb.add_asset("logo.png", logo, folder_id=brand, title="Logo")  # ...and re-uploaded

    plan = await plan_job(job, transports=transports, prune=True)
    touching = [a for a in plan.assets if a.target_id == target_uid]
    # no checksum listed: the takeover compares the bytes when it runs (issue 6 §1(a))
    assert [(a.source_id, a.op) for a in touching] == [(str(new_id), Op.REPLACE)]
    assert touching[0].adopt_from is not None
    [retired] = [a for a in plan.assets if a.source_id == str(old_id)]
    assert retired.retire
    assert retired.op is Op.SKIP
    assert not [a for a in plan.assets if a.op is Op.DELETE]

    summary = await execute_job(job, "sync", transports=transports, prune=True)
    assert summary.exit_code() == 0, summary.text()
    assert summary.counts()["deleted"] == 0
    assert (summary.counts()["adopted"], summary.counts()["replaced"]) == (1, 0)
    assert summary.counts()["bytes"] == 0, "same bytes: adopted, nothing sent"
    assert target_uid in cs.assets, "the live asset's target copy is kept"
    store = StateStore(job.run.state)
    try:
        rows = map_rows(store.items(summary.route).values())
    finally:
        store.close()
    mapped = {r["source_id"]: r["target_id"] for r in rows}
    assert mapped.get(str(new_id)) == target_uid
    assert str(old_id) not in mapped, "export-map never names a deleted source id"
    again = await plan_job(job, transports=transports, prune=True)
    assert {a.op for a in again.assets} == {Op.SKIP}, "the next run has nothing to do"


def _first_asset_page(request: httpx.Request) -> bool:
    return (request.method == "GET" and request.url.path.endswith("/assets/")
            and request.url.params.get("page", "1") == "1")


async def test_deleting_the_newest_asset_between_two_pages_loses_no_live_asset(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    """150 Storyblok assets -> a local folder; while `sync --prune` pages through the
    source, an editor deletes the newest asset between page 1 and page 2."""
    data = {f"img-{i:03d}.txt": f"asset {i}".encode() for i in range(150)}
    ids = {name: sb.add_asset(name, body) for name, body in data.items()}
    dest = tmp_path / "mirror"
    job = load_job(job_file(tmp_path, SB_SECTION, f'connector = "local"\npath = "{dest}"\n'),
                   env={})
    first = await execute_job(job, "sync", transports={"source": in_process_transport(sb.app)})
    assert first.exit_code() == 0, first.text()
    assert len(local_inventory(dest)) == 150

    newest = max(ids.values())
    delete = httpx.Request("DELETE", f"{SB}/v1/spaces/{SB_SPACE}/assets/{newest}",
                           headers={"authorization": SB_TOKEN})
    editor = EditBetweenPages(in_process_transport(sb.app), is_first_page=_first_asset_page,
                              edit=delete)
    summary = await execute_job(job, "sync", transports={"source": editor}, prune=True)
    assert editor.edited == 200, "the editor deleted the asset during the listing"
    assert summary.exit_code() == 0, summary.text()
    live = sorted(((), name, sha(body)) for name, body in data.items()
                  if ids[name] != newest)
    assert local_inventory(dest) == live, "every live asset is still in the target"
    assert summary.counts()["deleted"] == 1, "the deleted asset is pruned (a direct read said so)"


async def test_a_listing_that_missed_a_live_asset_deletes_nothing(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    """Absence from the listing is no proof: the direct read finds the asset and keeps it."""
    keep = sb.add_asset("keep.txt", b"keep")
    dest = tmp_path / "mirror"
    job = load_job(job_file(tmp_path, SB_SECTION, f'connector = "local"\npath = "{dest}"\n'),
                   env={})
    transports = {"source": in_process_transport(sb.app)}
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0

    def hide(request: httpx.Request) -> httpx.Response:  # a listing that silently misses it
        return httpx.Response(200, json={"assets": []}, headers={"total": "0"})

    class Hiding(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and request.url.path.endswith("/assets/"):
                return hide(request)
            return await transports["source"].handle_async_request(request)

    summary = await execute_job(job, "sync", transports={"source": Hiding()}, prune=True)
    assert summary.counts()["deleted"] == 0
    assert (dest / "keep.txt").read_bytes() == b"keep"
    [kept] = [o for o in summary.outcomes if o.source_id == str(keep)]
    assert "direct read found it" in kept.reason


def _local_job(tmp_path: Path, source: Path, dest: Path, run: str = "") -> Path:
    return job_file(tmp_path, f'connector = "local"\npath = "{source}"\n',
                    f'connector = "local"\npath = "{dest}"\n', run)


def _bounded_library(tmp_path: Path) -> tuple[Path, Path, Path]:
    source, dest = tmp_path / "library", tmp_path / "mirror"
    source.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (source / name).write_text(name)
    return source, dest, _local_job(tmp_path, source, dest, "max_deletes = 1\n")


async def test_an_exceeded_prune_bound_deletes_nothing_and_says_so(tmp_path: Path) -> None:
    source, dest, path = _bounded_library(tmp_path)
    job = load_job(path, env={})
    assert (await execute_job(job, "sync")).exit_code() == 0
    (source / "a.txt").unlink()
    (source / "b.txt").unlink()

    with capture_logs() as logs:
        summary = await execute_job(job, "sync", prune=True)
    assert summary.exit_code() == 1
    assert summary.counts()["deleted"] == 0
    assert sorted(p.name for p in dest.iterdir() if p.suffix == ".txt") == [
        "a.txt", "b.txt", "c.txt"]
    assert "2 deletions held back: run.max_deletes = 1" in summary.text()
    assert summary.to_dict()["prune_held_back"]["deletions"] == 2
    [held] = [e for e in logs if e["event"] == "prune.held_back"]
    assert (held["held"], held["max_deletes"]) == (2, 1)


def test_sync_prune_over_the_bound_exits_1_with_the_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, dest, path = _bounded_library(tmp_path)
    assert main(["sync", "-c", str(path)]) == 0
    (source / "a.txt").unlink()
    (source / "b.txt").unlink()
    capsys.readouterr()
    report = tmp_path / "report.json"
    assert main(["sync", "-c", str(path), "--prune", "--report", str(report)]) == 1
    assert "2 deletions held back: run.max_deletes = 1" in capsys.readouterr().out
    assert json.loads(report.read_text())["prune_held_back"]["deletions"] == 2
    assert (dest / "a.txt").exists()
    assert (dest / "b.txt").exists()


@pytest.mark.parametrize(("source_rel", "target_rel", "where"), [
    ("lib", "lib/mirror", "is inside"),
    ("lib/mirror", "lib", "contains"),
    ("lib", "lib", "is the same folder as"),
    ("lib", "lib/../lib/./sub", "is inside"),
])
def test_nested_local_paths_are_refused_at_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source_rel: str, target_rel: str,
    where: str,
) -> None:
    (tmp_path / "lib").mkdir()
    path = tmp_path / "job.toml"
    path.write_text(f'[source]\nconnector = "local"\npath = "./{source_rel}"\n\n'
                    f'[target]\nconnector = "local"\npath = "./{target_rel}"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=f"target.path .* {where} source.path"):
        load_job(path, env={})
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "target.path" in err
    assert "source.path" in err
    assert "outside" in err
    assert "Traceback" not in err


def test_a_target_reached_through_a_symlink_into_the_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lib" / "mirror").mkdir(parents=True)
    (tmp_path / "elsewhere").symlink_to(tmp_path / "lib" / "mirror")
    path = _local_job(tmp_path, tmp_path / "lib", tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"is inside source\.path"):
        load_job(path, env={})


def test_sibling_local_folders_are_fine(tmp_path: Path) -> None:
    path = _local_job(tmp_path, tmp_path / "lib", tmp_path / "lib-mirror")
    job = load_job(path, env={})
    assert job.target.connector == "local"
