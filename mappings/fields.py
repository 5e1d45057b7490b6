"""Fit one asset's metadata, filename and size to what a target accepts.

Pure functions over :class:`connectors.base.Limits`; they never refuse an asset themselves, they
return the fitted value plus warnings (:func:`map_meta`) or a reason (:func:`size_problem`) for
the plan to report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import AssetMeta, Limits, LocalizedText

from .folders import clean_text, fit_length, split_extension, unique_names

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
    if "locales" in supported:
        for code, text in meta.locales.items():
            kept = LocalizedText(
                **{n: getattr(text, n) if n in supported else None for n in _TEXT_FIELDS}
            )
            for name in _TEXT_FIELDS:
                if name not in supported and getattr(text, name) not in (None, ""):
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
        elif present[name] or lost_overrides.get(name):
            dropped.append(name)
            also = lost_overrides.get(name)
            extra = f" (also the overrides for {', '.join(sorted(also))})" if also else ""
            warnings.append(f"{name} dropped: the target has no such field{extra}")

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


def _has_text(text: LocalizedText) -> bool:
    return any(getattr(text, name) not in (None, "") for name in _TEXT_FIELDS)


_WHITESPACE = re.compile(r"\s")


def target_filename(filename: str, limits: Limits) -> str:
    """The filename the target gets, before collisions in its folder are resolved.

    Same rules as folder names (:func:`mappings.folders.sanitize_name`): NFC; forbidden and
    control characters to ``_``; whitespace and dots stripped from both ends (``"."``,
    ``".."`` and blank names become ``_``). When cut to ``limits.max_name_length``, the stem is
    shortened and the extension (up to 16 characters after the last dot) kept.
    """
    name = clean_text(filename, limits.forbidden_name_chars)
    if limits.filename_rewrites_whitespace:
        name = _WHITESPACE.sub("_", name)
    limit = limits.max_name_length
    if limit is None or len(name) <= limit:
        return name
    stem, extension = split_extension(name)
    if not extension or len(extension) >= limit:
        return fit_length(name, limit)
    return fit_length(stem, limit - len(extension)) + extension


def resolve_filename_collisions(
    names: Sequence[tuple[str, str]], *, max_name_length: int | None = None
) -> dict[str, str]:
    """Unique filenames for the assets of one target folder.

    ``names``: ``(source_id, sanitised filename)``. Exactly equal names are told apart by a
    suffix before the extension, ``photo (2).jpg``, ``photo (3).jpg``, assigned in the order of
    ``source_id`` (the input order does not matter); the first keeps the plain name, and a
    suffixed name never takes a name another asset has plainly. With ``max_name_length`` the
    stem of a suffixed name is shortened to fit (when nothing fits, the limit is ignored for
    that name). Raises ``ValueError`` when a ``source_id`` appears twice.
    """
    by_id: dict[str, str] = {}
    for source_id, filename in names:
        if source_id in by_id:
            raise ValueError(f"asset {source_id!r} is listed twice in one folder")
        by_id[source_id] = filename
    chosen = unique_names(
        ((source_id, filename, False) for source_id, filename in by_id.items()),
        max_name_length,
        split=True,
    )
    result: dict[str, str] = {}
    for source_id, final in sorted(chosen.items()):
        if final is None:
            taken = {*by_id.values(), *filter(None, chosen.values()), *result.values()}
            stem, extension = split_extension(by_id[source_id])
            number = 2
            final = f"{stem} ({number}){extension}"
            while final in taken:
                number += 1
                final = f"{stem} ({number}){extension}"
        result[source_id] = final
    return result


def size_problem(size: int | None, content_type: str, limits: Limits) -> str | None:
    """Why the target won't take a file of ``size`` bytes, or ``None`` if it fits (or unknown).

    E.g. ``"file is 120.0 MB; the target accepts at most 100.0 MB for documents"``. Sizes use
    1024-based units; when both round to the same figure, exact bytes are shown.
    """
    limit = limits.max_size_for(content_type)
    if size is None or limit is None or size <= limit:
        return None
    kind = "image" if content_type.startswith("image/") else "document"
    scope = f"for {kind}s" if limits.max_file_size_by_kind.get(kind) == limit else "per file"
    have, most = _human(size), _human(limit)
    if have == most:
        have, most = f"{size:,} bytes", f"{limit:,} bytes"
    return f"file is {have}; the target accepts at most {most} {scope}"


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"
