"""End to end with the Webflow emulator in-process: into Webflow from a local folder and from
Storyblok, out of Webflow into Contentstack and a local folder, compared item by item (bytes,
folders, alt text per locale); what Webflow cannot take is in the plan and the run report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import Faults, in_process_transport
from connectors.storyblok.demo import seed as seed_storyblok
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow.demo import seed as seed_webflow
from connectors.webflow.emulator import WebflowEmulator
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import plan_summary
from pipeline.run import execute_job, plan_job
from pipeline.samples import SampleFile, sample_library
from tests.pipeline.helpers import (
    CS_KEY,
    CS_SECTION,
    CS_TOKEN,
    cs_inventory,
    library,
    local_inventory,
    sb_section,
    sha,
    wf_section,
)

SITE = "6390c49674a71f84b51a08d8"
LOCALE = "65427cf400e02b306eaa04a0"
TOKEN = "wf-e2e-token-5d21"
WF = "http://wf.emulator"
WF_SECTION = wf_section(SITE, TOKEN, f'{{de = "{LOCALE}"}}')
SB_SECTION = sb_section(288868932106293, "sb-t")


@pytest.fixture
def wf() -> Iterator[WebflowEmulator]:
    e = WebflowEmulator(site_id=SITE, token=TOKEN, locales=(LOCALE,), rate_limit_per_minute=None)
    yield e
    e.close()


def job(tmp_path: Path, source: str, target: str, name: str = "job") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n"
                    f'[run]\nstate = "{tmp_path / name}.db"\n', encoding="utf-8")
    return path


def wf_inventory(emu: WebflowEmulator) -> list[tuple[tuple[str, ...], str, str]]:
    def path(fid: str | None) -> tuple[str, ...]:
        if fid is None:
            return ()
        rec = emu.folders[fid]
        return (*path(rec["parentFolder"]), rec["displayName"])

    return sorted((path(r["folderId"]), r["originalFileName"], sha(emu.blob(aid)))
                  for aid, r in emu.assets.items())


def awkward_files() -> list[SampleFile]:
    """What Webflow cannot take, and a name it must shorten."""
    long_stem = "a-very-long-campaign-asset-name-" * 4  # 128 characters before the extension
    return [
        SampleFile(("Big",), "huge photo.jpg", b"\xff\xd8\xff" + b"0" * (4 * 1024 * 1024 + 10),
                   "image/jpeg", title="Too big"),
        SampleFile(("Big",), "manual.pdf", b"%PDF-" + b"1" * (10 * 1024 * 1024 + 10),
                   "application/pdf", title="Too big a document"),
        SampleFile(("Media",), "clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4",
                   title="A video"),
        SampleFile(("Media",), f"{long_stem}.png", b"\x89PNG\r\n\x1a\nlong", "image/png",
                   title="Long name", alt="long"),
        SampleFile(("Media",), f"{long_stem}-2.png", b"\x89PNG\r\n\x1a\nlong2", "image/png",
                   title="Long name 2"),
    ]


async def test_local_to_webflow_then_back_to_local(tmp_path: Path, wf: WebflowEmulator) -> None:
    files = list(sample_library())
    awkward = awkward_files()
    root, _ = library(tmp_path, files + awkward)
    config = load_job(job(tmp_path, f'connector = "local"\npath = "{root}"\n', WF_SECTION),
                      env={})
    transports = {"target": in_process_transport(wf.app)}

    plan = await plan_job(config, transports=transports)
    by_path = {a.path: a for a in plan.assets}
    assert by_path["Big/huge photo.jpg"].op is Op.UNSUPPORTED
    assert "at most 4,194,304 bytes for images" in by_path["Big/huge photo.jpg"].reason
    assert by_path["Big/manual.pdf"].op is Op.UNSUPPORTED
    assert "at most 10,485,760 bytes for documents" in by_path["Big/manual.pdf"].reason
    assert by_path["Media/clip.mp4"].op is Op.UNSUPPORTED
    assert "video/mp4" in by_path["Media/clip.mp4"].reason
    long_names = [a for a in plan.assets if a.path.startswith("Media/a-very-long")]
    assert all(a.op is Op.CREATE and len(a.filename) < 100 and a.filename.endswith(".png")
               for a in long_names)
    assert len({a.filename for a in long_names}) == 2, "shortened names stay unique"
    assert all(any("renamed to" in w for w in a.warnings) for a in long_names)
    summary = plan_summary(plan)
    assert summary["dropped_fields"]["title"] == len(files) + 2  # the long-named two
    assert summary["dropped_fields"]["tags"] == sum(1 for f in files if f.tags)
    assert summary["unsupported"] == 3

    result = await execute_job(config, "migrate", transports=transports)
    assert result.exit_code() == 1, "the not-migrated files are reported"
    report = result.to_dict()
    not_migrated = {item["path"] for item in report["not_migrated"]}
    assert not_migrated == {"Big/huge photo.jpg", "Big/manual.pdf", "Media/clip.mp4"}
    assert wf.pending == {}, "every created asset got its bytes"
    expected = sorted((f.folder, f.name, sha(f.data)) for f in files)
    got = [item for item in wf_inventory(wf) if not item[1].startswith("a-very-long")]
    assert got == expected
    alts = {r["originalFileName"]: (r["altText"], r["alt_by_locale"].get(LOCALE))
            for r in wf.assets.values()}
    for f in files:
        assert alts[f.name] == (f.alt, f.alt_de), f.name

    again = await execute_job(config, "migrate", transports=transports)
    assert again.counts()["created"] == 0
    assert len(wf.assets) == len(files) + 2, "a second run uploads nothing again"

    dest = tmp_path / "back"
    back = load_job(job(tmp_path, WF_SECTION, f'connector = "local"\npath = "{dest}"\n',
                        name="back"), env={})
    result = await execute_job(back, "migrate", transports={"source": in_process_transport(wf.app)})
    assert result.exit_code() == 0, result.text()
    round_trip = [i for i in local_inventory(dest) if not i[1].startswith("a-very-long")]
    assert round_trip == expected
    manifest = json.loads((dest / ".assetferry.json").read_text())["assets"]
    for f in files:
        entry = manifest["/".join((*f.folder, f.name))]
        assert entry.get("alt_text") == f.alt
        assert entry.get("locales", {}).get("de", {}).get("alt_text") == f.alt_de


async def test_storyblok_to_webflow(tmp_path: Path, wf: WebflowEmulator) -> None:
    sb = StoryblokEmulator(space_id=288868932106293, token="sb-t", rate_limit=None)
    try:
        files = list(sample_library())
        seed_storyblok(sb, files)
        config = load_job(job(tmp_path, SB_SECTION, WF_SECTION), env={})
        transports = {"source": in_process_transport(sb.app),
                      "target": in_process_transport(wf.app)}
        result = await execute_job(config, "migrate", transports=transports)
        assert result.exit_code() == 0, result.text()
    finally:
        sb.close()
    # Storyblok stores "a.b.c.png" as "a_b.c.png": none of the samples has two dots
    assert wf_inventory(wf) == sorted((f.folder, f.name, sha(f.data)) for f in files)
    alts = {r["originalFileName"]: (r["altText"], r["alt_by_locale"].get(LOCALE))
            for r in wf.assets.values()}
    assert all(alts[f.name] == (f.alt, f.alt_de) for f in files)


async def test_webflow_to_contentstack(tmp_path: Path, wf: WebflowEmulator) -> None:
    files = list(sample_library())
    seed_webflow(wf, files)
    cs = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    try:
        config = load_job(job(tmp_path, WF_SECTION, CS_SECTION), env={})
        transports = {"source": in_process_transport(wf.app),
                      "target": in_process_transport(cs.app)}
        result = await execute_job(config, "migrate", transports=transports)
        assert result.exit_code() == 0, result.text()
        got = {(name, digest) for _, name, digest in cs_inventory(cs)}
        assert got == {(f.name.replace(" ", "_"), sha(f.data)) for f in files}
        assert len(cs_inventory(cs)) == len(files)
    finally:
        cs.close()


async def test_webflow_files_come_whole_through_the_shared_download_faults(
        tmp_path: Path, wf: WebflowEmulator) -> None:
    """The shared fault switches reach Webflow's file host: gzip, redirects, cut bodies."""
    files = list(sample_library())[:12]
    seed_webflow(wf, files)
    wf.faults = Faults(gzip_rate=0.3, redirect_rate=0.3, truncate_rate=0.2, seed=5)
    dest = tmp_path / "out"
    config = load_job(job(tmp_path, WF_SECTION, f'connector = "local"\npath = "{dest}"\n'),
                      env={})
    transports = {"source": in_process_transport(wf.app)}
    result = await execute_job(config, "migrate", transports=transports)
    for _ in range(3):  # a cut body fails its item; the next run retries it
        if result.exit_code() == 0:
            break
        result = await execute_job(config, "migrate", transports=transports)
    assert result.exit_code() == 0, result.text()
    assert local_inventory(dest) == sorted((f.folder, f.name, sha(f.data)) for f in files)
    assert sum(wf.fault_middleware.injected.values()) > 0
