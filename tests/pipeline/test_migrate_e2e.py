"""End to end: the real pipeline and connectors against the in-process Contentstack emulator."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from httpx import AsyncBaseTransport, Request, Response

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import Faults, in_process_transport
from pipeline.plan import Op, Plan
from pipeline.run import execute_job, plan_job
from pipeline.samples import sample_library
from state.store import ItemStatus, StateStore
from tests.pipeline.helpers import (
    CS_KEY,
    CS_TOKEN,
    cs_inventory,
    cs_paths,
    cs_to_local_job,
    library,
    local_inventory,
    local_to_cs_job,
)

BASE = "http://cs.emulator"


def transports(emu: ContentstackEmulator, side: str = "target") -> dict[str, AsyncBaseTransport]:
    return {side: in_process_transport(emu.app)}


def cs_name(name: str) -> str:
    """Contentstack stores asset filenames with whitespace replaced by ``_``."""
    return re.sub(r"\s", "_", name)


def expected_cs_path(folder: tuple[str, ...]) -> tuple[str, ...]:
    """Where the collapse policy puts a folder deeper than Contentstack's 5 levels."""
    if len(folder) <= 5:
        return folder
    return (*folder[:4], " - ".join(folder[4:]))


async def test_local_to_contentstack_moves_every_asset_once_with_tree_and_metadata(
    tmp_path: Path, emu: ContentstackEmulator
) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    plan = await plan_job(job, transports=transports(emu))
    assert not emu.assets, "plan must touch nothing"
    assert not emu.folders
    assert not (tmp_path / "state.db").exists(), "plan must write no state"
    assert sum(1 for a in plan.assets if a.op is Op.CREATE) == len(files)

    summary = await execute_job(job, "migrate", transports=transports(emu))
    assert summary.exit_code() == 0, summary.text()
    # exactly what the plan said
    planned = {a.source_id: a.op for a in plan.assets}
    done = {o.source_id: o.op for o in summary.assets() if o.status is ItemStatus.DONE}
    assert done == planned

    inv = cs_inventory(emu)
    expected = sorted(
        (expected_cs_path(f.folder), cs_name(f.name), hashlib.sha256(f.data).hexdigest())
        for f in files
    )
    assert inv == expected
    # metadata: title and tags survive; the deep folder was collapsed with a warning
    by_name = {rec["filename"]: rec for rec in emu.assets.values()}
    for f in files:
        rec = by_name[cs_name(f.name)]
        assert rec["title"] == f.title
        assert sorted(rec["tags"]) == sorted(f.tags)
    warnings = [w for a in plan.assets for w in a.warnings]
    assert any("alt_text" in w for w in warnings), "Contentstack has no alt text: must warn"
    assert any("depth" in w for w in warnings)
    assert emu.credential_leaks == []


async def test_second_run_uploads_nothing_and_changes_are_sent(
    tmp_path: Path, emu: ContentstackEmulator
) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    first = await execute_job(job, "migrate", transports=transports(emu))
    assert first.exit_code() == 0
    uids = set(emu.assets)

    again = await execute_job(job, "sync", transports=transports(emu))
    assert again.exit_code() == 0
    assert again.counts()["created"] == 0
    assert again.counts()["skipped"] == len(files)
    assert set(emu.assets) == uids

    # change one file's bytes and one file's metadata: one replace, one update
    changed = root / files[0].name if not files[0].folder else root.joinpath(*files[0].folder,
                                                                             files[0].name)
    changed.write_bytes(changed.read_bytes() + b"\x00more")
    import json

    manifest_path = root / ".assetferry.json"
    manifest = json.loads(manifest_path.read_text())
    key = "/".join((*files[5].folder, files[5].name))
    manifest["assets"][key]["title"] = "A new title"
    manifest_path.write_text(json.dumps(manifest))

    third = await execute_job(job, "sync", transports=transports(emu))
    assert third.exit_code() == 0, third.text()
    assert third.counts()["replaced"] == 1
    assert third.counts()["updated"] == 1
    assert set(emu.assets) == uids, "replace keeps the asset, never duplicates"
    titles = {rec["title"] for rec in emu.assets.values()}
    assert "A new title" in titles


async def test_contentstack_to_local_round_trip(tmp_path: Path, emu: ContentstackEmulator) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    assert (await execute_job(job, "migrate", transports=transports(emu))).exit_code() == 0

    dest = tmp_path / "back"
    back = cs_to_local_job(tmp_path, BASE, dest=dest)
    result = await execute_job(back, "migrate", transports=transports(emu, "source"))
    assert result.exit_code() == 0, result.text()
    assert local_inventory(dest) == cs_inventory(emu)
    # title, description and tags came back through the manifest
    import json

    manifest = json.loads((dest / ".assetferry.json").read_text())["assets"]
    for f in files:
        key = "/".join((*expected_cs_path(f.folder), cs_name(f.name)))
        assert manifest[key]["title"] == f.title
        assert sorted(manifest[key].get("tags", [])) == sorted(f.tags)


@pytest.mark.real_waits
async def test_faults_and_rate_limit_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    faults = Faults(error_rate=0.10, error_after_commit_rate=0.05, seed=42)
    emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=15.0,
                               faults=faults)
    try:
        root, files = library(tmp_path)
        job = local_to_cs_job(tmp_path, BASE, source=root, concurrency=8,
                              extra_target="requests_per_second = 40\n")
        summary = await execute_job(job, "migrate", transports=transports(emu))
        injected = emu.fault_middleware.injected
        assert injected["error"] > 0, injected
        assert injected["after_commit"] > 0, injected
        # every asset is in the target exactly once, whatever the faults did
        if summary.exit_code() != 0:  # items that ran out of tries are retried by a re-run
            summary = await execute_job(job, "migrate", transports=transports(emu))
        assert summary.exit_code() == 0, summary.text()
        names = sorted(rec["filename"] for rec in emu.assets.values())
        assert names == sorted(cs_name(f.name) for f in files)
    finally:
        emu.close()


async def test_wrong_token_exits_2_and_writes_nothing(tmp_path: Path,
                                                       emu: ContentstackEmulator) -> None:
    root, _ = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root, env={"E2E_CS": "wrong-token"})
    summary = await execute_job(job, "migrate", transports=transports(emu))
    assert summary.exit_code() == 2
    assert summary.fatal is not None
    assert "management_token" in summary.fatal
    assert "wrong-token" not in summary.fatal
    assert not emu.assets
    assert not emu.folders
    # the run lock is taken before the listing (which found the token wrong), so the state
    # DB may exist now, but it holds no run and no ledger row
    with StateStore(str(tmp_path / "state.db")) as store:
        assert store.routes() == [], "nothing written, not even a run"


async def test_vanished_file_fails_alone(tmp_path: Path, emu: ContentstackEmulator) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    victim = root.joinpath(*files[3].folder, files[3].name)

    def remove(_: Plan) -> None:
        victim.unlink()

    summary = await execute_job(job, "migrate", transports=transports(emu), on_plan=remove)
    assert summary.exit_code() == 1
    failed = summary.failed()
    assert [o.path for o in failed] == ["/".join((*files[3].folder, files[3].name))]
    assert "no longer exists" in failed[0].reason
    assert len(emu.assets) == len(files) - 1


async def test_hostile_filename_from_the_api_stays_inside_the_local_root(
    tmp_path: Path, emu: ContentstackEmulator
) -> None:
    emu.add_asset("../../escape.txt", b"hostile", title="hostile")
    emu.add_asset("fine.txt", b"fine", title="fine")
    dest = tmp_path / "out"
    job = cs_to_local_job(tmp_path, BASE, dest=dest)
    summary = await execute_job(job, "migrate", transports=transports(emu, "source"))
    assert not (tmp_path / "escape.txt").exists()
    assert not any(p.name == "escape.txt" for p in tmp_path.rglob("*") if dest not in p.parents)
    written = sorted(p.name for p in dest.iterdir() if not p.name.startswith(".assetferry"))
    assert "fine.txt" in written
    assert len(written) == 2, written  # the hostile one is renamed inside the root, or refused
    assert summary.exit_code() in (0, 1)


class CorruptOneUpload(AsyncBaseTransport):
    """Passes requests to the emulator, but answers the 3rd upload with a non-JSON body
    (the asset *was* created: the client can't know)."""

    def __init__(self, inner: AsyncBaseTransport) -> None:
        self.inner = inner
        self.uploads = 0

    async def handle_async_request(self, request: Request) -> Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == "/v3/assets":
            self.uploads += 1
            if self.uploads == 3:
                await response.aread()
                return Response(201, content=b"<html>proxy error</html>",
                                headers={"content-type": "text/html"})
        return response


async def test_malformed_api_response_fails_one_item_and_the_rerun_adopts_it(
    tmp_path: Path, emu: ContentstackEmulator
) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    corrupt = CorruptOneUpload(in_process_transport(emu.app))
    first = await execute_job(job, "migrate", transports={"target": corrupt})
    assert first.exit_code() == 1
    [failed] = first.failed()
    assert "not JSON" in failed.reason
    assert len(emu.assets) == len(files), "the rest of the run went on"

    second = await execute_job(job, "migrate", transports=transports(emu))
    assert second.exit_code() == 0, second.text()
    assert second.counts()["adopted"] == 1, "found the asset the first run created"
    assert second.counts()["created"] == 0
    assert len(emu.assets) == len(files), "no duplicate"


async def test_sync_prune_is_opt_in_capped_and_deletes_what_left_the_source(
    tmp_path: Path, emu: ContentstackEmulator
) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    assert (await execute_job(job, "migrate", transports=transports(emu))).exit_code() == 0
    gone = files[:3]
    for f in gone:
        root.joinpath(*f.folder, f.name).unlink()

    kept = await execute_job(job, "sync", transports=transports(emu))
    assert kept.counts()["deleted"] == 0, "prune is off unless asked for"
    assert len(emu.assets) == len(files)

    capped = job.model_copy(update={"run": job.run.model_copy(update={"max_deletes": 2})})
    refused = await execute_job(capped, "sync", transports=transports(emu), prune=True)
    assert refused.counts()["deleted"] == 0, "3 deletions exceed max_deletes = 2"
    assert len(emu.assets) == len(files)

    pruned = await execute_job(job, "sync", transports=transports(emu), prune=True)
    assert pruned.exit_code() == 0, pruned.text()
    assert pruned.counts()["deleted"] == 3
    assert len(emu.assets) == len(files) - 3
    remaining = {rec["filename"] for rec in emu.assets.values()}
    assert not remaining & {cs_name(f.name) for f in gone}


async def test_prune_is_skipped_when_anything_failed(tmp_path: Path,
                                                    emu: ContentstackEmulator) -> None:
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    assert (await execute_job(job, "migrate", transports=transports(emu))).exit_code() == 0
    root.joinpath(*files[0].folder, files[0].name).unlink()       # gone: would be pruned
    changed = root.joinpath(*files[1].folder, files[1].name)
    changed.write_bytes(changed.read_bytes() + b"changed")          # will be replaced...

    def vanish(_: Plan) -> None:
        changed.unlink()                                            # ...but fails: vanished

    summary = await execute_job(job, "sync", transports=transports(emu), prune=True,
                                on_plan=vanish)
    assert summary.exit_code() == 1
    assert summary.counts()["deleted"] == 0
    assert len(emu.assets) == len(files)


async def test_a_second_process_on_the_same_job_is_refused(tmp_path: Path,
                                                           emu: ContentstackEmulator) -> None:
    from state.store import StateStore

    root, _ = library(tmp_path)
    job = local_to_cs_job(tmp_path, BASE, source=root)
    first = await execute_job(job, "migrate", transports=transports(emu))
    store = StateStore(job.run.state)
    try:
        store.start_run(first.route, "migrate")  # this (live) process holds the job
        summary = await execute_job(job, "migrate", transports=transports(emu))
    finally:
        store.close()
    assert summary.exit_code() == 2
    assert summary.fatal is not None
    assert "another process" in summary.fatal


async def test_truncated_downloads_and_resets_are_retried_bytes_identical(
    tmp_path: Path,
) -> None:
    emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    try:
        root, _ = library(tmp_path)
        job = local_to_cs_job(tmp_path, BASE, source=root)
        assert (await execute_job(job, "migrate", transports=transports(emu))).exit_code() == 0
        emu.faults = Faults(truncate_rate=0.2, reset_rate=0.05, seed=7)
        dest = tmp_path / "back"
        back = cs_to_local_job(tmp_path, BASE, dest=dest)
        summary = await execute_job(back, "migrate", transports=transports(emu, "source"))
        injected = emu.fault_middleware.injected
        assert injected["truncate"] > 0, injected
        assert injected["reset"] > 0, injected
        if summary.exit_code() != 0:  # an item out of tries is picked up by the re-run
            summary = await execute_job(back, "migrate", transports=transports(emu, "source"))
        assert summary.exit_code() == 0, summary.text()
        emu.faults = Faults()
        assert local_inventory(dest) == cs_inventory(emu), "no truncated file was kept"
    finally:
        emu.close()


async def test_every_create_answer_lost_still_yields_each_folder_and_asset_once(
    tmp_path: Path,
) -> None:
    """Each POST does its work and then answers 502: only reconciling can finish the run."""
    emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None,
                               faults=Faults(error_after_commit_rate=1.0))
    try:
        files = [f for f in list(sample_library()) if len(f.folder) <= 2][:10]
        root, _ = library(tmp_path, files)
        job = local_to_cs_job(tmp_path, BASE, source=root)
        summary = await execute_job(job, "migrate", transports=transports(emu))
        assert summary.exit_code() == 0, summary.text()
        paths = sorted(cs_paths(emu).values())
        assert len(paths) == len(set(paths)), "no folder created twice"
        assert sorted(paths) == sorted({f.folder[:i] for f in files
                                        for i in range(1, len(f.folder) + 1)})
        names = sorted(rec["filename"] for rec in emu.assets.values())
        assert names == sorted(cs_name(f.name) for f in files), "no asset created twice"
    finally:
        emu.close()
