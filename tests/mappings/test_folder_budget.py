"""The target's folder budget (depth and count) goes to folders that hold assets (issue 10).

The named case: a 40-level local tree with one file at the bottom, migrated into Contentstack
(depth 5, 300 folders), became 40 near-empty folders instead of one collapsed path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.base import Asset, Capabilities, FolderPath, Limits
from connectors.contentstack.connector import LIMITS as CONTENTSTACK
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector
from connectors.webflow import WebflowConfig, WebflowConnector
from mappings.folders import FolderOverflow, plan_tree
from pipeline.plan import Op, PlanInput, make_plan

FORTY: FolderPath = tuple(f"level {i:02d}" for i in range(1, 41))


def _storyblok() -> Limits:
    cfg = StoryblokConfig(connector="storyblok", space_id=1, token=SecretStr("t"))
    return StoryblokConnector(cfg).limits


def _webflow() -> Limits:
    cfg = WebflowConfig(connector="webflow", site_id="0123456789abcdef01234567",
                        token=SecretStr("t"))
    return WebflowConnector(cfg).limits


def _local(tmp: Path) -> Limits:
    return LocalFolderConnector(LocalConfig(connector="local", path=tmp)).limits


def _asset(source_id: str, folder: FolderPath) -> Asset:
    return Asset(source_id=source_id, filename=f"{source_id}.png", folder_path=folder,
                 folder_id=None, content_type="image/png", size=10)


def _plan(assets: list[Asset], limits: Limits,
          policy: FolderOverflow = FolderOverflow.COLLAPSE) -> tuple[list[FolderPath],
                                                                     dict[str, Op]]:
    caps = Capabilities(target=True, replace=True, update_metadata=True, delete=True,
                        find_asset=True)
    plan = make_plan("r", PlanInput([], assets, [], [], {}, limits, caps, policy))
    created = [f.target_path for f in plan.folders if f.op is Op.CREATE]
    return created, {a.source_id: a.op for a in plan.assets}


# --- the named case ------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(FolderOverflow))
def test_forty_levels_with_one_file_become_one_contentstack_folder(
        policy: FolderOverflow) -> None:
    created, ops = _plan([_asset("bottom", FORTY)], CONTENTSTACK, policy)
    assert created == [(" - ".join(FORTY),)]
    assert ops == {"bottom": Op.CREATE}


def test_forty_levels_tree_map_says_what_was_merged() -> None:
    tree = plan_tree([FORTY], CONTENTSTACK, FolderOverflow.COLLAPSE, assets={FORTY: 1})
    assert tree.target_folders() == [(" - ".join(FORTY),)]
    assert all(tree.target_path(FORTY[:i]) == (" - ".join(FORTY),) for i in range(1, 41))
    top = " ".join(tree.warnings_for(FORTY[:1]))
    assert "40 levels" in top
    assert "hold no asset of their own" in top
    assert tree.collapsed[FORTY] == "/".join(FORTY)


def test_a_chain_stops_at_the_first_folder_holding_an_asset() -> None:
    # level 20 holds a file too: levels 1..20 become one folder, 21..40 another below it
    tree = plan_tree([FORTY], CONTENTSTACK, FolderOverflow.COLLAPSE,
                     assets={FORTY: 1, FORTY[:20]: 1})
    upper = " - ".join(FORTY[:20])
    assert tree.target_folders() == [(upper,), (upper, " - ".join(FORTY[20:]))]


def test_a_chain_splits_where_the_joined_name_would_pass_the_name_limit() -> None:
    limits = Limits(max_folder_depth=5, max_folders=300, max_name_bytes=60)
    tree = plan_tree([FORTY], limits, FolderOverflow.COLLAPSE, assets={FORTY: 1})
    placed = tree.target_path(FORTY)
    assert placed is not None
    assert len(placed) <= 5
    assert all(len(name.encode()) <= 60 for name in placed)
    # the first folders are whole runs of levels that fit the limit, never cut
    assert placed[0] == " - ".join(FORTY[:5])


def test_a_shallow_chain_is_left_alone() -> None:
    # within the target's limits the user's tree stays as it is, empty levels included
    created, _ = _plan([_asset("x", ("Marketing", "2024", "Q1"))], CONTENTSTACK)
    assert created == [("Marketing",), ("Marketing", "2024"), ("Marketing", "2024", "Q1")]


def test_collapse_does_not_spend_folders_on_deep_levels_holding_nothing() -> None:
    # a, b, c, d, e hold files; f holds nothing; g and h hold files (depth 5)
    base = ("a", "b", "c", "d", "e")
    assets = [_asset(f"in-{i}", base[:i]) for i in range(1, 6)]
    assets += [_asset("g", (*base, "f", "g")), _asset("h", (*base, "f", "h"))]
    created, ops = _plan(assets, CONTENTSTACK)
    assert (*base[:4], "e - f") not in created  # the old code made this empty folder
    assert (*base[:4], "e - f - g") in created
    assert (*base[:4], "e - f - h") in created
    assert len(created) == 7
    assert set(ops.values()) == {Op.CREATE}


# --- wide trees over the count budget -------------------------------------------------------


def test_wide_tree_over_300_folders_folds_the_emptiest_and_keeps_every_asset() -> None:
    # 310 folders: the old code left the last 10 unplaced and skipped their assets
    assets = [_asset(f"a{i}-{k}", (f"folder {i:03d}",))
              for i in range(310) for k in range(1 + (i % 4))]
    created, ops = _plan(assets, CONTENTSTACK)
    assert len(created) == 300
    assert set(ops.values()) == {Op.CREATE}
    tree = plan_tree([(f"folder {i:03d}",) for i in range(310)], CONTENTSTACK,
                     FolderOverflow.COLLAPSE,
                     assets={(f"folder {i:03d}",): 1 + (i % 4) for i in range(310)})
    folded = [i for i in range(310) if tree.target_path((f"folder {i:03d}",)) == ()]
    # the ten holding fewest assets (one each), first by path among equals
    assert folded == [i for i in range(310) if i % 4 == 0][:10]
    note = " ".join(tree.warnings_for(("folder 000",)))
    assert "at most 300 folders" in note
    assert "its assets go to the root" in note


def test_empty_parents_fold_before_folders_holding_assets() -> None:
    # 200 groups, each an empty parent with two subfolders holding files: 600 folders
    paths = [(f"group {g:03d}", sub) for g in range(200) for sub in ("x", "y")]
    tree = plan_tree(paths, CONTENTSTACK, FolderOverflow.COLLAPSE,
                     assets=dict.fromkeys(paths, 1))
    assert len(tree.target_folders()) <= 300
    assert all(tree.target_path(p) is not None for p in paths)
    # 300 folds: every empty parent folded away (its subfolders joined into the names)
    folded_parents = [g for g in range(200) if tree.target_path((f"group {g:03d}",)) == ()]
    assert len(folded_parents) >= 150
    kept = [tree.target_path(p) for p in paths if tree.target_path(p) != ()]
    assert len(kept) == len(set(kept))


def test_deep_and_wide_tree_fits_contentstack() -> None:
    paths = [tuple(f"b{b}-l{i}" for i in range(12)) for b in range(40)]
    paths += [(*p[:3], f"leaf {k}") for p in paths[:20] for k in range(15)]
    holding = dict.fromkeys(paths, 2)
    tree = plan_tree(paths, CONTENTSTACK, FolderOverflow.COLLAPSE, assets=holding)
    folders = tree.target_folders()
    assert len(folders) <= 300
    assert all(len(f) <= 5 for f in folders)
    assert all(tree.target_path(p) is not None for p in paths)


def test_a_rerun_onto_the_folders_it_made_changes_nothing() -> None:
    paths: list[FolderPath] = [(f"folder {i:03d}",) for i in range(320)]
    holding = {p: 1 + (i % 3) for i, p in enumerate(paths)}
    first = plan_tree(paths, CONTENTSTACK, FolderOverflow.COLLAPSE, assets=holding)
    again = plan_tree(paths, CONTENTSTACK, FolderOverflow.COLLAPSE, assets=holding,
                      existing=first.target_folders())
    assert dict(again.placements) == dict(first.placements)


# --- every target ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["contentstack", "storyblok", "webflow", "local"])
def test_forty_levels_into_every_target(target: str, tmp_path: Path) -> None:
    makers: dict[str, Callable[[], Limits]] = {
        "contentstack": lambda: CONTENTSTACK, "storyblok": _storyblok, "webflow": _webflow,
        "local": lambda: _local(tmp_path)}
    limits = makers[target]()
    tree = plan_tree([FORTY], limits, FolderOverflow.COLLAPSE, assets={FORTY: 1})
    placed = tree.target_path(FORTY)
    if target == "local" and tree.error_for(FORTY):
        # a deep tmp dir may leave too little of PATH_MAX: then it says so, never a crash
        assert "bytes" in (tree.error_for(FORTY) or "")
        return
    assert placed is not None
    if limits.max_folder_depth is None:
        assert placed == FORTY  # no documented depth limit: the tree stays as it is
    else:
        assert len(placed) <= limits.max_folder_depth
        assert len(tree.target_folders()) == 1
