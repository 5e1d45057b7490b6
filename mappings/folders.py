"""Reshape a source folder tree to fit a target's limits, before anything is written.

:func:`plan_tree` places every source folder path (and every prefix of it) in the target and
returns a :class:`TreeMap` the pipeline asks per folder: where its assets go, what was changed
on the way (warnings) or why it can't be placed (error). Rules, in the order they apply:

Names
    :func:`sanitize_name`: NFC-normalised; each character of ``limits.forbidden_name_chars``
    and each control character becomes ``_``; leading and trailing whitespace and dots are
    stripped (no hidden-looking or empty names; an empty result becomes ``_``); cut to
    ``limits.max_name_length`` characters (code points, not bytes).

Collisions
    Two children of the same target folder whose names are *exactly* equal after sanitising
    (``"a:b"`` and ``"a?b"`` both become ``"a_b"``) are told apart by a suffix ``" (2)"``,
    ``" (3)"``... A name that needed no change keeps it; otherwise the order is the sorted order
    of the source names, and the first keeps the plain name. Names that differ only in case
    are *not* treated as equal: a target that compares names case-insensitively will refuse or
    merge them, and the pipeline reports that as an item error. The suffixed name never takes
    a name another source folder gets plainly, and it is cut so it still fits the name length.

Existing folders
    Target folders passed as ``existing`` are reused, never suffixed away from: a re-run maps
    onto the folders the previous run created. They count against ``limits.max_folders``.

Depth (``limits.max_folder_depth`` = D)
    ``collapse``: a deeper path keeps its first D-1 levels and joins the rest into one folder
    at level D, ``"e - f - g"``; ``truncate``: its assets go to the level-D ancestor;
    ``fail``: the folder can't be placed and its assets are reported as unsupported.

Count (``limits.max_folders`` = M)
    New folders are taken parents-first, shallowest first (then by path), until existing + new
    reaches M; the ones that don't fit, the deepest ones, can't be placed.

A folder that can't be placed has ``target_path() is None`` and an :meth:`TreeMap.error_for`
that says why and what to do; its descendants can't be placed either.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from connectors.base import FolderPath, Limits

_EDGES = re.compile(r"^[\s.]+|[\s.]+$")
_COLLAPSE_JOINER = " - "


class FolderOverflow(StrEnum):
    """What to do with folders nested deeper than the target allows."""

    COLLAPSE = "collapse"
    TRUNCATE = "truncate"
    FAIL = "fail"


def show_path(path: FolderPath) -> str:
    """A folder path for people: ``'a / b / c'``, or ``the root``."""
    return repr(" / ".join(path)) if path else "the root"


def clean_text(text: str, forbidden: str) -> str:
    """NFC, forbidden and control characters to ``_``, whitespace and dots off both ends.

    Never empty (``_``). No length limit applied; see :func:`fit_length`.
    """
    text = _EDGES.sub("", unicodedata.normalize("NFC", text))
    text = "".join(
        "_" if c in forbidden or unicodedata.category(c) == "Cc" else c for c in text
    )
    return _EDGES.sub("", text) or "_"


def fit_length(text: str, max_length: int | None) -> str:
    """Cut ``text`` to ``max_length`` characters without leaving a trailing space or dot."""
    if max_length is None or len(text) <= max_length:
        return text
    return _EDGES.sub("", text[: max(max_length, 1)]) or "_"


def sanitize_name(name: str, limits: Limits) -> str:
    """The name a folder called ``name`` gets in the target, before collisions are resolved."""
    return fit_length(clean_text(name, limits.forbidden_name_chars), limits.max_name_length)


def with_suffix(
    base: str, number: int, max_length: int | None, *, extension: str = ""
) -> str | None:
    """``base (number)extension``, with ``base`` cut so the whole fits ``max_length``.

    ``None`` when even one character of ``base`` plus the suffix does not fit.
    """
    suffix = f" ({number}){extension}"
    if max_length is None:
        return base + suffix
    room = max_length - len(suffix)
    if room < 1:
        return None
    return (_EDGES.sub("", base[:room]) or "_") + suffix


def unique_names(
    wanted: Iterable[tuple[str, str, bool]],
    max_length: int | None,
    *,
    split: bool = False,
) -> dict[str, str | None]:
    """Resolve exact-equality collisions among sibling names.

    ``wanted``: ``(sort_key, base_name, changed)`` per sibling; ``sort_key`` is unique and
    decides the order (after ``changed``: an unchanged name keeps its name first). Returns
    ``sort_key -> final name``, ``None`` when no unique name fits ``max_length``. With
    ``split``, the suffix goes before the last extension (``photo (2).jpg``).
    """
    items = sorted(wanted, key=lambda w: (w[2], w[0]))
    taken = {base for _, base, _ in items}
    leaders: set[str] = set()
    result: dict[str, str | None] = {}
    for key, base, _ in items:
        if base not in leaders:
            leaders.add(base)
            result[key] = base
            continue
        stem, extension = split_extension(base) if split else (base, "")
        final: str | None = None
        number = 2
        while True:
            candidate = with_suffix(stem, number, max_length, extension=extension)
            if candidate is None:
                break
            if candidate not in taken:
                final = candidate
                taken.add(candidate)
                break
            number += 1
        result[key] = final
    return result


def split_extension(filename: str) -> tuple[str, str]:
    """``("photo", ".jpg")``; no extension for ``"archive"``, ``".env"`` or ``"a.b c"``."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem or not ext or len(ext) > 16 or any(c.isspace() for c in ext):
        return filename, ""
    return stem, "." + ext


def _rename_reasons(
    levels: FolderPath, final: str, base: str, limits: Limits, parent: FolderPath
) -> list[str]:
    """Why the source name (``levels`` joined) became ``final``; ``base``: before any suffix."""
    reasons: list[str] = []
    edges = control = False
    bad_chars: set[str] = set()
    for level in levels:
        normal = unicodedata.normalize("NFC", level)
        stripped = _EDGES.sub("", normal)
        edges = edges or stripped != normal
        bad_chars.update(c for c in stripped if c in limits.forbidden_name_chars)
        control = control or any(unicodedata.category(c) == "Cc" for c in stripped)
    if edges:
        reasons.append("leading or trailing spaces and dots removed")
    if bad_chars:
        shown = " ".join(sorted(bad_chars))
        reasons.append(f"the target does not allow {shown} in names (replaced by _)")
    if control:
        reasons.append("control characters replaced by _")
    cleaned = _COLLAPSE_JOINER.join(
        clean_text(level, limits.forbidden_name_chars) for level in levels
    )
    if cleaned != base:
        reasons.append(f"shortened to the target's limit of {limits.max_name_length} characters")
    if final != base:
        reasons.append(
            f"another folder in {show_path(parent)} is also called {base!r} in the target"
        )
    return reasons


@dataclass(frozen=True, slots=True)
class TreeMap:
    """Where each source folder goes in the target. Build it with :func:`plan_tree`."""

    placements: Mapping[FolderPath, FolderPath | None]
    """Source path -> target path (``None``: can't be placed); every planned path and prefix."""
    notes: Mapping[FolderPath, tuple[str, ...]]
    errors: Mapping[FolderPath, str]
    folders: tuple[FolderPath, ...]
    renamed: Mapping[FolderPath, FolderPath]
    """Source path -> target path, for the placed folders whose path changed."""

    def target_path(self, source_path: FolderPath) -> FolderPath | None:
        """Where the assets of ``source_path`` go; ``None`` when it can't be placed.

        ``()`` (the root) maps to ``()``. Raises ``KeyError`` for a path that was not given
        to :func:`plan_tree` (nor is a prefix of one): plan every asset's folder path.
        """
        try:
            return self.placements[tuple(source_path)]
        except KeyError:
            raise KeyError(
                f"folder {show_path(source_path)} was not part of the planned tree"
            ) from None

    def warnings_for(self, source_path: FolderPath) -> tuple[str, ...]:
        """What changed for this folder itself (rename, collapse, truncation); may be empty.

        An ancestor's changes are reported on the ancestor.
        """
        return self.notes.get(tuple(source_path), ())

    def error_for(self, source_path: FolderPath) -> str | None:
        """Why ``target_path`` is ``None``; ``None`` when the folder is placed."""
        return self.errors.get(tuple(source_path))

    def target_folders(self) -> list[FolderPath]:
        """Every target folder the plan needs (existing or new), parents before children.

        Ordered by depth, then path; no duplicates; the root is not listed.
        """
        return list(self.folders)


@dataclass(slots=True)
class _Slot:
    """A child name to be chosen under one source parent (a real level or a collapsed tail)."""

    parent: FolderPath
    levels: FolderPath
    raw: str
    base: str


def plan_tree(
    source_paths: Iterable[FolderPath],
    limits: Limits,
    policy: FolderOverflow,
    *,
    existing: Iterable[FolderPath] = (),
) -> TreeMap:
    """Place every source folder path, and every prefix of it, in the target.

    Deterministic: the result depends only on the set of paths, not on their order.
    """
    policy = FolderOverflow(policy)
    depth = limits.max_folder_depth
    paths = _with_prefixes(source_paths)
    have = _with_prefixes(existing)

    placements: dict[FolderPath, FolderPath | None] = {(): ()}
    notes: dict[FolderPath, list[str]] = defaultdict(list)
    errors: dict[FolderPath, str] = {}
    slots: dict[FolderPath, _Slot] = {}
    moved_up: list[FolderPath] = []

    for path in sorted(paths, key=_order):
        if depth is None or len(path) <= depth:
            levels = path[-1:]
            raw = path[-1]
            base = sanitize_name(raw, limits)
        elif policy is FolderOverflow.FAIL:
            placements[path] = None
            errors[path] = (
                f"folder depth {len(path)} exceeds the target's limit of {depth}; "
                'set [mapping] folder_overflow = "collapse" or "truncate"'
            )
            continue
        elif policy is FolderOverflow.TRUNCATE or depth < 1:
            moved_up.append(path)
            continue
        else:
            levels = path[depth - 1 :]
            raw = _COLLAPSE_JOINER.join(levels)
            joined = _COLLAPSE_JOINER.join(
                clean_text(level, limits.forbidden_name_chars) for level in levels
            )
            base = fit_length(joined, limits.max_name_length)
        slots[path] = _Slot(path[: len(path) - len(levels)], levels, raw, base)

    by_parent: dict[FolderPath, list[FolderPath]] = defaultdict(list)
    for path, slot in slots.items():
        by_parent[slot.parent].append(path)
    names: dict[FolderPath, str | None] = {}
    for members in by_parent.values():
        # sort key: the raw name, then fewer levels first (a real "e - f" before a collapsed
        # e/f), then the levels themselves (their repr keeps the key unique per sibling)
        keys = {
            f"{slots[p].raw}\x00{len(slots[p].levels):04d}\x00{slots[p].levels!r}": p
            for p in members
        }
        chosen = unique_names(
            (
                (key, slots[p].base, slots[p].base != slots[p].raw)
                for key, p in keys.items()
            ),
            limits.max_name_length,
        )
        names.update((keys[key], name) for key, name in chosen.items())

    for path in sorted(slots, key=_order):
        slot = slots[path]
        parent_target = placements[slot.parent]
        name = names[path]
        if parent_target is None:
            placements[path] = None
            errors[path] = f"its parent folder {show_path(slot.parent)} can't be placed"
            continue
        if name is None:
            placements[path] = None
            errors[path] = (
                f"no unique name for {slot.raw!r} fits the target's limit of "
                f"{limits.max_name_length} characters; rename the folder in the source"
            )
            continue
        placements[path] = (*parent_target, name)
        if len(slot.levels) > 1:
            notes[path].append(
                f"depth {len(path)} > {depth}: levels {show_path(slot.levels[1:])} "
                f"collapsed into {name!r}"
            )
        reasons = _rename_reasons(slot.levels, name, slot.base, limits, slot.parent)
        if reasons:
            notes[path].append(f"folder name {slot.raw!r} became {name!r}: " + "; ".join(reasons))

    keep = max(depth or 0, 0)
    for path in moved_up:
        ancestor = path[:keep]
        placements[path] = placements[ancestor]
        if placements[path] is None:
            errors[path] = errors.get(ancestor) or (
                f"its ancestor folder {show_path(ancestor)} can't be placed"
            )
            continue
        where = show_path(placements[ancestor] or ())
        if keep == 0:
            notes[path].append(
                f"the target has no folders: assets of {show_path(path)} go to the root"
            )
        else:
            notes[path].append(
                f"depth {len(path)} > {depth}: levels {show_path(path[keep:])} dropped; "
                f"its assets go to {where}; "
                'set [mapping] folder_overflow = "collapse" to keep them apart'
            )

    _apply_folder_count(placements, errors, have, limits.max_folders)

    wanted = {t for t in placements.values() if t}
    folders = tuple(sorted(wanted, key=_order))
    renamed = {s: t for s, t in placements.items() if t is not None and t != s}
    return TreeMap(
        placements=MappingProxyType(placements),
        notes=MappingProxyType({p: tuple(n) for p, n in notes.items() if n}),
        errors=MappingProxyType(errors),
        folders=folders,
        renamed=MappingProxyType(renamed),
    )


def _apply_folder_count(
    placements: dict[FolderPath, FolderPath | None],
    errors: dict[FolderPath, str],
    have: set[FolderPath],
    max_folders: int | None,
) -> None:
    """Unplace the folders that don't fit under ``max_folders`` (existing ones always fit)."""
    if max_folders is None:
        return
    needed = {t for t in placements.values() if t}
    new = sorted(needed - have, key=_order)
    room = max(max_folders - len(have), 0)
    if len(new) <= room:
        return
    over = set(new[room:])
    message = (
        f"the target allows at most {max_folders} folders; this plan needs "
        f"{len(have) + len(new)} ({len(have)} already in the target, {len(new)} new), "
        f"so {len(over)} of them, the deepest, can't be created and their assets are skipped. "
        "Exclude part of the source tree or remove unused folders from the target, "
        "then run again"
    )
    for source, target in placements.items():
        if target is not None and target in over:
            placements[source] = None
            errors[source] = f"folder {show_path(target)} does not fit: {message}"


def _with_prefixes(paths: Iterable[FolderPath]) -> set[FolderPath]:
    out: set[FolderPath] = set()
    for path in paths:
        path = tuple(path)
        out.update(path[:i] for i in range(1, len(path) + 1))
    return out


def _order(path: FolderPath) -> tuple[int, FolderPath]:
    """Parents first, shallowest first, then by path."""
    return (len(path), path)
