"""Prune in the plan: one action per target asset, takeover by a re-uploaded asset, the bound,
and deletion only on a direct read's word."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.base import Asset, AssetMeta, Capabilities, Limits
from mappings.folders import FolderOverflow
from pipeline.plan import (
    AssetAction,
    FolderAction,
    Op,
    Plan,
    PlanInput,
    PlanInvariantError,
    check_plan,
    make_plan,
    source_hash,
)
from state.store import ItemRecord, ItemStatus

ALL = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                   find_asset=True)


def asset(sid: str, name: str, folder: tuple[str, ...] = (), size: int = 10) -> Asset:
    return Asset(source_id=sid, filename=name, folder_path=folder, folder_id=None,
                 content_type="image/png", size=size, meta=AssetMeta(), url=f"https://cdn/{sid}")


def done(a: Asset, target_id: str) -> ItemRecord:
    return ItemRecord(route="r", kind="asset", source_id=a.source_id, status=ItemStatus.DONE,
                      target_id=target_id, source_hash=source_hash(a),
                      path="/".join((*a.folder_path, a.filename)))


def plan(source: list[Asset], target: list[Asset], records: list[ItemRecord], *,
         prune: bool = True, max_deletes: int = 100,
         reads: dict[str, bool | str] | None = None) -> Plan:
    inp = PlanInput(source_folders=[], source_assets=source, target_folders=[],
                    target_assets=target, records={("asset", r.source_id): r for r in records},
                    limits=Limits(), capabilities=ALL, policy=FolderOverflow.COLLAPSE,
                    prune=prune, max_deletes=max_deletes, direct_reads=reads)
    return make_plan("r", inp)


def test_reuploaded_asset_takes_over_the_target_asset_and_the_old_row_is_retired() -> None:
    """Deleted in the source, the same bytes uploaded again under the same name: new id."""
    old = replace(asset("1", "logo.png", ("Brand",)), checksums={"md5": "aa"})
    new = replace(asset("2", "logo.png", ("Brand",)), checksums={"md5": "aa"})
    t = replace(asset("blt1", "logo.png", ("Brand",)), checksums={"md5": "aa"})
    p = plan([new], [t], [done(old, "blt1")], reads={"1": False})
    by_id = {a.source_id: a for a in p.assets}
    assert (by_id["2"].op, by_id["2"].target_id) == (Op.SKIP, "blt1")
    assert by_id["1"].op is Op.SKIP
    assert by_id["1"].retire
    assert by_id["1"].target_id is None
    assert "retired" in by_id["1"].reason
    assert [a for a in p.assets if a.target_id == "blt1"] == [by_id["2"]]
    assert p.to_confirm == ()
    assert p.held_deletes == 0


def test_a_reupload_with_other_bytes_replaces_the_gone_assets_target_asset() -> None:
    """Same path and size, different checksum: the target asset is ours (the gone row's), so
    the new file replaces it; the old row is retired, nothing deleted (issue 6 §1(a))."""
    old = replace(asset("1", "logo.png", ("Brand",)), checksums={"md5": "aa"})
    new = replace(asset("2", "logo.png", ("Brand",)), checksums={"md5": "bb"})
    t = replace(asset("blt1", "logo.png", ("Brand",)), checksums={"md5": "aa"})
    p = plan([new], [t], [done(old, "blt1")], reads={"1": False})
    by_id = {a.source_id: a for a in p.assets}
    assert (by_id["2"].op, by_id["2"].target_id) == (Op.REPLACE, "blt1")
    assert by_id["2"].adopt_from is None
    assert by_id["1"].retire
    assert not [a for a in p.assets if a.op is Op.DELETE]


def test_a_reupload_the_plan_cannot_compare_replaces_unless_the_bytes_are_equal() -> None:
    old = asset("1", "logo.png", ("Brand",))
    new = asset("2", "logo.png", ("Brand",))
    t = asset("blt1", "logo.png", ("Brand",))
    p = plan([new], [t], [done(old, "blt1")], reads={"1": False})
    by_id = {a.source_id: a for a in p.assets}
    assert (by_id["2"].op, by_id["2"].target_id) == (Op.REPLACE, "blt1")
    assert by_id["2"].adopt_from is t
    assert "adopted if the bytes compare equal, else replaced" in by_id["2"].reason


def test_an_asset_owned_by_a_listed_source_asset_is_not_adopted_twice() -> None:
    """A renamed y.png (same id) keeps its target x.png; a new x.png may not adopt it too."""
    renamed = asset("1", "y.png")
    newcomer = asset("2", "x.png")
    t = asset("t1", "x.png")
    p = plan([renamed, newcomer], [t], [done(asset("1", "x.png"), "t1")])
    by_id = {a.source_id: a for a in p.assets}
    assert by_id["1"].target_id == "t1"
    assert by_id["2"].target_id is None
    assert by_id["2"].op is Op.CONFLICT
    assert "migrated copy of another source asset (1)" in by_id["2"].reason


def test_a_deletion_needs_a_direct_read_that_says_gone() -> None:
    gone = asset("1", "a.png")
    t = asset("t1", "a.png")
    unread = plan([], [t], [done(gone, "t1")])
    [action] = unread.assets
    assert action.op is Op.SKIP
    assert unread.to_confirm == ("1",)
    assert unread.held_deletes == 1
    [deleted] = plan([], [t], [done(gone, "t1")], reads={"1": False}).assets
    assert deleted.op is Op.DELETE
    kept_plan = plan([], [t], [done(gone, "t1")], reads={"1": True})
    [kept] = kept_plan.assets
    assert kept.op is Op.SKIP
    assert "direct read found it" in kept.reason
    assert kept.warnings
    assert kept_plan.held_deletes == 0
    failed_read = plan([], [t], [done(gone, "t1")], reads={"1": "Storyblok answered 500"})
    assert failed_read.assets[0].op is Op.SKIP
    assert failed_read.held_deletes == 1
    assert "500" in failed_read.assets[0].reason
    assert failed_read.prune_note is not None
    assert "1 deletion held back" in failed_read.prune_note


def test_over_the_bound_nothing_is_deleted_and_the_plan_says_so_with_numbers() -> None:
    gone = [asset("1", "a.png"), asset("2", "b.png")]
    target = [asset("t1", "a.png"), asset("t2", "b.png")]
    p = plan([], target, [done(gone[0], "t1"), done(gone[1], "t2")], max_deletes=1)
    assert [a.op for a in p.assets] == [Op.SKIP, Op.SKIP]
    assert p.held_deletes == 2
    assert p.prune_note is not None
    assert p.prune_note.startswith("2 deletions held back: run.max_deletes = 1")
    assert p.to_confirm == (), "no direct reads when nothing will be deleted anyway"


def test_prune_off_holds_nothing_back() -> None:
    p = plan([], [asset("t1", "a.png")], [done(asset("1", "a.png"), "t1")], prune=False)
    assert p.assets[0].op is Op.SKIP
    assert (p.held_deletes, p.prune_note, p.to_confirm) == (0, None, ())


def test_two_actions_on_one_target_asset_stop_the_run_as_a_bug() -> None:
    a = AssetAction(Op.SKIP, "2", "logo.png", "adopted", target_id="blt1")
    b = AssetAction(Op.DELETE, "1", "logo.png", "gone", target_id="blt1")
    with pytest.raises(PlanInvariantError, match=r"target asset blt1: skip logo\.png "
                                                 r"\(source 2\), delete logo\.png"):
        check_plan(Plan("r", (), (a, b), None))
    check_plan(Plan("r", (), (a, replace(b, target_id="blt2")), None))


def test_two_creates_of_one_target_name_or_folder_stop_the_run_as_a_bug() -> None:
    a = AssetAction(Op.CREATE, "1", "x/a.png", "new", target_folder=("x",), filename="a.png")
    b = replace(a, source_id="2")
    with pytest.raises(PlanInvariantError, match=r"target name 'x/a\.png'"):
        check_plan(Plan("r", (), (a, b), None))
    f = FolderAction(Op.CREATE, ("x",), ("9",), "new")
    with pytest.raises(PlanInvariantError, match="target folder 'x'"):
        check_plan(Plan("r", (f, replace(f, source_ids=("8",))), (), None))
