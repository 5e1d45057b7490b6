"""Locale rules: which target locale each source locale's overrides go to, and what happens
to the overrides of a locale (or a field) the target cannot hold.

The canonical model (:class:`connectors.base.AssetMeta`) keeps an asset's default-locale
text in its top-level fields and every other locale's text in ``locales``, keyed by the
source's locale code. The job file's ``[mapping.locales]`` (:class:`LocaleRules`) says:

- ``codes``: source locale code -> target locale code (``de = "de-de"``); a code not listed
  keeps its spelling. Codes are compared ignoring case (BCP 47 tags are case-insensitive) and
  the target's own spelling is used.
- ``default``: the source's default locale code. An override under that code is the default
  locale's text: it fills an empty top-level field (a source that lists the default locale as
  one more locale loses nothing) and is never sent as a locale of its own.
- ``missing``: ``"drop"`` (the default) or ``"fold"``, for the overrides of a locale the target
  lacks, and of a field the target cannot localize. ``drop``: they are left out with a plan
  warning naming the locale and the fields. ``fold``: each value goes to the default
  locale's field where that field is empty (the plan says so); where the default has a value
  of its own, the override is dropped with a warning.

What a target holds comes from its :class:`connectors.base.Limits`: ``"locales"`` in
``metadata_fields`` (otherwise it holds no locale at all: Contentstack's classic assets are not
localizable, reference/cms-api-facts.md §1.10), ``locales`` (the codes it holds; ``None``: any,
Storyblok's ``meta_data`` ``<field>__i18n__<lang>`` keys, §2.10) and ``locale_fields`` (the
text fields an override can carry; Webflow localizes ``altText`` only, with ``localeId``,
§3.10).

Pure functions; no I/O. :func:`fit_locales` is idempotent: its output passed through it again
(with any rules) is unchanged and warns nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from connectors.base import AssetMeta, Limits, LocalizedText

TEXT_FIELDS: tuple[str, ...] = ("title", "description", "alt_text", "copyright")
"""The fields a locale override can carry, in the order warnings name them."""

_LABEL = {"title": "title", "description": "description", "alt_text": "alt text",
          "copyright": "copyright"}
_CODE = re.compile(r"^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$")


class MissingLocale(StrEnum):
    """What happens to the overrides of a locale (or field) the target cannot hold."""

    DROP = "drop"
    FOLD = "fold"


def _check_code(value: str, where: str) -> str:
    code = value.strip()
    if not _CODE.match(code):
        raise ValueError(
            f"{where}: {value!r} is not a locale code; use letters, digits and - or _ "
            "(e.g. \"de\", \"de-DE\", \"pt_BR\")"
        )
    return code


class LocaleRules(BaseModel):
    """``[mapping.locales]`` of a job file.

    ``default``: the source's default locale code (``None``: unnamed; every override is a
    locale of its own). ``missing``: :class:`MissingLocale`. ``codes``: source code -> target
    code. Validated when the job file loads (exit 2 naming the key): codes must look like
    locale codes, the default locale is not mapped (its text goes to the target's default
    fields), and two source locales never map to one target locale.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: str | None = None
    missing: MissingLocale = MissingLocale.DROP
    codes: dict[str, str] = {}

    @field_validator("default")
    @classmethod
    def _default_is_code(cls, value: str | None) -> str | None:
        return None if value is None else _check_code(value, "default")

    @field_validator("codes")
    @classmethod
    def _codes_are_codes(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        seen: dict[str, str] = {}
        for source, target in value.items():
            src = _check_code(source, f"codes.{source}")
            dst = _check_code(target, f"codes.{source}")
            if src.casefold() in {k.casefold() for k in out}:
                raise ValueError(f"codes.{source}: the source locale {src} is listed twice")
            if dst.casefold() in seen:
                raise ValueError(
                    f"codes.{source}: {seen[dst.casefold()]} and {src} both map to {dst}; a "
                    "target locale takes one source locale (map one of them elsewhere, or "
                    "leave it out and set missing = \"fold\")"
                )
            seen[dst.casefold()] = src
            out[src] = dst
        return out

    @model_validator(mode="after")
    def _default_not_mapped(self) -> LocaleRules:
        if self.default is not None:
            for source in self.codes:
                if source.casefold() == self.default.casefold():
                    raise ValueError(
                        f"codes.{source}: {source} is the default locale; its text goes to the "
                        "target's default fields, so it takes no target code (remove it from "
                        "codes)"
                    )
        return self

    def key(self) -> str:
        """A short stable hash of the rules, ``""`` for the defaults: folded into the metadata
        hash of an asset with overrides, so changed rules update it on the next sync."""
        if self == DEFAULT_RULES:
            return ""
        raw = self.model_dump_json()
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def target_code(self, source: str) -> str:
        """The target code ``source`` maps to (its own spelling when ``codes`` has none)."""
        folded = source.casefold()
        return next((t for s, t in self.codes.items() if s.casefold() == folded), source)

    def is_default(self, source: str) -> bool:
        return self.default is not None and source.casefold() == self.default.casefold()


DEFAULT_RULES = LocaleRules()


@dataclass(frozen=True, slots=True)
class FittedLocales:
    """Metadata whose ``locales`` the target can hold, keyed by the target's codes."""

    meta: AssetMeta
    dropped: bool
    """Some override's text is lost (dropped, not folded nor equal to the default's)."""
    warnings: tuple[str, ...]
    """Plain-English lines for the plan: one per locale that lost or folded text."""


def holds_locales(limits: Limits) -> bool:
    """Whether the target keeps per-locale overrides at all."""
    return "locales" in limits.metadata_fields


def localizable_fields(limits: Limits) -> frozenset[str]:
    """The text fields a target keeps per locale: ``limits.locale_fields``, else the text
    fields it keeps at all; none when it keeps no locale."""
    if not holds_locales(limits):
        return frozenset()
    if limits.locale_fields is not None:
        return limits.locale_fields & frozenset(TEXT_FIELDS)
    return limits.metadata_fields & frozenset(TEXT_FIELDS)


def target_locale(code: str, limits: Limits) -> str | None:
    """The target's spelling of locale ``code`` (compared ignoring case), or ``None`` when the
    target has no such locale."""
    if not holds_locales(limits):
        return None
    if limits.locales is None:
        return code
    folded = code.casefold()
    return next((c for c in sorted(limits.locales) if c.casefold() == folded), None)


def _fields(fields: Iterable[str]) -> str:
    return ", ".join(_LABEL[f] for f in fields)


def _why_missing(limits: Limits, code: str) -> str:
    if not holds_locales(limits):
        return "the target has no per-locale fields"
    known = ", ".join(sorted(limits.locales or ()))
    return f"the target has no locale {code}" + (f" (it has {known})" if known else "")


def fit_locales(meta: AssetMeta, limits: Limits,
                rules: LocaleRules = DEFAULT_RULES) -> FittedLocales:
    """Apply ``rules`` to ``meta.locales`` for a target with ``limits``.

    Overrides are taken in order of source code. An empty override value (``None`` or ``""``)
    is nothing to carry; one equal to the default's value loses nothing when left out. The
    top-level fields change only by the default locale's override and by ``fold``.
    """
    original: dict[str, str | None] = {f: getattr(meta, f) for f in TEXT_FIELDS}
    top = dict(original)
    kept: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    """Target code (case folded) -> the source code that took it: one locale each."""
    localizable = localizable_fields(limits)
    warnings: list[str] = []
    dropped = False

    for code in sorted(meta.locales):
        text = meta.locales[code]
        values = {f: v for f in TEXT_FIELDS if (v := getattr(text, f)) not in (None, "")}
        values = {f: v for f, v in values.items() if v != original[f]}
        if not values:
            continue
        if rules.is_default(code):
            clash = [f for f in values if top[f] not in (None, "")]
            top.update({f: v for f, v in values.items() if f not in clash})
            if clash:
                dropped = True
                warnings.append(
                    f"locale {code} ({_fields(clash)}) dropped: {code} is the default locale "
                    "and its top-level text differs; the top-level text is kept"
                )
            continue
        mapped = rules.target_code(code)
        target = target_locale(mapped, limits)
        spelled = target or mapped
        shown = code if spelled == code else f"{code} (as {spelled})"
        advice = ("map the locale in [mapping.locales] codes, or set missing = \"fold\""
                  if holds_locales(limits) else "set missing = \"fold\"")
        if target is not None and target.casefold() in where:
            spare = values
            why = (f"the target locale {target} already holds locale "
                   f"{where[target.casefold()]}'s text")
        elif target is not None:
            where[target.casefold()] = code
            keep = {f: v for f, v in values.items() if f in localizable}
            spare = {f: v for f, v in values.items() if f not in localizable}
            if keep:
                kept[target] = keep
            why = "the target cannot localize " + ("it" if len(spare) == 1 else "them")
            advice = "set missing = \"fold\""
        else:
            spare = values
            why = _why_missing(limits, mapped)
        if not spare:
            continue
        if rules.missing is MissingLocale.FOLD:
            folded = [f for f in spare if top[f] in (None, "")]
            for f in folded:
                top[f] = spare[f]
            if folded:
                warnings.append(
                    f"locale {shown}: {_fields(folded)} folded into the default locale "
                    f"({why})"
                )
            clash = [f for f in spare if f not in folded]
            if clash:
                dropped = True
                warnings.append(
                    f"locale {shown}: {_fields(clash)} dropped ({why}); the default locale "
                    "has its own, which is kept"
                )
        else:
            dropped = True
            warnings.append(
                f"locale {shown}: {_fields(spare)} dropped ({why}); {advice} to keep the "
                "text in the default locale where it is empty"
            )

    fitted = AssetMeta(
        title=top["title"],
        description=top["description"],
        alt_text=top["alt_text"],
        tags=meta.tags,
        copyright=top["copyright"],
        focus=meta.focus,
        locales={code: LocalizedText(**values) for code, values in sorted(kept.items())},
    )
    return FittedLocales(fitted, dropped, tuple(warnings))


def rule_problems(rules: LocaleRules, limits: Limits) -> list[str]:
    """Codes of ``rules`` that name a locale the target does not have, one line each
    (``mapping.locales.codes.de: ...``); empty when the target holds any locale or none
    (then ``missing`` decides). The pipeline refuses the job with them (exit 2)."""
    if not holds_locales(limits) or limits.locales is None:
        return []
    known = ", ".join(sorted(limits.locales)) or "none"
    return [
        f"mapping.locales.codes.{source}: the target has no locale {target} (its locales: "
        f"{known}); map {source} to one of them, or remove it to let missing = "
        f"\"{rules.missing.value}\" decide"
        for source, target in rules.codes.items()
        if target_locale(target, limits) is None
    ]


def describe(rules: LocaleRules, limits: Limits) -> list[tuple[str, str]]:
    """``(key, effective rule)`` lines for ``assetferry mappings show``: the code map, the
    default locale, the policy and what the target holds."""
    if not holds_locales(limits):
        held = "none (every locale's text is handled by missing)"
    else:
        codes = "any" if limits.locales is None else ", ".join(sorted(limits.locales)) or "none"
        fields = _fields(f for f in TEXT_FIELDS if f in localizable_fields(limits))
        held = f"{codes}; fields: {fields or 'none'}"
    mapped: Mapping[str, str] = rules.codes
    return [
        ("target locales", held),
        ("default", rules.default or "(unnamed: the source's top-level text)"),
        ("codes", ", ".join(f"{s} -> {t}" for s, t in mapped.items()) or "(same codes)"),
        ("missing", rules.missing.value),
    ]
