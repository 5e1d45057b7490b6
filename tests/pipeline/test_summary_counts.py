"""The run and plan summaries say what their asset counts count: entries of this run's source
listing (assets and excluded entries) apart from ledger rows whose source asset is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_job
from pipeline.report import plan_json, plan_table
from pipeline.run import execute_job, plan_job
from tests.pipeline.helpers import local_to_local


def _job(tmp_path: Path, src: Path, dest: Path) -> Path:
    return local_to_local(tmp_path / "job.toml", src, dest, tmp_path / "state.db")


@pytest.mark.slow
async def test_sync_counts_source_entries_apart_from_assets_gone_from_the_source(
    tmp_path: Path,
) -> None:
    src, dest = tmp_path / "lib", tmp_path / "mirror"
    src.mkdir()
    for n in range(5):
        (src / f"file{n}.txt").write_bytes(b"x" * (n + 1))
    job = load_job(_job(tmp_path, src, dest), env={})
    assert (await execute_job(job, "migrate")).exit_code() == 0

    # 2 files leave the source, 2 entries the source excludes appear: 5 entries listed
    (src / "file0.txt").unlink()
    (src / "file1.txt").unlink()
    (src / ".DS_Store").write_bytes(b"finder")
    (src / "Thumbs.db").write_bytes(b"thumbs")

    plan = await plan_job(job)
    summary = json.loads(plan_json(plan))["summary"]
    assert summary["source_entries"] == 5
    assert summary["source_assets"] == 3
    assert summary["excluded"] == 2
    assert summary["gone_from_source"] == 2
    assert ("5 source entries (3 assets, 2 excluded); 2 gone from the source: "
            "kept (prune is off)") in plan_table(plan)

    run = await execute_job(job, "sync")
    assert run.exit_code() == 0, run.text()
    counts = run.counts()
    assert counts["source_entries"] == 5
    assert counts["gone_from_source"] == 2
    assert counts["skipped"] == 3, "the unchanged assets only, not the gone ledger rows"
    assert counts["excluded"] == 2
    assert counts["assets_total"] == 7, "stable: every asset line of the run"
    first = run.text().splitlines()[0]
    assert ("5 source entries (3 assets, 2 excluded); 2 gone from the source: "
            "kept (prune is off)") in first
    assert "3 skipped" in first


async def test_a_cancelled_ledger_writer_still_writes_what_was_posted(tmp_path: Path) -> None:
    """A result posted (not awaited) just before Ctrl-C is written before the writer stops:
    it was reported done, so the ledger says done too (under load the summary said "10
    created" and the ledger held 9)."""
    import anyio

    from pipeline.checkpoint import Checkpointer
    from state.store import ItemRecord, ItemStatus, StateStore

    store = StateStore(str(tmp_path / "s.db"))
    run_id = store.start_run("r", "migrate")
    ckpt = Checkpointer(store, run_id, {})
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            await tg.start(ckpt.run)
            await anyio.sleep(0.05)  # the writer waits in receive()
            # handed straight to the waiting receive(), which the cancellation then ends:
            # the stream no longer holds it (it was lost that way)
            await ckpt.post(ItemRecord(route="r", kind="asset", source_id="0",
                                       status=ItemStatus.DONE, path="0.txt"))
            scope.cancel()  # before the writer ran again
    assert list(store.items("r")) == [("asset", "0")]
    store.close()


@pytest.mark.slow
async def test_an_interrupted_run_counts_the_listing_and_what_the_ledger_holds(
        tmp_path: Path) -> None:
    """Ctrl-C mid-run: the summary's source entries are the listing's (not the assets the run
    reached), and its "created" is what the ledger holds as done."""
    import anyio

    from pipeline.report import RunSummary
    from state.store import ItemStatus, StateStore

    src, dest = tmp_path / "lib", tmp_path / "mirror"
    src.mkdir()
    for n in range(40):
        (src / f"file{n:02d}.txt").write_bytes(b"x" * (n + 1))
    (src / ".DS_Store").write_bytes(b"finder")
    job = load_job(_job(tmp_path, src, dest), env={})
    summary = RunSummary(route="", mode="migrate", run_id=None)
    reached = 0
    async with anyio.create_task_group() as tg:
        def progress(_: object) -> None:
            nonlocal reached
            reached += 1
            if reached == 10:  # as the signal watch does on Ctrl-C
                summary.interrupted = True
                tg.cancel_scope.cancel()

        await execute_job(job, "migrate", progress=progress, summary=summary)
    counts = summary.counts()
    assert summary.exit_code() == 130
    assert counts["source_entries"] == 41, "the listing, not the assets reached"
    assert "41 source entries (40 assets, 1 excluded)" in summary.text()
    store = StateStore(job.run.state)
    done = sum(1 for r in store.items(summary.route).values() if r.status is ItemStatus.DONE)
    store.close()
    assert 0 < counts["created"] < 40
    assert counts["created"] == done, summary.text()


async def test_an_interrupted_sync_counts_every_unchanged_asset(tmp_path: Path) -> None:
    """The last testers' finding: Ctrl-C in the middle of a sync said "8 skipped" where 18
    assets were unchanged. An unchanged asset is decided by the plan (no request, no ledger
    write): it counts as skipped whether or not the run got past it."""
    import anyio

    from pipeline.report import RunSummary

    src, dest = tmp_path / "lib", tmp_path / "mirror"
    src.mkdir()
    for n in range(20):
        (src / f"file{n:02d}.txt").write_bytes(b"x" * (n + 1))
    path = _job(tmp_path, src, dest)
    path.write_text(path.read_text() + "concurrency = 1\n")
    job = load_job(path, env={})
    assert (await execute_job(job, "sync")).exit_code() == 0
    for n in (0, 1):  # the first in the plan's order: the run stops at the first
        (src / f"file{n:02d}.txt").write_bytes(b"changed")
    summary = RunSummary(route="", mode="sync", run_id=None)
    async with anyio.create_task_group() as tg:
        def progress(_: object) -> None:  # the first item done: Ctrl-C
            summary.interrupted = True
            tg.cancel_scope.cancel()

        await execute_job(job, "sync", progress=progress, summary=summary)
    assert summary.exit_code() == 130
    assert summary.counts()["skipped"] == 18, summary.text()
