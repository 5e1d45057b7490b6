"""`sync --prune` never deletes a target copy edited in the target since we wrote it (drift)
unless `[run] on_conflict = "source-wins"`: under "skip" it is held back as a conflict, under
"fail" the run stops before any write; and a gone asset's drifted copy is not replaced by a
re-uploaded source asset taking over its name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.run import execute_job, plan_job
from tests.pipeline.helpers import CS_KEY, CS_SECTION, CS_TOKEN, job_toml, local_job, sb_section

SB_SPACE = 288868932106377
SB_TOKEN = "sb-prune-drift-token-7a1c"
SB = "http://sb.emulator"
CS = "http://cs.emulator"
SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)
CS_HEADERS = {"api_key": CS_KEY, "authorization": CS_TOKEN}


def test_prune_holds_back_a_drifted_local_copy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The tester's repro (local -> local): migrate, edit the copy in the target, delete the
    source file; `plan --prune` and `sync --prune` hold it back as a drift conflict (exit 1),
    the edit survives, and only `on_conflict = "source-wins"` deletes it."""
    job = local_job(tmp_path)
    copy = tmp_path / "out" / "A" / "x.bin"
    assert main(["migrate", "-c", str(job)]) == 0
    with copy.open("a") as f:
        f.write("edited in target\n")
    (tmp_path / "lib" / "A" / "x.bin").unlink()

    out = tmp_path / "plan.json"
    assert main(["plan", "-c", str(job), "--prune", "--out", str(out)]) in (0, 1)
    plan = json.loads(out.read_text())
    assert plan["summary"]["drift"] == 1, plan["summary"]
    [item] = [i for i in plan["items"] if i["kind"] == "asset" and i["path"] == "A/x.bin"]
    assert item["op"] == "conflict", item
    assert "changed in the target since assetferry wrote it" in item["reason"], item

    capsys.readouterr()
    assert main(["sync", "-c", str(job), "--prune"]) == 1
    said = capsys.readouterr().out
    assert "changed in the target since assetferry wrote it" in said, said
    assert copy.read_text() == "one\nedited in target\n", "the target's edit is kept"

    assert main(["sync", "-c", str(job), "--prune"]) == 1, "held back every run"
    assert copy.exists()

    wins = local_job_with(job, 'on_conflict = "source-wins"\n')
    assert main(["sync", "-c", str(wins), "--prune"]) == 0
    assert not copy.exists(), "source-wins deletes it"
    assert (tmp_path / "out" / "y.bin").read_text() == "two\n"


def local_job_with(job: Path, run: str) -> Path:
    job.write_text(job.read_text() + run)
    return job


def test_on_conflict_fail_stops_a_prune_of_a_drifted_copy(tmp_path: Path) -> None:
    job = local_job(tmp_path, 'on_conflict = "fail"\n')
    copy = tmp_path / "out" / "A" / "x.bin"
    assert main(["migrate", "-c", str(job)]) == 0
    copy.write_text("ours now, longer\n")
    (tmp_path / "lib" / "A" / "x.bin").unlink()
    assert main(["sync", "-c", str(job), "--prune"]) == 2
    assert copy.read_text() == "ours now, longer\n"


def test_an_undrifted_gone_copy_is_still_pruned(tmp_path: Path) -> None:
    job = local_job(tmp_path)
    assert main(["migrate", "-c", str(job)]) == 0
    (tmp_path / "lib" / "A" / "x.bin").unlink()
    assert main(["sync", "-c", str(job), "--prune"]) == 0
    assert not (tmp_path / "out" / "A" / "x.bin").exists()


async def edit_in_contentstack(cs: ContentstackEmulator, uid: str) -> None:
    async with httpx.AsyncClient(transport=in_process_transport(cs.app)) as client:
        r = await client.put(f"{CS}/v3/assets/{uid}", headers=CS_HEADERS,
                             json={"asset": {"title": "Edited in Contentstack"}})
        assert r.is_success, r.text


async def test_prune_holds_back_a_drifted_contentstack_copy(
    tmp_path: Path, sb: StoryblokEmulator, cs: ContentstackEmulator
) -> None:
    """Storyblok -> Contentstack emulator: an asset edited in Contentstack (its `_version`
    moved on) and deleted in Storyblok is a drift conflict under the default policy, counted
    in the plan's drift; "source-wins" deletes it."""
    folder = sb.add_folder("Brand")
    doc = sb.add_asset("doc.txt", b"doc", folder_id=folder, title="Doc")
    sb.add_asset("keep.txt", b"keep", folder_id=folder)
    job = load_job(job_toml(tmp_path, SB_SECTION, CS_SECTION), env={})
    transports: dict[str, Any] = {"source": in_process_transport(sb.app),
                                  "target": in_process_transport(cs.app)}
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    [uid] = [u for u, r in cs.assets.items() if r["filename"] == "doc.txt"]
    await edit_in_contentstack(cs, uid)
    sb.assets[doc]["deleted_at"] = "2026-11-29T10:00:00.000Z"

    plan = await plan_job(job, transports=transports, prune=True)
    [action] = [a for a in plan.assets if a.source_id == str(doc)]
    assert (action.op, action.drift) == (Op.CONFLICT, True), action.reason
    assert "version" in action.reason
    assert not [a for a in plan.assets if a.op is Op.DELETE]

    held = await execute_job(job, "sync", transports=transports, prune=True)
    assert held.exit_code() == 1, held.text()
    assert held.counts()["deleted"] == 0
    assert cs.assets[uid]["title"] == "Edited in Contentstack"

    wins = job.model_copy(update={"run": job.run.model_copy(
        update={"on_conflict": "source-wins"})})
    pruned = await execute_job(wins, "sync", transports=transports, prune=True)
    assert pruned.exit_code() == 0, pruned.text()
    assert pruned.counts()["deleted"] == 1
    assert uid not in cs.assets


async def test_a_reupload_does_not_replace_a_drifted_copy_of_the_gone_asset(
    tmp_path: Path, sb: StoryblokEmulator, cs: ContentstackEmulator
) -> None:
    """A source asset deleted and uploaded again with other bytes of the same size takes over
    the old one's copy by replacing it, but not once that copy was edited in the target:
    the edited copy is not written over under the default policy."""
    folder = sb.add_folder("Brand")
    old = sb.add_asset("logo.txt", b"logo-v1", folder_id=folder, title="Logo")
    job = load_job(job_toml(tmp_path, SB_SECTION, CS_SECTION), env={})
    transports: dict[str, Any] = {"source": in_process_transport(sb.app),
                                  "target": in_process_transport(cs.app)}
    assert (await execute_job(job, "sync", transports=transports)).exit_code() == 0
    [uid] = list(cs.assets)
    await edit_in_contentstack(cs, uid)
    version = cs.assets[uid].get("_version")
    sb.assets[old]["deleted_at"] = "2026-11-29T10:00:00.000Z"
    sb.add_asset("logo.txt", b"logo-v2", folder_id=folder, title="Logo")

    plan = await plan_job(job, transports=transports, prune=True)
    touching = [a for a in plan.assets if a.target_id == uid]
    assert all(a.op is not Op.REPLACE or a.adopt_from is not None for a in touching), \
        [(a.op, a.reason) for a in touching]
    summary = await execute_job(job, "sync", transports=transports, prune=True)
    assert summary.exit_code() == 1, summary.text()  # other bytes: a conflict, not adopted
    assert summary.counts()["replaced"] == 0, summary.text()
    assert summary.counts()["deleted"] == 0, summary.text()
    assert uid in cs.assets
    assert cs.assets[uid]["title"] == "Edited in Contentstack"
    assert cs.assets[uid].get("_version") == version, "the edited copy is not written over"
