"""The nightly mirror (issue 11, `sync`): incremental listing from a watermark, a full listing
every `[run] full_listing_every` runs, drift in the target under `[run] on_conflict`, moves,
and a run with nothing changed making listing requests only."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow.emulator import WebflowEmulator
from pipeline.config import JobConfig, load_job
from pipeline.plan import Op
from pipeline.report import RunSummary
from pipeline.run import Transports, execute_job
from pipeline.verify import verify_job
from state.store import ItemStatus, StateStore
from tests.pipeline.helpers import (
    CS_KEY,
    CS_SECTION,
    CS_TOKEN,
    Recorder,
    job_toml,
    sb_section,
    wf_section,
)

SB_SPACE = 288868932106301
SB_TOKEN = "sb-mirror-token-9e2b"
SB = "http://sb.emulator"
CS = "http://cs.emulator"
SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)
WF_SITE = "6390c49674a71f84b51a08d9"
WF_TOKEN = "wf-mirror-token-3c8e"
WF_SECTION = wf_section(WF_SITE, WF_TOKEN)
CS_HEADERS = {"api_key": CS_KEY, "authorization": CS_TOKEN}
SB_HEADERS = {"authorization": SB_TOKEN}


def load(tmp_path: Path, source: str, target: str, run: str = "") -> JobConfig:
    return load_job(job_toml(tmp_path, source, target, run=run), env={})


def with_run(job: JobConfig, **run: Any) -> JobConfig:
    return job.model_copy(update={"run": job.run.model_copy(update=run)})


async def sync(job: JobConfig, transports: Transports) -> RunSummary:
    return await execute_job(job, "sync", transports=transports)


async def api(app: Any, method: str, url: str, headers: dict[str, str], **kw: Any) -> None:
    """One request to an emulator's API, as an editor's tool would send it."""
    async with httpx.AsyncClient(transport=in_process_transport(app)) as client:
        response = await client.request(method, url, headers=headers, **kw)
        assert response.is_success, response.text


def listing_kinds(job: JobConfig, route: str) -> list[str]:
    """The listing kind of each run, oldest first."""
    with StateStore(job.run.state) as store:
        return [r.summary.get("listing", {}).get("kind", "?")
                for r in reversed(store.runs(route, limit=50))]


def is_listing(request: httpx.Request) -> bool:
    """A GET of a collection (folders, assets, tags), never of one asset."""
    path = request.url.path.rstrip("/")
    return request.method == "GET" and path.endswith(
        ("/v3/assets", "/assets", "/asset_folders", "/internal_tags", "/sites/" + WF_SITE))


YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def age(records: dict[Any, dict[str, Any]]) -> None:
    """Make a seeded library a day old (as a library is when the mirror starts)."""
    for record in records.values():
        record["created_at"] = record["updated_at"] = YESTERDAY


async def assert_verified(job: JobConfig, cs: ContentstackEmulator,
                          sb: StoryblokEmulator, source: str) -> None:
    """``verify --deep`` after the sync: every mapped asset present with the source's bytes,
    nothing missing or extra (issue 11: each kind of change, then verify is clean)."""
    apps = {"cs": cs.app, "sb": sb.app}
    other = "sb" if source == "cs" else "cs"
    transports = {"source": in_process_transport(apps[source]),
                  "target": in_process_transport(apps[other])}
    with StateStore(job.run.state) as store:
        report = await verify_job(job, store, deep=True, transports=transports)
    assert report.exit_code() == 0, report.to_json()
    assert report.checked == report.ok > 0


def sb_folder_of(sb: StoryblokEmulator, name: str) -> int | None:
    [asset] = [a for a in sb.assets.values() if a["short_filename"] == name]
    return asset["asset_folder_id"]  # type: ignore[no-any-return]


async def test_contentstack_to_storyblok_each_kind_of_change_then_a_no_change_run(
    tmp_path: Path, cs: ContentstackEmulator, sb: StoryblokEmulator
) -> None:
    """New, metadata, bytes and moved in the source reach the target through an incremental
    listing (the documented `query` on `updated_at`); a moved asset keeps its Storyblok id;
    then a run with nothing changed makes listing requests only, as many with 3 assets as
    with 9 (no request per asset)."""
    brand, other = cs.add_folder("Brand"), cs.add_folder("Other")
    moved = cs.add_asset("logo.txt", b"logo", parent_uid=brand, title="Logo")
    edited = cs.add_asset("notes.txt", b"notes", parent_uid=brand, title="Notes")
    rebytes = cs.add_asset("data.txt", b"v1", title="Data")
    cs.add_asset("still.txt", b"unchanged", parent_uid=other)
    age(cs.assets)
    source = Recorder(in_process_transport(cs.app))
    transports = {"source": source, "target": in_process_transport(sb.app)}
    job = load(tmp_path, CS_SECTION, SB_SECTION)
    first = await sync(job, transports)
    assert first.exit_code() == 0, first.text()
    sb_ids = {a["short_filename"]: i for i, a in sb.assets.items()}
    sb_folders = {f["name"]: i for i, f in sb.folders.items()}

    await api(cs.app, "PUT", f"{CS}/v3/assets/{moved}", CS_HEADERS,
              json={"asset": {"parent_uid": other}})
    await api(cs.app, "PUT", f"{CS}/v3/assets/{edited}", CS_HEADERS,
              json={"asset": {"title": "Notes, revised"}})
    await api(cs.app, "PUT", f"{CS}/v3/assets/{rebytes}", CS_HEADERS,
              files={"asset[upload]": ("data.txt", b"version two", "text/plain")})
    cs.add_asset("new.txt", b"new", parent_uid=other)
    source.seen.clear()
    second = await sync(job, transports)
    assert second.exit_code() == 0, second.text()
    asked = [json.loads(r.url.params["query"]) for r in source.seen if "query" in r.url.params]
    assert any("updated_at" in q for q in asked), "listed by the documented updated_at filter"
    c = second.counts()
    assert (c["created"], c["replaced"], c["updated"]) == (1, 1, 2), second.text()
    assert c["source_entries"] == 4, "only the 4 changed assets were listed"
    assert sb_folder_of(sb, "logo.txt") == sb_folders["Other"]
    assert {a["short_filename"]: i for i, a in sb.assets.items()
            if a["short_filename"] != "new.txt"} == sb_ids, "moved in place, same ids"
    assert sb.assets[sb_ids["notes.txt"]]["title"] == "Notes, revised"
    assert sb.blob(sb_ids["data.txt"]) == b"version two"
    await assert_verified(job, cs, sb, "cs")

    async def no_change_requests() -> tuple[list[httpx.Request], list[httpx.Request]]:
        target = Recorder(in_process_transport(sb.app))
        source.seen.clear()
        quiet = await sync(job, {"source": source, "target": target})
        assert quiet.exit_code() == 0, quiet.text()
        assert sum(quiet.counts()[k] for k in ("created", "replaced", "updated",
                                               "adopted", "deleted")) == 0
        return list(source.seen), list(target.seen)

    src, dst = await no_change_requests()
    assert all(is_listing(r) for r in src + dst), [str(r.url) for r in src + dst
                                                    if not is_listing(r)]
    # one page each of source folders and assets; of target folders and assets
    assert (len(src), len(dst)) == (2, 2)
    for n in range(6):
        cs.add_asset(f"more-{n}.txt", b"more", parent_uid=other)
    assert (await sync(job, transports)).exit_code() == 0
    assert (len(src), len(dst)) == tuple(map(len, await no_change_requests())), \
        "the no-change run costs the same with more assets"
    assert listing_kinds(job, first.route)[:2] == ["full", "incremental"]


async def test_storyblok_to_contentstack_drift_move_and_full_listing_every_n_runs(
    tmp_path: Path, cs: ContentstackEmulator, sb: StoryblokEmulator
) -> None:
    """Storyblok lists what changed by `sort_by=updated_at:desc`; a moved asset is moved in
    Contentstack (same uid). An edit made in Contentstack since we wrote the asset (its
    `_version` moved on) is a conflict: not overwritten under the default policy, the run
    stops before any write under "fail", and the source wins under "source-wins". A full
    listing comes at least every `full_listing_every` runs."""
    x, y = sb.add_folder("X"), sb.add_folder("Y")
    photo = sb.add_asset("photo.txt", b"photo", folder_id=x, title="Photo")
    doc = sb.add_asset("doc.txt", b"doc", folder_id=x, title="Doc")
    age(sb.assets)
    source = Recorder(in_process_transport(sb.app))
    transports = {"source": source, "target": in_process_transport(cs.app)}
    job = load(tmp_path, SB_SECTION, CS_SECTION, "full_listing_every = 3\n")
    first = await sync(job, transports)
    assert first.exit_code() == 0, first.text()
    uids = {r["filename"]: uid for uid, r in cs.assets.items()}
    cs_folders = {r["name"]: uid for uid, r in cs.folders.items()}

    base = f"{SB}/v1/spaces/{SB_SPACE}/assets"
    await api(sb.app, "PUT", f"{base}/{photo}", SB_HEADERS, json={"asset": {"asset_folder_id": y}})
    source.seen.clear()
    second = await sync(job, transports)
    assert second.exit_code() == 0, second.text()
    assert any(r.url.params.get("sort_by") == "updated_at:desc" for r in source.seen)
    assert second.counts()["source_entries"] == 1
    assert cs.assets[uids["photo.txt"]]["parent_uid"] == cs_folders["Y"]
    assert {r["filename"]: uid for uid, r in cs.assets.items()} == uids
    await assert_verified(job, cs, sb, "sb")

    # someone edits doc.txt in Contentstack; then its title changes in Storyblok too
    await api(cs.app, "PUT", f"{CS}/v3/assets/{uids['doc.txt']}", CS_HEADERS,
              json={"asset": {"title": "Edited in Contentstack"}})
    await api(sb.app, "PUT", f"{base}/{doc}", SB_HEADERS, json={"asset": {"title": "Doc v2"}})
    third = await sync(job, transports)
    assert third.exit_code() == 1, third.text()
    [conflict] = third.not_migrated()
    assert conflict.op is Op.CONFLICT
    assert "changed in the target since assetferry wrote it" in conflict.reason
    assert "version" in conflict.reason
    assert cs.assets[uids["doc.txt"]]["title"] == "Edited in Contentstack", "not overwritten"
    with StateStore(job.run.state) as store:
        row = store.items(third.route)[("asset", str(doc))]
    assert row.status is ItemStatus.DONE, "the ledger keeps what we wrote"

    failing = await sync(with_run(job, on_conflict="fail"), transports)
    assert failing.exit_code() == 2
    assert failing.fatal is not None
    assert "changed in the target" in failing.fatal
    assert cs.assets[uids["doc.txt"]]["title"] == "Edited in Contentstack"

    # the failed run wrote nothing, not even a run; runs 2 and 3 (partial: the conflict)
    # hold no completed full listing, so with full_listing_every = 3 this one lists in full
    wins = await sync(with_run(job, on_conflict="source-wins"), transports)
    assert wins.exit_code() == 0, wins.text()
    assert cs.assets[uids["doc.txt"]]["title"] == "Doc v2"
    await assert_verified(job, cs, sb, "sb")
    assert listing_kinds(job, first.route) == ["full", "incremental", "incremental", "full"]
    again = await sync(job, transports)
    assert again.exit_code() == 0, again.text()
    assert listing_kinds(job, first.route)[-1] == "incremental"

    # deleted in the source: an incremental listing cannot tell; a pruning run lists in full
    await api(sb.app, "DELETE", f"{base}/{doc}", SB_HEADERS)
    quiet = await sync(job, transports)
    assert (quiet.exit_code(), quiet.counts()["deleted"]) == (0, 0), quiet.text()
    assert uids["doc.txt"] in cs.assets
    pruned = await execute_job(job, "sync", transports=transports, prune=True)
    assert pruned.exit_code() == 0, pruned.text()
    assert pruned.counts()["deleted"] == 1
    assert uids["doc.txt"] not in cs.assets
    await assert_verified(job, cs, sb, "sb")
    assert listing_kinds(job, first.route)[-2:] == ["incremental", "full"]


async def test_a_target_edit_on_storyblok_is_a_conflict_by_its_update_time(
    tmp_path: Path, cs: ContentstackEmulator, sb: StoryblokEmulator
) -> None:
    """Storyblok gives no version: an `updated_at` later than our write (beyond the clock
    tolerance) is drift. The default policy leaves the target's edit in place."""
    uid = cs.add_asset("card.txt", b"card", title="Card")
    transports = {"source": in_process_transport(cs.app), "target": in_process_transport(sb.app)}
    job = load(tmp_path, CS_SECTION, SB_SECTION)
    assert (await sync(job, transports)).exit_code() == 0
    [(sb_id, asset)] = list(sb.assets.items())
    await api(sb.app, "PUT", f"{SB}/v1/spaces/{SB_SPACE}/assets/{sb_id}", SB_HEADERS,
              json={"asset": {"title": "Their title"}})
    later = datetime.now(UTC) + timedelta(hours=1)  # the edit, as made the next morning
    asset["updated_at"] = later.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    await api(cs.app, "PUT", f"{CS}/v3/assets/{uid}", CS_HEADERS,
              json={"asset": {"title": "Our title"}})
    summary = await sync(job, transports)
    assert summary.exit_code() == 1
    [conflict] = summary.not_migrated()
    assert "updated there at" in conflict.reason
    assert sb.assets[sb_id]["title"] == "Their title"


async def test_a_move_webflow_cannot_make_is_reported_and_sends_nothing(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    """Webflow has no way to move an asset between folders: the asset stays where it is, the
    plan line says so, nothing is sent, and the next run is quiet."""
    wf = WebflowEmulator(site_id=WF_SITE, token=WF_TOKEN, rate_limit_per_minute=None)
    x, y = sb.add_folder("X"), sb.add_folder("Y")
    photo = sb.add_asset("photo.txt", b"photo", folder_id=x)
    job = load(tmp_path, SB_SECTION, WF_SECTION)
    transports = {"source": in_process_transport(sb.app), "target": in_process_transport(wf.app)}
    try:
        assert (await sync(job, transports)).exit_code() == 0
        [(wf_id, record)] = list(wf.assets.items())
        folder_before = record["folderId"]
        await api(sb.app, "PUT", f"{SB}/v1/spaces/{SB_SPACE}/assets/{photo}", SB_HEADERS,
                  json={"asset": {"asset_folder_id": y}})
        plans: list[Any] = []
        target = Recorder(in_process_transport(wf.app))
        summary = await execute_job(job, "sync", on_plan=plans.append,
                                    transports={**transports, "target": target})
        assert summary.exit_code() == 0, summary.text()
        [action] = [a for a in plans[0].assets if a.source_id == str(photo)]
        assert action.op is Op.UPDATE
        assert any("cannot move" in w for w in action.warnings), action.warnings
        assert all(is_listing(r) for r in target.seen), "nothing is sent for it"
        assert list(wf.assets) == [wf_id]
        assert wf.assets[wf_id]["folderId"] == folder_before
        again: list[Any] = []
        await execute_job(job, "sync", transports=transports, on_plan=again.append)
        assert {a.op for a in again[0].assets} == {Op.SKIP}, "reported once, then quiet"
    finally:
        wf.close()


async def test_a_same_size_edit_in_a_local_target_is_drift_even_with_its_time_set_back(
        tmp_path: Path) -> None:
    """A local target's marker is size, mtime, inode and ctime: an edit of the same size
    whose mtime is put back (``touch -d``, ``cp -p``) is seen by sync as drift; it was
    unchanged for sync while ``verify --deep`` saw different bytes."""
    src, dest = tmp_path / "lib", tmp_path / "out"
    src.mkdir()
    (src / "a.txt").write_bytes(b"original")
    job = load(tmp_path, f'connector = "local"\npath = "{src}"',
               f'connector = "local"\npath = "{dest}"')
    assert (await sync(job, {})).exit_code() == 0
    copy = dest / "a.txt"
    before = copy.stat()
    copy.write_bytes(b"EDITED!!")  # same size
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))

    summary = await sync(job, {})
    (outcome,) = summary.assets()
    assert outcome.op is Op.CONFLICT, summary.text()
    assert "changed in the target since assetferry wrote it" in outcome.reason
    assert copy.read_bytes() == b"EDITED!!"  # on_conflict = "skip" leaves it

    summary = await sync(with_run(job, on_conflict="source-wins"), {})
    assert summary.exit_code() == 0, summary.text()
    assert copy.read_bytes() == b"original"
    (outcome,) = (await sync(job, {})).assets()
    assert outcome.op is Op.SKIP, outcome.reason  # our own write is no drift
