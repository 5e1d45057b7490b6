"""End to end with the read-only sources, item by item: Contento -> Contentstack and -> Webflow,
Contentstack Delivery -> Storyblok and -> a local folder; a read-only target refused before any
request; a download shorter than announced retried, then failed, never kept truncated."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from connectors.contento.demo import ContentoDemo
from connectors.contento.emulator import ContentoEmulator
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.contentstack_delivery.demo import DRAFT, ContentstackDeliveryDemo
from connectors.emulation import in_process_transport
from connectors.errors import ConfigError
from connectors.plugin import EmulatorSettings
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline import cli
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import plan_items, plan_summary
from pipeline.run import execute_job, plan_job
from pipeline.samples import SampleFile, sample_library
from state.store import ItemStatus
from tests.pipeline.helpers import (
    CS_SECTION,
    cs_paths,
    ct_section,
    delivery_section,
    local_inventory,
    sb_section,
    sha,
    wf_section,
)

CT_SITE = "s_01jDSh2WkN8Kp6SvRA8Ne5CJ69"
CT_TOKEN = "contento-emulator-token"  # the demo seeding's (connectors/contento/demo.py)
CS_DELIVERY = "cs-delivery-token"  # likewise (connectors/contentstack_delivery/demo.py)
SB_SPACE = 288868932106293
SB_TOKEN = "sb-e2e-token-41c9"

SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)
DELIVERY_SECTION = delivery_section("${CS_DELIVERY}")


def contento_section(folders: dict[str, str]) -> str:
    return ct_section(CT_SITE, "${CONTENTO_TOKEN}", folders)


def write_job(tmp_path: Path, source: str, target: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n"
                    f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    return path


ENV = {"CONTENTO_TOKEN": CT_TOKEN, "CS_DELIVERY": CS_DELIVERY}


def files_subset() -> list[SampleFile]:
    """A quarter of the demo library: images, the PDF, text, the empty file, the deep one."""
    files = list(sample_library())
    return [f for i, f in enumerate(files) if i % 4 == 0 or not f.content_type.startswith("image")
            or len(f.folder) == 7]


@pytest.fixture
def ct_demo() -> Iterator[ContentoDemo]:
    demo = ContentoDemo(EmulatorSettings(unlimited=True))
    yield demo
    demo.close()


@pytest.fixture
def ct(ct_demo: ContentoDemo) -> ContentoEmulator:
    return ct_demo.emulator


@pytest.fixture
def cs_demo() -> Iterator[ContentstackDeliveryDemo]:
    demo = ContentstackDeliveryDemo(EmulatorSettings(unlimited=True))
    yield demo
    demo.close()


def cs_name(name: str) -> str:
    return re.sub(r"\s", "_", name)


def collapsed(folder: tuple[str, ...]) -> tuple[str, ...]:
    return folder if len(folder) <= 5 else (*folder[:4], " - ".join(folder[4:]))


async def test_contento_to_contentstack_item_by_item(
    tmp_path: Path, ct_demo: ContentoDemo, cs: ContentstackEmulator,
) -> None:
    files = files_subset()
    ct_demo.seed(files)
    ct, folders = ct_demo.emulator, ct_demo.folders
    # the job file names every folder but "Team": its assets land at the root
    named = {fid: path for fid, path in folders.items() if path != "Team"}
    job = load_job(write_job(tmp_path, contento_section(named), CS_SECTION), env=ENV)
    transports = {"source": in_process_transport(ct.app), "target": in_process_transport(cs.app)}

    plan = await plan_job(job, transports=transports)
    summary = plan_summary(plan)
    assert summary["bytes_estimated"] == len(files), "every Contento size is an estimate"
    assert abs(summary["bytes"] - sum(len(f.data) for f in files)) <= sum(
        len(f.data) * 0.01 + 1024 for f in files)
    notes = {i["path"]: i.get("notes", []) for i in plan_items(plan) if i["kind"] == "asset"}
    for f in files:
        path = "/".join((*(() if f.folder == ("Team",) else f.folder), f.name))
        assert notes[path], path
        where = "at the root" if f.folder in ((), ("Team",)) else "[source.folders]"
        assert where in notes[path][0], (path, notes[path])

    warnings = [w for a in plan.assets for w in a.warnings]
    assert not [w for w in warnings if "alt_text" in w], "an image's alt is its description"

    result = await execute_job(job, "migrate", transports=transports)
    assert result.exit_code() == 0, result.text()
    paths = cs_paths(cs)
    got = {}
    for uid, rec in cs.assets.items():
        parent = rec.get("parent_uid")
        got[((paths[parent] if parent else ()), rec["filename"])] = (uid, rec)
    assert len(got) == len(files)
    for f in files:
        folder = () if f.folder == ("Team",) else collapsed(f.folder)
        uid, rec = got[(folder, cs_name(f.name))]
        assert sha(cs.blob(uid)) == sha(f.data), f.name
        assert int(rec["file_size"]) == len(f.data), "the exact size, not the estimate"
        assert rec["title"] == f.title
        assert (rec["description"] or None) == f.alt, "Contento's description carried over"
    bytes_sent = sum(o.bytes for o in result.assets())
    assert bytes_sent == sum(len(f.data) for f in files)
    assert ct.credential_leaks == []
    assert cs.credential_leaks == []


async def test_delivery_to_storyblok_reads_only_published_assets(
    tmp_path: Path, cs_demo: ContentstackDeliveryDemo, sb: StoryblokEmulator,
) -> None:
    cs = cs_demo.emulator
    files = files_subset()
    cs_demo.seed(files)  # all published to production, plus an unpublished draft
    # Storyblok's storage policy refuses a zero-byte file: the plan says so, nothing fails
    published = [f for f in files if f.data]
    (empty,) = [f for f in files if not f.data]
    job = load_job(write_job(tmp_path, DELIVERY_SECTION, SB_SECTION), env=ENV)
    transports = {"source": in_process_transport(cs.delivery_app),
                  "target": in_process_transport(sb.app)}
    plan = await plan_job(job, transports=transports)
    ops = {a.path: a.op for a in plan.assets}
    assert set(ops) == {cs_name(f.name) for f in files}, "the draft is not read"
    assert ops.pop(cs_name(empty.name)) is Op.UNSUPPORTED
    assert set(ops.values()) == {Op.CREATE}
    assert any("description carried into alt_text" in w for a in plan.assets
               for w in a.warnings), \
        "Storyblok has no description field: the default carries it to the alt text, and says so"
    result = await execute_job(job, "migrate", transports=transports)
    assert result.exit_code() == 1, "the empty file is reported as not migrated"
    assert [o.path for o in result.not_migrated()] == [cs_name(empty.name)]
    assert not result.failed()
    by_name = {rec["short_filename"]: (aid, rec) for aid, rec in sb.assets.items()}
    assert set(by_name) == {cs_name(f.name) for f in published}
    assert DRAFT not in by_name
    assert DRAFT in {rec["filename"] for rec in cs.assets.values()}, "held, but unpublished"
    for f in published:
        aid, rec = by_name[cs_name(f.name)]
        assert sha(sb.blob(aid)) == sha(f.data), f.name
        assert len(sb.blob(aid)) == len(f.data)
        assert rec["title"] == f.title
        assert not rec.get("asset_folder_id"), "the delivery API tells no folders"
    assert cs.credential_leaks == []
    assert sb.credential_leaks == []


async def test_delivery_to_local_keeps_names_sizes_and_descriptions(
    tmp_path: Path, cs_demo: ContentstackDeliveryDemo,
) -> None:
    cs = cs_demo.emulator
    files = files_subset()
    cs_demo.seed(files)
    published = files  # and the unpublished DRAFT stays behind
    dest = tmp_path / "out"
    job = load_job(write_job(tmp_path, DELIVERY_SECTION,
                             f'connector = "local"\npath = "{dest}"\n'), env=ENV)
    result = await execute_job(job, "migrate",
                               transports={"source": in_process_transport(cs.delivery_app)})
    assert result.exit_code() == 0, result.text()
    assert local_inventory(dest) == sorted(((), cs_name(f.name), sha(f.data)) for f in published)
    manifest = json.loads((dest / ".assetferry.json").read_text())["assets"]
    for f in published:
        entry = manifest[cs_name(f.name)]
        assert (dest / cs_name(f.name)).stat().st_size == len(f.data)
        assert entry.get("title") == f.title
        assert entry.get("description") == f.alt
        assert sorted(entry.get("tags", [])) == sorted(f.tags)


@pytest.mark.parametrize(("section", "words"), [
    (contento_section({}), "Contento's Content API is read-only"),
    (DELIVERY_SECTION, "Delivery API is read-only"),
])
def test_a_read_only_connector_as_target_is_refused_before_any_request(
    tmp_path: Path, section: str, words: str, capsys: pytest.CaptureFixture[str],
) -> None:
    # the base_urls point at nothing: any request would fail differently; and the token's
    # environment variable is not even set: the read-only target is said first
    path = write_job(tmp_path, 'connector = "local"\npath = "."\n', section)
    with pytest.raises(ConfigError, match=words):
        load_job(path, env={})
    try:
        code = cli.main(["plan", "-c", str(path)])
    finally:
        structlog.reset_defaults()  # main() logs to this test's captured stderr
    assert code == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
    assert not (tmp_path / "state.db").exists()


async def test_a_short_download_is_retried_then_failed_never_kept_truncated(
    tmp_path: Path, ct: ContentoEmulator,
) -> None:
    good = ct.add_asset("good.txt", b"complete file\n" * 100)
    short = ct.add_asset("short.bin", bytes(range(256)) * 40)
    ct.short_downloads.add(short)
    dest = tmp_path / "out"
    job = load_job(write_job(tmp_path, contento_section({}),
                             f'connector = "local"\npath = "{dest}"\n'), env=ENV)
    transports = {"source": in_process_transport(ct.app)}
    result = await execute_job(job, "migrate", transports=transports)
    assert result.exit_code() == 1, "a failed item is not success"
    outcomes = {o.source_id: o for o in result.assets()}
    assert outcomes[good].status is ItemStatus.DONE
    failed = outcomes[short]
    assert failed.status is ItemStatus.FAILED
    assert "cut short" in failed.reason
    assert f"of {256 * 40} bytes" in failed.reason
    assert ct.downloads >= 3, "the short download was retried"
    assert (dest / "good.txt").read_bytes() == b"complete file\n" * 100
    assert not (dest / "short.bin").exists(), "nothing truncated is kept"
    leftovers = [p.name for p in dest.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert leftovers == ["good.txt"]
    # once the file host behaves, a re-run finishes it
    ct.short_downloads.clear()
    again = await execute_job(job, "migrate", transports=transports)
    assert again.exit_code() == 0, again.text()
    assert (dest / "short.bin").read_bytes() == bytes(range(256)) * 40


async def test_contento_to_webflow_item_by_item(tmp_path: Path, ct_demo: ContentoDemo) -> None:
    from connectors.webflow.emulator import WebflowEmulator

    site, token = "6390c49674a71f84b51a08d8", "wf-e2e-token-5d21"
    wf = WebflowEmulator(site_id=site, token=token, rate_limit_per_minute=None)
    try:
        files = files_subset()
        ct_demo.seed(files)
        section = wf_section(site, token)
        job = load_job(write_job(tmp_path, contento_section(ct_demo.folders), section), env=ENV)
        transports = {"source": in_process_transport(ct_demo.emulator.app),
                      "target": in_process_transport(wf.app)}
        plan = await plan_job(job, transports=transports)
        assert plan_summary(plan)["bytes_estimated"] == len(files)
        placed = {a.path: a for a in plan.assets}
        result = await execute_job(job, "migrate", transports=transports)
        assert result.exit_code() == 0, result.text()

        def path(fid: str | None) -> tuple[str, ...]:
            if fid is None:
                return ()
            rec = wf.folders[fid]
            return (*path(rec["parentFolder"]), rec["displayName"])

        held = {(path(r["folderId"]), r["originalFileName"]): (aid, r)
                for aid, r in wf.assets.items()}
        assert len(held) == len(files)
        for f in files:
            action = placed["/".join((*f.folder, f.name))]
            assert action.target_folder is not None
            aid, rec = held[(action.target_folder, action.filename)]
            assert sha(wf.blob(aid)) == sha(f.data), f.name
            assert rec["size"] == len(f.data), "the exact size, not Contento's estimate"
            if f.content_type.startswith("image/"):
                assert rec["altText"] == f.alt, "Contento's description is the image's alt"
        assert ct_demo.emulator.credential_leaks == []
    finally:
        wf.close()


@pytest.mark.slow
async def test_a_short_download_over_real_sockets_fails_with_the_reason(
    tmp_path: Path, ct: ContentoEmulator,
) -> None:
    """Over loopback the server cannot even finish a short body (h11 refuses): the client sees
    the connection end early, retries, and fails the item with a clear reason."""
    from connectors.emulation import LoopbackServer

    short = ct.add_asset("short.bin", bytes(range(256)) * 40)
    ct.short_downloads.add(short)
    dest = tmp_path / "out"
    with LoopbackServer(ct.app) as server:
        section = contento_section({}).replace("http://contento.emulator", server.url)
        job = load_job(write_job(tmp_path, section, f'connector = "local"\npath = "{dest}"\n'),
                       env=ENV)
        result = await execute_job(job, "migrate")
    (outcome,) = result.assets()
    assert outcome.status is ItemStatus.FAILED
    assert "Contento" in outcome.reason
    assert f"expected {256 * 40}" in outcome.reason, "says how much was announced"
    assert ct.downloads >= 3, "retried"
    assert not (dest / "short.bin").exists()


async def test_a_contento_folder_id_that_matches_no_asset_is_a_warning_not_an_empty_folder(
    tmp_path: Path, ct_demo: ContentoDemo,
) -> None:
    files = files_subset()[:4]
    ct_demo.seed(files)
    named = {**ct_demo.folders, "af_doesnotexist": "Ghost", "af_nothere": "Deep/Empty"}
    dest = tmp_path / "mirror"
    local = f'connector = "local"\npath = "{dest}"\n'
    job = load_job(write_job(tmp_path, contento_section(named), local), env=ENV)
    transports = {"source": in_process_transport(ct_demo.emulator.app)}

    plan = await plan_job(job, transports=transports)
    lines = {i["path"]: i for i in plan_items(plan) if i["kind"] == "folder"}
    ghost = lines["Ghost"]
    assert ghost["op"] == Op.UNSUPPORTED.value
    assert "af_doesnotexist" in " ".join(ghost["warnings"])
    assert "check the id" in " ".join(ghost["warnings"])
    assert lines["Deep/Empty"]["op"] == Op.UNSUPPORTED.value
    assert lines["Deep"]["op"] == Op.UNSUPPORTED.value, "its only named folder is unconfirmed"

    summary = await execute_job(job, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert not (dest / "Ghost").exists(), "an unconfirmed folder is not created empty"
    assert not (dest / "Deep").exists()
    assert "FOLDER NOT CREATED Ghost: not created: Contento lists no asset under folder id " \
        "'af_doesnotexist'" in summary.text()
    report = summary.to_dict()["folders_not_created"]
    assert {r["path"] for r in report} >= {"Ghost", "Deep/Empty", "Deep"}
