"""``assetferry verify``: migrate then verify is clean on each connector pair the end-to-end
tests use; a target edited behind our back (bytes changed, asset deleted, an asset added to a
migrated folder) is reported as different / missing / extra with exit 1; ``--deep`` catches
same-size different bytes; one item that cannot be downloaded is reported alone."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from connectors.base import Asset
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.storyblok.demo import seed as seed_storyblok
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow.demo import seed as seed_webflow
from connectors.webflow.emulator import WebflowEmulator
from pipeline import cli
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.run import execute_job, plan_job
from pipeline.samples import SampleFile, sample_library
from pipeline.verify import (
    DIFFERENT,
    ERROR,
    EXTRA,
    MISSING,
    VerifyReport,
    common_checksum,
    compare_listed,
    verify_job,
)
from state.store import StateStore
from tests.pipeline.helpers import CS_KEY, CS_SECTION, CS_TOKEN, library, sb_section, wf_section

SB_SPACE = 288868932106293
SB_TOKEN = "sb-verify-token"
WF_SITE = "6390c49674a71f84b51a08d8"
WF_LOCALE = "65427cf400e02b306eaa04a0"
WF_TOKEN = "wf-verify-token"
CS = "http://cs.emulator"
SECTIONS = {
    "contentstack": CS_SECTION,
    "storyblok": sb_section(SB_SPACE, SB_TOKEN),
    "webflow": wf_section(WF_SITE, WF_TOKEN, f'{{de = "{WF_LOCALE}"}}'),
}


def files() -> list[SampleFile]:
    """A small library every target takes whole (images with dimensions, a PDF, text, names
    with spaces and accents, nested folders; no zero-byte file, which Storyblok refuses)."""
    every = [f for f in sample_library() if f.data]
    return every[:8] + [f for f in every if f.name in ("Brand guide.pdf", "readme.txt")]


class Emulators:
    def __init__(self) -> None:
        self.cs = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN,
                                       rate_limit=None)
        self.sb = StoryblokEmulator(space_id=SB_SPACE, token=SB_TOKEN, rate_limit=None)
        self.wf = WebflowEmulator(site_id=WF_SITE, token=WF_TOKEN, locales=(WF_LOCALE,),
                                  rate_limit_per_minute=None)

    def transport(self, name: str) -> httpx.AsyncBaseTransport:
        app = {"contentstack": self.cs.app, "storyblok": self.sb.app, "webflow": self.wf.app}
        return in_process_transport(app[name])

    def seed(self, name: str, library_files: list[SampleFile]) -> None:
        if name == "storyblok":
            seed_storyblok(self.sb, library_files)
        elif name == "webflow":
            seed_webflow(self.wf, library_files)
        else:
            folders: dict[tuple[str, ...], str | None] = {(): None}
            for f in library_files:
                for depth in range(1, len(f.folder) + 1):
                    if f.folder[:depth] not in folders:
                        folders[f.folder[:depth]] = self.cs.add_folder(
                            f.folder[depth - 1], folders[f.folder[:depth - 1]])
                self.cs.add_asset(f.name.replace(" ", "_"), f.data,
                                  parent_uid=folders[f.folder], title=f.title, tags=f.tags,
                                  content_type=f.content_type)

    def close(self) -> None:
        self.cs.close()
        self.sb.close()
        self.wf.close()


@pytest.fixture
def emus() -> Iterator[Emulators]:
    e = Emulators()
    yield e
    e.close()


def job_file(tmp_path: Path, source: str, target: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n"
                    f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    return path


def section(name: str, tmp_path: Path, side: str) -> str:
    if name == "local":
        return f'connector = "local"\npath = "{tmp_path / side}"\n'
    return SECTIONS[name]


async def verify(path: Path, transports: Mapping[str, httpx.AsyncBaseTransport],
                 *, deep: bool = False) -> VerifyReport:
    job = load_job(path, env={})
    with StateStore(job.run.state) as store:
        return await verify_job(job, store, deep=deep, transports=transports)


PAIRS = [("local", "contentstack"), ("storyblok", "contentstack"), ("contentstack", "storyblok"),
         ("local", "webflow"), ("webflow", "contentstack"), ("contentstack", "local")]


@pytest.mark.parametrize(("source", "target"), PAIRS)
async def test_migrate_then_verify_is_clean(tmp_path: Path, emus: Emulators, source: str,
                                            target: str) -> None:
    lib = files()
    if source == "local":
        library(tmp_path, lib)
        (tmp_path / "library").rename(tmp_path / "source")
    else:
        emus.seed(source, lib)
    path = job_file(tmp_path, section(source, tmp_path, "source"),
                    section(target, tmp_path, "target"))
    transports = {side: emus.transport(name) for side, name in
                  (("source", source), ("target", target)) if name != "local"}
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()

    for deep in (False, True):
        report = await verify(path, transports, deep=deep)
        assert report.exit_code() == 0, report.text()
        assert report.checked == report.ok == len(lib)
        assert report.items == []


@pytest.fixture
def migrated_to_local(tmp_path: Path, emus: Emulators) -> tuple[Path, Path]:
    """Contentstack -> local folder, migrated; returns (job file, target folder)."""
    emus.seed("contentstack", files())
    path = job_file(tmp_path, SECTIONS["contentstack"], section("local", tmp_path, "target"))
    return path, tmp_path / "target"


async def test_tampered_local_target_is_missing_different_and_extra(
        migrated_to_local: tuple[Path, Path], emus: Emulators) -> None:
    path, target = migrated_to_local
    transports = {"source": emus.transport("contentstack")}
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    jpegs = sorted(p for p in target.rglob("*.jpg") if p.parent != target)
    pngs = sorted(p for p in target.rglob("*.png"))
    assert len(jpegs) >= 2, "the sample library has JPEGs in folders"
    assert pngs, "and PNGs"
    grown, same_size, deleted = jpegs[0], jpegs[1], pngs[0]
    grown.write_bytes(grown.read_bytes() + b" and more")
    data = same_size.read_bytes()  # the last byte: the header (and so the dimensions) stays
    same_size.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    deleted.unlink()
    (grown.parent / "added by hand.txt").write_bytes(b"not ours")

    report = await verify(path, transports)
    assert report.exit_code() == 1
    by_status = {(i.status, Path(i.path).name) for i in report.items}
    assert (MISSING, deleted.name) in by_status
    assert (EXTRA, "added by hand.txt") in by_status
    different = {Path(i.path).name: i for i in report.items if i.status == DIFFERENT}
    assert set(different) == {grown.name}, "same-size bytes are not seen without --deep"
    assert any("size" in p for p in different[grown.name].problems)

    deep = await verify(path, transports, deep=True)
    different = {Path(i.path).name: i for i in deep.items if i.status == DIFFERENT}
    assert set(different) == {grown.name, same_size.name}
    assert any("bytes differ" in p for p in different[same_size.name].problems)
    assert deep.checked == len(files()) - 1


async def test_tampered_contentstack_target_through_its_api(tmp_path: Path,
                                                            emus: Emulators) -> None:
    library(tmp_path, files())
    (tmp_path / "library").rename(tmp_path / "source")
    path = job_file(tmp_path, section("local", tmp_path, "source"), SECTIONS["contentstack"])
    transports = {"target": emus.transport("contentstack")}
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    uids = sorted(emus.cs.assets)
    headers = {"api_key": CS_KEY, "authorization": CS_TOKEN}
    async with httpx.AsyncClient(transport=emus.transport("contentstack"), base_url=CS,
                                 headers=headers) as client:
        gone = await client.delete(f"/v3/assets/{uids[0]}")
        assert gone.is_success, gone.text
        changed = emus.cs.assets[uids[1]]
        put = await client.put(f"/v3/assets/{uids[1]}", files={
            "asset[upload]": (changed["filename"], b"edited in the target, longer or shorter",
                              changed["content_type"])})
        assert put.is_success, put.text

    state_before = (tmp_path / "state.db").read_bytes()
    recorder = Recorder(emus.transport("contentstack"))
    report = await verify(path, {"target": recorder}, deep=True)
    assert recorder.methods == {"GET"}, "verify reads, never writes"
    assert (tmp_path / "state.db").read_bytes() == state_before
    assert report.exit_code() == 1
    assert [i.status for i in report.items if i.target_id == uids[0]] == [MISSING]
    assert [i.status for i in report.items if i.target_id == uids[1]] == [DIFFERENT]
    assert len(report.items) == 2


class Recorder(httpx.AsyncBaseTransport):
    """Pass every request on; remember the methods used."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.methods: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.add(request.method)
        return await self.inner.handle_async_request(request)


class FailOneDownload(httpx.AsyncBaseTransport):
    """Answer 404 to the file download of one asset (its URL holds ``marker``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, marker: str) -> None:
        self.inner, self.marker = inner, marker

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.marker in request.url.path and "/v3/assets/" in request.url.path \
                and request.method == "GET" and request.url.path.count("/") > 4:
            return httpx.Response(404, text="gone from the CDN")
        return await self.inner.handle_async_request(request)


async def test_deep_download_failure_is_reported_for_that_item_alone(
        migrated_to_local: tuple[Path, Path], emus: Emulators) -> None:
    path, _ = migrated_to_local
    transports = {"source": emus.transport("contentstack")}
    summary = await execute_job(load_job(path, env={}), "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    victim = sorted(emus.cs.assets)[0]
    failing = {"source": FailOneDownload(emus.transport("contentstack"), victim)}
    report = await verify(path, failing, deep=True)
    assert report.exit_code() == 1
    assert [(i.status, i.source_id) for i in report.items] == [(ERROR, victim)]
    assert "bytes not compared" in report.items[0].problems[0]
    assert report.ok == len(files()) - 1


def test_cli_verify_local_to_local_exit_codes_and_json(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    library(tmp_path, files()[:5])
    path = job_file(tmp_path, f'connector = "local"\npath = "{tmp_path / "library"}"\n',
                    f'connector = "local"\npath = "{tmp_path / "copy"}"\n')
    assert cli.main(["verify", "-c", str(path)]) == 2, "no state DB yet: exit 2"
    assert "no state database" in capsys.readouterr().err
    assert cli.main(["migrate", "-c", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["verify", "-c", str(path), "--deep"]) == 0
    assert "clean" in capsys.readouterr().out
    victim = next(p for p in (tmp_path / "copy").rglob("*") if p.is_file()
                  and not p.name.startswith(".assetferry"))
    victim.unlink()
    out = tmp_path / "verify.json"
    assert cli.main(["verify", "-c", str(path), "--format", "json", "--out", str(out)]) == 1
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["summary"]["missing"] == 1
    assert not data["summary"]["clean"]
    assert data["items"][0]["status"] == "missing"


def test_compare_listed_names_each_difference_where_both_sides_say() -> None:
    base = Asset("1", "a.jpg", (), None, "image/jpeg", 10, width=4, height=3,
                 checksums={"md5": "AA"})
    same = Asset("x", "a.jpg", (), None, "image/jpg; q=1", 10, width=4, height=3,
                 checksums={"md5": "aa", "sha256": "ff"})
    assert compare_listed(base, same) == []
    unknown = Asset("x", "a.jpg", (), None, "application/octet-stream", None)
    assert compare_listed(base, unknown) == [], "nothing stated, nothing compared"
    other = Asset("x", "a.jpg", (), None, "image/png", 11, width=5, height=3,
                  checksums={"md5": "bb"})
    problems = compare_listed(base, other)
    assert [p.split(":")[0] for p in problems] == ["size", "md5", "content type", "width"]


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """The tester's ``cp -p f ref; printf 'content 99\\n' > f; touch -r ref f``."""
    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("checksum", [False, True])
async def test_a_local_source_change_keeping_size_and_mtime(tmp_path: Path,
                                                            checksum: bool) -> None:
    """Without ``checksum`` the quick check (size, mtime) misses the change, and verify says
    it compared no checksums; with it the file is replaced and the mirror holds the bytes."""
    source, copy = tmp_path / "source", tmp_path / "copy"
    source.mkdir()
    (source / "f.txt").write_bytes(b"content 01\n")
    (source / "g.txt").write_bytes(b"other\n")
    option = "checksum = true\n" if checksum else ""
    path = job_file(tmp_path, f'connector = "local"\npath = "{source}"\n{option}',
                    f'connector = "local"\npath = "{copy}"\n')
    assert (await execute_job(load_job(path, env={}), "migrate")).exit_code() == 0
    _rewrite_keeping_size_and_mtime(source / "f.txt", b"content 99\n")

    plan = await plan_job(load_job(path, env={}))
    ops = {a.source_id: a.op for a in plan.assets}
    assert ops["g.txt"] is Op.SKIP
    report = await verify(path, {})
    assert "compared sizes, no checksums (" in report.text(), report.text()
    assert report.summary()["checksums_compared"] == 0
    if not checksum:
        assert ops["f.txt"] is Op.SKIP, "the documented limit of the quick check"
        assert report.exit_code() == 0
        deep = await verify(path, {}, deep=True)
        assert [i.path for i in deep.items] == ["f.txt"], deep.text()
        return
    assert ops["f.txt"] is Op.REPLACE
    assert (await execute_job(load_job(path, env={}), "sync")).exit_code() == 0
    assert (copy / "f.txt").read_bytes() == b"content 99\n"
    again = await plan_job(load_job(path, env={}))
    assert {a.op for a in again.assets} == {Op.SKIP}


def test_verify_names_checksums_only_where_both_sides_listed_one() -> None:
    both = VerifyReport("r", False, checked=2, checksummed=2)
    assert both.text().splitlines()[1] == \
        "compared sizes, checksums, types and dimensions (--deep also compares bytes)"
    some = VerifyReport("r", True, checked=3, checksummed=1)
    assert "checksums for 1 of 3 assets (the others: sizes only" in some.text()
    assert "and bytes" in some.text()
    none = VerifyReport("r", False, checked=3)
    assert none.text().splitlines()[1].startswith("compared sizes, no checksums (")
    assert common_checksum(Asset("1", "a", (), None, "", 1, checksums={"sha256": "aa"}),
                           Asset("2", "a", (), None, "", 1, checksums={"sha256": "AA"}))
    assert not common_checksum(Asset("1", "a", (), None, "", 1, checksums={"sha256": "aa"}),
                               Asset("2", "a", (), None, "", 1, checksums={"md5": "bb"}))
