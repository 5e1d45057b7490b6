"""Rendering: the plan (table, JSON, Markdown), the run summary, the id/url map."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.plan import PRESENT, UNCHANGED, AssetAction, FolderAction, Op, Plan
from pipeline.stages import Outcome
from pipeline.text import one_line
from state.records import ItemRecord, ItemStatus, maps_target

NOT_MIGRATED = frozenset({Op.UNSUPPORTED, Op.CONFLICT})
EXCLUDED_SHOWN = 20
"""Excluded entries listed one per line in the run summary text (all go to --report)."""


def plan_items(plan: Plan) -> list[dict[str, Any]]:
    """One dict per folder and asset action (the JSON plan's ``items``)."""
    return list(iter_plan_items(plan))


def unchanged(action: AssetAction | FolderAction) -> bool:
    """An asset unchanged since the last run, or a folder already in the target: a SKIP
    with exactly that reason (one that says more, e.g. that an earlier run's folder is kept
    where it is, is not). The table and Markdown plans count these in one line."""
    return action.op is Op.SKIP and action.reason == (
        UNCHANGED if isinstance(action, AssetAction) else PRESENT)


def iter_plan_items(plan: Plan, *, every: bool = True) -> Iterator[dict[str, Any]]:
    """:func:`plan_items` one at a time (the table and Markdown plans of 100,000 assets
    never hold them all); ``every=False``: not the :func:`unchanged` ones."""
    yield from (
        {"op": f.op.value, "kind": "folder", "source_id": ",".join(f.source_ids) or None,
         "path": f.path, "reason": f.reason, "warnings": list(f.warnings), "adopted": False}
        for f in plan.folders if every or not unchanged(f)
    )
    skip = Op.SKIP
    for a in plan.assets:
        if not every and a.op is skip and a.reason == UNCHANGED:
            continue
        item = {"op": a.op.value, "kind": "asset", "source_id": a.source_id, "path": a.path,
                "reason": a.reason, "warnings": list(a.warnings),
                "target_path": "/".join((*a.target_folder, a.filename))
                if a.target_folder is not None and a.filename else None,
                "adopted": a.adopted}
        if a.excluded_by:
            item["excluded_by"] = a.excluded_by
        if a.publish is not None and a.publish_requests:
            item["publish"] = a.publish.text()
        if a.asset is not None and a.asset.notes:
            item["notes"] = list(a.asset.notes)
        yield item


ADOPT = "adopt"
"""What the table, Markdown and HTML plans show as an item's op when it is ``adopted``."""


def shown_op(item: Mapping[str, Any]) -> str:
    """The op a plan row shows for ``item`` (one of :func:`iter_plan_items`): ``adopt`` for
    an asset an interrupted run had created, taken as ours (its JSON ``op`` stays ``update``,
    its metadata is set again, with ``adopted: true``), so the rows count as the summary's
    ``adopted`` does; else its ``op``."""
    return ADOPT if item.get("adopted") else str(item["op"])


def listed_entries(plan: Plan) -> tuple[int, int]:
    """``(entries, excluded)`` of ``plan``'s source listing (:attr:`RunSummary.listed`)."""
    entries = excluded = 0
    for a in plan.assets:
        if a.asset is not None:
            entries += 1
            excluded += bool(a.asset.skipped)
    return entries, excluded


def plan_exit_code(plan: Plan) -> int:
    """``plan``'s exit code, the one a run carrying it out would end with (as
    :meth:`RunSummary.exit_code` counts it): 2 when the run would stop before any write
    (:attr:`Plan.stop`: drift under ``[run] on_conflict = "fail"``); 1 when it would hold
    items back — an asset
    ``conflict`` or ``unsupported`` (not migrated), or prune deletions held back — so a
    reviewer's script or CI step stops on them before ``migrate``; else 0. Excluded entries
    and folders that cannot be created (their assets still go) do not count."""
    if plan.stop is not None:
        return 2
    held = plan.held_deletes or any(a.op in NOT_MIGRATED for a in plan.assets)
    return 1 if held else 0


def plan_summary(plan: Plan) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    for f in plan.folders:
        counts[f"folders_{f.op.value}"] += 1
    by_rule: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    ops: Counter[Op] = Counter()
    entries = gone = warnings = to_publish = drift = adopted = 0
    # bytes of the assets to send, and how many of them the source only estimates (or does
    # not tell): those sizes become exact when the files are downloaded
    total_bytes = estimated_sizes = 0
    skip, create, replace_ = Op.SKIP, Op.CREATE, Op.REPLACE
    for a in plan.assets:  # one pass over 100,000 actions, not one per figure
        op = a.op
        ops[op] += 1
        if a.adopted:
            adopted += 1
        asset = a.asset
        if asset is None:
            gone += 1
        else:
            entries += 1
            if asset.skipped:
                by_rule[a.excluded_by or "source"] += 1
            if op is create or op is replace_:
                if asset.size is not None:
                    total_bytes += asset.size
                else:
                    estimated_sizes += 1
                    total_bytes += asset.size_estimate or 0
        # a skipped item's warnings were reported when it was migrated: not again every plan
        if op is not skip and a.warnings:
            warnings += len(a.warnings)
        if a.dropped:
            dropped.update(a.dropped)
        if a.publish is not None and a.publish_requests:
            to_publish += 1
        if a.drift:
            drift += 1
    for op, n in ops.items():
        counts[op.value] += n
    # an asset an interrupted run created, found in the target and taken as ours, has its
    # metadata set again (an UPDATE) but is no edit: adopted, as the run summary counts it
    counts[Op.UPDATE.value] -= adopted
    excluded = by_rule.total()
    warnings += sum(len(f.warnings) for f in plan.folders if f.op is not Op.SKIP)
    writes, reads = plan.request_counts()  # one pass, not one per figure
    return {
        "route": plan.route,
        **{op.value: counts.get(op.value, 0) for op in Op},
        "adopted": adopted,
        "folders_create": counts.get("folders_create", 0),
        "folders_skip": counts.get("folders_skip", 0),
        "folders_unsupported": counts.get("folders_unsupported", 0),
        "excluded": excluded,
        "excluded_by_rule": dict(sorted(by_rule.items())),
        "source_entries": entries,
        "source_assets": entries - excluded,
        "gone_from_source": gone,
        "warnings": warnings,
        "bytes": total_bytes,
        "bytes_estimated": estimated_sizes,
        "dropped_fields": dict(sorted(dropped.items())),
        "to_publish": to_publish,
        "estimated_requests": writes,
        "estimated_source_requests": plan.source_listing_requests + reads,
        "estimated_seconds": plan.seconds_at(writes, reads),
        "listing": plan.listing,
        "drift": drift,
        "stops": plan.stop,
    }


def plan_json(plan: Plan) -> str:
    """``{"summary": ..., "items": [...]}`` as ``json.dumps(..., indent=2,
    ensure_ascii=False)`` writes it, byte for byte (:func:`plan_json_parts` joined)."""
    return "".join(plan_json_parts(plan))


def plan_json_parts(plan: Plan) -> Iterator[str]:
    """:func:`plan_json` in parts, one per item (the command writes them as they come: the
    JSON plan of 100,000 assets is never held whole). The items are written with the
    standard library's C string encoder (its indented mode is pure Python: seconds for
    100,000 items); an item holding a value that writer does not lay out is written by the
    standard encoder, at the same indent."""
    head = json.dumps({"summary": plan_summary(plan)}, indent=2, ensure_ascii=False)
    yield head[:-2] + ',\n  "items": ['
    empty = True
    for item in iter_plan_items(plan):
        text = _item_json(item)
        if text is None:
            text = "\n    " + json.dumps(item, indent=2, ensure_ascii=False).replace(
                "\n", "\n    ")  # a string's own newlines are escaped: only the layout's
        yield text if empty else "," + text
        empty = False
    yield "]\n}" if empty else "\n  ]\n}"


_encode = json.encoder.encode_basestring  # what ensure_ascii=False writes strings with


def _item_json(item: dict[str, Any]) -> str | None:
    """One item of :func:`plan_json` at its indent (``\n    {...}``); None when a value is
    not a string, a bool, None or a list of strings."""
    lines = []
    for key, value in item.items():
        if isinstance(value, str):
            text = _encode(value)
        elif value is None:
            text = "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            text = ("[\n" + ",\n".join(f"        {_encode(v)}" for v in value) + "\n      ]"
                    if value else "[]")
        else:
            return None
        lines.append(f"      {_encode(key)}: {text}")
    return "\n    {\n" + ",\n".join(lines) + "\n    }" if lines else "\n    {}"


def source_text(entries: int, excluded: int, gone: Counter[str]) -> str:
    """What the asset counts count: ``14 source entries (10 assets, 4 excluded); 2 gone from
    the source: kept (prune is off)``. ``gone``: ledger rows whose source asset is gone, by
    what happens to them (they are not entries of the source listing)."""
    text = (f"{entries} source entr{'y' if entries == 1 else 'ies'} "
            f"({entries - excluded} asset{'' if entries - excluded == 1 else 's'}, "
            f"{excluded} excluded)")
    total = sum(gone.values())
    if total:
        parts = [what if len(gone) == 1 else f"{n} {what}" for what, n in gone.items()]
        text += f"; {total} gone from the source: {', '.join(parts)}"
    return text


def excluded_text(excluded: int, by_rule: dict[str, int]) -> str:
    """``5 excluded: 2 by the source, 3 by mapping.filters.exclude`` (``N excluded by the
    source`` when the source excluded them all)."""
    rules = {k: v for k, v in by_rule.items() if v}
    if not rules or set(rules) == {"source"}:
        return f"{excluded} excluded by the source"
    parts = ", ".join(f"{n} by {'the source' if rule == 'source' else rule}"
                      for rule, n in sorted(rules.items(), key=lambda kv: kv[0] != "source"))
    return f"{excluded} excluded: {parts}"


GONE_CONFLICT = "held back as a conflict (changed in the target since assetferry wrote it)"
"""What became of a gone asset whose prune deletion is held back as a conflict."""


def _gone_what(reason: str, op: Op = Op.SKIP) -> str:
    """``kept (prune is off)`` from ``gone from the source; kept (prune is off)``; a
    conflict (a deletion held back: the copy was edited in the target) is
    :data:`GONE_CONFLICT`, not its whole reason."""
    if op is Op.CONFLICT:
        return GONE_CONFLICT
    for prefix in ("gone from the source listing; ", "gone from the source; "):
        if reason.startswith(prefix):
            return reason[len(prefix):]
    return reason


def _summary_line(summary: dict[str, Any], gone: Counter[str], gone_skips: int) -> str:
    """``gone_skips``: the skips among the ledger rows gone from the source (the others are
    deletions, conflicts, unsupported: counted there)."""
    return (source_text(summary["source_entries"], summary["excluded"], gone) + "\n"
            f"folders: {summary['folders_create']} to create, {summary['folders_skip']} present, "
            f"{summary.get('folders_unsupported', 0)} unsupported; "
            f"assets: {summary['create']} create, {summary['update']} update, "
            + (f"{summary['adopted']} adopt, " if summary.get("adopted") else "")
            + f"{summary['replace']} replace, {summary['skip']} skip "
            f"({excluded_text(summary['excluded'], summary.get('excluded_by_rule') or {})}"
            + (f", {gone_skips} gone from the source" if gone_skips else "")
            + f"), {summary['delete']} delete, "
            f"{summary['conflict']} conflict, {summary['unsupported']} unsupported; "
            f"{summary['warnings']} warnings; {_bytes_text(summary)}; "
            + (f"{summary['to_publish']} to publish; " if summary.get("to_publish") else "")
            + f"about {summary['estimated_requests']} requests"
            + (f" (and {summary['estimated_source_requests']} to the source)"
               if summary.get("estimated_source_requests") else "")
            + (f", {summary['estimated_seconds']} s at the rate limits"
               if summary["estimated_seconds"] else
               " (the target has no rate limit: the time depends on the transfers)")
            + _dropped_line(summary))


def _dropped_line(summary: dict[str, Any]) -> str:
    dropped = summary.get("dropped_fields") or {}
    if not dropped:
        return ""
    counts = ", ".join(f"{name} on {count} assets" for name, count in dropped.items())
    return f"\nfields the target has no place for (dropped): {counts}"


def _bytes_text(summary: dict[str, Any]) -> str:
    text = f"{summary['bytes']:,} bytes to send"
    if summary["bytes_estimated"]:
        text = (f"about {text} ({summary['bytes_estimated']} sizes are the source's "
                "estimates; exact once downloaded)")
    return text


def _plan_gone(plan: Plan) -> tuple[Counter[str], int]:
    """Ledger rows gone from the source by what the plan does with them, and how many of
    them are skips."""
    gone: Counter[str] = Counter()
    skips = 0
    for a in plan.assets:
        if a.asset is None:
            gone["to delete (prune)" if a.op is Op.DELETE else
                 "ledger row retired" if a.retire else _gone_what(a.reason, a.op)] += 1
            skips += a.op is Op.SKIP
    return gone, skips


def plan_summary_text(plan: Plan, summary: dict[str, Any] | None = None) -> str:
    """The plan's summary in words, as the table and Markdown plans end (two or three lines);
    ``summary``: :func:`plan_summary` of ``plan`` when the caller has it already."""
    text = _summary_line(summary or plan_summary(plan), *_plan_gone(plan))
    return text if plan.stop is None else f"{text}\nthe run would stop here: {plan.stop}"


def unchanged_line(plan: Plan) -> str | None:
    """``100,000 assets unchanged since the last run and 200 folders already in the target
    (not listed; --unchanged lists them)``: what the table and Markdown plans leave out
    (:func:`unchanged`); ``None`` when nothing is left out."""
    assets = sum(1 for a in plan.assets if a.op is Op.SKIP and a.reason == UNCHANGED)
    folders = sum(1 for f in plan.folders if unchanged(f))
    parts = ([f"{assets:,} asset{'s' if assets != 1 else ''} {UNCHANGED}"] if assets else []) + (
        [f"{folders:,} folder{'s' if folders != 1 else ''} {PRESENT}"] if folders else [])
    if not parts:
        return None
    return f"{' and '.join(parts)} (not listed; --unchanged lists them)"


def plan_table(plan: Plan, *, width: int = 100, every: bool = False) -> str:
    return "".join(plan_table_parts(plan, every=every))


def plan_table_parts(plan: Plan, *, every: bool = False) -> Iterator[str]:
    """:func:`plan_table` in parts, one per item (see :func:`plan_json_parts`): a line per
    action that does something or is held back, and per skip that says why; the assets
    unchanged since the last run and the folders already in the target are counted in one
    line (:func:`unchanged_line`), or, with ``every`` (``plan --unchanged``), listed too."""
    yield f"{'OP':<12} {'KIND':<7} PATH / REASON\n"
    for r in iter_plan_items(plan, every=every):
        out = [f"{shown_op(r):<12} {r['kind']:<7} {one_line(r['path'])}\n",
               f"{'':<20} {one_line(r['reason'])}\n"]
        out.extend(f"{'':<20} ! {one_line(w)}\n"
                   for w in (r["warnings"] if r["op"] != Op.SKIP.value else ()))
        out.extend(f"{'':<20} i {one_line(n)}\n" for n in r.get("notes", ()))
        if r.get("publish"):
            out.append(f"{'':<20} i publish to {one_line(r['publish'])}\n")
        yield "".join(out)
    left_out = None if every else unchanged_line(plan)
    if left_out is not None:
        yield f"{left_out}\n"
    yield "\n" + plan_summary_text(plan) + "\n"


def plan_markdown(plan: Plan, *, every: bool = False) -> str:
    return "".join(plan_markdown_parts(plan, every=every))


def plan_markdown_parts(plan: Plan, *, every: bool = False) -> Iterator[str]:
    """:func:`plan_markdown` in parts, one per item (see :func:`plan_json_parts`); the rows
    are those of :func:`plan_table_parts` (``every`` as there), the line of what is left out
    above the table."""
    def cell(text: str) -> str:
        return one_line(text).replace("|", "\\|")

    line = plan_summary_text(plan).replace("\n", "\n\n")
    left_out = None if every else unchanged_line(plan)
    yield f"# assetferry plan: `{plan.route}`\n\n{line}\n\n" + (
        f"{left_out}\n\n" if left_out is not None else "")
    yield "| op | kind | path | reason | warnings | notes |\n|---|---|---|---|---|---|\n"
    for r in iter_plan_items(plan, every=every):
        warnings = r["warnings"] if r["op"] != Op.SKIP.value else ()
        yield (f"| {shown_op(r)} | {r['kind']} | {cell(r['path'])} | {cell(r['reason'])} | "
               f"{cell('; '.join(warnings))} | {cell('; '.join(r.get('notes', ())))} |\n")


@dataclass
class RunSummary:
    route: str
    mode: str
    run_id: int | None
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    signal: str = "SIGINT"
    """What interrupted the run (``SIGINT``: Ctrl-C, exit 130; ``SIGTERM``: exit 143)."""
    fatal: str | None = None
    held_deletes: int = 0
    """Deletions prune held back (over run.max_deletes, unconfirmed, or items failed)."""
    prune_note: str | None = None
    input_error: bool = False
    """The fatal error names an input to fix (job file, manifest, credentials, state DB
    location): running again unchanged would fail the same way."""
    listed: tuple[int, int] | None = None
    """``(entries, excluded)`` of the plan's source listing: what the summary's "N source
    entries (A assets, E excluded)" counts, also when an interrupted run reached only some
    of them (None: counted from the outcomes, which then cover the whole listing)."""
    locked: bool = False
    """The run was refused by the run lock (another run of the job holds it; ``fatal``
    says which): nothing ran, so the summary is that line and what to do, no figures."""
    listing: dict[str, str] | None = None
    """How the source was listed: ``kind`` (``full`` | ``incremental``), ``started_at`` (our
    UTC clock when listing began: the next sync's watermark once this run completed) and
    ``source`` (the plan's words). Kept in the run's row of the state DB."""

    def assets(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "asset"]

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is ItemStatus.FAILED]

    def excluded(self) -> list[Outcome]:
        """Entries the source left out on purpose (FIFOs, system files...), with reasons."""
        return [o for o in self.assets() if o.excluded]

    def excluded_by_rule(self) -> dict[str, int]:
        """Excluded entries by the rule that left them out (``"source"`` or the job-file key)."""
        return dict(sorted(Counter(o.excluded_by or "source" for o in self.excluded()).items()))

    def folders_not_created(self) -> list[Outcome]:
        """Folders the plan could not place or the source could not confirm, with why."""
        return [o for o in self.outcomes if o.kind == "folder" and o.op is Op.UNSUPPORTED]

    def not_migrated(self) -> list[Outcome]:
        return [o for o in self.assets() if o.op in NOT_MIGRATED]

    def counts(self) -> dict[str, int]:
        assets = self.assets()
        done = [o for o in assets if o.status is ItemStatus.DONE]
        return {
            "assets_total": len(assets),
            "created": sum(1 for o in done if o.op is Op.CREATE),
            "replaced": sum(1 for o in done if o.op is Op.REPLACE),
            "updated": sum(1 for o in done if o.op is Op.UPDATE and not o.adopted),
            "deleted": sum(1 for o in done if o.op is Op.DELETE),
            "adopted": sum(1 for o in done if o.op is Op.SKIP or o.adopted),
            "skipped": sum(1 for o in assets if o.status is ItemStatus.SKIPPED
                           and o.op not in NOT_MIGRATED and not o.excluded and not o.gone),
            "excluded": len(self.excluded()),
            "source_entries": (self.listed[0] if self.listed is not None
                               else sum(1 for o in assets if not o.gone)),
            "gone_from_source": sum(1 for o in assets if o.gone),
            "not_migrated": len(self.not_migrated()),
            "failed": sum(1 for o in assets if o.status is ItemStatus.FAILED),
            "folders_created": sum(1 for o in self.outcomes if o.kind == "folder"
                                   and o.status is ItemStatus.DONE and o.op is Op.CREATE),
            "folders_failed": sum(1 for o in self.outcomes if o.kind == "folder"
                                  and o.status is ItemStatus.FAILED),
            "bytes": sum(o.bytes for o in assets),
        }

    def _listed_excluded(self) -> int:
        """Entries of the listing the source or a filter left out (the plan's count)."""
        return self.listed[1] if self.listed is not None else len(self.excluded())

    def exit_code(self) -> int:
        if self.interrupted:
            return 143 if self.signal == "SIGTERM" else 130
        if self.fatal is not None:
            return 2
        return 1 if self.failed() or self.not_migrated() or self.held_deletes else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "mode": self.mode,
            "run_id": self.run_id,
            "seconds": round(self.seconds, 2),
            "counts": self.counts(),
            "exit_code": self.exit_code(),
            "interrupted": self.signal if self.interrupted else None,
            "fatal": self.fatal,
            "locked": self.locked,
            "listing": self.listing,
            "prune_held_back": {"deletions": self.held_deletes, "reason": self.prune_note}
            if self.held_deletes else None,
            "failures": [{"kind": o.kind, "source_id": o.source_id, "path": o.path,
                          "reason": o.reason} for o in self.failed()],
            "not_migrated": [{"source_id": o.source_id, "path": o.path, "op": o.op.value,
                              "reason": o.reason} for o in self.not_migrated()],
            "excluded": [{"source_id": o.source_id, "path": o.path, "reason": o.reason,
                          "rule": o.excluded_by or "source"} for o in self.excluded()],
            "excluded_by_rule": self.excluded_by_rule(),
            "folders_not_created": [{"source_id": o.source_id, "path": o.path,
                                     "reason": o.reason} for o in self.folders_not_created()],
            "map": [{"source_id": o.source_id, "path": o.path, "target_id": o.target_id,
                     "target_url": o.target_url} for o in self.assets()
                    if o.status is ItemStatus.DONE and o.target_id],
        }

    def gone(self) -> Counter[str]:
        """Ledger rows whose source asset is gone, by what happened to them."""
        out: Counter[str] = Counter()
        for o in self.assets():
            if not o.gone:
                continue
            if o.status is ItemStatus.FAILED:
                out["failed"] += 1
            elif o.op is Op.DELETE and o.status is ItemStatus.DONE:
                out["deleted (prune)"] += 1
            else:
                out[_gone_what(o.reason, o.op)] += 1
        return out

    def not_started(self) -> bool:
        """The run stopped before it had a plan (refused by the run lock; the state DB not
        writable, credentials refused, a listing that failed): nothing ran, so there are no
        figures to show, only the error (``fatal``)."""
        return self.fatal is not None and (
            self.locked or (self.run_id is None and self.listed is None and not self.outcomes))

    def text(self) -> str:
        if self.not_started():
            return f"{self.mode}{' ' + self.route if self.route else ''}: not started: {self.fatal}"
        c = self.counts()
        lines = [
            f"{self.mode} {self.route}: "
            f"{source_text(c['source_entries'], self._listed_excluded(), self.gone())}; "
            f"in {self.seconds:.1f} s: "
            f"{c['created']} created, {c['replaced']} replaced, {c['updated']} updated, "
            f"{c['adopted']} adopted, {c['deleted']} deleted, {c['skipped']} skipped, "
            f"{excluded_text(c['excluded'], self.excluded_by_rule())}, "
            f"{c['not_migrated']} not migrated, {c['failed']} failed; "
            f"{c['folders_created']} folders created; {c['bytes']:,} bytes sent",
        ]
        if self.fatal:
            lines.append(f"stopped: {self.fatal}")
        if self.listing and self.listing.get("kind") == "incremental":
            lines.append(f"source listed incrementally: {self.listing.get('source')} (a "
                         "full listing, which also finds deletions, comes every "
                         "[run] full_listing_every runs)")
        if self.held_deletes or self.prune_note:
            lines.append(f"prune: {self.prune_note}")
        lines.extend(f"  FAILED {o.kind} {one_line(o.path)}: {one_line(o.reason)}"
                     for o in self.failed())
        lines.extend(f"  NOT MIGRATED {one_line(o.path)}: {one_line(o.reason)}"
                     for o in self.not_migrated())
        lines.extend(f"  FOLDER NOT CREATED {one_line(o.path)}: {one_line(o.reason)}"
                     for o in self.folders_not_created())
        excluded = self.excluded()
        lines.extend(f"  EXCLUDED {one_line(o.path)}: {one_line(o.reason)}"
                     for o in excluded[:EXCLUDED_SHOWN])
        if len(excluded) > EXCLUDED_SHOWN:
            lines.append(f"  ... and {len(excluded) - EXCLUDED_SHOWN} more excluded "
                         "(all are listed in the --report file and the plan)")
        if self.interrupted:
            lines.append(f"interrupted ({self.signal}): state saved; run the same command "
                         "again to resume")
        return "\n".join(lines)


MAP_COLUMNS = ("kind", "source_id", "source_url", "target_id", "target_url", "path")


def map_rows(records: Iterable[ItemRecord]) -> list[dict[str, str]]:
    rows = []
    for r in sorted(records, key=lambda r: (r.kind, r.path, r.source_id)):
        if not r.target_id or not maps_target(r):
            continue
        rows.append({"kind": r.kind, "source_id": r.source_id, "source_url": r.source_url or "",
                     "target_id": r.target_id, "target_url": r.target_url or "",
                     "path": r.path})
    return rows


def map_csv(rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MAP_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
