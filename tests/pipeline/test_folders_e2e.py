"""End to end, issue 10's named case as a new user met it: a 40-level local tree with one
file at the bottom, migrated into (the emulator of) Contentstack, depth 5 and 300 folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import plan_table
from pipeline.run import execute_job, plan_job
from tests.pipeline.helpers import CS_SECTION, cs_inventory, job_toml, sha

LEVELS = tuple(f"level {i:02d}" for i in range(1, 41))


@pytest.mark.parametrize("collapsed_path", ["name", "tag"])
async def test_forty_levels_with_one_file_become_one_contentstack_folder(
        tmp_path: Path, emu: ContentstackEmulator, collapsed_path: str) -> None:
    source = tmp_path / "library"
    bottom = source.joinpath(*LEVELS)
    bottom.mkdir(parents=True)
    (bottom / "deep.txt").write_bytes(b"at the bottom")
    job_file = tmp_path / "job.toml"
    job_file.write_text(
        f'[source]\nconnector = "local"\npath = "{source}"\n\n'
        f'[target]\n{CS_SECTION}\n'
        f'[mapping]\ncollapsed_path = "{collapsed_path}"\n\n'
        f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    job = load_job(job_file, env={})
    transports = {"target": in_process_transport(emu.app)}

    plan = await plan_job(job, transports=transports)
    created = [f for f in plan.folders if f.op is Op.CREATE]
    folder = (" - ".join(LEVELS),) if collapsed_path == "name" else ("level 40",)
    assert [f.target_path for f in created] == [folder]
    assert any("40 levels" in w for w in created[0].warnings)

    summary = await execute_job(job, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert len(emu.folders) == 1
    assert cs_inventory(emu) == [(folder, "deep.txt", sha(b"at the bottom"))]
    (record,) = emu.assets.values()
    assert ("/".join(LEVELS) in record["tags"]) == (collapsed_path == "tag")

    again = await plan_job(job, transports=transports)
    assert {f.op for f in again.folders} == {Op.SKIP}
    assert {a.op for a in again.assets} == {Op.SKIP}


def _job(tmp_path: Path, source: Path, target: str, mapping: str = "") -> Path:
    return job_toml(tmp_path, f'connector = "local"\npath = "{source}"\n', target,
                    mapping=mapping)


def _two_files(tmp_path: Path) -> Path:
    source = tmp_path / "library"
    (source / "Photos").mkdir(parents=True)
    (source / "Photos" / "a.txt").write_bytes(b"in a folder")
    (source / "c.txt").write_bytes(b"at the root")
    return source


async def test_folder_rules_added_after_a_run_say_which_assets_keep_their_old_folder(
        tmp_path: Path) -> None:
    """A local target cannot move assets and assetferry never moves a folder it made: a
    folder_root and a folder rule added after a run leave them where they are, and the
    plan's lines say so and why (they were silent skips)."""
    source, dest = _two_files(tmp_path), tmp_path / "out"
    target = f'connector = "local"\npath = "{dest}"\n'
    summary = await execute_job(load_job(_job(tmp_path, source, target), env={}), "migrate")
    assert summary.exit_code() == 0, summary.text()
    job = load_job(_job(tmp_path, source, target, '[mapping]\nfolder_root = "migrated"\n'
                        '[mapping.folder_rules]\n"Photos" = "Pics"\n'), env={})

    plan = await plan_job(job)
    (folder,) = [f for f in plan.folders if f.source_ids == ("Photos",)]
    assert folder.op is Op.SKIP
    assert "stays 'Photos'" in folder.reason
    assert "would now be 'migrated/Pics'" in folder.reason
    by_id = {a.source_id: a for a in plan.assets}
    assert by_id["c.txt"].op is Op.SKIP
    assert "stays in '(root)', not 'migrated'" in by_id["c.txt"].reason
    assert "folder_root" in by_id["c.txt"].reason
    assert "cannot move assets" in by_id["c.txt"].reason
    assert by_id["Photos/a.txt"].target_folder == ("Photos",)
    table = plan_table(plan)
    assert "stays in '(root)'" in table
    assert "stays 'Photos'" in table


async def test_assets_of_a_kept_folder_say_they_stay_as_its_line_does(tmp_path: Path) -> None:
    """A rule added after a run keeps the folder it made (its line: "stays 'Photos'"); the
    assets the run writes there, new or changed, say they stay too, not "moved to 'Pics' by
    the folder rule" (they were written to 'Photos')."""
    source, dest = _two_files(tmp_path), tmp_path / "out"
    target = f'connector = "local"\npath = "{dest}"\n'
    assert (await execute_job(load_job(_job(tmp_path, source, target), env={}),
                              "migrate")).exit_code() == 0
    (source / "Photos" / "a.txt").write_bytes(b"changed")
    (source / "Photos" / "new.txt").write_bytes(b"new")
    job = load_job(_job(tmp_path, source, target, '[mapping.folder_rules]\n"Photos" = "Pics"\n'),
                   env={})
    plan = await plan_job(job)
    (folder,) = [f for f in plan.folders if f.source_ids == ("Photos",)]
    assert "stays 'Photos'" in folder.reason
    by_id = {a.source_id: a for a in plan.assets}
    for sid in ("Photos/a.txt", "Photos/new.txt"):
        assert by_id[sid].target_folder == ("Photos",)
        assert not [w for w in by_id[sid].warnings if "moved to" in w], by_id[sid].warnings
        assert any("stays in 'Photos', not 'Pics'" in w for w in by_id[sid].warnings)
    summary = await execute_job(job, "migrate")
    assert summary.exit_code() == 0, summary.text()
    assert (dest / "Photos" / "new.txt").read_bytes() == b"new"
    assert not (dest / "Pics").exists()


async def test_folder_root_added_after_a_run_moves_assets_where_the_target_can(
        tmp_path: Path, emu: ContentstackEmulator) -> None:
    source = _two_files(tmp_path)
    target = CS_SECTION
    transports = {"target": in_process_transport(emu.app)}
    job = load_job(_job(tmp_path, source, target), env={})
    assert (await execute_job(job, "migrate", transports=transports)).exit_code() == 0
    job = load_job(_job(tmp_path, source, target, '[mapping]\nfolder_root = "migrated"\n'),
                   env={})

    plan = await plan_job(job, transports=transports)
    root_asset = next(a for a in plan.assets if a.source_id == "c.txt")
    assert root_asset.op is Op.UPDATE
    assert root_asset.reason == ("moved to another folder: [mapping] folder rules "
                                 "(folder_root, folder_rules, folder_overflow) changed since "
                                 "the last run")
    summary = await execute_job(job, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert (("migrated",), "c.txt", sha(b"at the root")) in cs_inventory(emu)


async def test_a_changed_collapsed_path_updates_the_assets_it_carries(
        tmp_path: Path, emu: ContentstackEmulator) -> None:
    """collapsed_path = "tag" then "description": the source folder path moves from the tag
    to the description on the next run (it was a silent skip: the rule was not in the hash)."""
    source = tmp_path / "library"
    bottom = source.joinpath(*LEVELS[:8])
    bottom.mkdir(parents=True)
    (bottom / "deep.txt").write_bytes(b"deep")
    target = CS_SECTION
    transports = {"target": in_process_transport(emu.app)}
    job = load_job(_job(tmp_path, source, target, '[mapping]\ncollapsed_path = "tag"\n'), env={})
    assert (await execute_job(job, "migrate", transports=transports)).exit_code() == 0
    job = load_job(_job(tmp_path, source, target,
                        '[mapping]\ncollapsed_path = "description"\n'), env={})
    (action,) = (await plan_job(job, transports=transports)).assets
    assert action.op is Op.UPDATE
    assert (await execute_job(job, "migrate", transports=transports)).exit_code() == 0
    (record,) = emu.assets.values()
    assert "/".join(LEVELS[:8]) in record["description"]
    assert "/".join(LEVELS[:8]) not in record["tags"]


async def test_an_asset_too_deep_to_place_gets_no_empty_ancestor_folders(
        tmp_path: Path) -> None:
    """The last testers' finding: an asset whose path is too long for the target (a local
    folder: PATH_MAX) is not migrated (unsupported), yet its 20 ancestor folders were
    created there, empty. Folders are created only for assets that will be placed (and
    for empty source folders, as before)."""
    source = tmp_path / "library"
    chain = tuple(f"{i:02d}" + "d" * 38 for i in range(20))  # 820 bytes of folders
    bottom = source.joinpath(*chain)
    bottom.mkdir(parents=True)
    (bottom / ("f" * 200 + ".txt")).write_bytes(b"at the bottom")
    (source / chain[0] / "ok.txt").write_bytes(b"placed")
    (source / "empty").mkdir()
    out = tmp_path.joinpath(*(["t" * 250] * 12))  # the target allows about 1,000 bytes below
    job = load_job(_job(tmp_path, source, f'connector = "local"\npath = "{out}"\n'), env={})
    plan = await plan_job(job)
    [deep] = [a for a in plan.assets if a.path.endswith("f.txt")]
    assert deep.op is Op.UNSUPPORTED, deep.reason
    assert "bytes; the target allows" in deep.reason, deep.reason
    assert [f.target_path for f in plan.folders if f.op is Op.CREATE] == [
        (chain[0],), ("empty",)]
    summary = await execute_job(job, "migrate")
    assert summary.exit_code() == 1, summary.text()
    assert sorted(p.name for p in out.rglob("*") if p.is_dir()) == [chain[0], "empty"]
