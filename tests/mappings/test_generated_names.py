"""Names the mapping generates (collision suffixes, shortened, collapsed and reserved-name
replacements) go through the target's name rules after they are generated, so what the plan
shows is the name the target stores ("migrate does exactly what plan said")."""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.base import Limits
from connectors.contentstack.connector import LIMITS as CONTENTSTACK_LIMITS
from connectors.contentstack.connector import stored_filename
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector, parameterize
from connectors.webflow import WebflowConfig, WebflowConnector
from mappings.fields import (
    FilenameRules,
    filename_changes,
    resolve_filename_collisions,
    target_filename,
)
from mappings.folders import FolderOverflow, NameRules, plan_tree, sanitize_name


def _local(tmp: Path) -> Limits:
    return LocalFolderConnector(LocalConfig(connector="local", path=tmp)).limits


def _storyblok(tmp: Path) -> Limits:
    cfg = StoryblokConfig(connector="storyblok", space_id=1, token=SecretStr("t"))
    return StoryblokConnector(cfg).limits


def _webflow(tmp: Path) -> Limits:
    cfg = WebflowConfig(connector="webflow", site_id="0123456789abcdef01234567",
                        token=SecretStr("t"))
    return WebflowConnector(cfg).limits


def _contentstack(tmp: Path) -> Limits:
    return CONTENTSTACK_LIMITS


TARGETS: dict[str, tuple[Callable[[Path], Limits], Callable[[str], str]]] = {
    # each target's Limits, and the rewrite the target itself applies to a stored file name
    "local": (_local, lambda name: name),
    "contentstack": (_contentstack, stored_filename),
    "storyblok": (_storyblok, parameterize),
    "webflow": (_webflow, lambda name: name),
}


def test_cafe_pair_to_contentstack_plans_the_name_contentstack_stores() -> None:
    nfc, nfd = "café.txt", unicodedata.normalize("NFD", "café.txt")
    names = [("a1", target_filename(nfc, CONTENTSTACK_LIMITS)),
             ("a2", target_filename(nfd, CONTENTSTACK_LIMITS))]
    final = resolve_filename_collisions(names, limits=CONTENTSTACK_LIMITS)
    assert final == {"a1": "café.txt", "a2": "café_(2).txt"}
    assert stored_filename("café_(2).txt") == "café_(2).txt"
    (warning,) = filename_changes(nfd, "café_(2).txt", CONTENTSTACK_LIMITS)
    assert warning.startswith("renamed to 'café_(2).txt'")


def test_a_suffix_never_takes_a_name_another_asset_has_once_rewritten() -> None:
    # "photo (2).jpg" is stored "photo_(2).jpg" by Contentstack: the third asset, plainly
    # called "photo_(2).jpg", keeps it, and the suffixed twin moves on to _(3)
    names = [("a", "photo.jpg"), ("b", "photo.jpg"), ("c", "photo_(2).jpg")]
    final = resolve_filename_collisions(names, limits=CONTENTSTACK_LIMITS)
    assert final == {"a": "photo.jpg", "b": "photo_(3).jpg", "c": "photo_(2).jpg"}


def test_suffixed_reserved_and_shortened_folder_names_settle() -> None:
    limits = Limits(max_name_bytes=12, reserved_names=frozenset({"aux"}),
                    case_insensitive_names=True)
    # shortening "AUX" + spaces bares the reserved name; a second pass must change it
    assert sanitize_name("AUX" + " " * 20 + "tail", limits) == "AUX_"
    assert target_filename("AUX" + " " * 20 + "tail", limits) == "AUX_"


_PIECES = ["café", unicodedata.normalize("NFD", "café"), "Photo", "photo", "PHOTO", "a b",
           "x.y", "名前" * 30, "e" * 120, "manifest", ".assetferry.json", "AUX", "#tag",
           "   ", "..", "über", "é" * 90, "q\u00a0r", "tab\tx"]


def _random_name(rng: random.Random) -> str:
    parts = [rng.choice(_PIECES) for _ in range(rng.randint(1, 3))]
    stem = rng.choice(["", " ", "."]).join(parts)
    if rng.random() < 0.3:
        stem += f" ({rng.randint(2, 4)})"
    ext = rng.choice(["", ".jpg", ".tar.gz", ".JPG", "." + "x" * 10])
    return stem + ext


def _variants(name: str, rng: random.Random) -> list[str]:
    """Spellings a target may take for one name: NFD, other case, spaces for underscores."""
    out = [name, unicodedata.normalize("NFD", name), name.upper(), name.replace("_", " ")]
    rng.shuffle(out)
    return out[: rng.randint(2, 4)]


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("seed", range(12))
def test_generated_file_names_are_what_the_target_stores(
    target: str, seed: int, tmp_path: Path
) -> None:
    make_limits, stored = TARGETS[target]
    limits = make_limits(tmp_path)
    rules = NameRules.of(limits)
    rng = random.Random(f"{target}-{seed}")
    wanted: list[tuple[str, str]] = []
    for group in range(rng.randint(2, 6)):
        for n, spelling in enumerate(_variants(_random_name(rng), rng)):
            wanted.extend((f"{group}-{n}-{i}", spelling) for i in range(rng.randint(1, 3)))
    taken = [rng.choice(_PIECES)] if limits.folders_and_files_share_names else []
    names = [(sid, target_filename(raw, limits)) for sid, raw in wanted]
    final = resolve_filename_collisions(names, limits=limits, taken=taken)
    planned = [name for name in final.values() if name is not None]
    for name in planned:
        assert target_filename(name, limits) == name, name
        assert stored(name) == name, name
        assert rules.fits(name), name
        assert not rules.is_reserved(name), name
        assert not any(c in limits.forbidden_name_chars for c in name), name
    keys = [rules.key(name) for name in planned]
    assert len(set(keys)) == len(keys), planned
    assert not {rules.key(t) for t in taken} & set(keys)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("seed", range(8))
def test_generated_folder_names_are_what_the_target_stores(
    target: str, seed: int, tmp_path: Path
) -> None:
    make_limits, _ = TARGETS[target]
    limits = make_limits(tmp_path)
    rules = NameRules.of(limits)
    rng = random.Random(f"folders-{target}-{seed}")
    paths = set()
    for _ in range(rng.randint(3, 10)):
        depth = rng.randint(1, 8)
        base = [_random_name(rng).strip() or "x" for _ in range(depth)]
        for spelling in _variants("\x00".join(base), rng):
            paths.add(tuple(spelling.split("\x00")))
    tree = plan_tree(sorted(paths), limits, FolderOverflow.COLLAPSE)
    placed = [t for t in (tree.target_path(p) for p in paths) if t is not None]
    siblings: dict[tuple[str, ...], set[str]] = {}
    for target_path in tree.target_folders():
        name = target_path[-1]
        assert sanitize_name(name, limits) == name, target_path
        assert rules.fits(name), target_path
        assert not rules.is_reserved(name), target_path
        key = rules.key(name)
        assert key not in siblings.setdefault(target_path[:-1], set()), target_path
        siblings[target_path[:-1]].add(key)
    assert placed or not paths


def test_alphabet_covers_whitespace_rewrite() -> None:
    # the random names must exercise the rule the Contentstack bug was about
    assert any(any(c in string.whitespace or c == "\u00a0" for c in p) for p in _PIECES)


NAME_CORNERS = ["photo.jpg", "a b.jpg", " lead.jpg", "trail.jpg ", ".env", "..", ".", "",
                "a.b.c.jpg", "CON.txt", "con", "AUX   tail.png", "x" * 300 + ".jpg",
                "tab\there.jpg", "new\nline.jpg", "del\x7f.jpg", "q?.jpg", "a/b.jpg",
                "a\\b.jpg", "star*.png", "café.jpg", "cafe\u0301.jpg", "end.", "archive.tar.gz",
                ".assetferry-tmp-x", ".manifest.json", "UPPER.JPG", "-dash-.jpg", "[x].jpg"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_compiled_filename_rules_give_what_every_rule_gives(
        target: str, tmp_path: Path) -> None:
    """``target_filename`` answers most names by one check (an ASCII name no rule changes):
    for every target, corner names and random ones come out exactly as from the full rules,
    also under short name limits."""
    limits = TARGETS[target][0](tmp_path)
    short = Limits(**{**{f: getattr(limits, f) for f in limits.__dataclass_fields__},
                      "max_name_length": 12, "max_name_bytes": 14})
    rng = random.Random(12)
    alphabet = string.printable + "..  \u00e9\u0301\u4e2d\x00"
    names = NAME_CORNERS + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
                            for _ in range(400)]
    for rules in (FilenameRules(limits), FilenameRules(short)):
        for name in names:
            assert rules(name) == rules.slow(name), (target, name)
