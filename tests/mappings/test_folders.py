"""Folder-tree reshaping: names, collisions, existing folders, depth and count limits."""

from __future__ import annotations

import random
import unicodedata

import pytest

from connectors.base import FolderPath, Limits
from mappings.folders import FolderOverflow, NameRules, TreeMap, plan_tree, sanitize_name

FORBIDDEN = "#%^+\\/?*:|\"'<>{}=,"
CS = Limits(max_folder_depth=5, max_folders=300, forbidden_name_chars=FORBIDDEN)
DEEP: FolderPath = ("a", "b", "c", "d", "e", "f", "g")


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
    tree = plan_tree([DEEP], CS, FolderOverflow.COLLAPSE)
    assert tree.target_path(DEEP) == ("a", "b", "c", "d", "e - f - g")
    assert tree.target_path(DEEP[:6]) == ("a", "b", "c", "d", "e - f")
    assert tree.target_path(DEEP[:5]) == ("a", "b", "c", "d", "e")
    assert tree.warnings_for(DEEP) == (
        "depth 7 > 5: levels 'f / g' collapsed into 'e - f - g'",
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
    tree = plan_tree([("a", "b", "c:d"), ("a", "b - c_d")], limits, FolderOverflow.COLLAPSE)
    # the real folder "b - c_d" keeps its name; the collapsed b/c:d is suffixed
    assert tree.target_path(("a", "b - c_d")) == ("a", "b - c_d")
    assert tree.target_path(("a", "b", "c:d")) == ("a", "b - c_d (2)")
    assert tree.target_path(("a", "b")) == ("a", "b")


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
    tree = plan_tree([DEEP], CS, FolderOverflow.TRUNCATE)
    assert tree.target_path(DEEP) == DEEP[:5]
    assert tree.target_path(DEEP[:6]) == DEEP[:5]
    (warning,) = tree.warnings_for(DEEP)
    assert warning.startswith("depth 7 > 5: levels 'f / g' dropped")
    assert "'a / b / c / d / e'" in warning
    assert 'folder_overflow = "collapse"' in warning
    assert tree.target_folders() == [DEEP[:i] for i in range(1, 6)]
    assert tree.renamed[DEEP] == DEEP[:5]


def test_deep_tree_fail() -> None:
    tree = plan_tree([DEEP], CS, FolderOverflow.FAIL)
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
    assert plan_tree([DEEP], CS, "truncate").target_path(DEEP) == DEEP[:5]  # type: ignore[arg-type]


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


def test_folder_count_overflow_drops_the_deepest_first() -> None:
    limits = Limits(max_folders=3)
    tree = plan_tree([("a", "b", "c"), ("d",)], limits, FolderOverflow.COLLAPSE)
    assert placed(tree, ("a",), ("d",), ("a", "b"), ("a", "b", "c")) == [
        ("a",),
        ("d",),
        ("a", "b"),
        None,
    ]
    error = tree.error_for(("a", "b", "c")) or ""
    assert "the target allows at most 3 folders" in error
    assert "'a / b / c'" in error
    assert "Exclude part of the source tree" in error
    assert tree.target_folders() == [("a",), ("d",), ("a", "b")]


def test_existing_folders_count_against_the_limit() -> None:
    limits = Limits(max_folders=3)
    tree = plan_tree(
        [("a", "b"), ("d",)], limits, FolderOverflow.COLLAPSE, existing=[("y",), ("z",)]
    )
    assert placed(tree, ("a",), ("d",), ("a", "b")) == [("a",), None, None]
    assert "2 already in the target" in (tree.error_for(("d",)) or "")


def test_existing_folders_always_fit() -> None:
    limits = Limits(max_folders=1)
    tree = plan_tree([("a",), ("b",)], limits, FolderOverflow.COLLAPSE, existing=[("b",)])
    assert placed(tree, ("a",), ("b",)) == [None, ("b",)]


def test_contentstack_300_folder_limit() -> None:
    paths = [(f"folder {i:03d}",) for i in range(310)]
    tree = plan_tree(paths, CS, FolderOverflow.COLLAPSE)
    assert len(tree.target_folders()) == 300
    unplaced = [p for p in paths if tree.target_path(p) is None]
    assert unplaced == paths[300:]
    assert all("at most 300 folders" in (tree.error_for(p) or "") for p in unplaced)


def test_truncated_folders_share_their_ancestor_under_the_count_limit() -> None:
    limits = Limits(max_folder_depth=1, max_folders=1)
    tree = plan_tree([("a", "b"), ("c",)], limits, FolderOverflow.TRUNCATE)
    assert placed(tree, ("a",), ("a", "b"), ("c",)) == [("a",), ("a",), None]


# --- properties over random trees ----------------------------------------------------------

_PIECES = ["a", "b", "Foto", "x:y", "x?y", "x_y", " ", ".", "é", "e\u0301", "写真", "#", "long" * 6,
           "A", "FOTO", "报告" * 5, "😀", "CON"]


def _random_tree(rng: random.Random) -> list[FolderPath]:
    paths: list[FolderPath] = []
    for _ in range(rng.randint(1, 40)):
        depth = rng.randint(1, 8)
        base = rng.choice(paths) if paths and rng.random() < 0.6 else ()
        path = list(base[: rng.randint(0, len(base))])
        while len(path) < depth:
            path.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 3))))
        paths.append(tuple(path))
    return paths


def _random_limits(rng: random.Random) -> Limits:
    return Limits(
        max_folder_depth=rng.choice([None, 0, 1, 2, 3, 5]),
        max_folders=rng.choice([None, 5, 20, 300]),
        forbidden_name_chars=FORBIDDEN,
        max_name_length=rng.choice([None, 8, 12, 40]),
        max_name_bytes=rng.choice([None, None, 10, 16, 30]),
        case_insensitive_names=rng.random() < 0.5,
        reserved_names=frozenset({"CON"}) if rng.random() < 0.5 else frozenset(),
    )


def _intent(path: FolderPath, limits: Limits, policy: FolderOverflow) -> FolderPath:
    depth = limits.max_folder_depth
    overflow = depth is not None and len(path) > depth
    if overflow and (policy is FolderOverflow.TRUNCATE or depth == 0):
        return path[:depth]
    return path


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("policy", list(FolderOverflow))
def test_random_trees_respect_the_limits(seed: int, policy: FolderOverflow) -> None:
    rng = random.Random(seed)
    paths = _random_tree(rng)
    limits = _random_limits(rng)
    existing = rng.sample(paths, k=min(2, len(paths))) if rng.random() < 0.3 else []
    existing_sanitized = [tuple(sanitize_name(n, limits) for n in p) for p in existing]
    existing_sanitized = [p for p in existing_sanitized if limits.max_folder_depth is None
                          or len(p) <= limits.max_folder_depth]
    tree = plan_tree(paths, limits, policy, existing=existing_sanitized)

    folders = tree.target_folders()
    assert len(folders) == len(set(folders))
    seen: set[FolderPath] = set()
    for folder in folders:  # parents first
        assert folder[:-1] == () or folder[:-1] in seen
        seen.add(folder)

    all_prefixes = {p[:i] for p in paths for i in range(1, len(p) + 1)}
    assert set(tree.placements) == all_prefixes | {()}
    by_target: dict[FolderPath, set[FolderPath]] = {}
    for source in all_prefixes:
        target = tree.target_path(source)
        if target is None:
            assert tree.error_for(source)
            # descendants can't be placed either; a collapsed one is a sibling of its
            # level-D ancestor in the target, so it may still fit
            depth = limits.max_folder_depth
            for other in all_prefixes:
                collapsed = policy is FolderOverflow.COLLAPSE and depth and len(other) > depth
                if other[: len(source)] == source and not collapsed:
                    assert tree.target_path(other) is None
            continue
        assert tree.error_for(source) is None
        assert target == () or target in seen
        if limits.max_folder_depth is not None:
            assert len(target) <= limits.max_folder_depth
        for name in target:
            assert name
            assert name == name.strip(" .\t")
            assert not set(name) & set(FORBIDDEN)
            assert unicodedata.is_normalized("NFC", name)
            if limits.max_name_length is not None:
                assert len(name) <= limits.max_name_length
            if limits.max_name_bytes is not None:
                assert len(name.encode()) <= limits.max_name_bytes
            assert not NameRules.of(limits).is_reserved(name)
        by_target.setdefault(target, set()).add(_intent(source, limits, policy))
    # only truncation (or a target without folders) merges different source folders
    assert all(len(intents) == 1 for intents in by_target.values())
    # siblings are distinct as the target compares names (case, normalisation)
    rules = NameRules.of(limits)
    keys = [(*f[:-1], rules.key(f[-1])) for f in folders]
    assert len(keys) == len(set(keys))

    if limits.max_folders is not None:
        new = set(folders) - {p[:i] for p in existing_sanitized for i in range(1, len(p) + 1)}
        have = {p[:i] for p in existing_sanitized for i in range(1, len(p) + 1)}
        assert len(new) <= max(limits.max_folders - len(have), 0)

    shuffled = list(paths)
    rng.shuffle(shuffled)
    again = plan_tree(shuffled, limits, policy, existing=reversed(existing_sanitized))
    assert dict(again.placements) == dict(tree.placements)
    assert again.target_folders() == folders
