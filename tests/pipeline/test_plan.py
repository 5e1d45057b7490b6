"""The diff itself, on hand-built listings: every decision and its reason."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from connectors.base import Asset, AssetMeta, Capabilities, Folder, Limits, LocalizedText
from connectors.contentstack.connector import LIMITS as CONTENTSTACK
from mappings.folders import FolderOverflow
from pipeline import plan as plan_module
from pipeline import report as report_module
from pipeline.cli import render_plan, render_plan_parts, write_output
from pipeline.plan import FolderAction, Op, Plan, PlanInput, make_plan, source_hash
from pipeline.report import (
    plan_items,
    plan_json,
    plan_markdown,
    plan_summary,
    plan_table,
)
from state.store import ItemRecord, ItemStatus

LIMITS = Limits(max_folder_depth=2, max_folders=10, max_file_size=1000,
                metadata_fields=frozenset({"title"}))
ALL = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                   find_asset=True)


def asset(sid: str, name: str, folder: tuple[str, ...] = (), size: int = 10,
          title: str | None = None) -> Asset:
    return Asset(source_id=sid, filename=name, folder_path=folder, folder_id=None,
                 content_type="image/png", size=size, meta=AssetMeta(title=title),
                 url=f"https://cdn/{sid}")


def plan_of(source: list[Asset], target: list[Asset] | None = None,
            records: dict[tuple[str, str], ItemRecord] | None = None,
            policy: FolderOverflow = FolderOverflow.COLLAPSE,
            caps: Capabilities = ALL,
            folders: list[Folder] | None = None) -> dict[str, tuple[Op, str]]:
    inp = PlanInput(source_folders=folders or [], source_assets=source,
                    target_folders=[], target_assets=target or [], records=records or {},
                    limits=LIMITS, capabilities=caps, policy=policy)
    plan = make_plan("r", inp)
    return {a.source_id: (a.op, a.reason) for a in plan.assets}


def done(a: Asset, target_id: str, hash_: str | None = None) -> ItemRecord:
    return ItemRecord(route="r", kind="asset", source_id=a.source_id, status=ItemStatus.DONE,
                      target_id=target_id, source_hash=hash_ or source_hash(a))


def test_new_asset_is_created() -> None:
    assert plan_of([asset("a", "a.png")])["a"][0] is Op.CREATE


def test_same_name_and_size_in_the_target_is_adopted_only_once_the_bytes_compare_equal() -> None:
    """Neither side lists a checksum: the plan cannot tell the bytes, execution compares them
    (issue 6 §1(a)); the action names the target asset to read."""
    inp = PlanInput(source_folders=[], source_assets=[asset("a", "a.png")], target_folders=[],
                    target_assets=[asset("t1", "a.png")], records={}, limits=LIMITS,
                    capabilities=ALL, policy=FolderOverflow.COLLAPSE)
    [action] = make_plan("r", inp).assets
    assert (action.op, action.reason) == (
        Op.SKIP, "same folder, name and size: adopted once the bytes compare equal")
    assert action.target_id == "t1"
    assert action.adopt_from is not None
    assert action.adopt_from.source_id == "t1"


def _summed(a: Asset, **sums: str) -> Asset:
    return replace(a, checksums=sums)


def test_same_name_size_and_checksum_is_adopted_in_the_plan() -> None:
    ops = plan_of([_summed(asset("a", "a.png"), md5="AB12")],
                  target=[_summed(asset("t1", "a.png"), md5="ab12")])
    assert ops["a"] == (Op.SKIP,
                        "already in the target (same folder, name, size and checksum): adopted")


def test_same_name_and_size_with_a_different_checksum_is_a_conflict_not_adopted() -> None:
    """A first migrate into a target that holds an unrelated file of the same size."""
    ops = plan_of([_summed(asset("a", "a.png"), sha256="11", md5="ab")],
                  target=[_summed(asset("t1", "a.png"), sha256="22", md5="ab")])
    op, reason = ops["a"]
    assert op is Op.CONFLICT
    assert "a different file with the same name and size is in the target" in reason


def test_checksums_of_different_kinds_leave_the_comparison_to_execution() -> None:
    ops = plan_of([_summed(asset("a", "a.png"), md5="ab")],
                  target=[_summed(asset("t1", "a.png"), sha256="cd")])
    assert ops["a"] == (Op.SKIP,
                        "same folder, name and size: adopted once the bytes compare equal")


def test_an_interrupted_replace_is_sent_again_not_adopted_by_its_size() -> None:
    """The intent was recorded, the new file may not have reached the target yet."""
    a = asset("a", "a.png")
    rec = ItemRecord(route="r", kind="asset", source_id="a", status=ItemStatus.IN_FLIGHT,
                     intent="replace", target_id="t1", source_hash="old:old")
    ops = plan_of([a], target=[asset("t1", "a.png")], records={("asset", "a"): rec})
    assert ops["a"][0] is Op.REPLACE


def test_same_name_other_size_is_a_conflict_with_advice() -> None:
    op, reason = plan_of([asset("a", "a.png")], target=[asset("t1", "a.png", size=99)])["a"]
    assert op is Op.CONFLICT
    assert "rename or remove" in reason


def test_too_large_for_the_target_is_unsupported_before_any_write() -> None:
    op, reason = plan_of([asset("a", "big.png", size=5000)])["a"]
    assert op is Op.UNSUPPORTED
    assert "at most" in reason


def test_fail_policy_makes_deep_assets_unsupported() -> None:
    # every level holds an asset, so no level can merge with the next one
    deep = [asset("a", "a.png", folder=("x", "y", "z")), asset("b", "b.png", folder=("x",)),
            asset("c", "c.png", folder=("x", "y"))]
    op, reason = plan_of(deep, policy=FolderOverflow.FAIL)["a"]
    assert op is Op.UNSUPPORTED
    assert "folder_overflow" in reason
    assert plan_of(deep)["a"][0] is Op.CREATE


def test_a_chain_of_folders_holding_nothing_merges_before_the_depth_limit() -> None:
    # x and y hold no asset: x/y/z is one folder, so even the fail policy has nothing to fail
    deep = asset("a", "a.png", folder=("x", "y", "z"))
    op, _ = plan_of([deep], policy=FolderOverflow.FAIL)["a"]
    assert op is Op.CREATE


def test_unchanged_changed_file_and_changed_metadata() -> None:
    a = asset("a", "a.png", title="old")
    target = [asset("t1", "a.png")]
    assert plan_of([a], target, {("asset", "a"): done(a, "t1")})["a"][0] is Op.SKIP
    retitled = asset("a", "a.png", title="new")
    assert plan_of([retitled], target, {("asset", "a"): done(a, "t1")})["a"][0] is Op.UPDATE
    grown = asset("a", "a.png", size=11, title="old")
    assert plan_of([grown], target, {("asset", "a"): done(a, "t1")})["a"][0] is Op.REPLACE
    no_replace = Capabilities(target=True, replace=False, update_metadata=True, delete=True,
                              find_asset=True)
    op, reason = plan_of([grown], target, {("asset", "a"): done(a, "t1")}, caps=no_replace)["a"]
    assert op is Op.UNSUPPORTED
    assert "cannot replace" in reason


def test_an_unchanged_asset_is_decided_before_its_metadata_is_mapped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-run of 100,000 unchanged assets decides each by its hashes, ledger row and drift
    marker alone: its metadata is neither fitted to the locales nor mapped (issue 12)."""
    old = asset("u", "u.png", title="t")

    def no_mapping(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an unchanged asset's metadata was mapped")

    monkeypatch.setattr(plan_module, "map_meta", no_mapping)
    monkeypatch.setattr(plan_module, "fit_locales", no_mapping)
    inp = PlanInput([], [old], [], [asset("tu", "u.png")], {("asset", "u"): done(old, "tu")},
                    LIMITS, ALL, FolderOverflow.COLLAPSE)
    [action] = make_plan("r", inp).assets
    assert (action.op, action.reason, action.target_id, action.target_folder,
            action.filename, action.source_hash) == (
        Op.SKIP, "unchanged since the last run", "tu", (), "u.png", source_hash(old))


@pytest.mark.parametrize(("limits", "size", "why"), [
    (LIMITS, 5000, "the target accepts at most"),
    (Limits(), -1, "which no file can be"),
    (Limits(min_file_size=1), 0, "at least 1 byte"),
    (Limits(accepted_content_types=frozenset({"text/plain"})), 10, "does not accept"),
])
def test_an_asset_as_the_ledger_has_it_that_the_target_refuses_is_unsupported_not_unchanged(
        limits: Limits, size: int, why: str) -> None:
    """The quick decision of an unchanged asset still asks the target's limits first."""
    old = asset("u", "u.png", size=size)
    inp = PlanInput([], [old], [], [asset("tu", "u.png", size=size)],
                    {("asset", "u"): done(old, "tu")}, limits, ALL, FolderOverflow.COLLAPSE)
    [action] = make_plan("r", inp).assets
    assert action.op is Op.UNSUPPORTED
    assert why in action.reason


def test_an_unchanged_asset_s_dropped_fields_are_not_counted_again() -> None:
    """Fields the target has no place for are reported by the plan that sends the asset,
    not again by every plan after it, as its warnings are (a SKIP sends nothing)."""
    a = Asset(source_id="a", filename="a.png", folder_path=(), folder_id=None,
              content_type="image/png", size=1, meta=AssetMeta(title="t", alt_text="alt"))
    first = make_plan("r", PlanInput([], [a], [], [], {}, LIMITS, ALL, FolderOverflow.COLLAPSE))
    assert plan_summary(first)["dropped_fields"] == {"alt_text": 1}
    again = make_plan("r", PlanInput([], [a], [], [replace(a, source_id="t1")],
                                     {("asset", "a"): done(a, "t1")}, LIMITS, ALL,
                                     FolderOverflow.COLLAPSE))
    [action] = again.assets
    assert (action.op, action.reason) == (Op.SKIP, "unchanged since the last run")
    assert plan_summary(again)["dropped_fields"] == {}
    assert "dropped" not in plan_table(again)


def test_a_mixed_plan_gives_each_asset_its_action_and_renders_every_line() -> None:
    """New, unchanged, changed file, changed metadata, gone (prune off) and excluded assets
    in one plan: each action's op, reason and target fields, and the table lists every one
    (the plan of 100,000 assets builds and renders these without per-asset copies)."""
    old = asset("u", "u.png", title="t")
    changed_meta = asset("m", "m.png", title="new")
    changed_file = asset("f", "f.png", size=11)
    skipped = replace(asset("x", "x.fifo"), skipped="a FIFO, not a regular file or folder")
    gone = ItemRecord(route="r", kind="asset", source_id="g", status=ItemStatus.DONE,
                      target_id="tg", path="g.png", source_hash="0:0")
    records = {("asset", "u"): done(old, "tu"),
               ("asset", "m"): done(asset("m", "m.png", title="old"), "tm"),
               ("asset", "f"): done(asset("f", "f.png"), "tf"), ("asset", "g"): gone}
    target = [asset("tu", "u.png"), asset("tm", "m.png"), asset("tf", "f.png"),
              asset("tg", "g.png")]
    inp = PlanInput([], [asset("n", "n.png"), old, changed_meta, changed_file, skipped], [],
                    target, records, LIMITS, ALL, FolderOverflow.COLLAPSE)
    plan = make_plan("r", inp)
    got = {a.source_id: (a.op, a.reason, a.target_id, a.target_size) for a in plan.assets}
    assert got == {
        "n": (Op.CREATE, "not in the target", None, None),
        "u": (Op.SKIP, "unchanged since the last run", "tu", 10),
        "m": (Op.UPDATE, "metadata changed in the source", "tm", 10),
        "f": (Op.REPLACE, "the file changed in the source", "tf", 10),
        "x": (Op.SKIP, "a FIFO, not a regular file or folder", None, None),
        "g": (Op.SKIP, "gone from the source; kept (prune is off)", "tg", None),
    }
    unchanged = next(a for a in plan.assets if a.source_id == "u")
    assert unchanged.target_url == "https://cdn/tu"
    assert unchanged.source_hash == source_hash(old)
    assert (unchanged.target_folder, unchanged.filename, unchanged.record) == (
        (), "u.png", records[("asset", "u")])
    table = plan_table(plan, every=True)
    for a in plan.assets:
        assert f"{a.op.value:<12} asset   {a.path}\n{'':<20} {a.reason}\n" in table
    assert "6 source entries" not in table  # the gone row is no source entry
    assert "5 source entries (4 assets, 1 excluded); 1 gone from the source" in table
    assert [i["source_id"] for i in plan_items(plan)] == [a.source_id for a in plan.assets]


def _re_run() -> tuple[Plan, list[str]]:
    """A re-run: two unchanged assets (in folder ``d``, already in the target), one new, one
    whose file changed; and the lines of its table."""
    u1, u2 = asset("u1", "u1.png", ("d",)), asset("u2", "u2.png", ("d",))
    records = {("asset", "u1"): done(u1, "t1"), ("asset", "u2"): done(u2, "t2"),
               ("asset", "f"): done(asset("f", "f.png", ("d",)), "tf")}
    target = [asset("t1", "u1.png", ("d",)), asset("t2", "u2.png", ("d",)),
              asset("tf", "f.png", ("d",))]
    d = Folder(source_id="d", name="d", parent_id=None, path=("d",))
    inp = PlanInput([d], [u1, u2, asset("n", "n.png", ("d",)),
                          asset("f", "f.png", ("d",), size=11)], [d], target, records,
                    LIMITS, ALL, FolderOverflow.COLLAPSE)
    plan = make_plan("r", inp)
    return plan, plan_table(plan).splitlines()


def test_the_table_counts_the_unchanged_assets_and_present_folders_in_one_line() -> None:
    """A plan is a diff for review (issue 12: 100,000 ``unchanged`` lines took 1.4 s and
    buried the few that matter): the table lists what is done or held back, and counts the
    assets unchanged since the last run and the folders already in the target."""
    plan, lines = _re_run()
    assert {a.source_id: a.op for a in plan.assets} == {
        "u1": Op.SKIP, "u2": Op.SKIP, "n": Op.CREATE, "f": Op.REPLACE}
    assert [line.split()[:3] for line in lines[1:5]] == [
        ["create", "asset", "d/n.png"], ["not", "in", "the"],
        ["replace", "asset", "d/f.png"], ["the", "file", "changed"]]
    assert lines[5] == ("2 assets unchanged since the last run and 1 folder already in the "
                        "target (not listed; --unchanged lists them)")
    assert not any("u1.png" in line or "unchanged since" in line for line in lines[:5])
    assert "1 create, 0 update, 1 replace, 2 skip" in lines[8]


def test_the_summary_line_counts_the_folders_that_cannot_be_created() -> None:
    """The README tester's finding: the table listed an unsupported folder, JSON counted it
    (``folders_unsupported``), the summary line said only "folders: N to create, M present"."""
    plan, _ = _re_run()
    plan = replace(plan, folders=(
        *plan.folders, FolderAction(Op.UNSUPPORTED, ("deep",), ("deep",), "cannot be placed")))
    assert plan_summary(plan)["folders_unsupported"] == 1
    table = plan_table(plan)
    assert "unsupported  folder  deep\n" in table
    assert "folders: 0 to create, 1 present, 1 unsupported; " in table


def test_unchanged_lists_them_as_before_and_json_keeps_every_action() -> None:
    plan, _ = _re_run()
    every = plan_table(plan, every=True)
    assert "skip         asset   d/u1.png\n                     unchanged since the last run\n" \
        in every
    assert "skip         folder  d\n                     already in the target\n" in every
    assert "not listed" not in every
    assert {i["source_id"] for i in json.loads(plan_json(plan))["items"]} == {
        "d", "u1", "u2", "n", "f"}


def test_the_markdown_plan_lists_what_the_table_lists() -> None:
    plan, _ = _re_run()
    markdown = plan_markdown(plan)
    assert ("\n\n2 assets unchanged since the last run and 1 folder already in the target "
            "(not listed; --unchanged lists them)\n\n| op |") in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[2] for row in rows[1:]] == ["d/n.png", "d/f.png"]
    assert "| skip | asset | d/u1.png |" in plan_markdown(plan, every=True)


def test_a_plan_with_nothing_unchanged_has_no_count_line() -> None:
    plan = make_plan("r", PlanInput([], [asset("n", "n.png")], [], [], {}, LIMITS, ALL,
                                    FolderOverflow.COLLAPSE))
    assert "not listed" not in plan_table(plan)
    assert "not listed" not in plan_markdown(plan)


def test_the_json_plan_is_what_the_standard_encoder_writes() -> None:
    """``plan_json`` writes its items one by one: the same bytes as ``json.dumps(...,
    indent=2, ensure_ascii=False)``, for names with quotes, backslashes, control and
    non-ASCII characters, warnings, notes and no items at all."""
    odd = replace(asset("q", 'say "hi"\\ \u00e9\u6f22\n\x07.png', ("f\u00f6",), title="t"),
                  notes=("from \"x\"", "y"))
    big = asset("b", "big.png", size=5000)
    plans = [make_plan("r", PlanInput([], [], [], [], {}, LIMITS, ALL,
                                      FolderOverflow.COLLAPSE)),
             make_plan("r", PlanInput([], [odd, big, asset("n", "n.png")], [], [], {}, LIMITS,
                                      ALL, FolderOverflow.COLLAPSE))]
    assert any(i["warnings"] for i in plan_items(plans[1]))
    for plan in plans:
        assert plan_json(plan) == json.dumps(
            {"summary": plan_summary(plan), "items": plan_items(plan)}, indent=2,
            ensure_ascii=False)


def test_a_json_item_the_fast_writer_cannot_lay_out_is_laid_out_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON plan is written item by item: an item holding a value the C string writer
    does not lay out (a number, an object) is written by the standard encoder at the same
    indent, so the whole is still what ``json.dumps`` writes (it was re-encoded whole)."""
    plan = make_plan("r", PlanInput([], [asset("n", "n.png"), asset("m", "m.png")], [], [],
                                    {}, LIMITS, ALL, FolderOverflow.COLLAPSE))
    items = [*plan_items(plan)]
    items[1] = {**items[1], "size": 3, "extra": {"k": ["v", 1, None]}, "empty": {}}
    monkeypatch.setattr(report_module, "iter_plan_items", lambda _plan: iter(items))
    assert plan_json(plan) == json.dumps({"summary": plan_summary(plan), "items": items},
                                         indent=2, ensure_ascii=False)


def test_the_plan_command_writes_the_rendered_plan_in_parts(tmp_path: Path) -> None:
    """``plan`` writes the text as it is rendered (never held whole): stdout and ``--out``
    hold exactly what :func:`render_plan` gives, in every format."""
    plan = make_plan("r", PlanInput([], [asset("n", "n.png"), asset("m", "m.png")], [], [],
                                    {}, LIMITS, ALL, FolderOverflow.COLLAPSE))
    for fmt in ("table", "json", "markdown"):
        text = render_plan(plan, fmt)
        out = tmp_path / f"plan.{fmt}"
        assert write_output(partial(render_plan_parts, plan, fmt), out, option="--out",
                            what="the plan", quiet=True)
        assert out.read_text(encoding="utf-8") == text
    assert render_plan(plan, "json") == plan_json(plan)
    assert render_plan(plan, "table") == plan_table(plan)


def test_action_copies_keep_every_other_field() -> None:
    """The plan's copy of an action (``_evolve``) equals ``dataclasses.replace``: every field
    copied, the changed ones set (a field added to ``AssetAction`` is carried too)."""
    a = asset("a", "a.png")
    base = plan_module.AssetAction(
        Op.CREATE, "a", "a.png", "why", ("w",), a, ("x",), "a.png", target_id="t",
        reconcile=True, source_hash="h", dropped=("title",), move_from=("y",),
        target_size=3, excluded_by="source", publish_only=True)
    assert plan_module._evolve(base, op=Op.SKIP, reason="r") == replace(
        base, op=Op.SKIP, reason="r")
    assert plan_module._evolve(base) == base
    assert plan_module._with(base, Op.UPDATE, "u") == replace(base, op=Op.UPDATE, reason="u")


def test_migrated_but_deleted_in_the_target_is_created_again() -> None:
    a = asset("a", "a.png")
    op, reason = plan_of([a], [], {("asset", "a"): done(a, "gone")})["a"]
    assert op is Op.CREATE
    assert "missing from the target" in reason


def test_interrupted_upload_is_reconciled() -> None:
    a = asset("a", "a.png")
    rec = ItemRecord(route="r", kind="asset", source_id="a", status=ItemStatus.IN_FLIGHT)
    # found: adopted, and its metadata set again (a multi-step upload may have stopped first)
    assert plan_of([a], [asset("t9", "a.png")], {("asset", "a"): rec})["a"][0] is Op.UPDATE
    inp = PlanInput([], [a], [], [], {("asset", "a"): rec}, LIMITS, ALL,
                    FolderOverflow.COLLAPSE)
    [action] = make_plan("r", inp).assets
    assert action.op is Op.CREATE
    assert action.reconcile



def adopted_and_edited_plan() -> Plan:
    """Asset ``a`` found in the target after an interrupted upload (adopted: an UPDATE),
    asset ``e`` with a real metadata edit since it was sent (an UPDATE too)."""
    a, e = asset("a", "a.png"), asset("e", "e.png", title="new title")
    rec = ItemRecord(route="r", kind="asset", source_id="a", status=ItemStatus.IN_FLIGHT)
    records = {("asset", "a"): rec, ("asset", "e"): done(replace(e, meta=AssetMeta()), "te")}
    inp = PlanInput([], [a, e], [], [asset("t9", "a.png"), asset("te", "e.png")], records,
                    LIMITS, ALL, FolderOverflow.COLLAPSE)
    return make_plan("r", inp)


def test_an_adopted_asset_counts_as_adopted_not_updated_in_every_plan_format() -> None:
    """Found in the target after an interrupted upload and taken as ours (its metadata set
    again: an UPDATE) is no edit: the JSON summary, table, Markdown and HTML count it as
    adopted, as the run summary and ``status`` do; a real metadata edit stays an update."""
    from pipeline.html_report import plan_html

    plan = adopted_and_edited_plan()
    assert {x.source_id: (x.op, x.adopted) for x in plan.assets} == {
        "a": (Op.UPDATE, True), "e": (Op.UPDATE, False)}
    summary = plan_summary(plan)
    assert (summary["update"], summary["adopted"]) == (1, 1)
    assert json.loads(plan_json(plan))["summary"]["adopted"] == 1
    for text in (plan_table(plan), plan_markdown(plan)):
        assert "0 create, 1 update, 1 adopt, 0 replace" in text
    page = plan_html(plan)
    assert "1 update, 1 adopt," in page
    assert "to adopt (found in the target)" in page


def test_an_adopted_asset_says_adopt_in_its_item_and_row_in_every_plan_format() -> None:
    """The items agree with the summary: a JSON item carries ``adopted`` (true/false; its op
    stays ``update``), and the table, Markdown and HTML rows say ``adopt``, so a tool that
    counts the items gets the summary's ``update`` and ``adopted``."""
    from pipeline.html_report import plan_html

    plan = adopted_and_edited_plan()
    data = json.loads(plan_json(plan))
    items = {i["source_id"]: (i["op"], i["adopted"]) for i in data["items"]}
    assert items == {"a": ("update", True), "e": ("update", False)}
    counted = sum(1 for i in data["items"] if i["op"] == "update" and not i["adopted"])
    assert (counted, sum(i["adopted"] for i in data["items"])) == (
        data["summary"]["update"], data["summary"]["adopted"])
    rows = plan_table(plan).splitlines()
    assert any(r.startswith("adopt ") and r.endswith("a.png") for r in rows), rows
    assert any(r.startswith("update ") and r.endswith("e.png") for r in rows), rows
    assert "| adopt | asset | a.png |" in plan_markdown(plan)
    assert "| update | asset | e.png |" in plan_markdown(plan)
    page = plan_html(plan)
    assert '"group": "adopt"' in page or '"group":"adopt"' in page

def test_dropped_fields_and_renames_are_warned() -> None:
    a = Asset(source_id="a", filename="a.png", folder_path=(), folder_id=None,
              content_type="image/png", size=1, meta=AssetMeta(title="t", alt_text="alt"))
    inp = PlanInput([], [a], [], [], {}, LIMITS, ALL, FolderOverflow.COLLAPSE)
    [action] = make_plan("r", inp).assets
    assert any("alt_text dropped" in w for w in action.warnings)
    assert action.meta.alt_text is None


def test_estimate_counts_every_paced_call_of_an_upload() -> None:
    three_step = Limits(requests_per_second=3.0, requests_per_upload=3)
    inp = PlanInput([], [asset("a", "a.png"), asset("b", "b.png")], [], [], {}, three_step,
                    ALL, FolderOverflow.COLLAPSE)
    plan = make_plan("r", inp)
    assert plan.estimated_requests == 6
    assert plan.estimated_seconds == 2.0


def estimated(sid: str, name: str, estimate: int, updated: str, title: str = "t") -> Asset:
    """An asset whose source only estimates its size (Contento)."""
    from datetime import datetime

    return Asset(source_id=sid, filename=name, folder_path=(), folder_id=None,
                 content_type="image/png", size=None, size_estimate=estimate,
                 meta=AssetMeta(title=title), url=f"https://cdn/{name}",
                 updated_at=datetime.fromisoformat(updated))


def test_an_estimated_size_adopts_only_a_target_file_of_about_that_size() -> None:
    src = estimated("a", "a.png", 1_950_351, "2024-11-27T12:56:24+00:00")  # "1.86 MB"
    near = Asset(source_id="t1", filename="a.png", folder_path=(), folder_id=None,
                 content_type="image/png", size=1_952_645)
    far = Asset(source_id="t2", filename="a.png", folder_path=(), folder_id=None,
                content_type="image/png", size=1_700_000)
    assert plan_of([src], target=[near])["a"][0] is Op.SKIP
    assert plan_of([src], target=[far])["a"][0] is Op.CONFLICT


def test_an_edit_to_an_asset_of_estimated_size_sends_its_file_again() -> None:
    """The same url and estimate, a later updated_at: the file may have changed."""
    before = estimated("a", "a.png", 1000, "2024-11-27T12:56:24+00:00")
    record = done(before, "t1")
    target = [Asset(source_id="t1", filename="a.png", folder_path=(), folder_id=None,
                    content_type="image/png", size=1003)]
    assert plan_of([before], target=target, records={("asset", "a"): record})["a"][0] is Op.SKIP
    after = estimated("a", "a.png", 1000, "2024-11-28T08:00:00+00:00")
    op, reason = plan_of([after], target=target, records={("asset", "a"): record})["a"]
    assert op is Op.REPLACE
    assert "file changed" in reason


def test_an_interrupted_upload_found_in_the_target_gets_its_metadata_set_again() -> None:
    """A multi-step upload (Webflow, Storyblok) shows the asset before its metadata PATCH:
    a kill in between must not leave it adopted without its alt text."""
    asset = Asset("a", "hero.png", (), None, "image/png", 5, AssetMeta(alt_text="A hero"))
    there = replace(asset, source_id="t1", meta=AssetMeta())
    record = ItemRecord("r", "asset", "a", ItemStatus.IN_FLIGHT, path="hero.png")
    caps = Capabilities(target=True, replace=False, update_metadata=True, delete=True,
                        find_asset=True)
    plan = make_plan("r", PlanInput([], [asset], [], [there], {("asset", "a"): record},
                                    Limits(), caps, FolderOverflow.COLLAPSE))
    [action] = plan.assets
    assert (action.op, action.target_id) == (Op.UPDATE, "t1")
    assert action.meta.alt_text == "A hero"


def test_a_folder_renamed_in_the_source_stays_where_it_is_with_the_reason() -> None:
    """Webflow folders cannot be renamed or moved: no second tree under the new name."""
    caps = Capabilities(target=True, replace=False, update_metadata=True, delete=True,
                        find_asset=True)
    source_folders = [Folder("s1", "Brand 2026", None, ("Brand 2026",)),
                      Folder("s2", "Logos", "s1", ("Brand 2026", "Logos"))]
    target_folders = [Folder("t1", "Brand", None, ("Brand",)),
                      Folder("t2", "Logos", "t1", ("Brand", "Logos"))]
    records = {
        ("folder", "s1"): ItemRecord("r", "folder", "s1", ItemStatus.DONE, path="Brand",
                                     target_id="t1", target_path="Brand"),
        ("folder", "s2"): ItemRecord("r", "folder", "s2", ItemStatus.DONE, path="Brand/Logos",
                                     target_id="t2", target_path="Brand/Logos"),
    }
    new = Asset("a1", "new.png", ("Brand 2026", "Logos"), "s2", "image/png", 3)
    plan = make_plan("r", PlanInput(source_folders, [new], target_folders, [], records,
                                    Limits(), caps, FolderOverflow.COLLAPSE))
    assert [(f.op, f.target_path) for f in plan.folders] == [
        (Op.SKIP, ("Brand",)), (Op.SKIP, ("Brand", "Logos"))]
    [brand] = [f for f in plan.folders if f.target_path == ("Brand",)]
    assert any("renamed or moved in the source" in w and "'Brand 2026'" in w
               for w in brand.warnings)
    [action] = plan.assets
    assert (action.op, action.target_folder) == (Op.CREATE, ("Brand", "Logos"))


def test_contentstack_to_local_estimates_the_source_listing() -> None:
    """Issue 7: the estimate counted only the target ("0.0 s" for Contentstack -> local)."""
    from connectors.contentstack.connector import LIMITS as CONTENTSTACK

    assets = [asset(f"a{i}", f"a{i}.png") for i in range(250)]
    inp = PlanInput([], assets, [], [], {}, Limits(), ALL, FolderOverflow.COLLAPSE,
                    source_limits=CONTENTSTACK)
    plan = make_plan("r", inp)
    assert plan.estimated_source_requests == 1 + 3  # folder page, 3 pages of 100 assets
    assert plan.estimated_seconds == 0.4  # 4 requests at 10/s; writing files is not paced


def test_estimate_is_bounded_by_the_slower_side_plus_listing() -> None:
    """Reads and writes run at once: the slower side counts; both listings run at once."""
    source = Limits(requests_per_second=2.0, requests_per_download=1, listing_page_size=100)
    target = Limits(requests_per_second=10.0, listing_page_size=100)
    inp = PlanInput([], [asset(f"a{i}", f"a{i}.png") for i in range(4)], [], [], {}, target,
                    ALL, FolderOverflow.COLLAPSE, source_limits=source)
    plan = make_plan("r", inp)
    assert (plan.estimated_requests, plan.source_read_requests) == (4, 4)
    # listing: max(2 / 2, 2 / 10) = 1 s; then max(4 reads / 2, 4 writes / 10) = 2 s
    assert plan.estimated_seconds == 3.0
    fast_source = replace(source, requests_per_second=100.0)
    plan = make_plan("r", replace(inp, source_limits=fast_source))
    assert plan.estimated_seconds == round(2 / 10 + 4 / 10, 1)


def test_metadata_mapped_once_per_distinct_metadata_gives_the_same_plan(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan maps equal metadata once (``_MetaMapper``): the plan of a library mixing
    repeated, unique, long (cut with a warning), per-locale, tagged and ``source``-carrying
    metadata equals the plan that maps every asset on its own."""
    metas = [AssetMeta(), AssetMeta(title="Same"), AssetMeta(title="Same"),
             AssetMeta(title="x" * 400), AssetMeta(description="d", alt_text="d"),
             AssetMeta(tags=("b", "a", "b")), AssetMeta(alt_text="alt", copyright="©"),
             AssetMeta(title="t", locales={"fr": LocalizedText(title="fr")}),
             AssetMeta(focus="0.5,0.5")]
    source = [replace(asset(f"a{i}", f"f{i}.png", ("d",)), meta=metas[i % len(metas)],
                      extra={"source": "cms"} if i % 4 == 0 else {})
              for i in range(60)]

    def planned() -> object:
        inp = PlanInput(source_folders=[], source_assets=source, target_folders=[],
                        target_assets=[], records={}, limits=CONTENTSTACK, capabilities=ALL,
                        policy=FolderOverflow.COLLAPSE)
        return make_plan("r", inp)

    remembered = planned()
    monkeypatch.setattr(plan_module._MetaMapper, "KEEP", 0)
    assert planned() == remembered


def test_the_summary_tells_the_request_and_byte_figures_of_every_kind_of_action() -> None:
    """The summary's figures, counted in one pass, are the plan's own (per action kind: an
    upload's every paced call and its source reads, an edit, a publish-only edit, a delete,
    none for a skip or an unsupported asset; an estimated size counted as such)."""
    guessed = replace(asset("b", "b.png", size=0), size=None, size_estimate=5)
    actions = (
        plan_module.AssetAction(Op.CREATE, "a", "a.png", "new", asset=asset("a", "a.png")),
        plan_module.AssetAction(Op.REPLACE, "b", "b.png", "changed", asset=guessed),
        plan_module.AssetAction(Op.UPDATE, "c", "c.png", "publish", asset=asset("c", "c.png"),
                                publish_only=True),
        plan_module.AssetAction(Op.UPDATE, "d", "d.png", "meta", asset=asset("d", "d.png")),
        plan_module.AssetAction(Op.DELETE, "e", "e.png", "gone"),
        plan_module.AssetAction(Op.SKIP, "f", "f.png", "unchanged", asset=asset("f", "f.png")),
        plan_module.AssetAction(Op.UNSUPPORTED, "g", "g.png", "too big",
                                asset=asset("g", "g.png")),
    )
    plan = Plan("r", (FolderAction(Op.CREATE, ("x",), ("x",), "new"),), actions, 3.0,
                requests_per_upload=3, source_requests_per_second=2.0,
                source_listing_requests=2, source_requests_per_download=2)
    # a folder, two uploads of 3 calls, one edit, one delete; 2 reads per upload
    assert (plan.estimated_requests, plan.source_read_requests) == (1 + 3 + 3 + 1 + 1, 4)
    assert plan.estimated_seconds == 1.0 + 3.0  # the source's listing, then the writes
    summary = report_module.plan_summary(plan)
    assert (summary["estimated_requests"], summary["estimated_source_requests"],
            summary["estimated_seconds"]) == (9, 2 + 4, 4.0)
    assert (summary["bytes"], summary["bytes_estimated"]) == (10 + 5, 1)
