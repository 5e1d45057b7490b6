"""The job's [mapping] folder rules: a new root, renames and merges by path pattern, and where
the levels of a collapsed folder go (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Asset, AssetMeta, Capabilities, Folder, FolderPath, Limits
from connectors.contentstack.connector import LIMITS as CONTENTSTACK
from connectors.errors import ConfigError
from mappings.folders import (
    CollapsedPath,
    FolderOverflow,
    FolderRename,
    FolderRules,
    carry_path,
    parse_root,
    plan_tree,
)
from pipeline.config import load_job
from pipeline.plan import AssetAction, Op, PlanInput, make_plan
from state.store import ItemRecord, ItemStatus

FORTY: FolderPath = tuple(f"level {i:02d}" for i in range(1, 41))


def _rules(root: str = "", renames: dict[str, str] | None = None,
           mode: CollapsedPath = CollapsedPath.NAME) -> FolderRules:
    return FolderRules(parse_root(root),
                       tuple(FolderRename.parse(p, r) for p, r in (renames or {}).items()),
                       mode)


def _asset(source_id: str, folder: FolderPath, description: str | None = None) -> Asset:
    return Asset(source_id=source_id, filename=f"{source_id}.png", folder_path=folder,
                 folder_id=None, content_type="image/png", size=10,
                 meta=AssetMeta(description=description))


def _plan(assets: list[Asset], limits: Limits, rules: FolderRules) -> dict[str, AssetAction]:
    caps = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                        find_asset=True)
    plan = make_plan("r", PlanInput([], assets, [], [], {}, limits, caps,
                                    FolderOverflow.COLLAPSE, folder_rules=rules))
    return {a.source_id: a for a in plan.assets}


# --- folder_root ----------------------------------------------------------------------------


def test_folder_root_moves_the_whole_tree_and_the_root_assets() -> None:
    actions = _plan([_asset("top", ()), _asset("deep", ("Photos", "2024"))], Limits(),
                    _rules("migrated/2026"))
    assert actions["top"].target_folder == ("migrated", "2026")
    assert actions["deep"].target_folder == ("migrated", "2026", "Photos", "2024")


def test_folder_root_counts_against_the_depth_limit() -> None:
    tree = plan_tree([FORTY], CONTENTSTACK, FolderOverflow.COLLAPSE, assets={FORTY: 1},
                     rules=_rules("migrated/2026"))
    assert tree.target_path(FORTY) == ("migrated", "2026", " - ".join(FORTY))
    too_deep = plan_tree([("a",)], Limits(max_folder_depth=1), FolderOverflow.COLLAPSE,
                         rules=_rules("migrated/2026"))
    assert too_deep.target_path(("a",)) is None
    assert "folder_root has 2 levels" in (too_deep.error_for(("a",)) or "")


# --- renames and merges ---------------------------------------------------------------------


def test_a_rule_renames_a_folder_and_moves_its_subtree() -> None:
    tree = plan_tree([("Old Campaigns", "2019", "spring")], Limits(), FolderOverflow.COLLAPSE,
                     rules=_rules(renames={"Old Campaigns": "Archive/Campaigns"}))
    assert tree.target_path(("Old Campaigns", "2019", "spring")) == (
        "Archive", "Campaigns", "2019", "spring")
    assert "moved to 'Archive / Campaigns'" in tree.warnings_for(("Old Campaigns",))[0]


def test_globs_placeholders_and_first_rule_wins() -> None:
    rules = _rules(renames={"**/thumbs": "{parent}/thumbnails", "Brand/*": "Logos/{name}",
                            "Brand/x": "never"})
    tree = plan_tree([("a", "b", "thumbs", "c"), ("Brand", "x"), ("thumbs",)], Limits(),
                     FolderOverflow.COLLAPSE, rules=rules)
    assert tree.target_path(("a", "b", "thumbs", "c")) == ("a", "b", "thumbnails", "c")
    assert tree.target_path(("thumbs",)) == ("thumbnails",)
    assert tree.target_path(("Brand", "x")) == ("Logos", "x")


def test_patterns_compare_nfc_and_nfd_spellings_alike() -> None:
    nfd = "Cafe\u0301"
    tree = plan_tree([(nfd, "x")], Limits(), FolderOverflow.COLLAPSE,
                     rules=_rules(renames={"Caf\u00e9": "Bistro"}))
    assert tree.target_path((nfd, "x")) == ("Bistro", "x")


def test_two_folders_merged_on_purpose_say_so_without_a_warning_of_accident() -> None:
    rules = _rules(renames={"Logos": "Brand/Logos", "logos-old": "Brand/Logos"})
    tree = plan_tree([("Logos",), ("logos-old",)], Limits(), FolderOverflow.COLLAPSE,
                     rules=rules)
    assert tree.target_path(("Logos",)) == tree.target_path(("logos-old",)) == (
        "Brand", "Logos")
    notes = " ".join(tree.warnings_for(("Logos",)))
    assert "merged on purpose" in notes
    assert "by accident" not in notes


def test_a_merge_by_accident_is_a_plan_warning_naming_both() -> None:
    # the rule sends Logos onto a folder the source already has
    tree = plan_tree([("Logos",), ("Brand",)], Limits(), FolderOverflow.COLLAPSE,
                     rules=_rules(renames={"Logos": "Brand"}))
    assert tree.target_path(("Logos",)) == tree.target_path(("Brand",)) == ("Brand",)
    for path, other in ((("Logos",), "'Brand'"), (("Brand",), "'Logos'")):
        note = " ".join(tree.warnings_for(path))
        assert "merged by accident" in note
        assert other in note
    # and the assets of both still get distinct names in the merged folder
    actions = _plan([_asset("a", ("Logos",)), _asset("a2", ("Brand",))], Limits(),
                    _rules(renames={"Logos": "Brand"}))
    assert {a.op for a in actions.values()} == {Op.CREATE}
    assert any("merged by accident" in w for w in actions["a"].warnings)


def test_renamed_folders_still_fit_the_target() -> None:
    # a rule may name a path deeper than the target allows: the budget rules still apply
    tree = plan_tree([("a",)], CONTENTSTACK, FolderOverflow.COLLAPSE,
                     rules=_rules(renames={"a": "1/2/3/4/5/6/7"}))
    placed = tree.target_path(("a",))
    assert placed is not None
    assert len(placed) <= 5


# --- collapsed_path --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(CollapsedPath))
def test_collapsed_path_into_contentstack(mode: CollapsedPath) -> None:
    actions = _plan([_asset("bottom", FORTY, description="a photo")], CONTENTSTACK,
                    _rules(mode=mode))
    action = actions["bottom"]
    assert action.op is Op.CREATE
    source = "/".join(FORTY)
    if mode is CollapsedPath.NAME:
        assert action.target_folder == (" - ".join(FORTY),)
        assert source not in action.meta.tags
        assert action.meta.description == "a photo"
    else:
        assert action.target_folder == ("level 40",)  # the folder holding the file
    if mode is CollapsedPath.TAG:
        assert source in action.meta.tags
        assert any("kept as a tag" in w for w in action.warnings)
    if mode is CollapsedPath.DESCRIPTION:
        assert action.meta.description == f"a photo\n\nSource folder: {source}"


def test_an_uncollapsed_folder_gets_no_tag() -> None:
    actions = _plan([_asset("x", ("Photos",))], CONTENTSTACK, _rules(mode=CollapsedPath.TAG))
    assert actions["x"].meta.tags == ()


def test_a_target_without_the_field_keeps_nothing_and_says_so() -> None:
    limits = Limits(metadata_fields=frozenset({"title"}))
    meta, warnings = carry_path(AssetMeta(), "a/b", CollapsedPath.DESCRIPTION, limits)
    assert meta == AssetMeta()
    assert "no description field" in warnings[0]


# --- the job file ---------------------------------------------------------------------------

JOB = """
[source]
connector = "local"
path = "./library"

[target]
connector = "local"
path = "./out"

[mapping]
"""


def _load(tmp_path: Path, mapping: str) -> FolderRules:
    path = tmp_path / "job.toml"
    path.write_text(JOB + mapping)
    return load_job(path, env={}).mapping.folders()


def test_job_file_rules_in_file_order(tmp_path: Path) -> None:
    rules = _load(tmp_path, 'folder_root = "migrated/2026"\ncollapsed_path = "tag"\n'
                            '[mapping.folder_rules]\n"Old/*" = "Archive/{name}"\n'
                            '"Logos" = "Brand/Logos"\n')
    assert rules.root == ("migrated", "2026")
    assert rules.collapsed_path is CollapsedPath.TAG
    assert [r.pattern for r in rules.renames] == ["Old/*", "Logos"]


@pytest.mark.parametrize(("mapping", "key", "words"), [
    ('folder_root = "a//b"', "mapping.folder_root", "empty, '.' or '..' level"),
    ('folder_root = "../up"', "mapping.folder_root", "'..'"),
    ('collapsed_path = "tags"', "mapping.collapsed_path", "'name', 'tag' or 'description'"),
    ('[mapping.folder_rules]\n"x/**" = "{nope}/y"', "mapping.folder_rules",
     "unknown placeholder {nope}"),
    ('[mapping.folder_rules]\n"/" = "y"', "mapping.folder_rules", "the pattern is empty"),
    ('[mapping.folder_rules]\n"a" = "b/../c"', "mapping.folder_rules", "'..'"),
    ('folder_rules = "a"', "mapping.folder_rules", "must be a table"),
])
def test_bad_rules_are_exit_2_naming_the_key(tmp_path: Path, mapping: str, key: str,
                                             words: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, mapping + "\n")
    assert key in str(err.value)
    assert words in str(err.value)
    assert "Value error" not in str(err.value)


def test_the_readme_folder_rules_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Folders", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    rules = _load(tmp_path, example.replace("[mapping]\n", "", 1))
    assert rules.root == ("migrated", "2026")
    assert len(rules.renames) == 5
    tree = plan_tree([("logos-2019",), ("logos-2020",), ("x", "y", "thumbs")], Limits(),
                     FolderOverflow.COLLAPSE, rules=rules)
    assert tree.target_path(("logos-2019",)) == ("migrated", "2026", "Logos", "All")
    assert tree.target_path(("x", "y", "thumbs")) == ("migrated", "2026", "x", "y",
                                                      "thumbnails")
    assert "merged on purpose" in " ".join(tree.warnings_for(("logos-2020",)))


def test_a_rule_added_after_a_run_keeps_the_folders_it_made_and_says_so() -> None:
    """Folders are create-only as far as assetferry goes (Webflow's API can't rename, move
    or delete one): a new rule that would move a migrated folder leaves it where it is, and
    the plan line says so instead of making a second tree."""
    photos = Folder("f1", "Photos", None, ("Photos",))
    made = Folder("t1", "Photos", None, ("Photos",))
    record = ItemRecord(route="r", kind="folder", source_id="f1", status=ItemStatus.DONE,
                        target_id="t1", target_path="Photos")
    caps = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                        find_asset=True)
    plan = make_plan("r", PlanInput(
        [photos], [_asset("a", ("Photos",))], [made], [], {("folder", "f1"): record},
        Limits(), caps, FolderOverflow.COLLAPSE,
        folder_rules=_rules(renames={"Photos": "Archive/Photos"})))
    (line,) = [f for f in plan.folders if "f1" in f.source_ids]
    assert line.target_path == ("Photos",)
    assert line.op is Op.SKIP
    assert any("never renames or moves a folder it made" in w for w in line.warnings)
    assert "stays 'Photos'" in line.reason
    (action,) = plan.assets
    assert action.target_folder == ("Photos",)
