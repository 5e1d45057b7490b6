"""Names and every entry: the plan knows each limit the run can hit (issue 6, sections 3, 3b).

Each case is a failure users of other tools reported: a name too long in bytes but not in
characters, a literal ``%20`` decoded twice, two source folders merged into one, an empty file
a target refuses, two names that sanitise alike, entries a listing drops without a word.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from connectors.base import Asset, Capabilities, Folder, Limits
from connectors.emulation import in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator
from mappings.folders import FolderOverflow
from pipeline.config import load_job
from pipeline.plan import Op, Plan, PlanInput, make_plan
from pipeline.report import plan_summary, plan_table
from pipeline.run import execute_job, plan_job
from pipeline.samples import sample_library, write_local_library
from tests.pipeline.helpers import ct_section, job_toml, sb_section

SB_SPACE = 288868932106293
SB_TOKEN = "sb-names-token-5d1e"
SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)
ALL = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                   find_asset=True)


def job(tmp_path: Path, source: str, target: str, *, name: str = "job") -> Path:
    return job_toml(tmp_path, source, target, name=name, state=f"{name}.db")


def local(path: Path, extra: str = "") -> str:
    return f'connector = "local"\npath = "{path}"\n{extra}'


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


def asset(sid: str, name: str, folder: tuple[str, ...] = (), folder_id: str | None = None,
          size: int = 10) -> Asset:
    return Asset(source_id=sid, filename=name, folder_path=folder, folder_id=folder_id,
                 content_type="image/png", size=size, url=f"https://cdn/{sid}")


def plan_for(limits: Limits, assets: list[Asset], folders: list[Folder] | None = None,
             target_folders: list[Folder] | None = None) -> Plan:
    return make_plan("r", PlanInput(
        source_folders=folders or [], source_assets=assets,
        target_folders=target_folders or [], target_assets=[], records={}, limits=limits,
        capabilities=ALL, policy=FolderOverflow.COLLAPSE))


def target_paths(plan: Plan) -> dict[str, str]:
    return {a.source_id: "/".join((*(a.target_folder or ()), a.filename))
            for a in plan.assets if a.op is Op.CREATE}


# --- (a) limits in bytes, not characters ---------------------------------------------------


@pytest.mark.slow
async def test_cjk_names_over_255_bytes_are_shortened_in_the_plan_not_failed_at_migrate(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    folder_name = "报告" * 50  # 100 characters, 300 bytes
    file_name = "测试文件" * 25 + ".png"  # 104 characters, 304 bytes
    sb.add_asset(file_name, png(), folder_id=sb.add_folder(folder_name))
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, SB_SECTION, local(dest)), env={})
    transports = {"source": in_process_transport(sb.app)}

    plan = await plan_job(config, transports=transports)
    [folder] = plan.folders
    [planned] = plan.assets
    assert folder.op is Op.CREATE
    assert any("255 bytes" in w for w in folder.warnings), folder.warnings
    assert planned.op is Op.CREATE
    assert any("255 bytes" in w for w in planned.warnings), planned.warnings
    assert len(planned.filename.encode()) <= 255
    assert planned.filename.endswith(".png")

    summary = await execute_job(config, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    [made] = list(dest.rglob("*.png"))
    assert made.relative_to(dest).as_posix() == "/".join((*folder.target_path,
                                                           planned.filename))
    assert all(len(part.encode()) <= 255 for part in made.relative_to(dest).parts)


def test_a_suffixed_name_still_fits_the_byte_limit() -> None:
    limits = Limits(max_name_bytes=20)
    name = "写真写真写真.jpg"  # 22 bytes: cut to 6 + 4 + ...
    plan = plan_for(limits, [asset("1", name), asset("2", name)])
    names = target_paths(plan)
    assert len(set(names.values())) == 2
    assert all(len(n.encode()) <= 20 and n.endswith(".jpg") for n in names.values()), names


@pytest.mark.slow
async def test_a_path_longer_than_path_max_is_unsupported_in_the_plan_not_failed(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    parent = None
    for _ in range(20):  # 20 levels of 252-byte names: over 5,000 bytes, PATH_MAX is 4,096
        parent = sb.add_folder("报告" * 42, parent)
    sb.add_asset("deep.png", png(), folder_id=parent)
    sb.add_asset("top.png", png())
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, SB_SECTION, local(dest)), env={})
    transports = {"source": in_process_transport(sb.app)}
    plan = await plan_job(config, transports=transports)
    ops = {a.path.rsplit("/", 1)[-1]: (a.op, a.reason) for a in plan.assets}
    assert ops["top.png"][0] is Op.CREATE
    assert ops["deep.png"][0] is Op.UNSUPPORTED
    assert "bytes; the target allows" in ops["deep.png"][1]
    assert any(f.op is Op.UNSUPPORTED for f in plan.folders)
    summary = await execute_job(config, "migrate", transports=transports)
    assert summary.failed() == [], summary.text()
    assert [o.path.rsplit("/", 1)[-1] for o in summary.not_migrated()] == ["deep.png"]


def test_creates_past_a_default_asset_count_are_warned_in_the_plan() -> None:
    limits = Limits(default_max_assets=3)
    existing = [asset("t1", "old.png")]
    plan = make_plan("r", PlanInput(
        source_folders=[], source_assets=[asset(str(i), f"{i}.png") for i in range(4)],
        target_folders=[], target_assets=existing, records={}, limits=limits,
        capabilities=ALL, policy=FolderOverflow.COLLAPSE))
    warned = [a.source_id for a in plan.assets if any("more than 3 assets" in w
                                                      for w in a.warnings)]
    assert warned == ["2", "3"]  # 1 in the target + 2 new fit; the rest may be refused


# --- (a) sizes: an empty file into Storyblok ------------------------------------------------


def test_an_empty_file_into_storyblok_is_unsupported_in_the_plan() -> None:
    from connectors.storyblok import StoryblokConfig, StoryblokConnector

    conf = StoryblokConfig.model_validate(
        {"connector": "storyblok", "space_id": 1, "token": "t"})
    limits = StoryblokConnector(conf).limits
    plan = plan_for(limits, [asset("1", "empty.txt", size=0), asset("2", "one.txt", size=1)])
    ops = {a.source_id: (a.op, a.reason) for a in plan.assets}
    assert ops["1"] == (Op.UNSUPPORTED,
                        "file is 0 bytes; the target accepts files of at least 1 byte")
    assert ops["2"][0] is Op.CREATE


@pytest.mark.slow
async def test_the_demo_library_into_storyblok_reports_its_empty_file_honestly(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    lib = tmp_path / "library"
    files = list(sample_library())
    write_local_library(lib, files)
    assert any(not f.data for f in files)  # the demo library holds an empty file
    config = load_job(job(tmp_path, local(lib), SB_SECTION), env={})
    transports = {"target": in_process_transport(sb.app)}
    plan = await plan_job(config, transports=transports)
    empty = {a.path: a for a in plan.assets if a.op is Op.UNSUPPORTED}
    assert list(empty) == ["Docs/empty.txt"]
    assert "at least 1 byte" in empty["Docs/empty.txt"].reason
    summary = await execute_job(config, "migrate", transports=transports)
    assert summary.failed() == [], summary.text()  # known in the plan, never a failed upload
    assert [o.path for o in summary.not_migrated()] == ["Docs/empty.txt"]
    assert summary.exit_code() == 1


# --- (b) a name from a URL is decoded exactly once ------------------------------------------


@pytest.mark.slow
async def test_a_literal_percent_20_in_a_storyblok_url_lands_as_percent_20(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    sb.add_asset("100%20sure.png", png())
    for rec in sb.assets.values():  # list rows without short_filename: the name is the URL's
        rec["short_filename"] = None
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, SB_SECTION, local(dest)), env={})
    summary = await execute_job(config, "migrate",
                                transports={"source": in_process_transport(sb.app)})
    assert summary.exit_code() == 0, summary.text()
    assert [p.name for p in dest.glob("*.png")] == ["100%20sure.png"]


@pytest.mark.slow
async def test_a_literal_percent_20_in_a_contento_name_lands_as_percent_20(
    tmp_path: Path
) -> None:
    from connectors.contento.emulator import ContentoEmulator

    ct = ContentoEmulator(token="ct-names-token", rate_limit=None)
    ct.add_asset("100%20sure.png", png())
    ct.add_asset("two words.png", png())
    dest = tmp_path / "out"
    source = ct_section("s_01jDSh2WkN8Kp6SvRA8Ne5CJ69", "ct-names-token")
    config = load_job(job(tmp_path, source, local(dest)), env={})
    try:
        summary = await execute_job(config, "migrate",
                                    transports={"source": in_process_transport(ct.app)})
    finally:
        ct.close()
    assert summary.exit_code() == 0, summary.text()
    assert sorted(p.name for p in dest.glob("*.png")) == ["100%20sure.png", "two words.png"]


# --- (c) distinct source items never merge silently -----------------------------------------


def test_two_root_folders_with_one_name_become_two_target_folders() -> None:
    folders = [Folder("7", "Logos", None, ("Logos",)), Folder("12", "Logos", None, ("Logos",))]
    assets = [asset("a", "logo.png", ("Logos",), "7"), asset("b", "logo.png", ("Logos",), "12")]
    plan = plan_for(Limits(), assets, folders)
    made = {f.path: f for f in plan.folders if f.op is Op.CREATE}
    assert set(made) == {"Logos", "Logos (2)"}
    assert made["Logos"].source_ids == ("7",)
    assert made["Logos (2)"].source_ids == ("12",)
    assert any("kept apart as 'Logos (2)'" in w for w in made["Logos (2)"].warnings)
    assert any("2 folders in the root" in w for w in made["Logos"].warnings)
    assert target_paths(plan) == {"a": "Logos/logo.png", "b": "Logos (2)/logo.png"}
    assert all(a.warnings == () for a in plan.assets)  # no file was renamed


@pytest.mark.slow
async def test_two_storyblok_root_folders_named_logos_stay_apart_locally(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    first, second = png(), png()[:-1] + b"\x01"
    sb.add_asset("logo.png", first, folder_id=sb.add_folder("Logos"))
    sb.add_asset("logo.png", second, folder_id=sb.add_folder("Logos"))
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, SB_SECTION, local(dest)), env={})
    summary = await execute_job(config, "migrate",
                                transports={"source": in_process_transport(sb.app)})
    assert summary.exit_code() == 0, summary.text()
    assert (dest / "Logos" / "logo.png").read_bytes() == first
    assert (dest / "Logos (2)" / "logo.png").read_bytes() == second


@pytest.mark.slow
async def test_a_file_and_a_folder_that_sanitise_alike_get_distinct_names(
    tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "....").mkdir(parents=True)
    (src / "....").joinpath("inside.txt").write_bytes(b"in")
    (src / "...").write_bytes(b"dots")
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, local(src), local(dest)), env={})

    plan = await plan_job(config)
    assert [(f.op, f.path) for f in plan.folders] == [(Op.CREATE, "_")]
    paths = target_paths(plan)
    assert paths == {"...": "_ (2)", "..../inside.txt": "_/inside.txt"}
    [dots] = [a for a in plan.assets if a.source_id == "..."]
    assert any("also called '_'" in w for w in dots.warnings), dots.warnings

    summary = await execute_job(config, "migrate")
    assert summary.exit_code() == 0, summary.text()
    assert (dest / "_ (2)").read_bytes() == b"dots"
    assert (dest / "_" / "inside.txt").read_bytes() == b"in"


@pytest.mark.slow
async def test_a_new_folder_never_takes_the_name_of_a_file_in_the_target(
    tmp_path: Path
) -> None:
    src, dest = tmp_path / "src", tmp_path / "out"
    (src / "Photos").mkdir(parents=True)
    (src / "Photos" / "a.txt").write_bytes(b"a")
    dest.mkdir()
    (dest / "Photos").write_bytes(b"someone else's file")
    config = load_job(job(tmp_path, local(src), local(dest)), env={})
    plan = await plan_job(config)
    [folder] = plan.folders
    assert (folder.op, folder.path) == (Op.CREATE, "Photos (2)")
    assert any("also called 'Photos'" in w for w in folder.warnings), folder.warnings
    summary = await execute_job(config, "migrate")
    assert summary.exit_code() == 0, summary.text()
    assert (dest / "Photos (2)" / "a.txt").read_bytes() == b"a"
    assert (dest / "Photos").read_bytes() == b"someone else's file"


def test_names_equal_but_for_case_stay_apart_where_the_target_ignores_case() -> None:
    limits = Limits(case_insensitive_names=True)
    assets = [asset("1", "Logo.png"), asset("2", "logo.png"),
              asset("3", "a.png", ("Photos",)), asset("4", "b.png", ("photos",))]
    plan = plan_for(limits, assets)
    assert sorted(f.path for f in plan.folders) == ["Photos", "photos (2)"]
    paths = target_paths(plan)
    assert paths["1"] == "Logo.png"
    assert paths["2"] == "logo (2).png"
    assert paths["4"] == "photos (2)/b.png"
    [renamed] = [a for a in plan.assets if a.source_id == "2"]
    assert any("ignores case" in w for w in renamed.warnings)
    # a case-sensitive target keeps them as they are
    plain = target_paths(plan_for(Limits(), assets))
    assert (plain["2"], plain["4"]) == ("logo.png", "photos/b.png")


def test_names_storyblok_would_store_alike_stay_apart() -> None:
    limits = Limits(filename_rewrites_inner_dots=True)  # Storyblok: "a.b.jpg" -> "a_b.jpg"
    plan = plan_for(limits, [asset("1", "a.b.jpg"), asset("2", "a_b.jpg")])
    assert target_paths(plan) == {"1": "a_b.jpg", "2": "a_b (2).jpg"}
    warnings = {a.source_id: " ".join(a.warnings) for a in plan.assets}
    assert "every dot but the last" in warnings["1"]
    assert "also called 'a_b.jpg'" in warnings["2"]


def test_nfc_and_nfd_spellings_of_one_name_stay_apart() -> None:
    plan = plan_for(Limits(), [asset("1", "Caf\u00e9.png"), asset("2", "Cafe\u0301.png")])
    assert sorted(target_paths(plan).values()) == ["Caf\u00e9 (2).png", "Caf\u00e9.png"]


def test_reserved_names_are_changed_in_the_plan() -> None:
    limits = Limits(reserved_names=frozenset({"CON", "manifest.json"}),
                    reserved_prefixes=("tmp-",), case_insensitive_names=True)
    plan = plan_for(limits, [asset("1", "con.txt"), asset("2", "Manifest.json"),
                             asset("3", "tmp-1"), asset("4", "console.txt"),
                             asset("5", "manifest.json.png")])
    assert target_paths(plan) == {"1": "con_.txt", "2": "Manifest_.json", "3": "_tmp-1",
                                  "4": "console.txt", "5": "manifest.json.png"}
    [con] = [a for a in plan.assets if a.source_id == "1"]
    assert any("reserves the name 'con.txt'" in w for w in con.warnings), con.warnings


# --- 3b: nothing is invisible --------------------------------------------------------------


def _awkward_library(src: Path) -> None:
    (src / "sub").mkdir(parents=True)
    (src / "photo.png").write_bytes(png())
    fd = os.open(os.fsencode(src) + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    os.mkfifo(src / "pipe")
    (src / "outside.txt").symlink_to(src.parent / "elsewhere.txt")
    (src.parent / "elsewhere.txt").write_bytes(b"x")
    for clutter in (".DS_Store", "Thumbs.db", "desktop.ini", "._photo.png"):
        (src / clutter).write_bytes(b"junk")
    (src / "sub" / ".DS_Store").write_bytes(b"junk")


@pytest.mark.slow
async def test_an_undecodable_folder_is_an_unsupported_folder_and_its_files_not_migrated(
    tmp_path: Path,
) -> None:
    """A folder whose name is not valid UTF-8 is an ``unsupported`` folder line (README's
    Folders section), not an "unsupported asset"; the files in it (listed by its bytes
    name) are each an asset not migrated, so the plan and the run count them."""
    src = tmp_path / "src"
    (src / "ok").mkdir(parents=True)
    (src / "ok" / "a.txt").write_bytes(b"a")
    bad = os.fsencode(src) + b"/d\xfe"
    os.mkdir(bad)
    os.mkdir(bad + b"/deeper")
    for name in (b"/inner\xff\xfe.png", b"/deeper/b.txt"):
        os.close(os.open(bad + name, os.O_CREAT | os.O_WRONLY, 0o644))
    config = load_job(job(tmp_path, local(src), local(tmp_path / "out")), env={})

    plan = await plan_job(config)
    [folder] = [f for f in plan.folders if f.op is Op.UNSUPPORTED]
    assert folder.path == "d\\xfe"
    assert "not valid UTF-8" in folder.reason
    assert "2 files in it" in folder.reason
    assert "d\\xfe" not in {a.path for a in plan.assets}  # not an asset
    inner = {a.path: a for a in plan.assets if a.op is Op.UNSUPPORTED}
    assert set(inner) == {"d\\xfe/inner\\xff\\xfe.png", "d\\xfe/deeper/b.txt"}
    assert all("rename the folder" in a.reason for a in inner.values())
    summary = plan_summary(plan)
    assert (summary["folders_unsupported"], summary["unsupported"], summary["create"]) == (
        1, 2, 1)

    counts = (await execute_job(config, "migrate")).counts()
    assert (counts["created"], counts["not_migrated"]) == (1, 2)
    assert [p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")] == [
        "ok"]


@pytest.mark.slow
async def test_every_entry_left_out_is_in_the_plan_and_the_report(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _awkward_library(src)
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, local(src), local(dest)), env={})

    plan = await plan_job(config)
    by_path = {a.path: a for a in plan.assets}
    assert by_path["photo.png"].op is Op.CREATE
    bad = by_path["bad\\xff.txt"]
    assert (bad.op, "not valid UTF-8" in bad.reason) == (Op.UNSUPPORTED, True)
    assert by_path["pipe"].op is Op.SKIP
    assert "named pipe" in by_path["pipe"].reason
    assert by_path["outside.txt"].op is Op.SKIP
    assert "outside the source folder" in by_path["outside.txt"].reason
    for clutter in (".DS_Store", "Thumbs.db", "desktop.ini", "._photo.png", "sub/.DS_Store"):
        assert by_path[clutter].op is Op.SKIP, clutter
        assert "include_system_files = true" in by_path[clutter].reason
    assert plan_summary(plan)["excluded"] == 7
    assert "bad\\xff.txt" in plan_table(plan)

    summary = await execute_job(config, "migrate")
    counts = summary.counts()
    assert (counts["created"], counts["excluded"], counts["not_migrated"]) == (1, 7, 1)
    assert summary.exit_code() == 1  # a real file was not migrated: say so
    text = summary.text()
    assert "EXCLUDED pipe: named pipe (FIFO)" in text
    assert "NOT MIGRATED bad\\xff.txt" in text
    report = summary.to_dict()
    assert {e["path"] for e in report["excluded"]} == {
        "pipe", "outside.txt", ".DS_Store", "Thumbs.db", "desktop.ini", "._photo.png",
        "sub/.DS_Store"}
    json.dumps(report)  # printable and storable: no undecodable name leaks through
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                  if not p.name.startswith(".assetferry")) == ["photo.png", "sub"]


@pytest.mark.slow
async def test_system_files_are_kept_when_asked(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / ".DS_Store").write_bytes(b"junk")
    (src / "Thumbs.db").write_bytes(b"junk")
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, local(src, "include_system_files = true\n"),
                          local(dest)), env={})
    summary = await execute_job(config, "migrate")
    assert summary.exit_code() == 0, summary.text()
    # migrated like any file (the mapping drops leading dots: no hidden names in a target)
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".assetferry")) == [
        "DS_Store", "Thumbs.db"]


@pytest.mark.skipif(os.name == "nt", reason="Windows refuses \\ : ? in file names")
async def test_a_posix_name_a_target_cannot_store_is_renamed_in_the_plan_and_migrated(
    tmp_path: Path,
) -> None:
    """``back\\slash.txt`` is an ordinary POSIX name: the local source reads it, the plan
    renames it for every target that cannot store it, and the run does what the plan said
    (it was planned as a create that every run failed: the source refused its own id)."""
    src = tmp_path / "lib"
    (src / "sub\\dir").mkdir(parents=True)
    names = {"back\\slash.txt": b"one", "sub\\dir/a:b?.txt": b"two"}
    for rel, data in names.items():
        (src / rel).write_bytes(data)
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, local(src), local(dest)), env={})

    plan = await plan_job(config)
    assert {a.op for a in plan.assets} == {Op.CREATE}
    renamed = {a.source_id: a.filename for a in plan.assets}
    assert renamed == {"back\\slash.txt": "back_slash.txt", "sub\\dir/a:b?.txt": "a:b?.txt"}
    assert [f.target_path for f in plan.folders] == [("sub_dir",)]
    summary = await execute_job(config, "migrate")
    assert summary.failed() == [], summary.text()
    assert (dest / "back_slash.txt").read_bytes() == b"one"
    assert (dest / "sub_dir" / "a:b?.txt").read_bytes() == b"two"
    # a second run finds both migrated (the ids are read back the same way)
    again = await plan_job(config)
    assert {a.op for a in again.assets} == {Op.SKIP}
