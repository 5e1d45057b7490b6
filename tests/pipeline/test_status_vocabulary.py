"""``status``, the run summary and the reports use one vocabulary (a README-only tester's
findings): the intents written ahead are "begun or about to begin", never all "in flight";
an interrupted upload found in the target on resume is adopted, never "updated"; assets held
back (unsupported, a conflict) are "not migrated", "skipped" only what was left alone on
purpose."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.cli import status_data, status_text
from pipeline.config import load_job
from pipeline.run import execute_job
from state.reader import SqliteLedger
from state.store import ItemRecord, ItemStatus, RunStatus, StateStore
from tests.pipeline.helpers import local_to_local

ROUTE = "local:/a->local:/b"


def asset(i: int, status: ItemStatus, **kw: object) -> ItemRecord:
    return ItemRecord(route=ROUTE, kind="asset", source_id=str(i), status=status,
                      path=f"dir/file {i}.png", **kw)  # type: ignore[arg-type]


def _both(db: Path) -> list[dict[str, object]]:
    """``status_data`` through both readers of the ledger (the store, and ``status``'s own)."""
    out = []
    with StateStore(str(db)) as store:
        out.append(status_data(store, ROUTE))
    with SqliteLedger(db) as view:
        out.append(status_data(view, ROUTE))
    return out


def test_unsupported_assets_are_not_migrated_not_skipped(tmp_path: Path) -> None:
    """The tester's run: 3 planned, 1 created, 2 unsupported. The runs list said "2 not
    migrated", the last-run and ledger lines "2 skipped"."""
    db = tmp_path / "s.db"
    with StateStore(str(db)) as store:
        run = store.start_run(ROUTE, "migrate", planned=3)
        store.write([asset(1, ItemStatus.DONE, target_id="t1"),
                     asset(2, ItemStatus.SKIPPED, last_error="the target cannot hold .psd"),
                     asset(3, ItemStatus.SKIPPED, last_error="the target cannot hold .psd"),
                     asset(4, ItemStatus.SKIPPED, last_error="gone from the source; its target "
                           "asset t4 now belongs to x (source 9), which took it over (same "
                           "path): ledger row retired, nothing deleted")], run_id=run)
        store.finish_run(run, RunStatus.PARTIAL, {"planned": 3, "counts": {
            "created": 1, "skipped": 1, "not_migrated": 2}})
    for data in _both(db):
        counts = data["counts"]
        assert isinstance(counts, dict)
        assert (counts["not_migrated"], counts["skipped"]) == (2, 1), counts
        last = data["last_run"]
        assert isinstance(last, dict)
        assert (last["done"], last["not_migrated"], last["skipped"]) == (1, 2, 1), last
        text = status_text({"route": ROUTE, "state": "s.db", **data})
        assert "1 skipped, 2 not migrated" in text.splitlines()[2], text  # the ledger line
        assert "3 planned, 1 done, 0 failed, 0 begun or about to begin, 1 skipped, " \
               "2 not migrated, 0 deleted, 0 pending" in text, text
        assert "1 created, 0 updated, 0 replaced, 0 adopted, 1 skipped, 0 deleted, " \
               "2 not migrated" in text, text


def test_intents_written_ahead_are_not_called_in_flight(tmp_path: Path) -> None:
    """A kill leaves the intents of the next uploads (written ahead, up to 8 per slot) in
    the ledger: none is said to be "in flight", in the text or the JSON."""
    db = tmp_path / "s.db"
    with StateStore(str(db)) as store:
        run = store.start_run(ROUTE, "migrate", planned=60)
        store.write([asset(i, ItemStatus.IN_FLIGHT, intent="create") for i in range(57)]
                    + [asset(99, ItemStatus.DONE, target_id="t")], run_id=run)
    for data in _both(db):
        counts, last = data["counts"], data["last_run"]
        assert isinstance(counts, dict)
        assert isinstance(last, dict)
        assert "in_flight" not in counts
        assert "in_flight" not in last
        assert counts["begun_or_about_to_begin"] == 57
        assert (last["begun_or_about_to_begin"], last["pending"]) == (57, 2)
        text = status_text({"route": ROUTE, "state": "s.db", **data})
        assert "in flight" not in text, text
        assert ("57 begun or about to begin (intents written ahead of the uploads; an "
                "interrupted one is checked in the target before it is sent again)") in text


@pytest.mark.slow
async def test_an_interrupted_upload_found_on_resume_is_adopted_not_updated(
        tmp_path: Path) -> None:
    """A kill after the file landed, before its ledger row said so: the next run finds it in
    the target and sets its metadata again. That is no edit: "1 adopted", never "1 updated",
    in the summary and the figures ``status`` lists."""
    src, dest = tmp_path / "lib", tmp_path / "mirror"
    src.mkdir()
    (src / "a.txt").write_text("one\n")
    (src / "b.txt").write_text("two\n")
    job = load_job(local_to_local(tmp_path / "job.toml", src, dest, tmp_path / "state.db"),
                   env={})
    first = await execute_job(job, "migrate")
    assert first.exit_code() == 0, first.text()
    with StateStore(job.run.state) as store:
        rec = store.item(first.route, "asset", "a.txt")
        assert rec is not None
        store.write([replace(rec, status=ItemStatus.IN_FLIGHT, intent="create",
                             target_id=None, target_url=None, target_marker=None)])
    again = await execute_job(job, "migrate")
    assert again.exit_code() == 0, again.text()
    [outcome] = [o for o in again.assets() if o.path == "a.txt"]
    assert "an interrupted run had created it" in outcome.reason, outcome.reason
    counts = again.counts()
    assert (counts["adopted"], counts["updated"], counts["created"]) == (1, 0, 0), again.text()
    assert "0 updated, 1 adopted" in again.text(), again.text()
    with StateStore(job.run.state) as store:
        data = status_data(store, first.route)
    assert data["runs"][0]["counts"]["adopted"] == 1
    assert data["runs"][0]["counts"]["updated"] == 0
