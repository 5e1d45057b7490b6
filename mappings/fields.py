"""Fit one asset's metadata, filename and size to what a target accepts.

Pure functions over :class:`connectors.base.Limits`; they never refuse an asset themselves, they
return the fitted value plus warnings (:func:`map_meta`) or a reason (:func:`size_problem`) for
the plan to report.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from connectors.base import (
    METADATA_FIELDS,
    Asset,
    AssetMeta,
    FieldSpec,
    Limits,
    LocalizedText,
)

from .folders import (
    NameRules,
    avoid_reserved,
    clean_text,
    fit_length,
    settle,
    split_extension,
    unique_names,
)
from .locales import localizable_fields, target_locale
from .templates import EXTRA_PREFIX, Template, TemplateError, parse_template

_TEXT_FIELDS = ("title", "description", "alt_text", "copyright")
SOURCE_FIELDS = ("title", "description", "alt_text", "tags", "copyright", "focus", "source")
"""Canonical fields of a source asset a rule can carry, in the order warnings name them;
``source`` is a source connector's ``extra["source"]`` (Storyblok)."""
_CANONICAL = frozenset(METADATA_FIELDS)
_FOCUS = re.compile(r"^\s*(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)\s*,\s*(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)\s*$")

DEFAULT = "default"
JOB_FILE = "job file"


class FieldRuleError(ValueError):
    """A ``[mapping.fields]`` / ``[mapping.tags]`` rule that cannot apply to this target.

    ``key`` is the job file key (``mapping.fields.alt_text``); the message says what to do.
    The pipeline turns it into a configuration error (exit 2).
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class TagRules:
    """``[mapping.tags]``: what happens to an asset's tags, in this order: ``keep = false``
    drops the source's tags; ``drop`` removes the named ones; ``rename`` maps a tag to
    another (exact match); ``add`` appends fixed tags (``migrated-2026``); then blanks and
    duplicates go (:func:`clean_tags`)."""

    keep: bool = True
    drop: frozenset[str] = frozenset()
    rename: Mapping[str, str] = field(default_factory=dict)
    add: tuple[str, ...] = ()

    def apply(self, tags: Sequence[str]) -> tuple[str, ...]:
        kept = [t.strip() for t in tags] if self.keep else []
        kept = [self.rename.get(t, t) for t in kept if t not in self.drop]
        return clean_tags([*kept, *self.add])

    @property
    def is_default(self) -> bool:
        return self.keep and not self.drop and not self.rename and not self.add


@dataclass(frozen=True, slots=True)
class FieldRules:
    """The job file's field rules, before they meet a target.

    ``fields``: ``[mapping.fields]``, target field name -> template text, or ``False`` to
    leave that field empty *and* keep the source field of that name out of every default
    rule (``alt_text = false``: alt text is dropped on purpose, with no warning). Templates
    are checked by :meth:`templates` (syntax and placeholders) and against a target by
    :meth:`resolve`.
    """

    fields: Mapping[str, str | bool] = field(default_factory=dict)
    tags: TagRules = field(default_factory=TagRules)

    def templates(self) -> dict[str, Template]:
        """The parsed templates by key. Raises :class:`FieldRuleError` naming the key on a
        bad template or a value that is neither a template nor ``false``."""
        out: dict[str, Template] = {}
        for key, value in self.fields.items():
            where = f"mapping.fields.{key}"
            if value is False:
                continue
            if not isinstance(value, str):
                raise FieldRuleError(
                    where, "give a template in quotes (e.g. \"{title or filename_stem}\") or "
                    "false to drop the field")
            if key == "tags":
                raise FieldRuleError(
                    where, "tags are a list: set them with [mapping.tags] (keep, drop, rename, "
                    "add), or tags = false to send none")
            try:
                out[key] = parse_template(value)
            except TemplateError as exc:
                raise FieldRuleError(where, str(exc)) from None
        dropped = {k for k, v in self.fields.items() if v is False}
        for key, template in out.items():
            clash = sorted(template.fields & dropped)
            if clash:
                raise FieldRuleError(
                    f"mapping.fields.{key}",
                    f"uses {{{clash[0]}}}, which mapping.fields.{clash[0]} = false drops; "
                    "remove one of the two")
        return out

    def resolve(self, limits: Limits) -> EffectiveRules:
        """The rules for one target: the job file's, and a default for every other field the
        target declares (:func:`default_template`). Raises :class:`FieldRuleError` naming
        the key for a field the target does not declare (listing the ones it does)."""
        declared = limits.declared_fields()
        templates = self.templates()
        dropped = frozenset(k for k, v in self.fields.items() if v is False)
        for key in self.fields:
            if key in declared or (key in dropped and key in SOURCE_FIELDS):
                continue
            have = ", ".join(declared) or "none"
            hint = (f"; to keep the {key} text, use {{{key}}} in one of those fields' "
                    f"templates, or set {key} = false to drop it") if key in SOURCE_FIELDS \
                else ""
            raise FieldRuleError(
                f"mapping.fields.{key}",
                f"the target has no field {key!r}; its fields: {have}{hint}")
        rules: list[FieldRule] = []
        for name, spec in declared.items():
            if spec.kind == "tags":
                continue
            if name in dropped:
                rules.append(FieldRule(name, None, JOB_FILE, spec))
            elif name in templates:
                rules.append(FieldRule(name, templates[name], JOB_FILE, spec))
            else:
                text = default_template(name, frozenset(declared), dropped)
                rules.append(FieldRule(name, parse_template(text) if text else None,
                                       DEFAULT, spec))
        tags_spec = next((s for s in declared.values() if s.kind == "tags"), None)
        return EffectiveRules(tuple(rules), dropped, self.tags,
                              None if "tags" in dropped else tags_spec, declared)


def default_template(name: str, declared: frozenset[str], dropped: frozenset[str]) -> str:
    """The default rule of target field ``name``: its own source field, and where the target
    has no place for a field, the nearest field that is still free carries it.

    - ``description``: the description, else the alt text when the target has no alt text
      field (Contentstack users keep alt text in the description); then ``Copyright: {copyright}``
      and ``Source: {source}`` lines when the target has no field of their own;
    - ``alt_text``: the alt text, else the description when the target has none (Webflow,
      Storyblok);
    - any other field: its own source field.

    Fields in ``dropped`` (``= false``) are left out; ``""`` when nothing is left.
    """

    def alternatives(*names: str) -> str:
        kept = [n for n in names if n not in dropped]
        return "{" + " or ".join(kept) + "}" if kept else ""

    if name == "description":
        lines = [alternatives("description",
                              *(() if "alt_text" in declared else ("alt_text",)))]
        if "copyright" not in declared and "copyright" not in dropped:
            lines.append("Copyright: {copyright}")
        if "source" not in declared and "source" not in dropped:
            lines.append("Source: {source}")
        return "\n\n".join(line for line in lines if line)
    if name == "alt_text":
        return alternatives("alt_text",
                            *(() if "description" in declared else ("description",)))
    return alternatives(name)


@dataclass(frozen=True, slots=True)
class FieldRule:
    """The effective rule of one target field: its template (``None``: left empty), whether
    it is the default or the job file's, and the target's declaration of the field."""

    target: str
    template: Template | None
    origin: str
    spec: FieldSpec


@dataclass(frozen=True, slots=True)
class EffectiveRules:
    """Field rules resolved against one target's declared fields (:meth:`FieldRules.resolve`)."""

    rules: tuple[FieldRule, ...]
    dropped: frozenset[str]
    """Source fields dropped on purpose (``= false``)."""
    tags: TagRules
    tags_field: FieldSpec | None
    """The target's tags field, ``None`` when it has none or ``tags = false``."""
    declared: Mapping[str, FieldSpec]

    @property
    def key(self) -> str:
        """What the job file's rules change, as a short stable text: ``""`` for the default
        rules, so a sync notices a rule change (the plan folds it into each asset's metadata
        hash and updates the assets) and ledgers written under the defaults stay equal."""
        given = [(r.target, r.template.text if r.template else None)
                 for r in self.rules if r.origin == JOB_FILE]
        if not given and not self.dropped and self.tags.is_default:
            return ""
        raw = json.dumps([given, sorted(self.dropped), self.tags.keep, sorted(self.tags.drop),
                          sorted(self.tags.rename.items()), list(self.tags.add)],
                         ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class MappedMeta:
    """Metadata as the target can store it."""

    meta: AssetMeta
    dropped: tuple[str, ...]
    """Source field names that carried a value the target got nowhere (canonical order)."""
    warnings: tuple[str, ...]
    """One plain-English line per dropped, carried, cut or refused value, e.g.
    ``alt_text carried into description: the target has no alt_text field``."""


def clean_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Tags without surrounding whitespace, blanks and exact duplicates; first order kept."""
    seen: dict[str, None] = {}
    for tag in tags:
        stripped = tag.strip()
        if stripped:
            seen.setdefault(stripped, None)
    return tuple(seen)


def template_values(asset: Asset) -> dict[str, str | None]:
    """The asset-level placeholder values (:data:`mappings.templates.PLACEHOLDERS`) that do
    not come from its metadata: file name parts, folder, content type, ``source`` and the
    source connector's ``extra.KEY`` fields."""
    stem, extension = split_extension(asset.filename)
    values: dict[str, str | None] = {
        "filename": asset.filename,
        "filename_stem": stem if extension else asset.filename,
        "extension": extension.lstrip("."),
        "folder": "/".join(asset.folder_path),
        "content_type": asset.content_type,
        "source": asset.extra.get("source"),
    }
    values.update({f"{EXTRA_PREFIX}{k}": v for k, v in asset.extra.items()})
    return values


def map_meta(meta: AssetMeta, limits: Limits, rules: EffectiveRules | None = None, *,
             values: Mapping[str, str | None] | None = None) -> MappedMeta:
    """Apply the field rules (default: :meth:`FieldRules.resolve` of no job rules) to one
    asset's metadata.

    Every target field gets its template's value, fitted to the field's declaration: a text
    longer than ``max_length`` is cut with a warning, a focus that is not ``x,y`` fractions
    or a tag with a character the target cannot hold is a warning (never a silent cut). A
    source field with a value that no rule used is a ``dropped`` warning saying why, unless
    ``= false`` dropped it on purpose or the same text is kept in another field (Contento
    gives its description as the alt text too); one that a default rule carried into another
    field says so. ``values``: the asset-level placeholders (:func:`template_values`).
    Per-locale overrides are kept for the target's localized fields that the rules fill.
    """
    rules = rules or FieldRules().resolve(limits)
    declared = rules.declared
    tags = rules.tags.apply(meta.tags)
    source: dict[str, str | None] = {
        "title": meta.title, "description": meta.description, "alt_text": meta.alt_text,
        "copyright": meta.copyright, "focus": meta.focus, "tags": ", ".join(tags) or None,
        "source": None,
    }
    context: dict[str, str | None] = {**(values or {}), **source}
    if values and values.get("source"):
        context["source"] = values["source"]

    warnings: list[str] = []
    out: dict[str, str | None] = {}
    used: set[str] = set()
    for rule in rules.rules:
        if rule.template is None:
            out[rule.target] = None
            continue
        rendered = rule.template.render(context)
        used |= rendered.used
        if rule.origin == DEFAULT:
            warnings.extend(
                f"{name} carried into {rule.target}: the target has no {name} field"
                for name in SOURCE_FIELDS
                if name in rendered.used and name != rule.target and name not in declared)
        value, problems = _fit(rendered.value, rule.spec)
        warnings.extend(problems)
        out[rule.target] = value

    sent_tags: tuple[str, ...] = ()
    if rules.tags_field is not None:
        sent_tags, problems = _fit_tags(tags, rules.tags_field)
        warnings.extend(problems)
        if tags:
            used.add("tags")

    lost_overrides: dict[str, list[str]] = {name: [] for name in _TEXT_FIELDS}
    locales: dict[str, LocalizedText] = {}
    unmapped: list[str] = []
    # per-locale rules: mappings.locales; a field a rule empties (= false) keeps no override
    emptied = {r.target for r in rules.rules if r.template is None}
    keeps = localizable_fields(limits) - rules.dropped - emptied
    if "locales" in limits.metadata_fields:
        for code, text in meta.locales.items():
            if target_locale(code, limits) is None:
                if _has_text(text):
                    unmapped.append(code)
                continue
            kept = LocalizedText(
                **{n: getattr(text, n) if n in keeps else None for n in _TEXT_FIELDS}
            )
            for name in _TEXT_FIELDS:
                if (name not in keeps and name not in rules.dropped
                        and getattr(text, name) not in (None, "")):
                    lost_overrides[name].append(code)
            if _has_text(kept):
                locales[code] = kept

    dropped: list[str] = []
    for name in SOURCE_FIELDS:
        also = lost_overrides.get(name, [])
        if name in rules.dropped or (name in used and not also):
            continue
        present = bool(tags) if name == "tags" else source[name] not in (None, "") \
            if name != "source" else bool(context.get("source"))
        if name in used:
            present = False
        if not present and not also:
            continue
        if present and _kept_elsewhere(name, source, used) and not also:
            continue
        dropped.append(name)
        extra = f" (also the overrides for {', '.join(sorted(also))})" if also else ""
        warnings.append(f"{name} dropped: {_why_dropped(name, rules, present)}{extra}")
    if "locales" not in limits.metadata_fields:
        codes = sorted(code for code, text in meta.locales.items() if _has_text(text))
        if codes:
            dropped.append("locales")
            warnings.append(
                "locales dropped: the target has no per-locale fields; the overrides for "
                f"{', '.join(codes)} are lost")
    if unmapped:
        dropped.append("locales")
        warnings.append(
            f"locales dropped: the target has no locale for {', '.join(sorted(unmapped))}; "
            "map it in the job file to keep those overrides"
        )

    mapped = AssetMeta(
        title=out.get("title"),
        description=out.get("description"),
        alt_text=out.get("alt_text"),
        tags=sent_tags,
        copyright=out.get("copyright"),
        focus=out.get("focus"),
        locales=locales,
        extra={k: v for k, v in out.items() if k not in _CANONICAL and v is not None},
    )
    return MappedMeta(mapped, tuple(dropped), tuple(warnings))


def as_created(meta: AssetMeta, limits: Limits, filename: str) -> AssetMeta:
    """``meta`` (mapped, :func:`map_meta`) with every field of the target that it leaves
    empty set to what a fresh create gives that field (:attr:`FieldSpec.created_as`):
    ``filename`` (the name the file is uploaded as) where the target titles an upload
    with it (Contentstack, CMA Assets: Upload asset), else empty. A write that restores the
    source's whole state over a target asset (an update of its metadata, a replace of its
    file) sends this, so a field the source lacks does not keep the target's edit; the
    connectors send an empty value as a clear."""
    named = {spec.name for spec in limits.declared_fields().values()
             if spec.created_as == "filename" and spec.name in _TEXT_FIELDS
             and not getattr(meta, spec.name)}
    if not named:
        return meta

    def given(name: str, value: str | None) -> str | None:
        return filename if name in named else value

    return replace(meta, title=given("title", meta.title),
                   description=given("description", meta.description),
                   alt_text=given("alt_text", meta.alt_text),
                   copyright=given("copyright", meta.copyright))


def _why_dropped(name: str, rules: EffectiveRules, present: bool) -> str:
    if not present:
        return "the target has no such field"
    if name in rules.declared:
        return (f"[mapping.fields] {name} does not use {{{name}}}; use it there or set "
                f"{name} = false")
    if name == "tags":
        return "the target has no such field"
    free = [r.target for r in rules.rules if r.origin == DEFAULT and r.template is not None
            and name in r.template.fields]
    if free:
        return (f"the target has no such field and {', '.join(free)} already holds other "
                f"text; map it in [mapping.fields] or set {name} = false")
    return "the target has no such field"


def _fit(value: str | None, spec: FieldSpec) -> tuple[str | None, list[str]]:
    """``value`` as field ``spec`` can hold it, and a warning for each change."""
    if value is None:
        return None, []
    if spec.kind == "focus" and not _FOCUS.match(value):
        return None, [f"{spec.name} {value[:40]!r} is not a focus point (x,y fractions "
                      "0..1): left empty"]
    if spec.max_length is not None and len(value) > spec.max_length:
        return value[: spec.max_length], [
            f"{spec.name} cut to {spec.max_length} characters: the target holds at most "
            f"{spec.max_length} and the value has {len(value)}"]
    return value, []


def _fit_tags(tags: tuple[str, ...], spec: FieldSpec) -> tuple[tuple[str, ...], list[str]]:
    warnings: list[str] = []
    out: list[str] = []
    for tag in tags:
        bad = sorted({c for c in tag if c in spec.forbidden_chars})
        fixed = tag
        if bad:
            fixed = "".join("_" if c in spec.forbidden_chars else c for c in tag)
            warnings.append(f"tag {tag!r} sent as {fixed!r}: the target cannot hold "
                            f"{' '.join(bad)} in a tag")
        if spec.max_length is not None and len(fixed) > spec.max_length:
            warnings.append(f"tag {fixed!r} cut to {spec.max_length} characters: the target "
                            f"holds at most {spec.max_length}")
            fixed = fixed[: spec.max_length]
        out.append(fixed)
    return clean_tags(out), warnings


def _kept_elsewhere(name: str, source: Mapping[str, str | None], used: set[str]) -> bool:
    """Whether source field ``name``'s text is also the text of a field a rule used
    (Contento gives an image's description as its alt text too)."""
    value = source.get(name)
    return value not in (None, "") and any(
        other != name and other in used and source.get(other) == value for other in source
    )


def _has_text(text: LocalizedText) -> bool:
    return any(getattr(text, name) not in (None, "") for name in _TEXT_FIELDS)


_WHITESPACE = re.compile(r"\s")
_EDGES = re.compile(r"^[\s.]+|[\s.]+$")


def target_filename(filename: str, limits: Limits) -> str:
    """The filename the target gets, before collisions in its folder are resolved.

    Same rules as folder names (:func:`mappings.folders.sanitize_name`): NFC; forbidden,
    control and lone surrogate characters to ``_``; whitespace and dots stripped from both ends
    (``"."``, ``".."``, ``"..."`` and blank names become ``_``); whitespace or inner dots become
    ``_`` where the target rewrites them so (Contentstack, Storyblok); a reserved name is changed
    (:func:`mappings.folders.avoid_reserved`). When cut to the name limits (characters and/or
    UTF-8 bytes, :class:`mappings.folders.NameRules`), the stem is shortened and the extension
    (up to 16 characters after the last dot) kept; no character is ever split. A fixed point:
    ``target_filename(target_filename(x)) == target_filename(x)``, so a generated name can be
    passed through it again (:func:`resolve_filename_collisions`).

    The rules are compiled once per ``limits`` (:func:`filename_rules`): the plan calls this
    for every asset.
    """
    return filename_rules(limits)(filename)


class FilenameRules:
    """:func:`target_filename` for one target's :class:`Limits`, compiled once.

    Most names need no change: an ASCII name without a forbidden, control or (where the
    target rewrites it) whitespace character, without whitespace or a dot at either end,
    with at most one dot where the target rewrites inner dots, not reserved and within the
    name limits is its own target name (every rule leaves it as it is), found by one regular
    expression instead of the per-character passes. Any other name takes the full rules.
    """

    __slots__ = ("_inner_dots", "_limits", "_rules", "_unsafe")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._rules = NameRules.of(limits)
        self._inner_dots = limits.filename_rewrites_inner_dots
        forbidden = "".join(re.escape(c) for c in sorted(set(limits.forbidden_name_chars)))
        spaces = r"\s" if limits.filename_rewrites_whitespace else ""
        # ASCII control characters are Unicode category Cc; edges: whitespace or a dot
        self._unsafe = re.compile(rf"[{forbidden}\x00-\x1f\x7f{spaces}]|^[\s.]|[\s.]$")

    def __call__(self, filename: str) -> str:
        if (filename and filename.isascii() and self._unsafe.search(filename) is None
                and not (self._inner_dots and filename.count(".") > 1)
                and not self._rules.is_reserved(filename) and self._rules.fits(filename)):
            return filename
        return self.slow(filename)

    def slow(self, filename: str) -> str:
        """Every rule, pass after pass until the name no longer changes."""

        def once(text: str) -> str:
            return _filename_pass(text, self._limits, self._rules)

        return settle(once(filename), once)


_COMPILED: dict[int, tuple[Limits, FilenameRules]] = {}


def filename_rules(limits: Limits) -> FilenameRules:
    """The compiled :class:`FilenameRules` of ``limits`` (kept for the last few ``Limits``
    objects seen; a ``Limits`` holds dicts, so it is looked up by identity)."""
    hit = _COMPILED.get(id(limits))
    if hit is not None and hit[0] is limits:
        return hit[1]
    if len(_COMPILED) >= 16:
        _COMPILED.clear()
    compiled = FilenameRules(limits)
    _COMPILED[id(limits)] = (limits, compiled)
    return compiled


def _filename_pass(filename: str, limits: Limits, rules: NameRules) -> str:
    """One pass of :func:`target_filename`'s rules (a second pass may still change a name
    whose shortening bared a reserved name; :func:`mappings.folders.settle` repeats it)."""
    name = clean_text(filename, limits.forbidden_name_chars)
    if limits.filename_rewrites_whitespace:
        name = _WHITESPACE.sub("_", name)
    if limits.filename_rewrites_inner_dots:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem.replace('.', '_')}.{ext}" if dot else name
    name = avoid_reserved(name, rules)
    if rules.fits(name):
        return name
    stem, extension = split_extension(name)
    if extension and rules.fits("x" + extension):
        cut = rules.cut(stem, extension)
        if cut:
            return cut + extension
    return fit_length(name, rules)


def filename_changes(original: str, final: str, limits: Limits) -> list[str]:
    """Why ``original`` became ``final`` in the target, one plain-English reason each.

    Empty when nothing changed. Used for the plan's warnings on an asset.
    """
    if original == final:
        return []
    rules = NameRules.of(limits)
    base = target_filename(original, limits)
    cleaned = clean_text(original, limits.forbidden_name_chars)
    reasons: list[str] = []
    normal = unicodedata.normalize("NFC", original)
    if _EDGES.sub("", normal) != normal:
        reasons.append("leading or trailing spaces and dots removed")
    bad = sorted({c for c in normal if c in limits.forbidden_name_chars})
    if bad:
        reasons.append(f"the target does not allow {' '.join(bad)} in names (replaced by _)")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in normal):
        reasons.append("control characters replaced by _")
    if limits.filename_rewrites_whitespace and _WHITESPACE.search(cleaned):
        reasons.append("the target stores whitespace in file names as _")
    if limits.filename_rewrites_inner_dots and cleaned.count(".") > 1:
        reasons.append("the target stores every dot but the last as _")
    if rules.is_reserved(cleaned):
        reasons.append(f"the target reserves the name {cleaned!r}")
    if not rules.fits(avoid_reserved(cleaned, rules)):
        reasons.append(f"shortened to the target's limit of {rules.limit_text()}")
    if final != base:
        ignore = " (the target ignores case)" if rules.case_insensitive else ""
        reasons.append(f"another file or folder in the target folder is also called "
                       f"{base!r}{ignore}")
    if not reasons:
        reasons.append("the target's name rules")
    return [f"renamed to {final!r}: " + "; ".join(reasons)]


def resolve_filename_collisions(
    names: Sequence[tuple[str, str]],
    *,
    max_name_length: int | None = None,
    rules: NameRules | None = None,
    taken: Iterable[str] = (),
    limits: Limits | None = None,
) -> dict[str, str | None]:
    """Unique filenames for the assets of one target folder.

    ``names``: ``(source_id, sanitised filename)``. Names equal as the target compares them
    (:meth:`mappings.folders.NameRules.key`: exactly, or but for case on a case-insensitive
    target) are told apart by a suffix before the extension, ``photo (2).jpg``,
    ``photo (3).jpg``, assigned in the order of ``source_id`` (the input order does not
    matter); the first keeps the plain name, and a suffixed name never takes a name another
    asset has plainly, nor one of ``taken`` (the names of the folders beside them, on a target
    where files and folders share names). The stem of a suffixed name is shortened to fit the
    name limits (``rules``, or ``max_name_length`` characters); ``None`` for an asset when no
    unique name fits (the plan reports it as unsupported). With ``limits`` (the plan always
    gives them), ``rules`` default to the target's and each suffixed name is passed through
    :func:`target_filename` before it is checked against the others: Contentstack stores
    ``café (2).txt`` as ``café_(2).txt`` (whitespace to ``_``), so that is the name given out,
    and the plan shows what the target stores. Raises ``ValueError`` when a ``source_id``
    appears twice.
    """
    by_id: dict[str, str] = {}
    for source_id, filename in names:
        if source_id in by_id:
            raise ValueError(f"asset {source_id!r} is listed twice in one folder")
        by_id[source_id] = filename
    if rules is None:
        rules = NameRules.of(limits) if limits is not None else NameRules(max_name_length)
    fitted = limits
    return unique_names(
        ((source_id, filename, False) for source_id, filename in by_id.items()),
        rules,
        split=True,
        taken=taken,
        finish=None if fitted is None else (lambda name: target_filename(name, fitted)),
    )


def size_problem(size: int | None, content_type: str, limits: Limits) -> str | None:
    """Why the target won't take a file of ``size`` bytes, or ``None`` if it fits (or unknown).

    E.g. ``"file is 120.0 MB; the target accepts at most 100.0 MB for documents"``, or
    ``"file is 0 bytes; the target accepts files of at least 1 byte"`` below
    ``limits.min_file_size``. Sizes use
    1024-based units; when both round to the same figure, exact bytes are shown.
    """
    if size is not None and size < 0:  # a broken record: item-level, whatever the target
        return (f"the source lists this file as {size:,} bytes, which no file can be (a "
                "broken record in the source); fix or re-upload the asset there, then run "
                "again")
    if size is not None and size < limits.min_file_size:
        least = f"{limits.min_file_size:,} byte" + ("s" if limits.min_file_size != 1 else "")
        return f"file is {size:,} bytes; the target accepts files of at least {least}"
    limit = limits.max_size_for(content_type)
    if size is None or limit is None or size <= limit:
        return None
    kind = "image" if content_type.startswith("image/") else "document"
    scope = f"for {kind}s" if limits.max_file_size_by_kind.get(kind) == limit else "per file"
    have, most = _human(size), _human(limit)
    if have == most:
        have, most = f"{size:,} bytes", f"{limit:,} bytes"
    return f"file is {have}; the target accepts at most {most} {scope}"


def type_problem(size: int | None, content_type: str, limits: Limits) -> str | None:
    """Why the target won't take a file of ``content_type`` at all, or ``None``.

    E.g. ``"the target does not accept video/mp4 files (12.0 MB)"``; the size is shown so the
    plan line says what is left behind.
    """
    accepted = limits.accepted_content_types
    if accepted is None or content_type.split(";")[0].strip().lower() in accepted:
        return None
    shown = "size unknown" if size is None else _human(size)
    return f"the target does not accept {content_type} files ({shown})"


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"
