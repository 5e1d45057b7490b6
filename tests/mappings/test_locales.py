"""Locale rules (mappings/locales.py), table-driven against every target's declared limits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from connectors.base import METADATA_FIELDS, AssetMeta, FieldSpec, Limits, LocalizedText
from connectors.contentstack.connector import LIMITS as CONTENTSTACK
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector
from connectors.webflow.config import WebflowConfig
from connectors.webflow.connector import WebflowConnector
from mappings.fields import map_meta
from mappings.locales import (
    LocaleRules,
    MissingLocale,
    describe,
    fit_locales,
    localizable_fields,
    rule_problems,
)

WF_DE = "65427cf400e02b306eaa04a0"
WF_FR = "65427cf400e02b306eaa04a1"


def _targets(tmp: Path) -> dict[str, Limits]:
    """Each target's Limits as its connector declares them (no I/O: built from config)."""
    storyblok = StoryblokConnector(StoryblokConfig(
        connector="storyblok", space_id=1, token=SecretStr("t"),
        base_url="http://sb.invalid"))
    webflow = WebflowConnector(WebflowConfig(
        connector="webflow", site_id="0" * 24, token=SecretStr("t"),
        base_url="http://wf.invalid", locales={"de-DE": WF_DE, "fr-FR": WF_FR}))
    local = LocalFolderConnector(LocalConfig(connector="local", path=tmp), role="target")
    return {"storyblok": storyblok.limits, "webflow": webflow.limits,
            "contentstack": CONTENTSTACK, "local": local.limits}


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Limits]:
    return _targets(tmp_path_factory.mktemp("local-target"))


# en is the default (top-level), de and fr are overrides: alt texts and titles
META = AssetMeta(
    title="Harbour", alt_text="Boats in a harbour",
    locales={
        "de": LocalizedText(title="Hafen", alt_text="Boote im Hafen"),
        "fr": LocalizedText(title="Port", alt_text="Bateaux au port"),
    },
)
NO_DEFAULT_ALT = AssetMeta(
    title="Harbour",
    locales={"fr": LocalizedText(title="Port", alt_text="Bateaux au port")},
)
CODES = {"de": "de-DE", "fr": "fr-FR"}


def _landed(meta: AssetMeta) -> set[tuple[str, str, str]]:
    """(locale, field, value) of every text the metadata carries; locale "" = default."""
    out = {("", f, v) for f in ("title", "alt_text", "description", "copyright")
           if (v := getattr(meta, f))}
    for code, text in meta.locales.items():
        out |= {(code, f, v) for f in ("title", "alt_text", "description", "copyright")
                if (v := getattr(text, f))}
    return out


# target, rules, meta -> expected locales kept, expected top-level (title, alt), warning parts
CASES = [
    # Storyblok keeps any locale with every text field (__i18n__ keys): nothing to warn
    ("storyblok", {}, META, {"de": LocalizedText(title="Hafen", alt_text="Boote im Hafen"),
                             "fr": LocalizedText(title="Port", alt_text="Bateaux au port")},
     ("Harbour", "Boats in a harbour"), []),
    # ... and renames through codes
    ("storyblok", {"codes": {"de": "de-at"}}, META,
     {"de-at": LocalizedText(title="Hafen", alt_text="Boote im Hafen"),
      "fr": LocalizedText(title="Port", alt_text="Bateaux au port")},
     ("Harbour", "Boats in a harbour"), []),
    # Webflow: alt text per declared locale only; titles cannot be localized: dropped
    ("webflow", {"codes": CODES}, META,
     {"de-DE": LocalizedText(alt_text="Boote im Hafen"),
      "fr-FR": LocalizedText(alt_text="Bateaux au port")},
     ("Harbour", "Boats in a harbour"),
     ["locale de (as de-DE): title dropped (the target cannot localize it)",
      "locale fr (as fr-FR): title dropped"]),
    # Webflow, codes compared ignoring case; fr not mapped: the target lacks it
    ("webflow", {"codes": {"de": "DE-de"}}, META,
     {"de-DE": LocalizedText(alt_text="Boote im Hafen")},
     ("Harbour", "Boats in a harbour"),
     ["locale de (as de-DE): title dropped (the target cannot localize it); set missing",
      "locale fr: title, alt text dropped (the target has no locale fr (it has de-DE, "
      "fr-FR)); map the locale in [mapping.locales] codes"]),
    # Webflow, fold: the default has its own title and alt text: kept, the others warned
    ("webflow", {"codes": {"de": "de-DE"}, "missing": "fold"}, META,
     {"de-DE": LocalizedText(alt_text="Boote im Hafen")},
     ("Harbour", "Boats in a harbour"),
     ["locale de (as de-DE): title dropped (the target cannot localize it); the default",
      "locale fr: title, alt text dropped (the target has no locale fr"]),
    # Contentstack holds no locale: drop warns per locale
    ("contentstack", {}, META, {}, ("Harbour", "Boats in a harbour"),
     ["locale de: title, alt text dropped (the target has no per-locale fields)",
      "locale fr: title, alt text dropped (the target has no per-locale fields)"]),
    # Contentstack, fold into an empty default alt text; the default's title is its own
    ("contentstack", {"missing": "fold"}, NO_DEFAULT_ALT, {}, ("Harbour", "Bateaux au port"),
     ["locale fr: alt text folded into the default locale (the target has no per-locale",
      "locale fr: title dropped (the target has no per-locale fields); the default locale "
      "has its own"]),
    # the local folder's manifest keeps every locale and field
    ("local", {"codes": {"fr": "fr-CA"}}, META,
     {"de": LocalizedText(title="Hafen", alt_text="Boote im Hafen"),
      "fr-CA": LocalizedText(title="Port", alt_text="Bateaux au port")},
     ("Harbour", "Boats in a harbour"), []),
]


@pytest.mark.parametrize(("target", "rules", "meta", "locales", "top", "warns"), CASES)
def test_rules_against_each_target(targets: dict[str, Limits], target: str,
                                   rules: dict[str, object], meta: AssetMeta,
                                   locales: dict[str, LocalizedText], top: tuple[str, str],
                                   warns: list[str]) -> None:
    limits = targets[target]
    fitted = fit_locales(meta, limits, LocaleRules.model_validate(rules))
    assert dict(fitted.meta.locales) == locales
    assert (fitted.meta.title, fitted.meta.alt_text) == top
    assert len(fitted.warnings) == len(warns), fitted.warnings
    for part, line in zip(warns, fitted.warnings, strict=True):
        assert part in line
    assert fitted.dropped == any("dropped" in w for w in fitted.warnings)


@pytest.mark.parametrize("missing", list(MissingLocale))
@pytest.mark.parametrize("meta", [META, NO_DEFAULT_ALT])
@pytest.mark.parametrize("target", ["storyblok", "webflow", "contentstack", "local"])
def test_every_value_lands_or_is_warned(targets: dict[str, Limits], target: str,
                                        meta: AssetMeta, missing: MissingLocale) -> None:
    """Each source (locale, field) value is in the output (own locale, or folded into the
    default) or its locale and field are named in a warning; the output fits the target."""
    limits = targets[target]
    rules = LocaleRules(codes=CODES if target == "webflow" else {}, missing=missing)
    fitted = fit_locales(meta, limits, rules)
    landed = _landed(fitted.meta)
    values = {v for _, _, v in landed}
    for code, field, value in _landed(meta):
        if value in values:
            continue
        label = field.replace("_", " ")
        assert any(w.startswith(f"locale {code}") and label in w and "dropped" in w
                   for w in fitted.warnings), (code, field, fitted.warnings)
    allowed = localizable_fields(limits)
    for code, text in fitted.meta.locales.items():
        assert limits.locales is None or code in limits.locales
        assert {f for f in ("title", "alt_text", "description", "copyright")
                if getattr(text, f)} <= allowed
    again = fit_locales(fitted.meta, limits, rules)
    assert again.meta == fitted.meta
    assert again.warnings == ()
    # the field rules after it find nothing more to say about locales
    assert not [w for w in map_meta(fitted.meta, limits).warnings if "overrides" in w]


def test_default_locale_override_fills_the_top_level_and_is_not_a_locale() -> None:
    meta = AssetMeta(title="Harbour", locales={
        "en": LocalizedText(title="Other", alt_text="Boats"), "de": LocalizedText(title="Hafen")})
    fitted = fit_locales(meta, Limits(), LocaleRules(default="EN"))
    assert fitted.meta.alt_text == "Boats"
    assert fitted.meta.title == "Harbour"
    assert dict(fitted.meta.locales) == {"de": LocalizedText(title="Hafen")}
    (line,) = fitted.warnings
    assert line.startswith("locale en (title) dropped: en is the default locale")


def test_an_override_equal_to_the_default_loses_nothing() -> None:
    meta = AssetMeta(alt_text="Boats", locales={"fr": LocalizedText(alt_text="Boats")})
    fitted = fit_locales(meta, CONTENTSTACK)
    assert fitted.warnings == ()
    assert not fitted.dropped


def test_fold_takes_locales_in_code_order_and_warns_the_rest() -> None:
    meta = AssetMeta(locales={"fr": LocalizedText(alt_text="Bateaux"),
                              "de": LocalizedText(alt_text="Boote")})
    fitted = fit_locales(meta, CONTENTSTACK, LocaleRules(missing=MissingLocale.FOLD))
    assert fitted.meta.alt_text == "Boote"
    assert fitted.warnings[0].startswith("locale de: alt text folded into the default locale")
    assert fitted.warnings[1].startswith("locale fr: alt text dropped")
    assert fitted.dropped


def test_two_codes_onto_one_target_locale_never_overwrite() -> None:
    meta = AssetMeta(locales={"de": LocalizedText(alt_text="Boote"),
                              "de-at": LocalizedText(alt_text="Schiffe")})
    fitted = fit_locales(meta, Limits(), LocaleRules(codes={"de-at": "DE"}))
    assert dict(fitted.meta.locales) == {"de": LocalizedText(alt_text="Boote")}
    (line,) = fitted.warnings
    assert line.startswith("locale de-at (as DE): alt text dropped (the target locale DE "
                           "already holds locale de's text)")


@pytest.mark.parametrize(("raw", "where"), [
    ({"missing": "keep"}, "missing"),
    ({"default": "en us"}, "default"),
    ({"codes": {"de": ""}}, "codes.de"),
    ({"codes": {"de": "x", "fr": "X"}}, "codes.fr"),
    ({"codes": {"en": "en-us"}, "default": "en"}, "codes.en"),
    ({"code": {"de": "de-de"}}, "code"),
])
def test_bad_rules_name_the_key(raw: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        LocaleRules.model_validate(raw)
    assert where in str(info.value)


def test_codes_naming_a_locale_the_target_lacks_are_problems(
        targets: dict[str, Limits]) -> None:
    rules = LocaleRules(codes={"de": "de-de", "fr": "fr-BE"})
    (problem,) = rule_problems(rules, targets["webflow"])
    assert problem.startswith("mapping.locales.codes.fr: the target has no locale fr-BE")
    assert "de-DE, fr-FR" in problem
    for name in ("storyblok", "contentstack", "local"):
        assert rule_problems(rules, targets[name]) == []


def test_describe_lists_the_effective_rules(targets: dict[str, Limits]) -> None:
    rules = LocaleRules(default="en", codes={"de": "de-DE"}, missing=MissingLocale.FOLD)
    shown = dict(describe(rules, targets["webflow"]))
    assert shown == {"target locales": "de-DE, fr-FR; fields: alt text", "default": "en",
                     "codes": "de -> de-DE", "missing": "fold"}
    assert dict(describe(LocaleRules(), targets["contentstack"]))["target locales"].startswith(
        "none")


def test_metadata_fields_constant_still_includes_locales() -> None:
    assert "locales" in METADATA_FIELDS


def test_the_localized_fields_are_declared_once_on_the_field_specs() -> None:
    """``Limits.locale_fields`` is read from :attr:`FieldSpec.localized` (the two said the
    same thing and could disagree); no spec localized: the text fields the target keeps."""
    webflow_like = Limits(metadata_fields=frozenset({"alt_text", "title", "locales"}),
                          field_specs=(FieldSpec("alt_text", localized=True),))
    assert webflow_like.locale_fields == frozenset({"alt_text"})
    assert localizable_fields(webflow_like) == {"alt_text"}
    plain = Limits(metadata_fields=frozenset({"alt_text", "title", "locales"}))
    assert plain.locale_fields is None
    assert localizable_fields(plain) == {"alt_text", "title"}
    assert "locale_fields" not in {f.name for f in dataclasses.fields(Limits)}
