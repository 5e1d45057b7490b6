"""Which source assets a job migrates: the job file's ``[mapping.filters]`` rules.

Pure functions over :class:`connectors.base.Asset`; no I/O. :func:`check` tells for one asset
whether a rule excludes it (:class:`Exclusion`: the rule's key and a plain-English reason) or
could not decide (a note: the asset is kept). The plan lists every excluded asset as a ``skip``
line with its rule and counts them by rule, so nothing is left out silently; prune never
deletes the target copy of an excluded asset.

Rules, checked in this order (the first that excludes an asset names it):

* ``include``: path globs; when given, an asset must match one of them.
* ``exclude``: path globs; an asset that matches one is excluded.
* ``content_types`` / ``exclude_content_types``: globs over the MIME type (``image/*``).
* ``min_size`` / ``max_size``: bytes, or a size with a unit (``"50MB"``, ``"1.5 GiB"``).
* ``updated_since``: a date or date-time; older assets are excluded.
* ``only_referenced``: only assets that entries reference (the source must be able to tell:
  Contentstack's ``GET /v3/assets/{uid}/references``, CMA "Get asset references"); the
  pipeline reads the references and passes their counts to :func:`check`.

Path globs match the asset's source path (``folder/sub/name.ext``), case-sensitively:
``*`` is any run of characters within one name, ``?`` one character, ``[abc]`` one of a set,
``**`` any number of whole folders (``drafts/**``, ``**/raw/*.tif``). A pattern without ``/``
matches the file name at any depth (``*.psd``); one with ``/`` matches from the root (a
leading ``/`` is allowed); one ending in ``/`` matches everything below that folder.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache

from connectors.base import Asset

KEY = "mapping.filters"
"""Where the rules live in the job file (exclusions are named ``mapping.filters.<rule>``)."""

_UNITS: Mapping[str, int] = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2,
    "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(value: object) -> int | None:
    """Bytes from ``value``: an integer of bytes, or a number with a unit.

    Units (case ignored): ``B``; decimal ``kB``/``MB``/``GB``/``TB`` (and ``k``/``M``/``G``/
    ``T``) are powers of 1000; binary ``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024
    (``"50MB"`` is 50,000,000 bytes, ``"50MiB"`` 52,428,800). ``None`` stays ``None``.
    Raises ValueError saying what is accepted.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a text such as \"50MB\", not true/false")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; give a number of bytes of 0 or more")
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        unit = match.group(2).lower() if match else ""
        if match and unit in _UNITS:
            return int(float(match.group(1)) * _UNITS[unit])
    raise ValueError(f"{value!r} is not a size; write a number of bytes or a number with a "
                     "unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB "
                     "(powers of 1024), e.g. \"50MB\"")


def parse_since(value: object) -> datetime | None:
    """An aware UTC date-time from a TOML date or date-time, or the same as text
    (``2026-01-31``, ``2026-01-31T08:00:00Z``). A date means its midnight UTC; a date-time
    without an offset is taken as UTC. Raises ValueError naming the accepted forms."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (datetime.fromisoformat(text) if "T" in text or " " in text
                     else date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"{value!r} is not a date or date-time; write e.g. 2026-01-31 or "
                             "2026-01-31T08:00:00Z") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise ValueError(f"{value!r} is not a date or date-time; write e.g. 2026-01-31")


@lru_cache(maxsize=1024)
def path_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression of one path glob (rules in the module docstring).

    Raises ValueError for an empty pattern or an unclosed ``[``.
    """
    text = pattern.strip()
    if not text or text == "/":
        raise ValueError("an empty path pattern matches nothing; remove it or write e.g. "
                         "\"drafts/**\"")
    if text.endswith("/"):
        text += "**"
    anchored = "/" in text
    parts = text.lstrip("/").split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        out.append(_segment(part, pattern) + ("" if last else "/"))
    body = "".join(out)
    return re.compile(body if anchored else f"(?:.*/)?{body}", re.DOTALL)


def _segment(part: str, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = part.find("]", i + 2 if part[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                raise ValueError(f"{pattern!r} has a '[' without its ']'")
            inner = part[i + 1:end]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\").replace("/", "") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def type_glob(pattern: str) -> str:
    """A content-type glob, lower-cased (``image/*``, ``application/pdf``, ``*``).

    Raises ValueError for one that cannot match a MIME type (no ``/``: ``image``).
    """
    text = pattern.strip().lower()
    if text != "*" and (text.count("/") != 1 or not all(text.split("/"))):
        raise ValueError(f"{pattern!r} is not a content type pattern; write type/subtype, "
                         "e.g. \"image/*\" or \"application/pdf\"")
    return text


@dataclass(frozen=True, slots=True)
class FilterRules:
    """The job's filter rules, validated (globs compile, sizes in bytes, times aware UTC)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()
    exclude_content_types: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    updated_since: datetime | None = None
    only_referenced: bool = False

    @property
    def active(self) -> bool:
        """Whether any rule is set (with none, every asset the source lists is migrated)."""
        return bool(self.include or self.exclude or self.content_types
                    or self.exclude_content_types or self.min_size is not None
                    or self.max_size is not None or self.updated_since is not None
                    or self.only_referenced)

    def describe(self) -> list[tuple[str, str]]:
        """``(key, value as written)`` of each rule set, for ``mappings show`` and the README."""
        out: list[tuple[str, str]] = []
        for name in ("include", "exclude", "content_types", "exclude_content_types"):
            values: tuple[str, ...] = getattr(self, name)
            if values:
                out.append((f"{KEY}.{name}", ", ".join(repr(v) for v in values)))
        for name in ("min_size", "max_size"):
            size: int | None = getattr(self, name)
            if size is not None:
                out.append((f"{KEY}.{name}", f"{size:,} bytes"))
        if self.updated_since is not None:
            out.append((f"{KEY}.updated_since", self.updated_since.isoformat()))
        if self.only_referenced:
            out.append((f"{KEY}.only_referenced", "true"))
        return out


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why a rule leaves an asset out."""

    rule: str
    """The rule's job-file key, e.g. ``mapping.filters.exclude``."""
    reason: str
    """Plain English naming the rule and the value that decided, for the plan line."""


@dataclass(frozen=True, slots=True)
class Verdict:
    excluded: Exclusion | None = None
    notes: tuple[str, ...] = ()
    """Rules that could not decide for this asset (it is kept), e.g. its size is unknown."""


def asset_path(asset: Asset) -> str:
    return "/".join((*asset.folder_path, asset.filename))


def _size_text(size: int) -> str:
    return f"{size:,} bytes"


def check(asset: Asset, rules: FilterRules,
          references: Mapping[str, int | str] | None = None) -> Verdict:
    """Whether ``rules`` exclude ``asset`` (the first rule that does, in the module's order).

    ``references``: source id -> how many entries reference the asset, or why that could
    not be read (a string: the asset is kept, with a note); needed only for
    ``only_referenced`` (an asset missing from it is kept, with a note).
    """
    path = asset_path(asset)
    notes: list[str] = []

    def out(rule: str, reason: str) -> Verdict:
        return Verdict(Exclusion(f"{KEY}.{rule}", f"excluded by {KEY}.{rule}: {reason}"),
                       tuple(notes))

    if rules.include and not any(path_glob(p).fullmatch(path) for p in rules.include):
        return out("include", f"its path matches none of {_listed(rules.include)}")
    hit = next((p for p in rules.exclude if path_glob(p).fullmatch(path)), None)
    if hit is not None:
        return out("exclude", f"its path matches {hit!r}")
    ctype = (asset.content_type or "").lower()
    if rules.content_types and not any(fnmatch.fnmatchcase(ctype, type_glob(p))
                                       for p in rules.content_types):
        return out("content_types",
                   f"its type {ctype or 'unknown'!r} matches none of "
                   f"{_listed(rules.content_types)}")
    hit = next((p for p in rules.exclude_content_types
                if fnmatch.fnmatchcase(ctype, type_glob(p))), None)
    if hit is not None:
        return out("exclude_content_types", f"its type {ctype!r} matches {hit!r}")
    if rules.min_size is not None or rules.max_size is not None:
        size = asset.size if asset.size is not None else asset.size_estimate
        about = "" if asset.size is not None else "about "
        if size is None:
            notes.append(f"{KEY} size rules could not apply: the source tells no size for "
                         "this asset (kept)")
        elif rules.min_size is not None and size < rules.min_size:
            return out("min_size", f"{about}{_size_text(size)}, under "
                                   f"{_size_text(rules.min_size)}")
        elif rules.max_size is not None and size > rules.max_size:
            return out("max_size", f"{about}{_size_text(size)}, over "
                                   f"{_size_text(rules.max_size)}")
    if rules.updated_since is not None:
        when = asset.updated_at or asset.created_at
        if when is None:
            notes.append(f"{KEY}.updated_since could not apply: the source tells no update "
                         "time for this asset (kept)")
        else:
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
            if when < rules.updated_since:
                return out("updated_since",
                           f"last updated {when.astimezone(UTC).isoformat()}, before "
                           f"{rules.updated_since.isoformat()}")
    if rules.only_referenced:
        count = (references or {}).get(asset.source_id)
        if isinstance(count, str):
            notes.append(f"{KEY}.only_referenced could not apply: its references could not "
                         f"be read ({count}); kept")
        elif count is None:
            notes.append(f"{KEY}.only_referenced could not apply: its references were not "
                         "read (kept)")
        elif count == 0:
            return out("only_referenced", "no entry references it")
    return Verdict(None, tuple(notes))


def needs_references(asset: Asset, rules: FilterRules) -> bool:
    """Whether the references of ``asset`` must be read: ``only_referenced`` is set and no
    other rule excludes it already (so excluded assets cost no request)."""
    if not rules.only_referenced or asset.skipped:
        return False
    return check(asset, rules, {asset.source_id: 1}).excluded is None


def _listed(patterns: Sequence[str]) -> str:
    return ", ".join(repr(p) for p in patterns)
