"""The mirror's decisions without I/O: the watermark, full listings every N runs, drift, and
an incremental listing that never prunes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.base import Asset, AssetMeta, Capabilities, Limits
from mappings.folders import FolderOverflow
from pipeline.plan import Op, PlanInput, make_plan, source_hash, target_drift, write_marker
from pipeline.run import LISTING_OVERLAP, incremental_since
from state.store import ItemRecord, ItemStatus, RunRecord, RunStatus

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
ALL = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                   find_asset=True, move=True)


def run(n: int, status: RunStatus, kind: str | None) -> RunRecord:
    started = NOW - timedelta(days=n)
    summary = {} if kind is None else {"listing": {"kind": kind,
                                                   "started_at": started.isoformat()}}
    return RunRecord(id=100 - n, route="r", mode="sync", status=status, started_at=started,
                     finished_at=started, heartbeat_at=started, summary=summary)


def test_the_watermark_is_the_last_completed_run_less_the_overlap() -> None:
    runs = [run(1, RunStatus.DONE, "incremental"), run(2, RunStatus.DONE, "full")]
    assert incremental_since(runs, 7) == NOW - timedelta(days=1) - LISTING_OVERLAP


def test_a_partial_failed_or_interrupted_run_does_not_advance_the_watermark() -> None:
    """What such a run left undone (failed items, an interrupted upload) is listed again."""
    runs = [run(1, RunStatus.PARTIAL, "incremental"), run(2, RunStatus.INTERRUPTED, "full"),
            run(3, RunStatus.FAILED, "incremental"), run(4, RunStatus.DONE, "full")]
    assert incremental_since(runs, 7) == NOW - timedelta(days=4) - LISTING_OVERLAP


def test_a_full_listing_at_least_every_n_runs() -> None:
    incremental = [run(n, RunStatus.DONE, "incremental") for n in range(1, 7)]
    assert incremental_since([*incremental[:5], run(6, RunStatus.DONE, "full")], 7) is not None
    assert incremental_since([*incremental, run(7, RunStatus.DONE, "full")], 7) is None
    assert incremental_since([run(1, RunStatus.DONE, "full")], 1) is None, "1 = always full"


def test_no_watermark_without_a_completed_listing_run() -> None:
    assert incremental_since([], 7) is None
    assert incremental_since([run(1, RunStatus.DONE, None)], 7) is None, "runs before mirror"
    assert incremental_since([run(1, RunStatus.PARTIAL, "full")], 7) is None


def listed(sid: str, *, size: int = 10, version: str | None = None,
           updated: datetime | None = None, folder: tuple[str, ...] = ()) -> Asset:
    return Asset(source_id=sid, filename=f"{sid}.png", folder_path=folder, folder_id=None,
                 content_type="image/png", size=size, meta=AssetMeta(title=sid),
                 url=f"https://cdn/{sid}", version=version, updated_at=updated)


def test_drift_by_version_then_size_then_update_time() -> None:
    ours = write_marker(10, "3", NOW)
    assert target_drift(ours, listed("t", version="3", updated=NOW + timedelta(days=1))) is None
    assert "version is 4" in (target_drift(ours, listed("t", version="4")) or "")
    unversioned = write_marker(10, None, NOW)
    assert "12 bytes" in (target_drift(unversioned, listed("t", size=12)) or "")
    assert target_drift(unversioned, listed("t", updated=NOW + timedelta(seconds=30))) is None
    assert target_drift(unversioned, listed("t", updated=NOW + timedelta(hours=1))) is not None
    assert target_drift(None, listed("t", size=99)) is None, "a row from before markers"


def plan_of(source: list[Asset], target: list[Asset], records: list[ItemRecord], *,
            since: datetime | None, on_conflict: str = "skip", prune: bool = True,
            caps: Capabilities = ALL) -> list[tuple[str, Op]]:
    inp = PlanInput(source_folders=[], source_assets=source, target_folders=[],
                    target_assets=target,
                    records={("asset", r.source_id): r for r in records}, limits=Limits(),
                    capabilities=caps, policy=FolderOverflow.COLLAPSE, prune=prune,
                    direct_reads=dict.fromkeys((r.source_id for r in records), False),
                    on_conflict=on_conflict, changed_since=since)
    return [(a.source_id, a.op) for a in make_plan("r", inp).assets]


def done(a: Asset, target_id: str, marker: str | None = None) -> ItemRecord:
    return ItemRecord(route="r", kind="asset", source_id=a.source_id, status=ItemStatus.DONE,
                      target_id=target_id, source_hash=source_hash(a), target_marker=marker,
                      path="/".join((*a.folder_path, a.filename)))


def test_an_incremental_listing_never_prunes() -> None:
    """Assets the incremental listing left out are unchanged, not gone, even with prune on
    and every direct read saying gone."""
    kept, changed = listed("1"), listed("2")
    records = [done(kept, "t1"), done(changed, "t2")]
    target = [listed("t1"), listed("t2")]
    edited = replace(changed, meta=AssetMeta(title="new"))
    assert plan_of([edited], target, records, since=NOW) == [("2", Op.UPDATE)]
    full = plan_of([edited], target, records, since=None)
    assert ("1", Op.DELETE) in full, "the same on a full listing deletes"


def test_drift_policies() -> None:
    """skip and fail leave the target's edit (a conflict); source-wins writes over it: the
    file where the bytes differ, else the metadata."""
    a = listed("1")
    record = done(a, "t1", write_marker(10, "1", NOW))
    meta_edit = [listed("t1", version="2")]
    bytes_edit = [listed("t1", version="2", size=11)]
    assert plan_of([a], meta_edit, [record], since=None) == [("1", Op.CONFLICT)]
    assert plan_of([a], meta_edit, [record], since=None, on_conflict="fail") == [
        ("1", Op.CONFLICT)]
    assert plan_of([a], meta_edit, [record], since=None, on_conflict="source-wins") == [
        ("1", Op.UPDATE)]
    assert plan_of([a], bytes_edit, [record], since=None, on_conflict="source-wins") == [
        ("1", Op.REPLACE)]
    assert plan_of([a], [listed("t1", version="1")], [record], since=None) == [("1", Op.SKIP)]


def test_a_move_is_an_update_that_sends_no_metadata() -> None:
    before = listed("1", folder=("A",))
    after = replace(before, folder_path=("B",))
    record = done(before, "t1", write_marker(10, "1", NOW))
    target = [listed("t1", version="1", folder=("A",))]
    inp = PlanInput(source_folders=[], source_assets=[after], target_folders=[],
                    target_assets=target, records={("asset", "1"): record}, limits=Limits(),
                    capabilities=ALL, policy=FolderOverflow.COLLAPSE)
    [action] = make_plan("r", inp).assets
    assert (action.op, action.move_from, action.target_folder) == (Op.UPDATE, ("A",), ("B",))
    assert not action.meta_changed


def test_drift_of_a_version_told_by_its_marker_text_or_parsed() -> None:
    """A marker ending with the listed version is read without parsing it; every other
    marker (other key order, a version the listing extends, odd characters) is parsed, and
    each gives the same verdict as the full rules."""
    odd = 'a"b\\c é'
    assert target_drift(write_marker(10, odd, NOW), listed("t", version=odd)) is None
    assert target_drift(write_marker(10, odd, NOW), listed("t", version='a"b')) is not None
    assert target_drift(write_marker(10, "1:2", NOW), listed("t", version="1:2:3:4")) is None
    assert target_drift(write_marker(10, "1:2", NOW), listed("t", version="1:3")) is not None
    unsorted = json.dumps({"version": "3", "size": 10})
    assert target_drift(unsorted, listed("t", version="3")) is None
    assert target_drift(unsorted, listed("t", version="4")) is not None
    # a key that merely ends like the version's is not the version
    other = json.dumps({"size": 10, "x\"version": "4"})
    assert target_drift(other, listed("t", version="4", size=12)) is not None
    assert target_drift(write_marker(10, "4", NOW), listed("t", version="4", size=12)) is None
