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

The budget goes to folders that hold assets (``assets``: how many each source folder holds)
    The job's folder rules apply first (:class:`FolderRules`: renames by path pattern, then
    ``folder_root``). Then, in order:

Chains (only in a branch deeper than ``limits.max_folder_depth`` = D)
    A folder that holds no asset of its own and has a single subfolder becomes one folder
    with it, named ``"a - b - c"``, as long as the joined name fits the name limits: a
    40-level tree with one file at the bottom is one folder, not 40.

Depth
    ``collapse``: a deeper folder becomes a sibling of its level-D ancestor, its levels from
    level D down joined, ``"e - f - g"``; a deep folder holding nothing gets no folder of its
    own, nor does a level-D folder left empty by this. ``truncate``: its assets go to the
    level-D ancestor. ``fail``: it can't be placed and its assets are reported as
    unsupported.

Count (``limits.max_folders`` = M)
    While existing + new folders exceed M, the folder holding fewest assets (deepest first
    among equals, then by path) folds into its parent: its assets go there and its
    subfolders move up, its name joined into theirs. The order depends on the source alone,
    so a re-run onto what the first run made stops at the same fold. The ``folder_root``
    never folds; if it alone exceeds M, the folders beyond M can't be placed.

Where a folder's levels are not all in its target path, :attr:`TreeMap.collapsed` has its
source path for the ``collapsed_path`` rule (:class:`CollapsedPath`).

A folder that can't be placed has ``target_path() is None`` and an :meth:`TreeMap.error_for`
that says why and what to do; its descendants can't be placed either.
"""

from __future__ import annotations

import fnmatch
import heapq
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from connectors.base import AssetMeta, Folder, FolderPath, Limits

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
        if name.startswith(self.reserved_prefixes):  # a tuple: any of them
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
    fold = rules.key
    keys = [fold(base) for _, base, _ in items]  # each name folded once, not three times
    blocked = {fold(name) for name in taken}
    used = set(keys) | blocked
    leaders: set[str] = set(blocked)
    result: dict[str, str | None] = {}
    for (key, base, _), folded in zip(items, keys, strict=True):
        if folded not in leaders:
            leaders.add(folded)
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
    if not dot or not stem or not ext or len(ext) > 16 or (
            not ext.isalnum() and any(c.isspace() for c in ext)):
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


class CollapsedPath(StrEnum):
    """Where the source levels go that a reshaped folder's name no longer shows."""

    NAME = "name"
    """Joined into the folder's name: ``"e - f - g"``."""
    TAG = "tag"
    """The folder is named after its last level (``"g"``); each asset in it gets its source
    folder path (``"a/b/c/d/e/f/g"``) as a tag."""
    DESCRIPTION = "description"
    """As ``tag``, but the path goes into a line of each asset's description."""


_PLACEHOLDERS = re.compile(r"\{([^{}]*)\}")
_KNOWN_PLACEHOLDERS = frozenset({"path", "parent", "name"})


def _levels(text: str, what: str) -> FolderPath:
    """``"a/b"`` -> ``("a", "b")``; ValueError for an empty level, ``.`` or ``..``."""
    text = text.strip().strip("/")
    if not text:
        return ()
    levels = tuple(level.strip() for level in text.split("/"))
    for level in levels:
        if level in ("", ".", ".."):
            raise ValueError(
                f"{what} {text!r} has an empty, '.' or '..' level; write folder names "
                "separated by single '/'")
    return levels


def parse_root(text: str) -> FolderPath:
    """``folder_root = "migrated/2026"`` -> ``("migrated", "2026")``; ``""``: the root.

    Raises ValueError saying what is wrong (an empty, ``.`` or ``..`` level).
    """
    return _levels(text, "the path")


def root_problem(root: FolderPath, limits: Limits) -> str | None:
    """Why ``folder_root`` (parsed) cannot exist in a target with ``limits``, or ``None``.

    Deeper than the target's folder depth (Contentstack: 5 levels, CMA "Limitations" of
    folders, facts §1.4), or a path longer in UTF-8 bytes than the target's path limit (a
    local folder: PATH_MAX less the root's own path). A root exactly as deep as the limit is
    allowed (deeper source levels collapse into its last level). Every asset would go under
    such a root, so this is a bad job, not one unsupported folder.
    """
    depth = limits.max_folder_depth
    if depth is not None and len(root) > depth:
        return (f"{len(root)} levels deep; the target allows at most {depth} folder levels "
                f"(every asset goes under folder_root): give a root of at most {depth} levels")
    longest = limits.max_path_bytes
    if longest is not None and path_bytes(root) > longest:
        return (f"{path_bytes(root):,} bytes long; the target allows paths of at most "
                f"{longest:,} bytes below its root: give a shorter folder_root")
    return None


@dataclass(frozen=True, slots=True)
class FolderRename:
    """One ``[mapping.folder_rules]`` entry: a glob over source folder paths -> a new path.

    The pattern matches the shortest prefix of a folder path it can, level by level
    (``*``, ``?`` and ``[...]`` within one level, ``**`` for any number of levels, compared
    in NFC); the matched prefix is replaced and the rest of the path stays below it, so a
    rule moves a whole subtree. The replacement is a path (``""``: the root) that may use
    ``{path}`` (the matched prefix), ``{parent}`` (the prefix less its last level) and
    ``{name}`` (the last level). A replacement without placeholders names its path outright:
    several folders sent there are merged on purpose.
    """

    pattern: str
    replacement: str
    levels: FolderPath

    @classmethod
    def parse(cls, pattern: str, replacement: str) -> FolderRename:
        """Raises ValueError (a sentence for the job file's error) on a bad pattern or an
        unknown placeholder."""
        levels = _levels(unicodedata.normalize("NFC", pattern), "the pattern")
        if not levels:
            raise ValueError("the pattern is empty; write a folder path or glob such as "
                             "'Marketing/*'")
        unknown = set(_PLACEHOLDERS.findall(replacement)) - _KNOWN_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}} in {replacement!r}; use "
                "{path}, {parent} or {name}")
        _levels(_PLACEHOLDERS.sub("x", replacement), "the replacement")
        return cls(pattern, replacement, levels)

    @property
    def fixed(self) -> bool:
        return not _PLACEHOLDERS.search(self.replacement)

    def match(self, path: FolderPath) -> int | None:
        """Length of the shortest prefix of ``path`` the pattern matches, or None."""
        levels = tuple(unicodedata.normalize("NFC", level) for level in path)
        ends = _glob(self.levels, levels)
        return min(ends) if ends else None

    def apply(self, path: FolderPath, length: int) -> FolderPath:
        prefix, rest = path[:length], path[length:]
        values = {"path": "/".join(prefix), "parent": "/".join(prefix[:-1]),
                  "name": prefix[-1] if prefix else ""}
        text = _PLACEHOLDERS.sub(lambda m: values[m.group(1)], self.replacement)
        return (*(level for level in text.strip("/").split("/") if level), *rest)


def _glob(pattern: FolderPath, path: FolderPath) -> set[int]:
    """Every length of a prefix of ``path`` that ``pattern`` matches."""
    ends: set[int] = set()
    stack = [(0, 0)]
    seen: set[tuple[int, int]] = set()
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(pattern):
            ends.add(j)
            continue
        if pattern[i] == "**":
            stack.append((i + 1, j))
            if j < len(path):
                stack.append((i, j + 1))
        elif j < len(path) and fnmatch.fnmatchcase(path[j], pattern[i]):
            stack.append((i + 1, j + 1))
    return ends


@dataclass(frozen=True, slots=True)
class FolderRules:
    """The job's ``[mapping]`` folder rules (validated when the job file loads)."""

    root: FolderPath = ()
    """``folder_root``: every folder (and every asset of the source root) goes under it."""
    renames: tuple[FolderRename, ...] = ()
    """``[mapping.folder_rules]``, in the job file's order; the first that matches wins."""
    collapsed_path: CollapsedPath = CollapsedPath.NAME

    def rename(self, path: FolderPath) -> tuple[FolderPath, FolderRename | None]:
        """Where the rules put a source folder path, and the rule that did (None: none)."""
        for rule in self.renames:
            length = rule.match(path)
            if length is not None:
                return rule.apply(path, length), rule
        return path, None


def carry_path(meta: AssetMeta, source_folder: str | None, mode: CollapsedPath,
               limits: Limits) -> tuple[AssetMeta, tuple[str, ...]]:
    """``meta`` with the source folder path of an asset whose folder was collapsed, merged or
    folded (:attr:`TreeMap.collapsed`) added where ``mode`` says: a tag (once), or a line
    ``Source folder: a/b/c`` at the end of the description. Returns the metadata and the
    plan warnings (what was added; a target without that field keeps nothing, and says so).
    ``source_folder`` None or ``mode`` ``name``: ``meta`` unchanged.
    """
    if source_folder is None or mode is CollapsedPath.NAME:
        return meta, ()
    fields = {CollapsedPath.TAG: "tags", CollapsedPath.DESCRIPTION: "description"}
    if fields[mode] not in limits.metadata_fields:
        return meta, (f"collapsed_path = {mode.value!r}, but the target has no "
                      f"{fields[mode]} field: the source folder {source_folder!r} is not kept",)
    if mode is CollapsedPath.TAG:
        if source_folder in meta.tags:
            return meta, ()
        return (replace(meta, tags=(*meta.tags, source_folder)),
                (f"its source folder {source_folder!r} is kept as a tag (collapsed_path)",))
    line = f"Source folder: {source_folder}"
    text = f"{meta.description}\n\n{line}" if meta.description else line
    return (replace(meta, description=text),
            (f"its source folder {source_folder!r} is kept in the description "
             "(collapsed_path)",))


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
    collapsed: Mapping[FolderPath, str] = field(default_factory=dict)
    """Source path -> its path as text (``"a/b/c"``), for the placed folders whose target
    folder does not show each of its levels (merged, collapsed, folded, truncated)."""
    collapsed_path: CollapsedPath = CollapsedPath.NAME
    """Where those paths go (``name``: nowhere else; ``tag``, ``description``: see
    :class:`CollapsedPath`)."""

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
class _Node:
    """A folder of the reshaped tree. ``key``: the path it had before reshaping (its identity
    and sort key); ``run``: the source levels its name stands for (more than one once levels
    are merged); ``own``: assets held directly (with those folded into it)."""

    key: FolderPath
    run: FolderPath
    parent: _Node | None
    own: int = 0
    pinned: bool = False
    children: dict[FolderPath, _Node] = field(default_factory=dict)
    alive: bool = True
    version: int = 0
    name: str | None = None
    """Its name in the target (collisions resolved); None: no unique name fits."""
    path: FolderPath | None = None
    """Its path in the target; None: it can't be placed."""

    def depth(self) -> int:
        level, node = 0, self.parent
        while node is not None:
            level, node = level + 1, node.parent
        return level + 1


class _Shaper:
    """The reshaping state of :func:`plan_tree`: nodes, where removed ones went, and why."""

    def __init__(self, keys: Iterable[FolderPath], held: Mapping[FolderPath, int],
                 pinned: int, limits: Limits, mode: CollapsedPath,
                 occupied: Mapping[FolderPath, Iterable[str]]) -> None:
        self.limits = limits
        self.occupied = occupied
        self.rules = NameRules.of(limits)
        self.mode = mode
        self.nodes: dict[FolderPath, _Node] = {}
        self.roots: dict[FolderPath, _Node] = {}
        self.home: dict[FolderPath, FolderPath | None] = {}
        """A removed node's key -> the key of the node that took its assets (None: root)."""
        self.events: dict[FolderPath, list[str]] = defaultdict(list)
        self.failed: dict[FolderPath, str] = {}
        self._names: dict[FolderPath, str] = {}
        self._keys: dict[FolderPath | None, dict[str, int]] = {}
        """Per parent (None: the root): how many alive subfolders have each base name, as
        the target compares names."""
        self._clash: dict[FolderPath | None, bool] = {}
        """Per parent: whether a subfolder's name is not its base name (a collision)."""
        self._taken: dict[FolderPath, frozenset[str]] = {}
        for key in sorted(keys, key=_order):
            parent = self.nodes.get(key[:-1]) if len(key) > 1 else None
            node = _Node(key, key[-1:], parent, held.get(key, 0), len(key) <= pinned)
            self.nodes[key] = node
            (self.roots if parent is None else parent.children)[key] = node

    # -- names ---------------------------------------------------------------------------

    def joined(self, run: FolderPath) -> str:
        return _COLLAPSE_JOINER.join(
            clean_text(level, self.limits.forbidden_name_chars) for level in run)

    def raw_name(self, node: _Node) -> str:
        if len(node.run) > 1 and self.mode is not CollapsedPath.NAME:
            return node.run[-1]
        return _COLLAPSE_JOINER.join(node.run)

    def base_name(self, node: _Node) -> str:
        levels = self.name_levels(node)
        name = self._names.get(levels)
        if name is None:
            text = levels[0] if len(levels) == 1 else self.joined(levels)
            name = self._names[levels] = sanitize_name(text, self.limits)
        return name

    def name_levels(self, node: _Node) -> FolderPath:
        """The source levels the folder's name is made of."""
        return node.run if self.mode is CollapsedPath.NAME else node.run[-1:]

    def fits_joined(self, run: FolderPath) -> bool:
        """Whether levels joined into one name fit the target's name limits uncut."""
        if self.mode is not CollapsedPath.NAME:
            return True
        text = self.joined(run)
        return sanitize_name(text, self.limits) == text

    # -- the tree ------------------------------------------------------------------------

    def children(self, node: _Node | None) -> list[_Node]:
        pool = self.roots if node is None else node.children
        return sorted(pool.values(), key=lambda c: _order(c.key))

    def walk(self, top: _Node | None = None) -> list[_Node]:
        """Alive nodes (under ``top``, itself included), parents first."""
        out: list[_Node] = []
        stack = [top] if top is not None else list(reversed(self.children(None)))
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(self.children(node)))
        return out

    def deepest(self) -> dict[FolderPath, int]:
        """Per alive node: the depth of the deepest node in its subtree (itself included)."""
        out: dict[FolderPath, int] = {}
        for node in reversed(self.walk()):
            out[node.key] = max((out[c.key] for c in self.children(node)),
                                default=node.depth())
        return out

    def _detach(self, node: _Node) -> None:
        (self.roots if node.parent is None else node.parent.children).pop(node.key, None)

    def _attach(self, node: _Node, parent: _Node | None) -> None:
        self._detach(node)
        node.parent = parent
        (self.roots if parent is None else parent.children)[node.key] = node

    def drop(self, node: _Node, into: _Node | None) -> None:
        """Remove ``node``: its assets go to ``into`` (None: the root); its subfolders move
        up to its parent, their names prefixed by ``node``'s levels."""
        node.alive = False
        self.home[node.key] = None if into is None else into.key
        if into is not None:
            into.own += node.own
        for child in self.children(node):
            child.run = node.run + child.run
            self._attach(child, node.parent)
        self._detach(node)

    def absorb(self, node: _Node, child: _Node) -> None:
        """Merge ``node``'s only subfolder into it: one folder for both levels."""
        child.alive = False
        self.home[child.key] = node.key
        node.run = node.run + child.run
        node.own += child.own
        self._detach(child)
        for grandchild in self.children(child):
            self._attach(grandchild, node)

    def resolve(self, key: FolderPath) -> tuple[_Node | None, str | None]:
        """The alive node holding what ``key`` stood for (None: the root), or the error."""
        at: FolderPath | None = key
        while at is not None:
            if at in self.failed:
                return None, self.failed[at]
            node = self.nodes[at]
            if node.alive:
                return node, None
            at = self.home[at]
        return None, None

    # -- the stages ----------------------------------------------------------------------

    def merge_chains(self, depth: int) -> None:
        """In each branch deeper than ``depth``: a folder that holds no asset of its own and
        has a single subfolder becomes one folder with it (names joined, while they fit)."""
        deepest = self.deepest()
        for node in self.walk():
            if not node.alive or node.pinned or deepest.get(node.key, 0) <= depth:
                continue
            levels = len(node.run)
            while node.own == 0:
                kids = self.children(node)
                if len(kids) != 1 or not self.fits_joined(node.run + kids[0].run):
                    break
                self.absorb(node, kids[0])
            if len(node.run) > levels:
                self.events[node.key].append(
                    f"{len(node.run)} levels {show_path(node.run)} merged into one folder: "
                    "the ones above the last hold no asset of their own and the source tree "
                    f"is deeper than the target's limit of {depth}")

    def apply_depth(self, depth: int, policy: FolderOverflow) -> None:
        """Folders still deeper than ``depth``: ``policy`` decides (see :func:`plan_tree`)."""
        deep = [n for n in self.walk() if n.depth() > depth]
        if not deep:
            return
        if policy is FolderOverflow.FAIL:
            for node in reversed(deep):
                self.failed[node.key] = (
                    f"folder depth {node.depth()} exceeds the target's limit of {depth}; "
                    'set [mapping] folder_overflow = "collapse" or "truncate"')
                node.alive = False
                self._detach(node)
            return
        chains: dict[FolderPath, list[_Node]] = {}
        levels: dict[FolderPath, int] = {}
        runs: dict[FolderPath, FolderPath] = {}
        for node in deep:  # measured before anything moves
            chain, up = [node], node.parent
            while up is not None and up.depth() >= depth:
                chain.append(up)
                up = up.parent
            chains[node.key] = list(reversed(chain))
            levels[node.key] = node.depth()
            runs[node.key] = tuple(level for n in chains[node.key] for level in n.run)
        if policy is FolderOverflow.TRUNCATE or depth < 1:
            for node in reversed(deep):  # deepest first: each lands on its level-D ancestor
                keep = chains[node.key][0] if depth >= 1 else None
                self.drop(node, keep)
                if keep is None:
                    self.events[node.key].append(
                        f"the target has no folders: assets of {show_path(node.key)} go to "
                        "the root")
                else:
                    dropped = runs[node.key][len(chains[node.key][0].run):]
                    self.events[node.key].append(
                        f"depth {levels[node.key]} > {depth}: levels {show_path(dropped)} "
                        'dropped; set [mapping] folder_overflow = "collapse" to keep them apart')
            return
        tops = {chains[n.key][0].key for n in deep}
        for node in deep:
            node.run = runs[node.key]
            self._attach(node, chains[node.key][0].parent)
            self.events[node.key].append(
                f"depth {levels[node.key]} > {depth}: levels {show_path(node.run)} collapsed "
                "into one folder")
        # a folder that now holds nothing and has nothing under it costs budget for nothing
        for node in [*deep, *(self.nodes[k] for k in sorted(tops, key=_order))]:
            if node.alive and node.own == 0 and not node.children and node.key[:-1]:
                node.alive = False
                self._detach(node)
                self.home[node.key] = node.key[:-1]
                self.events[node.key] = [
                    "holds no asset, and its subfolders are deeper than the target's limit "
                    f"of {depth}: not created (nothing is lost)"]

    def name_group(self, parent: _Node | None) -> list[tuple[_Node, FolderPath | None]]:
        """Names for the subfolders of ``parent``, compared as the target compares them
        (collisions get suffixes: :func:`unique_names`), and the paths of their subtrees.

        Returns the nodes whose path changed, with their path before.
        """
        where = () if parent is None else parent.path
        members = self.children(parent)
        changed: list[tuple[_Node, FolderPath | None]] = []
        if where is None:
            for node in members:
                for below in self.walk(node):
                    if below.path is not None:
                        changed.append((below, below.path))
                    below.name, below.path = None, None
            return changed
        keys = {f"{self.raw_name(n)}\x00{len(n.run):04d}\x00{n.key!r}": n for n in members}
        chosen = unique_names(
            ((key, self.base_name(n), self.base_name(n) != self.raw_name(n))
             for key, n in keys.items()),
            self.rules,
            taken=self.occupied.get(where, ()),
            finish=lambda name: sanitize_name(name, self.limits),
        )
        group = None if parent is None else parent.key
        counts: dict[str, int] = defaultdict(int)
        for node in members:
            counts[self.rules.key(self.base_name(node))] += 1
        self._keys[group] = counts
        self._clash[group] = any(chosen[k] != self.base_name(n) for k, n in keys.items())
        for key, name in chosen.items():
            node = keys[key]
            path = None if name is None else (*where, name)
            if node.name == name and node.path == path:
                continue
            changed.append((node, node.path))
            node.name, node.path = name, path
            for below in self.walk(node)[1:]:
                above = below.parent.path if below.parent is not None else ()
                changed.append((below, below.path))
                below.path = None if above is None or below.name is None else (
                    *above, below.name)
        return changed

    def _regroup(self, parent: _Node | None, gone: str, lifted: list[_Node]
                 ) -> list[tuple[_Node, FolderPath | None]]:
        """Names in ``parent``'s group after a fold took away a subfolder whose base name
        was ``gone`` and lifted ``lifted`` into it: what :meth:`name_group` would give,
        without naming the whole group again when no name collides."""
        group = None if parent is None else parent.key
        where = () if parent is None else parent.path
        counts = self._keys.get(group)
        if (where is None or counts is None or self._clash.get(group, True)
                or counts.get(gone, 0) != 1):
            return self.name_group(parent)
        taken = self._taken.get(where)
        if taken is None:
            taken = self._taken[where] = frozenset(
                self.rules.key(n) for n in self.occupied.get(where, ()))
        fresh = [self.rules.key(self.base_name(n)) for n in lifted]
        if len(set(fresh)) != len(fresh) or any(
                k in taken or counts.get(k, 0) - (k == gone) > 0 for k in fresh):
            return self.name_group(parent)
        del counts[gone]
        counts.update(dict.fromkeys(fresh, 1))
        changed: list[tuple[_Node, FolderPath | None]] = []
        for node in lifted:
            for below in self.walk(node):
                changed.append((below, below.path))
                if below is node:
                    below.name = self.base_name(node)
                above = below.parent.path if below.parent is not None else ()
                below.path = None if above is None or below.name is None else (
                    *above, below.name)
        return changed

    def name_all(self) -> None:
        """Name every alive folder, parents first."""
        self.name_group(None)
        for node in self.walk():
            self.name_group(node)

    def fit_count(self, have: set[FolderPath], most: int) -> None:
        """Fold the folders holding fewest assets into their parents (deepest first among
        equals, then by path; the ``folder_root`` never folds) until the target's folders
        and the new ones are at most ``most``. The order depends on the source alone, so a
        re-run, whose folders from the first run are in ``have``, stops at the same fold."""
        self.name_all()
        nodes = self.walk()
        new = sum(1 for n in nodes if n.path is not None and n.path not in have)
        if len(have) + new <= most:
            return
        heap = [(n.own, -n.depth(), n.key, n.version) for n in nodes]
        heapq.heapify(heap)
        while len(have) + new > most and heap:
            own, _, key, version = heapq.heappop(heap)
            node = self.nodes[key]
            if not node.alive or node.version != version or node.pinned:
                continue
            parent = node.parent
            moved = [n for child in self.children(node) for n in self.walk(child)]
            if node.path is not None and node.path not in have:
                new -= 1
            gone = self.rules.key(self.base_name(node))
            lifted = self.children(node)
            self.drop(node, parent)
            self._keys.pop(node.key, None)
            for changed, before in self._regroup(parent, gone, lifted):
                new -= before is not None and before not in have
                new += changed.path is not None and changed.path not in have
            into = show_path(parent.run if parent is not None else ())
            self.events[key].append(
                f"folded into {into}: the target allows at most {most} folders, and folders "
                f"holding fewest assets fold first (this one held {own})")
            for again in [*moved, *([parent] if parent is not None else [])]:
                again.version += 1
                heapq.heappush(heap, (again.own, -again.depth(), again.key, again.version))


def plan_tree(
    source_paths: Iterable[FolderPath],
    limits: Limits,
    policy: FolderOverflow,
    *,
    existing: Iterable[FolderPath] = (),
    occupied: Mapping[FolderPath, Iterable[str]] = MappingProxyType({}),
    assets: Mapping[FolderPath, int] | None = None,
    rules: FolderRules | None = None,
) -> TreeMap:
    """Place every source folder path, and every prefix of it, in the target.

    ``assets``: how many assets each source folder holds directly (``None``: each path in
    ``source_paths`` holds one, its prefixes none); the budget is spent on folders that hold
    assets. ``rules``: the job's ``[mapping]`` folder rules. ``occupied``: per target folder,
    names a new child folder may not take there (files the target already holds, where files
    and folders share one namespace). Deterministic: the result depends only on the set of
    paths and the counts, not on their order.
    """
    policy = FolderOverflow(policy)
    rules = rules or FolderRules()
    names = NameRules.of(limits)
    depth = limits.max_folder_depth
    given = [tuple(p) for p in source_paths]
    paths = _with_prefixes(given)
    have = _with_prefixes(existing)
    if assets is None:
        held_by_source = dict.fromkeys(given, 1)
    else:
        held_by_source = {tuple(p): n for p, n in assets.items() if n}
    paths |= _with_prefixes(p for p in held_by_source if p)

    # [mapping] rename rules, then the new root
    moved: dict[FolderPath, FolderPath] = {}
    notes: dict[FolderPath, list[str]] = defaultdict(list)
    how: dict[FolderPath, FolderRename | None] = {}
    for path in sorted(paths, key=_order):
        target, rule = rules.rename(path)
        moved[path] = (*rules.root, *target)
        how[path] = rule
        if rule is not None and target != path:
            notes[path].append(
                f"moved to {show_path(target)} by the folder rule {rule.pattern!r}")
    _warn_merges(moved, how, notes)
    moved[()] = rules.root
    held: dict[FolderPath, int] = defaultdict(int)
    for path, count in held_by_source.items():
        held[moved[path]] += count

    errors: dict[FolderPath, str] = {}
    if depth is not None and len(rules.root) > depth:
        message = (f"[mapping] folder_root has {len(rules.root)} levels; the target allows "
                   f"{depth}: use a shorter folder_root")
        errors = dict.fromkeys(paths | {()}, message)
        return TreeMap(MappingProxyType(dict.fromkeys(paths | {()})), MappingProxyType({}),
                       MappingProxyType(errors), (), MappingProxyType({}),
                       MappingProxyType({}), rules.collapsed_path)

    shaper = _Shaper(_with_prefixes([*moved.values()]), held, len(rules.root), limits,
                     rules.collapsed_path, occupied)
    if depth is not None:
        shaper.merge_chains(depth)
        shaper.apply_depth(depth, policy)
    if limits.max_folders is not None:
        shaper.fit_count(have, limits.max_folders)
    shaper.name_all()  # the names of the final tree, each group named whole

    # why names changed, and why a folder has none
    final: dict[FolderPath, FolderPath | None] = {}
    name_errors: dict[FolderPath, str] = {}
    renames: dict[FolderPath, list[str]] = defaultdict(list)
    for node in shaper.walk():
        final[node.key] = node.path
        above = node.parent
        if above is not None and above.path is None:
            name_errors[node.key] = f"its parent folder {show_path(above.run)} can't be placed"
        elif node.name is None:
            name_errors[node.key] = (
                f"no unique name for {shaper.raw_name(node)!r} fits the target's limit "
                f"of {names.limit_text()}; rename the folder in the source")
        else:
            base = shaper.base_name(node)
            reasons = _rename_reasons(shaper.name_levels(node), node.name, base, limits,
                                      above.run if above else ())
            if reasons:
                renames[node.key].append(
                    f"folder name {shaper.raw_name(node)!r} became {node.name!r}: "
                    + "; ".join(reasons))

    placed: dict[FolderPath, FolderPath | None] = {}
    collapsed: dict[FolderPath, str] = {}
    for path in sorted(paths | {()}, key=_order):
        key = moved[path]
        if not key:
            placed[path] = ()
            continue
        holder, error = shaper.resolve(key)
        if error is not None:
            placed[path] = None
            errors[path] = error
            continue
        if holder is None:
            placed[path] = ()
        else:
            placed[path] = final[holder.key]
            if final[holder.key] is None:
                errors[path] = name_errors[holder.key]
        reshaped = holder is None or holder.key != key or len(holder.run) > 1
        said = [*shaper.events.get(key, ()), *renames.get(key, ())]
        if reshaped and placed[path] is not None:
            collapsed[path] = "/".join(path)
            if holder is None:
                said.append("its assets go to the root")
            elif holder.key != key:
                said.append(f"its assets go to {show_path(placed[path] or ())}")
            elif len(holder.run) > 1:
                said.append(f"the folder is {show_path(placed[path] or ())}")
        notes[path].extend(said)
    placements = placed
    # a folder that can't be placed takes its descendants along
    for path in sorted(paths, key=_order):
        if placements[path] is None and path not in errors:
            errors[path] = "cannot be placed"

    _apply_path_length(placements, errors, limits.max_path_bytes)
    _apply_folder_count(placements, errors, have, limits.max_folders)

    wanted = {t[:i] for t in placements.values() if t for i in range(1, len(t) + 1)}
    folders = tuple(sorted(wanted, key=_order))
    renamed = {s: t for s, t in placements.items() if t is not None and t != s}
    return TreeMap(
        placements=MappingProxyType(placements),
        notes=MappingProxyType({p: tuple(n) for p, n in notes.items() if n}),
        errors=MappingProxyType(errors),
        folders=folders,
        renamed=MappingProxyType(renamed),
        collapsed=MappingProxyType({p: t for p, t in collapsed.items() if placements[p]
                                    is not None}),
        collapsed_path=rules.collapsed_path,
    )


def _warn_merges(moved: Mapping[FolderPath, FolderPath],
                 how: Mapping[FolderPath, FolderRename | None],
                 notes: dict[FolderPath, list[str]]) -> None:
    """Two source folders the rules put on one path: fine when every one of them got there
    through a rule naming that path outright; otherwise a warning on each."""
    by_target: dict[FolderPath, list[FolderPath]] = defaultdict(list)
    for path, target in moved.items():
        by_target[target].append(path)
    for target, sources in by_target.items():
        if len(sources) < 2:
            continue
        on_purpose = all((r := how[s]) is not None and r.fixed for s in sources)
        if on_purpose:
            for s in sources:
                notes[s].append(f"merged on purpose with {len(sources) - 1} other source "
                                f"folder(s) into {show_path(target)} by the folder rules")
            continue
        for s in sources:
            others = ", ".join(show_path(o) for o in sources if o != s)
            notes[s].append(
                f"merged by accident with {others} into {show_path(target)} by the folder "
                "rules; if that is meant, add a rule naming that path for each of them, "
                "otherwise change the rule")


def _apply_folder_count(
    placements: dict[FolderPath, FolderPath | None],
    errors: dict[FolderPath, str],
    have: set[FolderPath],
    max_folders: int | None,
) -> None:
    """Unplace the folders that don't fit under ``max_folders`` (existing ones always fit)."""
    if max_folders is None:
        return
    needed = _with_prefixes(t for t in placements.values() if t)
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
        if target is not None and any(target[:i] in over for i in range(1, len(target) + 1)):
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
