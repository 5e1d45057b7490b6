"""Fitting metadata, filenames and sizes to a target."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from connectors.base import METADATA_FIELDS, AssetMeta, Limits, LocalizedText
from mappings.fields import (
    map_meta,
    resolve_filename_collisions,
    size_problem,
    target_filename,
)
from mappings.folders import NameRules

FORBIDDEN = "#%^+\\/?*:|\"'<>{}=,"
CS = Limits(forbidden_name_chars=FORBIDDEN)
MB = 1024 * 1024

FULL = AssetMeta(
    title="Sunset",
    description="Over the sea",
    alt_text="A red sky",
    tags=(" sea ", "sky", "", "sea", "   ", "Sky"),
    copyright="© Ann",
    focus="0.5,0.25",
    locales={
        "fr": LocalizedText(title="Coucher", alt_text="Un ciel rouge"),
        "de": LocalizedText(alt_text="Ein roter Himmel"),
    },
)


# --- metadata ------------------------------------------------------------------------------


def test_everything_kept_when_the_target_stores_everything() -> None:
    mapped = map_meta(FULL, Limits(metadata_fields=METADATA_FIELDS))
    assert mapped.dropped == ()
    assert mapped.warnings == ()
    assert mapped.meta.title == "Sunset"
    assert mapped.meta.alt_text == "A red sky"
    assert mapped.meta.focus == "0.5,0.25"
    assert dict(mapped.meta.locales) == dict(FULL.locales)


def test_tags_deduplicated_order_kept_blanks_removed() -> None:
    mapped = map_meta(FULL, Limits())
    assert mapped.meta.tags == ("sea", "sky", "Sky")


def test_unsupported_fields_are_dropped_with_warnings() -> None:
    limits = Limits(metadata_fields=frozenset({"title", "tags"}))
    mapped = map_meta(FULL, limits)
    assert mapped.dropped == ("description", "alt_text", "copyright", "focus", "locales")
    assert "alt_text dropped: the target has no such field" in mapped.warnings
    assert "focus dropped: the target has no such field" in mapped.warnings
    assert mapped.meta == AssetMeta(title="Sunset", tags=("sea", "sky", "Sky"))
    (locales_warning,) = [w for w in mapped.warnings if w.startswith("locales")]
    assert "de, fr" in locales_warning


def test_a_field_the_target_lacks_is_carried_into_the_description() -> None:
    meta = AssetMeta(description="A bird", alt_text="A bird", copyright="© x")
    mapped = map_meta(meta, Limits(metadata_fields=frozenset({"description"})))
    assert mapped.meta.description == "A bird\n\nCopyright: © x"
    assert mapped.meta.alt_text is None
    assert mapped.dropped == ()
    assert mapped.warnings == (
        "copyright carried into description: the target has no copyright field",)
    other = map_meta(AssetMeta(description="A bird", alt_text="Another"),
                     Limits(metadata_fields=frozenset({"description"})))
    assert other.dropped == ("alt_text",)
    assert other.warnings == (
        "alt_text dropped: the target has no such field and description already holds "
        "other text; map it in [mapping.fields] or set alt_text = false",)


def test_empty_fields_are_dropped_silently() -> None:
    meta = AssetMeta(title="Only a title", tags=("", "  "), locales={"fr": LocalizedText()})
    mapped = map_meta(meta, Limits(metadata_fields=frozenset({"title"})))
    assert mapped.dropped == ()
    assert mapped.warnings == ()
    assert mapped.meta == AssetMeta(title="Only a title")


def test_locale_overrides_of_a_missing_field_go_with_it() -> None:
    limits = Limits(metadata_fields=frozenset({"title", "locales"}))
    mapped = map_meta(FULL, limits)
    assert dict(mapped.meta.locales) == {"fr": LocalizedText(title="Coucher")}
    assert (
        "alt_text dropped: the target has no such field (also the overrides for de, fr)"
        in mapped.warnings
    )
    assert "locales" not in mapped.dropped


def test_a_locale_override_alone_is_reported() -> None:
    meta = AssetMeta(locales={"de": LocalizedText(copyright="© Anna")})
    mapped = map_meta(meta, Limits(metadata_fields=frozenset({"locales"})))
    assert mapped.dropped == ("copyright",)
    assert mapped.meta.locales == {}


def test_metadata_fingerprints_stay_what_existing_ledgers_hold() -> None:
    """Every ledger row holds these hashes (a changed one sends an update for every asset):
    pinned to the values assetferry has always computed."""
    assert AssetMeta().fingerprint() == "dbc7a456ebaa8f72"
    assert AssetMeta(title="").fingerprint() == "24ac10a856364fbe"  # "" is not None
    assert AssetMeta(tags=("",)).fingerprint() == "a3d563d2af7dd2d9"
    assert FULL.fingerprint() == "56f4e1bf347d781a"
    assert replace(FULL, extra={"source": "Ü"}).fingerprint() == "da876808ed72ece0"


def test_map_meta_leaves_its_input_alone() -> None:
    before = FULL.fingerprint()
    map_meta(FULL, Limits(metadata_fields=frozenset()))
    assert FULL.fingerprint() == before
    assert FULL.tags[0] == " sea "


# --- filenames -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("my photo?.JPG", "my photo_.JPG"),
        ("a:b|c.png", "a_b_c.png"),
        ("  spaced.png  ", "spaced.png"),
        ("trailing.png.", "trailing.png"),
        (".", "_"),
        ("..", "_"),
        ("", "_"),
        ("   ", "_"),
        (".env", "env"),
        ("tab\tname.txt", "tab_name.txt"),
        ("Cafe\u0301.jpg", "Caf\u00e9.jpg"),
        ("写真.jpeg", "写真.jpeg"),
    ],
)
def test_target_filename(raw: str, expected: str) -> None:
    assert target_filename(raw, CS) == expected


def test_target_filename_keeps_the_extension_when_cut() -> None:
    limits = Limits(max_name_length=12)
    assert target_filename("a very long name.jpeg", limits) == "a very.jpeg"
    assert target_filename("archive-2024.tar.gz", limits) == "archive-2.gz"
    assert len(target_filename("x" * 300 + ".png", limits)) == 12
    assert target_filename("x" * 300 + ".png", limits).endswith(".png")


def test_target_filename_without_room_for_the_extension() -> None:
    limits = Limits(max_name_length=5)
    assert target_filename("photo.verylongext", limits) == "photo"
    assert target_filename("noextension-at-all", limits) == "noext"


# --- filename collisions -------------------------------------------------------------------


def test_collisions_get_suffixes_before_the_extension_in_source_id_order() -> None:
    names = [("id-2", "photo.jpg"), ("id-1", "photo.jpg"), ("id-3", "photo.jpg"), ("x", "a.png")]
    assert resolve_filename_collisions(names) == {
        "id-1": "photo.jpg",
        "id-2": "photo (2).jpg",
        "id-3": "photo (3).jpg",
        "x": "a.png",
    }


def test_collision_suffixes_do_not_depend_on_input_order() -> None:
    names = [(f"id-{i:02d}", name) for i, name in enumerate(["a.jpg", "b.jpg"] * 10)]
    expected = resolve_filename_collisions(names)
    assert len(set(expected.values())) == len(names)
    rng = random.Random(7)
    for _ in range(10):
        shuffled = list(names)
        rng.shuffle(shuffled)
        assert resolve_filename_collisions(shuffled) == expected


def test_suffix_skips_names_taken_plainly() -> None:
    names = [("a", "photo (2).jpg"), ("b", "photo.jpg"), ("c", "photo.jpg")]
    assert resolve_filename_collisions(names) == {
        "a": "photo (2).jpg",
        "b": "photo.jpg",
        "c": "photo (3).jpg",
    }


def test_collisions_are_exact_and_work_without_an_extension() -> None:
    names = [("1", "README"), ("2", "README"), ("3", "readme"), ("4", ".env"), ("5", ".env")]
    assert resolve_filename_collisions(names) == {
        "1": "README",
        "2": "README (2)",
        "3": "readme",
        "4": ".env",
        "5": ".env (2)",
    }


def test_suffixed_names_fit_the_length_limit_when_given() -> None:
    names = [("1", "abcdefgh.jpg"), ("2", "abcdefgh.jpg")]
    result = resolve_filename_collisions(names, max_name_length=12)
    assert result == {"1": "abcdefgh.jpg", "2": "abcd (2).jpg"}


def test_a_source_id_listed_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        resolve_filename_collisions([("1", "a.jpg"), ("1", "b.jpg")])


# --- sizes ---------------------------------------------------------------------------------

CONTENTSTACK_LIKE = Limits(max_file_size=700 * MB, max_file_size_by_kind={"document": 100 * MB})
WEBFLOW_LIKE = Limits(max_file_size_by_kind={"image": 4 * MB, "document": 10 * MB})


def test_size_problem_for_a_kind() -> None:
    assert (
        size_problem(120 * MB, "application/pdf", CONTENTSTACK_LIKE)
        == "file is 120.0 MB; the target accepts at most 100.0 MB for documents"
    )
    assert (
        size_problem(5 * MB, "image/png", WEBFLOW_LIKE)
        == "file is 5.0 MB; the target accepts at most 4.0 MB for images"
    )


def test_size_problem_for_any_file() -> None:
    limits = Limits(max_file_size=100 * MB)
    assert (
        size_problem(int(1.5 * 1024 * MB), "video/mp4", limits)
        == "file is 1.5 GB; the target accepts at most 100.0 MB per file"
    )


def test_size_problem_shows_bytes_when_the_rounded_sizes_look_equal() -> None:
    message = size_problem(100 * MB + 10, "application/pdf", Limits(max_file_size=100 * MB))
    assert message == (
        "file is 104,857,610 bytes; the target accepts at most 104,857,600 bytes per file"
    )


@pytest.mark.parametrize(
    ("size", "content_type", "limits"),
    [
        (None, "image/png", WEBFLOW_LIKE),
        (4 * MB, "image/png", WEBFLOW_LIKE),
        (9 * MB, "application/pdf", WEBFLOW_LIKE),
        (500 * MB, "image/png", CONTENTSTACK_LIKE),
        (10**12, "image/png", Limits()),
    ],
)
def test_no_size_problem(size: int | None, content_type: str, limits: Limits) -> None:
    assert size_problem(size, content_type, limits) is None


def test_filename_whitespace_rewritten_only_where_the_target_does_it() -> None:
    from connectors.base import Limits
    from mappings.fields import target_filename

    assert target_filename("image 01.png", Limits(filename_rewrites_whitespace=True)) == (
        "image_01.png"
    )
    assert target_filename("image 01.png", Limits()) == "image 01.png"


# --- property: file names always fit and never merge ---------------------------------------

_NAME_PIECES = ["a", "A", "photo", "PHOTO", ".", " ", ":", "%20", "测试文件", "😀", "e\u0301", "é",
                ".png", ".JPG", "..", "CON", "\x07", "long" * 10]


@pytest.mark.parametrize("seed", range(60))
def test_random_filenames_fit_the_limits_and_stay_distinct(seed: int) -> None:
    rng = random.Random(seed)
    limits = Limits(
        forbidden_name_chars=":/\\",
        max_name_length=rng.choice([None, 12, 40]),
        max_name_bytes=rng.choice([None, 16, 30, 255]),
        case_insensitive_names=rng.random() < 0.5,
        reserved_names=frozenset({"CON"}),
    )
    rules = NameRules.of(limits)
    names = [(f"{i:03d}", "".join(rng.choice(_NAME_PIECES) for _ in range(rng.randint(1, 6))))
             for i in range(rng.randint(1, 25))]
    taken = {rng.choice(["photo", "A", "x"])}
    sanitised = [(sid, target_filename(name, limits)) for sid, name in names]
    for _, name in sanitised:
        assert name
        assert rules.fits(name), name
        assert not rules.is_reserved(name), name
    final = resolve_filename_collisions(sanitised, rules=rules, taken=taken)
    placed = [n for n in final.values() if n is not None]
    assert all(rules.fits(n) for n in placed)
    keys = [rules.key(n) for n in placed]
    assert len(keys) == len(set(keys))  # no two files merge as the target compares names
    assert not {rules.key(t) for t in taken} & set(keys)  # nor take a folder's name


@pytest.mark.parametrize("limits", [Limits(), Limits(min_file_size=1), CONTENTSTACK_LIKE])
def test_a_negative_size_is_a_broken_source_record_whatever_the_target(limits: Limits) -> None:
    """One item-level message on every target (a Storyblok or Webflow source's -5 read "file
    is -5 bytes; the target accepts files of at least 0 bytes")."""
    assert size_problem(-5, "image/png", limits) == (
        "the source lists this file as -5 bytes, which no file can be (a broken record in the "
        "source); fix or re-upload the asset there, then run again")
