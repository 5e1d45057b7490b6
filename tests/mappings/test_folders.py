"""Folder-tree reshaping: names, collisions, existing folders, depth and count limits."""

from __future__ import annotations

import pytest

from connectors.base import FolderPath, Limits
from mappings.folders import (
    FolderOverflow,
    FolderRules,
    TreeMap,
    plan_tree,
    sanitize_name,
)

FORBIDDEN = "#%^+\\/?*:|\"'<>{}=,"
CS = Limits(max_folder_depth=5, max_folders=300, forbidden_name_chars=FORBIDDEN)
DEEP: FolderPath = ("a", "b", "c", "d", "e", "f", "g")
EVERY = {DEEP[:i]: 1 for i in range(1, 8)}
"""An asset in every level of DEEP: no level merges with the next (see test_folder_budget)."""


def placed(tree: TreeMap, *paths: FolderPath) -> list[FolderPath | None]:
    return [tree.target_path(p) for p in paths]


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a:b", "a_b"),
        ('say "hi", <you>', "say _hi__ _you_"),
        ("50% off #1", "50_ off _1"),
        ("back\\slash/and?star*", "back_slash_and_star_"),
        ("  padded  ", "padded"),
        (".hidden", "hidden"),
        ("trailing.", "trailing"),
        ("tab\there", "tab_here"),
        ("\x00nul\x07bell", "_nul_bell"),
        ("...", "_"),
        ("   ", "_"),
        ("", "_"),
        ("Cafe\u0301", "Caf\u00e9"),
        ("写真 Ünïcödé", "写真 Ünïcödé"),
    ],
)
def test_sanitize_name(raw: str, expected: str) -> None:
    assert sanitize_name(raw, CS) == expected


def test_sanitize_name_cuts_to_the_length_limit_without_trailing_space() -> None:
    limits = Limits(max_name_length=3)
    assert sanitize_name("abcdef", limits) == "abc"
    assert sanitize_name("ab cd", limits) == "ab"
    assert sanitize_name("ab", limits) == "ab"


def test_unchanged_names_map_to_themselves() -> None:
    tree = plan_tree([("Photos", "2024"), ("Docs",)], CS, FolderOverflow.COLLAPSE)
    assert placed(tree, ("Photos",), ("Photos", "2024"), ("Docs",)) == [
        ("Photos",),
        ("Photos", "2024"),
        ("Docs",),
    ]
    assert dict(tree.renamed) == {}
    assert tree.warnings_for(("Photos", "2024")) == ()
    assert tree.target_path(()) == ()
    assert tree.warnings_for(()) == ()
    assert tree.error_for(()) is None


def test_renamed_folder_warns_and_children_follow() -> None:
    tree = plan_tree([("a:b", "c")], CS, FolderOverflow.COLLAPSE)
    assert tree.target_path(("a:b", "c")) == ("a_b", "c")
    assert tree.renamed[("a:b",)] == ("a_b",)
    assert tree.renamed[("a:b", "c")] == ("a_b", "c")
    (warning,) = tree.warnings_for(("a:b",))
    assert "'a:b' became 'a_b'" in warning
    assert "does not allow :" in warning
    assert tree.warnings_for(("a:b", "c")) == ()


def test_names_that_sanitize_to_empty_get_underscore_and_suffixes() -> None:
    tree = plan_tree([("...",), ("  ",)], CS, FolderOverflow.COLLAPSE)
    assert set(placed(tree, ("...",), ("  ",))) == {("_",), ("_ (2)",)}
    # "  " sorts before "..." so it keeps the plain name
    assert tree.target_path(("  ",)) == ("_",)


def test_unicode_names_are_kept() -> None:
    tree = plan_tree([("写真", "Ünïcödé"), ("Привет",)], CS, FolderOverflow.COLLAPSE)
    assert tree.target_path(("写真", "Ünïcödé")) == ("写真", "Ünïcödé")
    assert tree.target_path(("Привет",)) == ("Привет",)


# --- collisions ----------------------------------------------------------------------------


def test_collisions_after_sanitizing_get_suffixes_in_sorted_order() -> None:
    paths = [("a?b",), ("a*b",), ("a:b",)]
    tree = plan_tree(paths, CS, FolderOverflow.COLLAPSE)
    # sorted source names: "a*b" < "a:b" < "a?b"
    assert placed(tree, ("a*b",), ("a:b",), ("a?b",)) == [("a_b",), ("a_b (2)",), ("a_b (3)",)]
    (warning,) = tree.warnings_for(("a?b",))
    assert "another folder or file in the root is also called 'a_b'" in warning
    again = plan_tree(list(reversed(paths)), CS, FolderOverflow.COLLAPSE)
    assert dict(again.placements) == dict(tree.placements)


def test_a_name_that_needs_no_change_keeps_it() -> None:
    tree = plan_tree([("a:b",), ("a_b",)], CS, FolderOverflow.COLLAPSE)
    assert tree.target_path(("a_b",)) == ("a_b",)
    assert tree.target_path(("a:b",)) == ("a_b (2)",)


def test_suffix_skips_names_other_folders_have_plainly() -> None:
    tree = plan_tree([("x?",), ("x_",), ("x_ (2)",)], CS, FolderOverflow.COLLAPSE)
    assert placed(tree, ("x_",), ("x_ (2)",), ("x?",)) == [("x_",), ("x_ (2)",), ("x_ (3)",)]


def test_collisions_only_among_siblings_and_exact_only() -> None:
    tree = plan_tree([("p", "x?"), ("q", "x*"), ("p", "X*")], CS, FolderOverflow.COLLAPSE)
    assert tree.target_path(("p", "x?")) == ("p", "x_")
    assert tree.target_path(("q", "x*")) == ("q", "x_")
    # case differs: not a collision (documented)
    assert tree.target_path(("p", "X*")) == ("p", "X_")


def test_nfd_and_nfc_spellings_collide_and_nfc_keeps_the_name() -> None:
    nfd, nfc = "Cafe\u0301", "Caf\u00e9"
    tree = plan_tree([(nfd,), (nfc,)], CS, FolderOverflow.COLLAPSE)
    assert tree.target_path((nfc,)) == (nfc,)
    assert tree.target_path((nfd,)) == (nfc + " (2)",)


def test_names_cut_to_length_collide_and_suffix_fits() -> None:
    limits = Limits(forbidden_name_chars=FORBIDDEN, max_name_length=6)
    tree = plan_tree([("abcdefX",), ("abcdefY",)], limits, FolderOverflow.COLLAPSE)
    assert placed(tree, ("abcdefX",), ("abcdefY",)) == [("abcdef",), ("ab (2)",)]
    (warning,) = tree.warnings_for(("abcdefY",))
    assert "limit of 6 characters" in warning


def test_no_unique_name_fits_a_tiny_length_limit() -> None:
    limits = Limits(max_name_length=3)
    tree = plan_tree([("abcd", "x"), ("abce",)], limits, FolderOverflow.COLLAPSE)
    assert tree.target_path(("abcd",)) == ("abc",)
    assert tree.target_path(("abce",)) is None
    assert "no unique name" in (tree.error_for(("abce",)) or "")
    assert ("abcd", "x") in tree.placements


# --- existing folders ----------------------------------------------------------------------


def test_existing_folders_are_reused_not_suffixed() -> None:
    existing = [("Photos",), ("a_b",), ("Other", "Deep")]
    tree = plan_tree([("Photos", "new"), ("a:b",)], CS, FolderOverflow.COLLAPSE, existing=existing)
    assert tree.target_path(("Photos",)) == ("Photos",)
    assert tree.target_path(("a:b",)) == ("a_b",)
    assert tree.target_folders() == [("Photos",), ("a_b",), ("Photos", "new")]


def test_a_rerun_maps_onto_the_same_folders() -> None:
    paths = [("a:b", "x"), ("a?b",), (*DEEP,), ("q",)]
    first = plan_tree(paths, CS, FolderOverflow.COLLAPSE)
    second = plan_tree(paths, CS, FolderOverflow.COLLAPSE, existing=first.target_folders())
    assert dict(second.placements) == dict(first.placements)
    assert second.target_folders() == first.target_folders()


# --- depth ---------------------------------------------------------------------------------


def test_deep_tree_collapse() -> None:
    tree = plan_tree([DEEP], CS, FolderOverflow.COLLAPSE, assets=EVERY)
    assert tree.target_path(DEEP) == ("a", "b", "c", "d", "e - f - g")
    assert tree.target_path(DEEP[:6]) == ("a", "b", "c", "d", "e - f")
    assert tree.target_path(DEEP[:5]) == ("a", "b", "c", "d", "e")
    assert tree.warnings_for(DEEP) == (
        "depth 7 > 5: levels 'e / f / g' collapsed into one folder",
        "the folder is 'a / b / c / d / e - f - g'",
    )
    assert tree.warnings_for(DEEP[:5]) == ()
    assert tree.error_for(DEEP) is None
    assert tree.target_folders() == [
        ("a",),
        ("a", "b"),
        ("a", "b", "c"),
        ("a", "b", "c", "d"),
        ("a", "b", "c", "d", "e"),
        ("a", "b", "c", "d", "e - f"),
        ("a", "b", "c", "d", "e - f - g"),
    ]


def test_collapse_sanitizes_the_joined_name_and_resolves_collisions() -> None:
    limits = Limits(max_folder_depth=2, forbidden_name_chars=FORBIDDEN)
    paths = [("a", "b", "c:d"), ("a", "b - c_d")]
    tree = plan_tree(paths, limits, FolderOverflow.COLLAPSE, assets={("a", "b"): 1,
                                                                      **dict.fromkeys(paths, 1)})
    # the real folder "b - c_d" keeps its name; the collapsed b/c:d is suffixed
    assert tree.target_path(("a", "b - c_d")) == ("a", "b - c_d")
    assert tree.target_path(("a", "b", "c:d")) == ("a", "b - c_d (2)")
    assert tree.target_path(("a", "b")) == ("a", "b")
    # without an asset in a/b, a/b and a/b/c:d are one folder, still apart from "b - c_d"
    merged = plan_tree(paths, limits, FolderOverflow.COLLAPSE)
    assert merged.target_path(("a", "b")) == merged.target_path(("a", "b", "c:d"))
    assert merged.target_path(("a", "b")) == ("a", "b - c_d (2)")


def test_collapse_respects_the_name_length() -> None:
    limits = Limits(max_folder_depth=1, max_name_length=8)
    paths = [("alpha", "beta", "gamma"), ("alpha", "beta", "delta")]
    tree = plan_tree(paths, limits, FolderOverflow.COLLAPSE)
    a = tree.target_path(("alpha", "beta", "gamma"))
    b = tree.target_path(("alpha", "beta", "delta"))
    assert a is not None
    assert b is not None
    assert a != b
    assert all(len(p) == 1 and len(p[0]) <= 8 for p in (a, b))


def test_deep_tree_truncate() -> None:
    tree = plan_tree([DEEP], CS, FolderOverflow.TRUNCATE, assets=EVERY)
    assert tree.target_path(DEEP) == DEEP[:5]
    assert tree.target_path(DEEP[:6]) == DEEP[:5]
    warning = " ".join(tree.warnings_for(DEEP))
    assert warning.startswith("depth 7 > 5: levels 'f / g' dropped")
    assert "'a / b / c / d / e'" in warning
    assert 'folder_overflow = "collapse"' in warning
    assert tree.target_folders() == [DEEP[:i] for i in range(1, 6)]
    assert tree.renamed[DEEP] == DEEP[:5]


def test_deep_tree_fail() -> None:
    tree = plan_tree([DEEP], CS, FolderOverflow.FAIL, assets=EVERY)
    assert tree.target_path(DEEP) is None
    assert tree.target_path(DEEP[:6]) is None
    assert tree.target_path(DEEP[:5]) == DEEP[:5]
    assert tree.error_for(DEEP) == (
        "folder depth 7 exceeds the target's limit of 5; "
        'set [mapping] folder_overflow = "collapse" or "truncate"'
    )
    assert "depth 6" in (tree.error_for(DEEP[:6]) or "")
    assert tree.error_for(DEEP[:5]) is None
    assert tree.target_folders() == [DEEP[:i] for i in range(1, 6)]


def test_policy_may_be_given_as_its_config_string() -> None:
    tree = plan_tree([DEEP], CS, "truncate", assets=EVERY)  # type: ignore[arg-type]
    assert tree.target_path(DEEP) == DEEP[:5]


@pytest.mark.parametrize("policy", [FolderOverflow.COLLAPSE, FolderOverflow.TRUNCATE])
def test_a_target_without_folders_puts_everything_in_the_root(policy: FolderOverflow) -> None:
    tree = plan_tree([("a", "b")], Limits(max_folder_depth=0), policy)
    assert placed(tree, ("a",), ("a", "b")) == [(), ()]
    assert tree.target_folders() == []
    assert "go to the root" in tree.warnings_for(("a", "b"))[0]


def test_no_depth_limit_keeps_deep_trees() -> None:
    deeper = tuple(f"l{i}" for i in range(20))
    tree = plan_tree([deeper], Limits(), FolderOverflow.FAIL)
    assert tree.target_path(deeper) == deeper


def test_unknown_path_is_a_key_error() -> None:
    tree = plan_tree([("a",)], CS, FolderOverflow.COLLAPSE)
    with pytest.raises(KeyError, match="not part of the planned tree"):
        tree.target_path(("zzz",))
    assert tree.warnings_for(("zzz",)) == ()
    assert tree.error_for(("zzz",)) is None


# --- count ---------------------------------------------------------------------------------


def test_folder_count_overflow_folds_the_emptiest_deepest_first() -> None:
    limits = Limits(max_folders=3)
    tree = plan_tree([("a", "b", "c"), ("d",)], limits, FolderOverflow.COLLAPSE)
    # a and a/b hold nothing; a/b, the deeper, folds into a, its subfolder c joins its name
    assert placed(tree, ("a",), ("d",), ("a", "b"), ("a", "b", "c")) == [
        ("a",),
        ("d",),
        ("a",),
        ("a", "b - c"),
    ]
    note = " ".join(tree.warnings_for(("a", "b")))
    assert "the target allows at most 3 folders" in note
    assert tree.error_for(("a", "b", "c")) is None
    assert tree.target_folders() == [("a",), ("d",), ("a", "b - c")]


def test_folders_that_cannot_fold_any_further_are_not_placed() -> None:
    # the folder_root can't fold: with room for one folder, its second level can't be made
    rules = FolderRules(root=("migrated", "2026"))
    tree = plan_tree([("a",)], Limits(max_folders=1), FolderOverflow.COLLAPSE, rules=rules)
    assert tree.target_path(("a",)) is None
    error = tree.error_for(("a",)) or ""
    assert "the target allows at most 1 folders" in error
    assert "Exclude part of the source tree" in error


def test_existing_folders_count_against_the_limit() -> None:
    limits = Limits(max_folders=3)
    tree = plan_tree(
        [("a", "b"), ("d",)], limits, FolderOverflow.COLLAPSE, existing=[("y",), ("z",)]
    )
    # room for one: empty a folds first, then "a - b" (equal assets, first by path)
    assert placed(tree, ("a",), ("d",), ("a", "b")) == [(), ("d",), ()]
    assert "at most 3 folders" in " ".join(tree.warnings_for(("a", "b")))


def test_existing_folders_always_fit() -> None:
    limits = Limits(max_folders=1)
    tree = plan_tree([("a",), ("b",)], limits, FolderOverflow.COLLAPSE, existing=[("b",)])
    assert placed(tree, ("a",), ("b",)) == [(), ("b",)]


def test_contentstack_300_folder_limit() -> None:
    paths = [(f"folder {i:03d}",) for i in range(310)]
    tree = plan_tree(paths, CS, FolderOverflow.COLLAPSE)
    assert len(tree.target_folders()) == 300
    folded = [p for p in paths if tree.target_path(p) == ()]
    assert folded == paths[:10]  # equal assets: first by path
    assert all("at most 300 folders" in " ".join(tree.warnings_for(p)) for p in folded)


def test_truncated_folders_share_their_ancestor_under_the_count_limit() -> None:
    limits = Limits(max_folder_depth=1, max_folders=1)
    tree = plan_tree([("a", "b"), ("c",)], limits, FolderOverflow.TRUNCATE,
                     assets={("a",): 1, ("a", "b"): 1, ("c",): 1})
    # a holds its own asset and a/b's: c, holding fewer, folds into the root
    assert placed(tree, ("a",), ("a", "b"), ("c",)) == [("a",), ("a",), ()]
