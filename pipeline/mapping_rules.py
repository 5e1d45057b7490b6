"""``assetferry mappings show``: the effective mapping rules of a job, per section.

Each section (fields, tags, and those the locales, folders and filters rules add) comes from a
small *section provider*: a function ``(job, target) -> Section | None`` listed in
:data:`SECTIONS`. To show a new kind of rule, write one such function next to its rules and
append it to :data:`SECTIONS`; the table and the JSON output pick it up, in list order. A
provider shows the *effective* rule of every key, the default where the job file says
nothing, and marks which is which (``origin``: ``"default"`` or ``"job file"``).

Providers read only the job (:class:`pipeline.config.JobConfig`) and what the target declares
(:class:`TargetInfo`: its connector name and :class:`connectors.base.Limits`); nothing here
contacts a CMS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from connectors.base import Capabilities, Limits
from mappings.fields import DEFAULT, JOB_FILE, SOURCE_FIELDS, EffectiveRules, FieldRule
from mappings.folders import CollapsedPath, FolderRename
from mappings.locales import describe
from pipeline.config import JobConfig


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What a section provider knows of the job's target."""

    connector: str
    limits: Limits
    capabilities: Capabilities | None = None
    """What the target can do to an asset it holds (move, replace, delete), from the
    Protocols its connector implements; ``None``: not known (nothing is claimed)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One effective rule: the key it is set under, its value, where it comes from
    (``"default"`` / ``"job file"``) and a plain-English note (limits, vendor doc)."""

    key: str
    rule: str
    origin: str
    note: str = ""
    template: bool = False
    """``rule`` is a template (the table shows it quoted, with ``\\n`` for line breaks)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One table of ``mappings show``: a title (``"Fields"``), the job file table its keys
    live in (``"[mapping.fields]"``) and its rows."""

    title: str
    table: str
    rows: tuple[Row, ...]


SectionProvider = Callable[[JobConfig, TargetInfo], "Section | None"]


def fields_section(job: JobConfig, target: TargetInfo) -> Section:
    """Every field the target declares with the template that fills it, then every source
    field the target has no field for, with where it goes (carried, dropped on purpose, or
    dropped with a warning per asset). Raises :class:`mappings.fields.FieldRuleError`."""
    rules = job.mapping.field_rules().resolve(target.limits)
    rows = [_field_row(rule) for rule in rules.rules]
    if rules.tags_field is not None:
        rows.append(Row("tags", "the source's tags after [mapping.tags]", DEFAULT,
                        _spec_note(rules.tags_field.max_length,
                                   rules.tags_field.forbidden_chars, rules.tags_field.doc)))
    elif "tags" in rules.dropped:
        rows.append(Row("tags", "false: no tags are sent", JOB_FILE))
    rows.extend(_unplaced(rules))
    return Section("Fields", "[mapping.fields]", tuple(rows))


def _field_row(rule: FieldRule) -> Row:
    text = "false: left empty" if rule.template is None and rule.origin == JOB_FILE else (
        "(nothing: every source field for it is set to false)" if rule.template is None
        else rule.template.text)
    return Row(rule.target, text, rule.origin,
               _spec_note(rule.spec.max_length, rule.spec.forbidden_chars, rule.spec.doc,
                          kind=rule.spec.kind, localized=rule.spec.localized),
               template=rule.template is not None)


def _spec_note(max_length: int | None, forbidden: str, doc: str, *, kind: str = "",
               localized: bool = False) -> str:
    parts = []
    if kind and kind != "text":
        parts.append("x,y fractions 0..1" if kind == "focus" else kind)
    if kind != "focus":
        parts.append(f"at most {max_length} characters" if max_length
                     else "no documented length limit")
    if forbidden:
        parts.append(f"cannot hold {' '.join(forbidden)}")
    if localized:
        parts.append("per locale")
    if doc:
        parts.append(doc)
    return "; ".join(parts)


def _unplaced(rules: EffectiveRules) -> list[Row]:
    """Source fields the target has no field of their own for."""
    rows = []
    for name in SOURCE_FIELDS:
        if name in rules.declared:
            continue
        if name in rules.dropped:
            rows.append(Row(name, "false: dropped on purpose", JOB_FILE,
                            "the target has no such field"))
            continue
        into = [r.target for r in rules.rules
                if r.template is not None and name in r.template.fields]
        if into:
            rows.append(Row(name, f"-> {', '.join(into)}",
                            JOB_FILE if any(r.origin == JOB_FILE for r in rules.rules
                                            if r.target in into) else DEFAULT,
                            "the target has no such field; a template above carries it and "
                            "each asset's plan line says so"))
        else:
            rows.append(Row(name, "nowhere: dropped with a warning per asset", DEFAULT,
                            f"the target has no such field; use {{{name}}} in a template "
                            f"or set {name} = false"))
    return rows


def tags_section(job: JobConfig, target: TargetInfo) -> Section:
    """``[mapping.tags]``: keep, drop, rename, add, each with its effective value."""
    tags = job.mapping.tags
    where = (DEFAULT, JOB_FILE)
    given = tags.model_fields_set
    rows = (
        Row("keep", "true" if tags.keep else "false: the source's tags are not sent",
            where["keep" in given]),
        Row("drop", ", ".join(tags.drop) or "(none)", where["drop" in given]),
        Row("rename", ", ".join(f"{a} -> {b}" for a, b in tags.rename.items()) or "(none)",
            where["rename" in given]),
        Row("add", ", ".join(tags.add) or "(none)", where["add" in given],
            "" if "tags" in target.limits.declared_fields()
            else "the target has no tags: they are dropped with a warning per asset"),
    )
    return Section("Tags", "[mapping.tags]", rows)


def locales_section(job: JobConfig, target: TargetInfo) -> Section:
    """``[mapping.locales]``: what the target holds per locale, the code map, the default
    locale and the policy for locales and fields the target cannot hold
    (:func:`mappings.locales.describe`)."""
    rules = job.mapping.locales
    given = rules.model_fields_set
    where = (DEFAULT, JOB_FILE)
    shown = dict(describe(rules, target.limits))
    held = shown["target locales"]
    if target.limits.locales is None and getattr(job.target, "locales", None) == "site":
        held = held.replace("any", "the site's secondary locales by tag (read when a plan "
                                   "runs)", 1)
    rows = (
        Row("(target)", held, DEFAULT, "what the target keeps per locale"),
        Row("default", shown["default"], where["default" in given]),
        Row("codes", shown["codes"], where["codes" in given],
            "source code -> target code; unlisted codes keep theirs"),
        Row("missing", shown["missing"], where["missing" in given],
            "drop: left out with a warning per asset; fold: into the default locale's "
            "empty fields, the rest warned"),
    )
    return Section("Locales", "[mapping.locales]", rows)


def folders_section(job: JobConfig, target: TargetInfo) -> Section:
    """The folder rules (``folder_overflow``, ``folder_root``, ``[mapping.folder_rules]``,
    ``collapsed_path``) and the target's folder limits they are checked against."""
    mapping = job.mapping
    given = mapping.model_fields_set
    where = (DEFAULT, JOB_FILE)
    limits = target.limits
    depth = limits.max_folder_depth
    rows = [
        Row("folder_overflow", mapping.folder_overflow.value,
            where["folder_overflow" in given],
            "no depth limit to overflow" if depth is None else
            f"folders deeper than {depth} levels, after chains holding no asset merged"),
        Row("folder_root", mapping.folder_root or "(the target's root)",
            where["folder_root" in given]),
        *(Row(f"folder_rules {pattern!r}", replacement or "(the root)", JOB_FILE,
              "a fixed path: folders sent there are merged on purpose"
              if FolderRename.parse(pattern, replacement).fixed else "")
          for pattern, replacement in mapping.folder_rules.items()),
        Row("collapsed_path", mapping.collapsed_path.value, where["collapsed_path" in given],
            _collapsed_note(mapping.collapsed_path, limits)),
        Row("target depth", "no documented limit" if depth is None else f"{depth} levels",
            DEFAULT, "folder_root levels count"),
        Row("target folders", "no documented limit" if limits.max_folders is None
            else f"{limits.max_folders} (existing ones included)", DEFAULT,
            "" if limits.max_folders is None
            else "over it, the folders holding fewest assets fold into their parents"),
        Row("target names", _name_rules(limits), DEFAULT),
        Row("existing folders", "assetferry creates folders, never renames, moves or "
            "deletes one", DEFAULT, "a folder an earlier run made stays where it is when "
            "the rules change; the plan says so"),
        *_asset_rows(target.capabilities),
    ]
    return Section("Folders", "[mapping] folder_*", tuple(rows))


def _asset_rows(caps: Capabilities | None) -> list[Row]:
    """What happens to a migrated asset whose place or file changes, as this target can."""
    if caps is None:
        return []
    return [
        Row("moved assets", "moved to their new folder" if caps.move else
            "stay in their folder: the target cannot move assets", DEFAULT,
            "an asset moved in the source, or placed elsewhere by changed rules"),
        Row("changed files", "replaced in place" if caps.replace else
            "not replaced: the target cannot replace a file (unsupported)", DEFAULT),
        Row("prune", "deletes assets gone from the source (sync --prune)" if caps.delete
            else "not possible: the target cannot delete assets", DEFAULT),
    ]


def _collapsed_note(mode: CollapsedPath, limits: Limits) -> str:
    if mode is CollapsedPath.NAME:
        return "collapsed levels are joined into the folder name (a - b - c)"
    field = "tags" if mode is CollapsedPath.TAG else "description"
    if field not in limits.metadata_fields:
        return f"the target has no {field} field: the source folder path is not kept"
    return f"the asset's source folder path goes into its {field}"


def _name_rules(limits: Limits) -> str:
    parts = []
    if limits.max_name_length is not None:
        parts.append(f"at most {limits.max_name_length} characters")
    if limits.max_name_bytes is not None:
        parts.append(f"at most {limits.max_name_bytes} bytes (UTF-8)")
    if limits.max_path_bytes is not None:
        parts.append(f"paths at most {limits.max_path_bytes} bytes")
    if limits.forbidden_name_chars:
        parts.append(f"{' '.join(limits.forbidden_name_chars)} become _")
    if limits.case_insensitive_names:
        parts.append("case ignored")
    return "; ".join(parts) or "no documented limits"


def filters_section(job: JobConfig, target: TargetInfo) -> Section:
    """``[mapping.filters]``: each rule with its effective value (none set: every asset the
    source lists is migrated). Order as :mod:`mappings.filters` checks them."""
    filters = job.mapping.filters
    given = filters.model_fields_set
    where = (DEFAULT, JOB_FILE)

    def listed(values: tuple[str, ...], empty: str) -> str:
        return ", ".join(repr(v) for v in values) if values else empty

    def size(value: int | None) -> str:
        return f"{value:,} bytes" if value is not None else "(none)"

    rows = (
        Row("include", listed(filters.include, "(none: every path)"), where["include" in given],
            "path globs; an asset must match one"),
        Row("exclude", listed(filters.exclude, "(none)"), where["exclude" in given],
            "path globs; a match is left out"),
        Row("content_types", listed(filters.content_types, "(none: every type)"),
            where["content_types" in given], "MIME globs an asset must match"),
        Row("exclude_content_types", listed(filters.exclude_content_types, "(none)"),
            where["exclude_content_types" in given]),
        Row("min_size", size(filters.min_size), where["min_size" in given]),
        Row("max_size", size(filters.max_size), where["max_size" in given],
            "" if target.limits.max_file_size is None else
            f"the target itself takes at most {target.limits.max_file_size:,} bytes"),
        Row("updated_since", filters.updated_since.isoformat() if filters.updated_since
            else "(none)", where["updated_since" in given]),
        Row("only_referenced", "true: only assets that entries reference" if
            filters.only_referenced else "false", where["only_referenced" in given],
            "a Contentstack source's asset references; other sources are exit 2"
            if filters.only_referenced else ""),
    )
    return Section("Filters", "[mapping.filters]", rows)


def publishing_section(job: JobConfig, target: TargetInfo) -> Section | None:
    """``[target] publish`` of a target that publishes (Contentstack); ``None`` otherwise."""
    if not hasattr(job.target, "publish"):
        return None
    rule = job.target.publish
    if rule is None:
        row = Row("publish", "where the source has each asset published", DEFAULT,
                  "a Contentstack source's publish details, environments matched by name; "
                  "other sources: nothing is published")
    elif not rule.enabled:
        row = Row("publish", "false: nothing is published", JOB_FILE)
    else:
        row = Row("publish", f"{', '.join(rule.environments)} ({', '.join(rule.locales)})",
                  JOB_FILE, "every migrated asset, in every listed locale; checked against "
                  "the target's environments and locales before anything runs")
    return Section("Publishing", "[target] publish", (row,))


SECTIONS: list[SectionProvider] = [fields_section, tags_section, locales_section,
                                   folders_section, filters_section, publishing_section]
"""The providers ``mappings show`` calls, in order; the locales, folders and filters rules
append theirs (one function each)."""


def effective_sections(job: JobConfig, target: TargetInfo) -> list[Section]:
    """Every provider's section for this job and target (those that return one)."""
    return [s for provider in SECTIONS if (s := provider(job, target)) is not None]


def render_table(sections: list[Section], target: TargetInfo) -> str:
    """Plain-text tables, one per section, columns aligned; ``*`` marks job file rules."""
    out = [f"Mapping rules for target {target.connector} (* = set in the job file; "
           "the rest are defaults)"]
    for section in sections:
        out.append("")
        out.append(f"{section.title} {section.table}")
        width = max((len(r.key) for r in section.rows), default=0)
        for row in section.rows:
            mark = "*" if row.origin == JOB_FILE else " "
            rule = json.dumps(row.rule, ensure_ascii=False) if row.template else row.rule
            out.append(f"  {mark} {row.key.ljust(width)}  {rule}")
            if row.note:
                out.append(f"    {' ' * width}  ({row.note})")
    return "\n".join(out) + "\n"


def render_json(sections: list[Section], target: TargetInfo) -> str:
    """``{"target": name, "sections": [{"title", "table", "rows": [{key, rule, origin,
    note}]}]}``."""
    return json.dumps(
        {"target": target.connector,
         "sections": [{"title": s.title, "table": s.table,
                       "rows": [asdict(r) for r in s.rows]} for s in sections]},
        indent=2, ensure_ascii=False) + "\n"
