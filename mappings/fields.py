"""Fit one asset's metadata, filename and size to what a target accepts.

Pure functions over :class:`connectors.base.Limits`; they never refuse an asset themselves, they
return the fitted value plus warnings (:func:`map_meta`) or a reason (:func:`size_problem`) for
the plan to report.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from connectors.base import AssetMeta, Limits, LocalizedText

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

_TEXT_FIELDS = ("title", "description", "alt_text", "copyright")
_FIELD_ORDER = ("title", "description", "alt_text", "tags", "copyright", "focus", "locales")


@dataclass(frozen=True, slots=True)
class MappedMeta:
    """Metadata as the target can store it."""

    meta: AssetMeta
    dropped: tuple[str, ...]
    """Canonical field names that carried a value the target can't store (canonical order)."""
    warnings: tuple[str, ...]
    """One plain-English line per dropped field, e.g. ``alt_text dropped: ...``."""


def clean_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Tags without surrounding whitespace, blanks and exact duplicates; first order kept."""
    seen: dict[str, None] = {}
    for tag in tags:
        stripped = tag.strip()
        if stripped:
            seen.setdefault(stripped, None)
    return tuple(seen)


def map_meta(meta: AssetMeta, limits: Limits) -> MappedMeta:
    """Keep the fields in ``limits.metadata_fields``; reset the others to their default.

    A dropped field that had a value gets a warning; ``locales`` dropped names the locales whose
    overrides are lost. When ``locales`` is kept, per-locale overrides of a text field the
    target lacks are dropped with that field, and locales left without any override vanish.
    Tags are always cleaned (:func:`clean_tags`).
    """
    supported = limits.metadata_fields
    tags = clean_tags(meta.tags)
    present: dict[str, bool] = {
        "title": meta.title not in (None, ""),
        "description": meta.description not in (None, ""),
        "alt_text": meta.alt_text not in (None, ""),
        "tags": bool(tags),
        "copyright": meta.copyright not in (None, ""),
        "focus": meta.focus not in (None, ""),
    }

    lost_overrides: dict[str, list[str]] = {name: [] for name in _TEXT_FIELDS}
    locales: dict[str, LocalizedText] = {}
    unmapped: list[str] = []
    localizable = localizable_fields(limits)  # per-locale rules: mappings.locales
    if "locales" in supported:
        for code, text in meta.locales.items():
            if target_locale(code, limits) is None:
                if _has_text(text):
                    unmapped.append(code)
                continue
            kept = LocalizedText(
                **{n: getattr(text, n) if n in localizable else None for n in _TEXT_FIELDS}
            )
            for name in _TEXT_FIELDS:
                if name not in localizable and getattr(text, name) not in (None, ""):
                    lost_overrides[name].append(code)
            if _has_text(kept):
                locales[code] = kept

    dropped: list[str] = []
    warnings: list[str] = []
    for name in _FIELD_ORDER:
        if name in supported:
            continue
        if name == "locales":
            codes = sorted(code for code, text in meta.locales.items() if _has_text(text))
            if codes:
                dropped.append(name)
                warnings.append(
                    "locales dropped: the target has no per-locale fields; the overrides for "
                    f"{', '.join(codes)} are lost"
                )
        elif _kept_elsewhere(meta, name, supported) and not lost_overrides.get(name):
            continue  # the same text survives in a field the target has: nothing is lost
        elif present[name] or lost_overrides.get(name):
            dropped.append(name)
            also = lost_overrides.get(name)
            extra = f" (also the overrides for {', '.join(sorted(also))})" if also else ""
            warnings.append(f"{name} dropped: the target has no such field{extra}")

    if unmapped:
        dropped.append("locales")
        warnings.append(
            f"locales dropped: the target has no locale for {', '.join(sorted(unmapped))}; "
            "map it in the job file to keep those overrides"
        )

    def keep(name: str, value: str | None) -> str | None:
        return value if name in supported else None

    mapped = AssetMeta(
        title=keep("title", meta.title),
        description=keep("description", meta.description),
        alt_text=keep("alt_text", meta.alt_text),
        tags=tags if "tags" in supported else (),
        copyright=keep("copyright", meta.copyright),
        focus=keep("focus", meta.focus),
        locales=locales,
    )
    return MappedMeta(mapped, tuple(dropped), tuple(warnings))


def _kept_elsewhere(meta: AssetMeta, name: str, supported: frozenset[str]) -> bool:
    """Whether text field ``name``'s value is also the value of a text field the target
    keeps (Contento gives an image's description as its alt text too)."""
    value = getattr(meta, name) if name in _TEXT_FIELDS else None
    return value not in (None, "") and any(
        other != name and other in supported and getattr(meta, other) == value
        for other in _TEXT_FIELDS
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
    """
    rules = NameRules.of(limits)

    def once(text: str) -> str:
        return _filename_pass(text, limits, rules)

    return settle(once(filename), once)


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
