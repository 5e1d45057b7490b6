"""Reshape a source folder tree to fit a target's limits, before anything is written.

:func:`plan_tree` places every source folder path (and every prefix of it) in the target and
returns a :class:`TreeMap` the pipeline asks per folder: where its assets go, what was changed
on the way (warnings) or why it can't be placed (error). Rules, in the order they apply:

Names
    :func:`sanitize_name`: NFC-normalised; each character of ``limits.forbidden_name_chars``
    and each control character becomes ``_``; leading and trailing whitespace and dots are
    stripped (no hidden-looking or empty names; an empty result becomes ``_``); a reserved
    name gets a ``_`` (:func:`avoid_reserved`); cut to ``limits.max_name_length`` characters
    and ``limits.max_name_bytes`` UTF-8 bytes (:class:`NameRules`; never splitting a
    character). A folder whose whole target path exceeds ``limits.max_path_bytes`` can't be
    placed.

Collisions
    Two children of the same target folder whose names are equal *as the target compares
    them* after sanitising (``"a:b"`` and ``"a?b"`` both become ``"a_b"``; ``"Logos"`` and
    ``"logos"`` on a case-insensitive target; NFC and NFD spellings) are told apart by a
    suffix ``" (2)"``, ``" (3)"``... A name that needed no change keeps it; otherwise the order
    is the sorted order of the source names, and the first keeps the plain name. The suffixed
    name never takes a name another source folder gets plainly, nor one in ``occupied`` (a
    file already in the target there), and it is cut so it still fits the name limits. Two
    source folders with the *same path* (equal sibling names) are kept apart before this, by
    :func:`distinct_folder_paths`.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from connectors.base import Folder, FolderPath, Limits

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


@dataclass(frozen=True, slots=True)
class NameRules:
    """How the target measures and compares names, from its :class:`Limits`.

    ``max_chars`` counts code points, ``max_bytes`` counts bytes of the UTF-8 form (a POSIX
    file system allows 255 bytes per name: 85 CJK characters, not 255). :meth:`key` is the
    name as the target compares it: NFC (so NFC and NFD spellings are one name; every name we
    send is NFC), case-folded where the target ignores case.
    """

    max_chars: int | None = None
    max_bytes: int | None = None
    case_insensitive: bool = False
    reserved: frozenset[str] = frozenset()
    """Folded with :meth:`key`."""
    reserved_prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, limits: Limits) -> NameRules:
        rules = cls(limits.max_name_length, limits.max_name_bytes,
                    limits.case_insensitive_names, frozenset(), limits.reserved_prefixes)
        return replace(rules, reserved=frozenset(rules.key(n) for n in limits.reserved_names))

    def key(self, name: str) -> str:
        """The name as the target compares it (equal keys: the same name in the target)."""
        name = unicodedata.normalize("NFC", name)
        return name.casefold() if self.case_insensitive else name

    def fits(self, text: str) -> bool:
        if self.max_chars is not None and len(text) > self.max_chars:
            return False
        return self.max_bytes is None or len(text.encode("utf-8")) <= self.max_bytes

    def cut(self, text: str, room_for: str = "") -> str:
        """The longest prefix of ``text`` that fits together with ``room_for`` ("" if none).

        Never splits a character; no trailing space or dot (so it may be empty).
        """
        if self.max_chars is not None:
            text = text[: max(self.max_chars - len(room_for), 0)]
        if self.max_bytes is not None:
            room = max(self.max_bytes - len(room_for.encode("utf-8")), 0)
            text = text.encode("utf-8")[:room].decode("utf-8", "ignore")
        return _EDGES.sub("", text)

    def is_reserved(self, name: str) -> bool:
        """A name the target refuses (:attr:`Limits.reserved_names`, reserved prefixes)."""
        if any(name.startswith(p) for p in self.reserved_prefixes):
            return True
        key = self.key(name)
        return key in self.reserved or key.split(".", 1)[0] in self.reserved

    def limit_text(self) -> str:
        """``"255 bytes"``, ``"100 characters"`` or both, for reasons and warnings."""
        parts = []
        if self.max_chars is not None:
            parts.append(f"{self.max_chars} characters")
        if self.max_bytes is not None:
            parts.append(f"{self.max_bytes} bytes (UTF-8)")
        return " and ".join(parts) or "no limit"


def clean_text(text: str, forbidden: str) -> str:
    """NFC, forbidden, control and lone surrogate characters to ``_``, whitespace and dots
    off both ends.

    Never empty (``_``): ``"."``, ``".."`` and ``"..."`` become ``_``. No length limit applied;
    see :func:`fit_length`.
    """
    text = _EDGES.sub("", unicodedata.normalize("NFC", text))
    text = "".join(
        "_" if c in forbidden or unicodedata.category(c) in ("Cc", "Cs") else c for c in text
    )
    return _EDGES.sub("", text) or "_"


def avoid_reserved(name: str, rules: NameRules) -> str:
    """``name``, changed when the target reserves it: ``CON.txt`` -> ``CON_.txt``,
    ``.assetferry-tmp-x`` -> ``_.assetferry-tmp-x``."""
    if not rules.is_reserved(name):
        return name
    if any(name.startswith(p) for p in rules.reserved_prefixes):
        return "_" + name
    stem, dot, rest = name.partition(".")
    if not stem:  # ".manifest.json": the whole name is reserved
        stem, extension = split_extension(name)
        return f"{stem}_{extension}"
    return f"{stem}_{dot}{rest}"


def fit_length(text: str, rules: NameRules | int | None) -> str:
    """Cut ``text`` to the name limits without leaving a trailing space or dot.

    ``rules`` may be a plain character count (or ``None``: no limit).
    """
    if not isinstance(rules, NameRules):
        rules = NameRules(max_chars=rules)
    if rules.fits(text):
        return text
    return rules.cut(text) or "_"


def settle(name: str, step: Callable[[str], str]) -> str:
    """Apply the name rules ``step`` until the name no longer changes (a fixed point).

    One pass may not be enough: shortening can bare a reserved name (``"AUX   ..."`` cut to
    ``"AUX"``) that the next pass changes. Gives up after a few passes (the rules converge in
    two on every target we know).
    """
    for _ in range(6):
        again = step(name)
        if again == name:
            break
        name = again
    return name


def sanitize_name(name: str, limits: Limits) -> str:
    """The name a folder called ``name`` gets in the target, before collisions are resolved.

    A fixed point: ``sanitize_name(sanitize_name(x)) == sanitize_name(x)``, so a name the
    mapping generates (a collision suffix, a collapsed folder) can be passed through it again
    and what the plan shows is what the target stores.
    """
    rules = NameRules.of(limits)

    def once(text: str) -> str:
        cleaned = clean_text(text, limits.forbidden_name_chars)
        return fit_length(avoid_reserved(cleaned, rules), rules)

    return settle(once(name), once)


def with_suffix(
    base: str, number: int, rules: NameRules | int | None, *, extension: str = ""
) -> str | None:
    """``base (number)extension``, with ``base`` cut so the whole fits the name limits.

    ``None`` when even one character of ``base`` plus the suffix does not fit.
    """
    if not isinstance(rules, NameRules):
        rules = NameRules(max_chars=rules)
    suffix = f" ({number}){extension}"
    if rules.fits(base + suffix):
        return base + suffix
    cut = rules.cut(base, suffix)
    return cut + suffix if cut else None


def unique_names(
    wanted: Iterable[tuple[str, str, bool]],
    rules: NameRules | int | None,
    *,
    split: bool = False,
    taken: Iterable[str] = (),
    finish: Callable[[str], str] | None = None,
) -> dict[str, str | None]:
    """Resolve collisions among sibling names, comparing them as the target does.

    ``wanted``: ``(sort_key, base_name, changed)`` per sibling; ``sort_key`` is unique and
    decides the order (after ``changed``: an unchanged name keeps its name first). Names are
    equal when their :meth:`NameRules.key` is (exactly equal, or equal but for case on a
    case-insensitive target). ``taken``: names already used in that folder by something else
    (a folder beside files); they are never given out. Returns ``sort_key -> final name``,
    ``None`` when no unique name fits the limits. With ``split``, the suffix goes before the
    last extension (``photo (2).jpg``). ``finish``: the target's name rules (e.g.
    :func:`sanitize_name` for folders), applied to each suffixed name before it is checked
    against the others, so the name given out is the one the target stores (Contentstack
    stores ``photo (2).jpg`` as ``photo_(2).jpg``); it must keep names within the limits.
    """
    if not isinstance(rules, NameRules):
        rules = NameRules(max_chars=rules)
    items = sorted(wanted, key=lambda w: (w[2], w[0]))
    blocked = {rules.key(name) for name in taken}
    used = {rules.key(base) for _, base, _ in items} | blocked
    leaders: set[str] = set(blocked)
    result: dict[str, str | None] = {}
    for key, base, _ in items:
        if rules.key(base) not in leaders:
            leaders.add(rules.key(base))
            result[key] = base
            continue
        stem, extension = split_extension(base) if split else (base, "")
        final: str | None = None
        number = 2
        while True:
            candidate = with_suffix(stem, number, rules, extension=extension)
            if candidate is None:
                break
            if finish is not None:
                candidate = finish(candidate)
            if rules.fits(candidate) and rules.key(candidate) not in used:
                final = candidate
                used.add(rules.key(candidate))
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


def distinct_folder_paths(
    folders: Iterable[Folder],
) -> tuple[dict[str, FolderPath], dict[str, str]]:
    """A path per source folder id that no other source folder shares.

    Paths are names from the root, so two sibling folders with the same name (Storyblok allows
    two root folders called ``Logos``) would share one path and silently merge. The first of
    them (lowest id, numeric ids by value) keeps its path; each other one is kept apart as
    ``Logos (2)``, ``Logos (3)``... (a name no sibling has), and so are the paths of everything
    inside it. Returns ``(source id -> path, source id -> note)``, a note on each folder of
    such a group saying what happened. A folder whose parent is not listed keeps its parent's
    path as given.
    """
    listed = list(folders)
    return _split_groups(listed, {f.source_id: f for f in listed})


def _id_order(source_id: str) -> str:
    """A sort key putting numeric ids in numeric order."""
    return f"{len(source_id):06d}{source_id}" if source_id.isdigit() else source_id


def _split_groups(
    listed: list[Folder], by_id: Mapping[str, Folder]
) -> tuple[dict[str, FolderPath], dict[str, str]]:
    paths: dict[str, FolderPath] = {}
    notes: dict[str, str] = {}
    by_depth: dict[int, list[Folder]] = defaultdict(list)
    for folder in listed:
        by_depth[len(folder.path)].append(folder)
    for depth in sorted(by_depth):
        siblings: dict[FolderPath, list[Folder]] = defaultdict(list)
        for folder in by_depth[depth]:
            parent = by_id.get(folder.parent_id) if folder.parent_id is not None else None
            parent_path = (paths.get(parent.source_id, folder.path[:-1]) if parent is not None
                           else folder.path[:-1])
            siblings[parent_path].append(folder)
        for parent_path, members in siblings.items():
            used = {f.name for f in members}
            same: dict[str, list[Folder]] = defaultdict(list)
            for folder in sorted(members, key=lambda f: _id_order(f.source_id)):
                same[folder.name].append(folder)
            for name, group in same.items():
                for index, folder in enumerate(group):
                    final = name
                    if index:
                        number = 2
                        while f"{name} ({number})" in used:
                            number += 1
                        final = f"{name} ({number})"
                        used.add(final)
                    paths[folder.source_id] = (*parent_path, final)
                    if len(group) > 1:
                        notes[folder.source_id] = (
                            f"{len(group)} folders in {show_path(parent_path)} of the source "
                            f"are called {name!r}; this one (id {folder.source_id}) is kept "
                            f"apart as {final!r}"
                        )
    return paths, notes


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
    rules = NameRules.of(limits)
    cleaned = _COLLAPSE_JOINER.join(
        clean_text(level, limits.forbidden_name_chars) for level in levels
    )
    unreserved = avoid_reserved(cleaned, rules)
    if unreserved != cleaned:
        reasons.append(f"the target reserves the name {cleaned!r}")
    if unreserved != base:
        reasons.append(f"shortened to the target's limit of {rules.limit_text()}")
    if final != base:
        reasons.append(
            f"another folder or file in {show_path(parent)} is also called {base!r} in the "
            "target"
            + (" (the target ignores case)" if rules.case_insensitive else "")
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
    occupied: Mapping[FolderPath, Iterable[str]] = MappingProxyType({}),
) -> TreeMap:
    """Place every source folder path, and every prefix of it, in the target.

    ``occupied``: per target folder, names a new child folder may not take there (files the
    target already holds, where files and folders share one namespace). Deterministic: the
    result depends only on the set of paths, not on their order.
    """
    policy = FolderOverflow(policy)
    rules = NameRules.of(limits)
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
            base = sanitize_name(joined, limits)
        slots[path] = _Slot(path[: len(path) - len(levels)], levels, raw, base)

    by_parent: dict[FolderPath, list[FolderPath]] = defaultdict(list)
    for path, slot in slots.items():
        by_parent[slot.parent].append(path)
    names: dict[FolderPath, str | None] = {}

    def name_children(parent: FolderPath, where: FolderPath | None) -> None:
        """Names for every slot under ``parent`` (placed at ``where`` in the target)."""
        members = by_parent[parent]
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
            rules,
            taken=occupied.get(where, ()) if where is not None else (),
            finish=lambda name: sanitize_name(name, limits),
        )
        names.update((keys[key], name) for key, name in chosen.items())

    for path in sorted(slots, key=_order):
        slot = slots[path]
        parent_target = placements[slot.parent]
        if path not in names:
            name_children(slot.parent, parent_target)
        name = names[path]
        if parent_target is None:
            placements[path] = None
            errors[path] = f"its parent folder {show_path(slot.parent)} can't be placed"
            continue
        if name is None:
            placements[path] = None
            errors[path] = (
                f"no unique name for {slot.raw!r} fits the target's limit of "
                f"{rules.limit_text()}; rename the folder in the source"
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

    _apply_path_length(placements, errors, limits.max_path_bytes)
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


def path_bytes(path: Iterable[str]) -> int:
    """Length in UTF-8 bytes of ``path`` joined with ``/`` (as a target's path limit counts)."""
    return len("/".join(path).encode("utf-8"))


def _apply_path_length(
    placements: dict[FolderPath, FolderPath | None],
    errors: dict[FolderPath, str],
    max_path_bytes: int | None,
) -> None:
    """Unplace the folders whose target path is longer than the target allows."""
    if max_path_bytes is None:
        return
    for source, target in placements.items():
        if target is not None and path_bytes(target) > max_path_bytes:
            placements[source] = None
            errors[source] = (
                f"its path in the target, {show_path(target)[:80]}..., is "
                f"{path_bytes(target)} bytes; the target allows {max_path_bytes}: move the "
                "target to a shorter path, or shorten or flatten the source folders"
            )


def _with_prefixes(paths: Iterable[FolderPath]) -> set[FolderPath]:
    out: set[FolderPath] = set()
    for path in paths:
        path = tuple(path)
        out.update(path[:i] for i in range(1, len(path) + 1))
    return out


def _order(path: FolderPath) -> tuple[int, FolderPath]:
    """Parents first, shallowest first, then by path."""
    return (len(path), path)
