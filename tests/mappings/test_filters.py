"""Filter rules (mappings/filters.py), table by table: each rule excludes what it names, keeps
the rest, and says which rule decided."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from connectors.base import Asset
from mappings.filters import (
    FilterRules,
    check,
    needs_references,
    parse_since,
    parse_size,
    path_glob,
    type_glob,
)


def asset(path: str, *, ctype: str = "image/jpeg", size: int | None = 1000,
          estimate: int | None = None, updated: datetime | None = None,
          created: datetime | None = None, sid: str = "a1") -> Asset:
    *folders, name = path.split("/")
    return Asset(sid, name, tuple(folders), None, ctype, size, size_estimate=estimate,
                 updated_at=updated, created_at=created)


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("*.psd", "design/logo.psd", True),            # no '/': the name at any depth
    ("*.psd", "logo.psd", True),
    ("*.psd", "design/logo.psd.bak", False),
    ("drafts/**", "drafts/a.jpg", True),
    ("drafts/**", "drafts/x/y/a.jpg", True),
    ("drafts/**", "old/drafts/a.jpg", False),      # with '/': from the root
    ("drafts/", "drafts/x/a.jpg", True),           # a trailing '/': everything below
    ("/drafts/*", "drafts/a.jpg", True),           # a leading '/' is allowed
    ("drafts/*", "drafts/x/a.jpg", False),         # '*' stays within one name
    ("**/raw/*.tif", "raw/a.tif", True),           # '**' may be no folder at all
    ("**/raw/*.tif", "2024/06/raw/a.tif", True),
    ("**/raw/*.tif", "2024/raw/sub/a.tif", False),
    ("photo?.jpg", "photo1.jpg", True),
    ("photo?.jpg", "photo10.jpg", False),
    ("photo[0-4].jpg", "x/photo3.jpg", True),
    ("photo[!0-4].jpg", "x/photo3.jpg", False),
    ("photo[!0-4].jpg", "x/photo7.jpg", True),
    ("Photo.jpg", "photo.jpg", False),             # case-sensitive
    ("a+b (1).jpg", "a+b (1).jpg", True),          # regex characters are literal
    ("über/*", "über/ß.png", True),
])
def test_path_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(path_glob(pattern).fullmatch(path)) is matches


@pytest.mark.parametrize("bad", ["", "  ", "/", "photo[1.jpg"])
def test_bad_path_globs_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"pattern|\["):
        path_glob(bad)


@pytest.mark.parametrize(("text", "size"), [
    (0, 0), (1234, 1234), ("1234", 1234), ("50MB", 50_000_000), ("50 mb", 50_000_000),
    ("50MiB", 50 * 1024**2), ("1.5 GiB", int(1.5 * 1024**3)), ("2k", 2000), ("2KB", 2000),
    ("3 KiB", 3072), ("1TB", 10**12), ("10B", 10), (".5MB", 500_000), (None, None),
])
def test_sizes_with_units(text: object, size: int | None) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["50 MiBs", "fifty", "-5", -5, "5 XB", "", True, 1.5])
def test_bad_sizes_are_refused_with_the_accepted_units(bad: object) -> None:
    with pytest.raises(ValueError, match=r"MB|negative|bytes"):
        parse_size(bad)


@pytest.mark.parametrize(("value", "when"), [
    (date(2026, 1, 31), datetime(2026, 1, 31, tzinfo=UTC)),
    ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
    ("2026-01-31T08:00:00Z", datetime(2026, 1, 31, 8, tzinfo=UTC)),
    ("2026-01-31T08:00:00+02:00", datetime(2026, 1, 31, 6, tzinfo=UTC)),
    (datetime(2026, 1, 31, 8), datetime(2026, 1, 31, 8, tzinfo=UTC)),  # noqa: DTZ001 - naive: UTC
    (datetime(2026, 1, 31, 8, tzinfo=timezone(timedelta(hours=-5))),
     datetime(2026, 1, 31, 13, tzinfo=UTC)),
])
def test_updated_since_forms(value: object, when: datetime) -> None:
    assert parse_since(value) == when


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "31/01/2026", 20260131])
def test_bad_dates_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="2026-01-31"):
        parse_since(bad)


@pytest.mark.parametrize(("pattern", "ok"), [
    ("image/*", True), ("IMAGE/PNG", True), ("*", True), ("*/*", True),
    ("image", False), ("image/", False), ("/png", False), ("a/b/c", False),
])
def test_content_type_globs(pattern: str, ok: bool) -> None:
    if ok:
        assert type_glob(pattern) == pattern.strip().lower()
    else:
        with pytest.raises(ValueError, match="type/subtype"):
            type_glob(pattern)


OLD = datetime(2025, 6, 1, tzinfo=UTC)
NEW = datetime(2026, 3, 1, tzinfo=UTC)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)

CASES = [
    # (rules, asset, rule that excludes it or None, words the reason holds)
    (FilterRules(include=("photos/**",)), asset("photos/a.jpg"), None, ""),
    (FilterRules(include=("photos/**",)), asset("docs/a.pdf"), "include", "none of 'photos/**'"),
    (FilterRules(include=("photos/**", "*.pdf")), asset("docs/a.pdf"), None, ""),
    (FilterRules(exclude=("drafts/**",)), asset("drafts/a.jpg"), "exclude", "'drafts/**'"),
    (FilterRules(exclude=("drafts/**",)), asset("final/a.jpg"), None, ""),
    (FilterRules(include=("**",), exclude=("*.tmp",)), asset("x/y.tmp"), "exclude", "'*.tmp'"),
    (FilterRules(content_types=("image/*",)), asset("a.pdf", ctype="application/pdf"),
     "content_types", "'application/pdf' matches none of 'image/*'"),
    (FilterRules(content_types=("image/*",)), asset("a.PNG", ctype="IMAGE/PNG"), None, ""),
    (FilterRules(exclude_content_types=("video/*",)), asset("a.mp4", ctype="video/mp4"),
     "exclude_content_types", "'video/mp4' matches 'video/*'"),
    (FilterRules(min_size=1000), asset("a.jpg", size=999), "min_size", "999 bytes, under 1,000"),
    (FilterRules(min_size=1000), asset("a.jpg", size=1000), None, ""),
    (FilterRules(max_size=1000), asset("a.jpg", size=1001), "max_size", "1,001 bytes, over 1,000"),
    (FilterRules(max_size=1000), asset("a.jpg", size=1000), None, ""),
    # a size the source only estimates decides too, and says so
    (FilterRules(max_size=1000), asset("a.jpg", size=None, estimate=5000), "max_size",
     "about 5,000 bytes"),
    (FilterRules(updated_since=SINCE), asset("a.jpg", updated=OLD), "updated_since",
     "before 2026-01-01"),
    (FilterRules(updated_since=SINCE), asset("a.jpg", updated=NEW), None, ""),
    (FilterRules(updated_since=SINCE), asset("a.jpg", created=OLD), "updated_since", "2025-06-01"),
    (FilterRules(updated_since=SINCE),
     asset("a.jpg", updated=datetime(2025, 1, 1)),  # noqa: DTZ001 - a naive time on purpose
     "updated_since", "before"),
    # the first rule in the documented order names the exclusion
    (FilterRules(exclude=("*.jpg",), max_size=10), asset("a.jpg", size=99), "exclude", ""),
]


@pytest.mark.parametrize(("rules", "item", "rule", "words"), CASES)
def test_each_rule_excludes_what_it_names(rules: FilterRules, item: Asset, rule: str | None,
                                          words: str) -> None:
    verdict = check(item, rules)
    if rule is None:
        assert verdict.excluded is None
        return
    assert verdict.excluded is not None
    assert verdict.excluded.rule == f"mapping.filters.{rule}"
    assert verdict.excluded.reason.startswith(f"excluded by mapping.filters.{rule}: ")
    assert words in verdict.excluded.reason


@pytest.mark.parametrize(("rules", "item", "note"), [
    (FilterRules(min_size=10), asset("a.jpg", size=None), "tells no size"),
    (FilterRules(updated_since=SINCE), asset("a.jpg"), "tells no update time"),
    (FilterRules(only_referenced=True), asset("a.jpg"), "were not read"),
])
def test_a_rule_that_cannot_decide_keeps_the_asset_with_a_note(
        rules: FilterRules, item: Asset, note: str) -> None:
    verdict = check(item, rules)
    assert verdict.excluded is None
    assert any(note in n for n in verdict.notes)


def test_only_referenced_excludes_unreferenced_assets_and_keeps_unreadable_ones() -> None:
    rules = FilterRules(only_referenced=True)
    refs: dict[str, int | str] = {"used": 2, "unused": 0, "broken": "503 from the API"}
    assert check(asset("a.jpg", sid="used"), rules, refs).excluded is None
    unused = check(asset("b.jpg", sid="unused"), rules, refs).excluded
    assert unused is not None
    assert unused.rule == "mapping.filters.only_referenced"
    assert "no entry references it" in unused.reason
    broken = check(asset("c.jpg", sid="broken"), rules, refs)
    assert broken.excluded is None
    assert "503 from the API" in broken.notes[0]


def test_references_are_read_only_for_assets_no_other_rule_excludes() -> None:
    rules = FilterRules(exclude=("drafts/**",), only_referenced=True)
    assert needs_references(asset("final/a.jpg"), rules)
    assert not needs_references(asset("drafts/a.jpg"), rules)
    assert not needs_references(asset("final/a.jpg"), FilterRules(exclude=("x",)))


def test_no_rules_excludes_nothing() -> None:
    assert not FilterRules().active
    assert check(asset("drafts/a.tmp", size=None), FilterRules()) == check(
        asset("x.jpg"), FilterRules())
