"""[mapping.fields] and [mapping.tags] rules, table-driven against every target's declared
fields and limits (each target opened as the pipeline opens it, its emulator in-process)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from connectors.base import AssetMeta, FieldSpec, Limits
from mappings.fields import FieldRuleError, FieldRules, TagRules, map_meta
from tests.connectors.test_conformance import TARGETS

FULL = AssetMeta(title="Sunset", description="Over the sea", alt_text="A red sky",
                 tags=("sea", "sky"), copyright="Ann", focus="0.5,0.25")
VALUES = {"filename": "sunset.jpg", "filename_stem": "sunset", "source": "Ann's camera"}


async def _limits(name: str, tmp_path: Path) -> Limits:
    async with TARGETS[name](tmp_path) as conn:
        return conn.limits


@pytest.fixture(scope="module", params=sorted(TARGETS))
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        str, Limits]:
    """(connector name, its Limits) as the opened connector declares them."""
    return request.param, anyio.run(_limits, request.param, tmp_path_factory.mktemp("t"))


def texts(meta: AssetMeta) -> str:
    """Every text the mapped metadata holds, for 'is it still somewhere' checks."""
    parts = [meta.title, meta.description, meta.alt_text, meta.copyright, meta.focus,
             *meta.tags, *meta.extra.values()]
    return "\n".join(p for p in parts if p)


def test_every_target_declares_its_fields(target: tuple[str, Limits]) -> None:
    name, limits = target
    declared = limits.declared_fields()
    expected = {
        "contentstack": {"title", "description", "tags"},
        "storyblok": {"title", "alt_text", "copyright", "focus", "tags", "source"},
        "webflow": {"alt_text"},
        "local": {"title", "description", "alt_text", "copyright", "focus", "tags"},
    }[name]
    assert set(declared) == expected
    assert all(spec.name == key for key, spec in declared.items())


def test_defaults_keep_every_value_or_say_why(target: tuple[str, Limits]) -> None:
    """Nothing is lost silently: each source value lands in some field or is a warning."""
    _, limits = target
    mapped = map_meta(FULL, limits, values=VALUES)
    held = texts(mapped.meta)
    for field, value in [("title", "Sunset"), ("description", "Over the sea"),
                         ("alt_text", "A red sky"), ("copyright", "Ann"),
                         ("focus", "0.5,0.25"), ("source", "Ann's camera")]:
        warned = any(w.startswith(f"{field} dropped:") for w in mapped.warnings)
        assert (value in held) != warned, (field, mapped)
        assert (field in mapped.dropped) == warned
    assert all(t in mapped.meta.tags for t in FULL.tags) != ("tags" in mapped.dropped)


def test_alt_text_goes_to_contentstack_description_when_the_source_has_none(
        target: tuple[str, Limits]) -> None:
    name, limits = target
    meta = AssetMeta(title="Sunset", alt_text="A red sky", copyright="Ann")
    mapped = map_meta(meta, limits)
    if name == "contentstack":
        assert mapped.meta.description == "A red sky\n\nCopyright: Ann"
        assert "alt_text carried into description: the target has no alt_text field" \
            in mapped.warnings
        assert "copyright carried into description: the target has no copyright field" \
            in mapped.warnings
        assert mapped.dropped == ()
    elif "alt_text" in limits.declared_fields():
        assert mapped.meta.alt_text == "A red sky"
        assert not any(w.startswith("alt_text") for w in mapped.warnings)


def test_description_goes_to_alt_text_where_there_is_no_description(
        target: tuple[str, Limits]) -> None:
    name, limits = target
    mapped = map_meta(AssetMeta(description="A bird on a wire"), limits)
    declared = limits.declared_fields()
    if "description" in declared:
        assert mapped.meta.description == "A bird on a wire"
        assert mapped.warnings == ()
    else:
        assert "alt_text" in declared, name
        assert mapped.meta.alt_text == "A bird on a wire"
        assert mapped.warnings == (
            "description carried into alt_text: the target has no description field",)


def test_explicit_false_drops_without_warning_everywhere(target: tuple[str, Limits]) -> None:
    _, limits = target
    rules = FieldRules({"alt_text": False, "copyright": False, "focus": False}).resolve(limits)
    mapped = map_meta(FULL, limits, rules, values=VALUES)
    assert "A red sky" not in texts(mapped.meta)
    assert "Copyright" not in texts(mapped.meta)
    assert mapped.meta.copyright is None
    assert mapped.meta.focus is None
    for field in ("alt_text", "copyright", "focus"):
        assert field not in mapped.dropped
        assert not any(w.startswith(field) for w in mapped.warnings)


def test_a_template_into_a_field_the_target_lacks_is_an_error_naming_the_key(
        target: tuple[str, Limits]) -> None:
    _, limits = target
    declared = limits.declared_fields()
    for field in ("title", "description", "alt_text", "copyright", "source", "caption"):
        rules = FieldRules({field: "{filename_stem}"})
        if field in declared:
            assert rules.resolve(limits).rules
            continue
        with pytest.raises(FieldRuleError) as info:
            rules.resolve(limits)
        assert info.value.key == f"mapping.fields.{field}"
        assert f"the target has no field {field!r}; its fields: " in str(info.value)
        assert ", ".join(declared) in str(info.value)


def test_title_template_on_every_target_with_a_title(target: tuple[str, Limits]) -> None:
    _, limits = target
    if "title" not in limits.declared_fields():
        pytest.skip("this target has no title field (the error is tested above)")
    rules = FieldRules({"title": "{title or filename_stem}"}).resolve(limits)
    assert map_meta(AssetMeta(), limits, rules, values=VALUES).meta.title == "sunset"
    assert map_meta(FULL, limits, rules, values=VALUES).meta.title == "Sunset"


def test_a_field_the_job_file_maps_elsewhere_warns_when_unused(
        target: tuple[str, Limits]) -> None:
    _, limits = target
    if "title" not in limits.declared_fields():
        pytest.skip("this target has no title field")
    rules = FieldRules({"title": "{filename_stem}"}).resolve(limits)
    mapped = map_meta(AssetMeta(title="Sunset"), limits, rules,
                      values={"filename_stem": "sunset"})
    assert mapped.meta.title == "sunset"
    assert mapped.warnings == (
        "title dropped: [mapping.fields] title does not use {title}; use it there or set "
        "title = false",)


def test_every_declared_text_field_holds_a_long_value_or_warns(
        target: tuple[str, Limits]) -> None:
    """A value longer than a declared max_length is cut with a warning, never silently."""
    _, limits = target
    long = "x" * 5000
    for name, spec in limits.declared_fields().items():
        if spec.kind != "text":
            continue
        rules = FieldRules({name: "{filename}"}).resolve(limits)
        mapped = map_meta(AssetMeta(), limits, rules, values={"filename": long})
        value = getattr(mapped.meta, name, None) or mapped.meta.extra.get(name)
        if spec.max_length is None:
            assert value == long
        else:
            assert value == long[: spec.max_length]
            assert any(w.startswith(f"{name} cut to") for w in mapped.warnings)


def test_a_declared_max_length_cuts_with_a_warning() -> None:
    limits = Limits(metadata_fields=frozenset({"title"}),
                    field_specs=(FieldSpec("title", max_length=5),))
    mapped = map_meta(AssetMeta(title="Sunset over the sea"), limits)
    assert mapped.meta.title == "Sunse"
    assert mapped.warnings == (
        "title cut to 5 characters: the target holds at most 5 and the value has 19",)


def test_a_focus_field_refuses_what_is_not_a_focus_point(target: tuple[str, Limits]) -> None:
    _, limits = target
    if "focus" not in limits.declared_fields():
        pytest.skip("this target has no focus field")
    rules = FieldRules({"focus": "{title}"}).resolve(limits)
    mapped = map_meta(FULL, limits, rules)
    assert mapped.meta.focus is None
    assert "focus 'Sunset' is not a focus point (x,y fractions 0..1): left empty" \
        in mapped.warnings


TAG_RULES = [
    (TagRules(), ("sea", "sky")),
    (TagRules(add=("migrated-2026",)), ("sea", "sky", "migrated-2026")),
    (TagRules(rename={"sea": "ocean"}), ("ocean", "sky")),
    (TagRules(drop=frozenset({"sky"})), ("sea",)),
    (TagRules(keep=False, add=("migrated-2026",)), ("migrated-2026",)),
    (TagRules(rename={"sea": "sky"}), ("sky",)),  # a rename onto another tag merges them
]


@pytest.mark.parametrize(("rules", "expected"), TAG_RULES)
def test_tag_rules_on_every_target(target: tuple[str, Limits], rules: TagRules,
                                   expected: tuple[str, ...]) -> None:
    _, limits = target
    mapped = map_meta(FULL, limits, FieldRules(tags=rules).resolve(limits))
    if "tags" in limits.declared_fields():
        assert mapped.meta.tags == expected
        assert "tags" not in mapped.dropped
    else:
        assert mapped.meta.tags == ()
        assert "tags" in mapped.dropped
        assert "tags dropped: the target has no such field" in mapped.warnings


def test_tags_false_sends_none_without_warning(target: tuple[str, Limits]) -> None:
    _, limits = target
    mapped = map_meta(FULL, limits, FieldRules({"tags": False}).resolve(limits))
    assert mapped.meta.tags == ()
    assert "tags" not in mapped.dropped


def test_a_tag_contentstack_cannot_hold_is_a_warning(target: tuple[str, Limits]) -> None:
    name, limits = target
    mapped = map_meta(AssetMeta(tags=("red, white", "blue")), limits)
    if name == "contentstack":
        assert mapped.meta.tags == ("red_ white", "blue")
        assert mapped.warnings == (
            "tag 'red, white' sent as 'red_ white': the target cannot hold , in a tag",)
    elif "tags" in limits.declared_fields():
        assert mapped.meta.tags == ("red, white", "blue")


def test_tags_can_be_written_into_a_text_field() -> None:
    limits = Limits(metadata_fields=frozenset({"description"}))
    rules = FieldRules({"description": "Tags: {tags}"}, TagRules(add=("x",))).resolve(limits)
    mapped = map_meta(AssetMeta(tags=("a", "b")), limits, rules)
    assert mapped.meta.description == "Tags: a, b, x"
    assert mapped.dropped == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "{titel}"}, "mapping.fields.title: unknown placeholder {titel}"),
        ({"tags": "{title}"}, "mapping.fields.tags: tags are a list"),
        ({"title": True}, "mapping.fields.title: give a template in quotes"),
        ({"title": "{alt_text}", "alt_text": False},
         "mapping.fields.title: uses {alt_text}, which mapping.fields.alt_text = false drops"),
    ],
)
def test_bad_rules_name_the_key(fields: dict[str, str | bool], message: str) -> None:
    with pytest.raises(FieldRuleError) as info:
        FieldRules(fields).templates()
    assert message in str(info.value)
