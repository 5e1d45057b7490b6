"""The plan and the run report as one self-contained HTML page each.

Both pages are built from the same data as the JSON outputs (:func:`pipeline.report.plan_items`
and :func:`pipeline.report.plan_summary` for the plan, :meth:`RunSummary.to_dict` for the run),
so a figure on the page cannot disagree with the JSON. A page needs no network: CSS and
JavaScript are inline, thumbnails are ``data:`` URIs, and a Content-Security-Policy allows
nothing else (no request leaves the page; only the page's own script, by its hash, runs).

Safety with hostile names (``<script>``, quotes, bidi controls, 5000 characters): everything
rendered on the server goes through :func:`html.escape`; the item list is embedded as JSON in a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as ``\\u003c``
escapes (so no name can close the block) and shown by the script through ``textContent`` only;
control and bidi characters are shown escaped (:func:`pipeline.text.one_line`, as in the text
table) and each name is bidi-isolated, so a right-to-left name cannot reorder its row.

The item list is rendered by the script page by page (500 rows, "show more"), so a plan of
100,000 assets opens quickly; filter by op (or status) and kind, and search by any text.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from pipeline.plan import Op, Plan
from pipeline.report import (
    ADOPT,
    RunSummary,
    plan_items,
    plan_summary,
    plan_summary_text,
    shown_op,
)
from pipeline.text import one_line

PAGE_ROWS = 500
"""Rows the page shows at first and adds per "show more"."""

PLAN_COUNT_KEYS: tuple[tuple[str, str], ...] = (
    ("create", "assets to create"), ("update", "metadata to update"),
    ("adopted", "to adopt (found in the target)"),
    ("replace", "files to replace"), ("delete", "to delete (prune)"),
    ("conflict", "conflicts"), ("unsupported", "unsupported"), ("skip", "skipped"),
    ("excluded", "excluded by the source"), ("source_entries", "source entries"),
    ("source_assets", "source assets"), ("gone_from_source", "gone from the source"),
    ("folders_create", "folders to create"), ("folders_skip", "folders present"),
    ("folders_unsupported", "folders not created"), ("warnings", "warnings"),
    ("bytes", "bytes to send"), ("bytes_estimated", "sizes estimated by the source"),
    ("estimated_requests", "paced requests to the target"),
    ("estimated_source_requests", "paced requests to the source"),
    ("estimated_seconds", "seconds at the rate limits"),
)
"""The plan summary's figures, in the order the page shows them (keys of ``plan_summary``)."""

RUN_COUNT_KEYS: tuple[tuple[str, str], ...] = (
    ("failed", "failed"), ("not_migrated", "not migrated"), ("created", "created"),
    ("replaced", "replaced"), ("updated", "updated"), ("adopted", "adopted"),
    ("deleted", "deleted"), ("skipped", "skipped (unchanged)"),
    ("excluded", "excluded by the source"), ("source_entries", "source entries"),
    ("gone_from_source", "gone from the source"), ("assets_total", "asset lines"),
    ("folders_created", "folders created"), ("folders_failed", "folders failed"),
    ("bytes", "bytes sent"),
)
"""The run report's ``counts``, in the order the page shows them."""

RUN_GROUPS = ("failed", "not migrated", "folder not created", "excluded", "done")
"""Run report sections, failures first."""


def plan_html(plan: Plan, *, thumbnails: Mapping[str, str] | None = None,
              generated: datetime | None = None) -> str:
    """The plan as one HTML page: summary, folder trees before and after, every item.

    ``thumbnails``: ``data:image/...`` URIs by source id (:mod:`pipeline.thumbnails`);
    ``generated``: the time shown (default: now, UTC).
    """
    summary = plan_summary(plan)
    thumbs = thumbnails or {}
    rows = []
    for item in plan_items(plan):
        row = _row(shown_op(item), item["kind"], item["path"], item.get("target_path"),
                   item["reason"], item["warnings"] if item["op"] != Op.SKIP.value else (),
                   item.get("notes", ()), item["source_id"])
        thumb = thumbs.get(item["source_id"] or "") if item["kind"] == "asset" else None
        if thumb and thumb.startswith("data:image/"):
            row["thumb"] = thumb
        rows.append(row)
    figures = "".join(_figure(key, label, summary[key]) for key, label in PLAN_COUNT_KEYS)
    held = (f'<p class="warn">{escape(plan.prune_note)}</p>' if plan.prune_note else "")
    body = (
        f'<section id="summary"><h2>Summary</h2>'
        f'<p class="line">{_lines(plan_summary_text(plan, summary))}</p>{held}'
        f'<div class="figures">{figures}</div>'
        f'<p class="muted">Estimated time: {escape(_duration(summary["estimated_seconds"]))} '
        "of paced requests at the documented rate limits (transfer time not included).</p>"
        "</section>"
        '<section id="trees"><h2>Folders</h2><div class="trees">'
        f'<div><h3>Before: the source</h3>{_source_tree(plan)}</div>'
        f'<div><h3>After: the target</h3>{_target_tree(plan)}</div>'
        "</div></section>"
    )
    made = sum(1 for r in rows if "thumb" in r)
    thumbs_note = (f"{made} image{'' if made == 1 else 's'} with a thumbnail"
                   if thumbs else "no thumbnails")
    groups = [op.value for op in Op]
    groups.insert(groups.index(Op.UPDATE.value) + 1, ADOPT)
    return _page(f"assetferry plan: {plan.route}", "plan", body, rows, "op",
                 groups, generated, thumbs_note)


def run_html(summary: RunSummary, *, generated: datetime | None = None) -> str:
    """The run report as one HTML page: its figures, then failures first, then what was not
    migrated, folders not created, excluded entries and the id map (done items).

    Built from :meth:`RunSummary.to_dict` (the ``--report`` JSON). No thumbnails: the run's
    staged files are gone when the report is written.
    """
    data = summary.to_dict()
    rows: list[dict[str, Any]] = []
    rows.extend(_row("failed", f["kind"], f["path"], None, f["reason"], (), (),
                     f["source_id"]) for f in data["failures"])
    rows.extend(_row("not migrated", "asset", n["path"], None, n["reason"], (),
                     (f"op: {n['op']}",), n["source_id"]) for n in data["not_migrated"])
    rows.extend(_row("folder not created", "folder", f["path"], None, f["reason"], (), (),
                     f["source_id"]) for f in data["folders_not_created"])
    rows.extend(_row("excluded", "asset", e["path"], None, e["reason"], (), (),
                     e["source_id"]) for e in data["excluded"])
    rows.extend(_row("done", "asset", m["path"], m["target_url"] or None,
                     f"target id {m['target_id']}", (), (), m["source_id"]) for m in data["map"])
    counts = data["counts"]
    figures = "".join(_figure(key, label, counts[key]) for key, label in RUN_COUNT_KEYS)
    status = (f"interrupted ({summary.signal}): state saved; run the same command again to "
              "resume"
              if summary.interrupted else f"stopped: {data['fatal']}" if data["fatal"]
              else "finished")
    held = data["prune_held_back"]
    body = (
        f'<section id="summary"><h2>Summary</h2>'
        f'<p class="line">{_lines(_headline(summary.text()))}</p>'
        f'<p class="{"warn" if data["exit_code"] else "ok"}">{escape(one_line(status))}; '
        f'exit code <span data-key="exit_code" data-value="{data["exit_code"]}">'
        f'{data["exit_code"]}</span>; '
        f'{escape(_duration(data["seconds"]))}</p>'
        + (f'<p class="warn">prune: {escape(one_line(held["reason"] or ""))}</p>' if held
           else "")
        + f'<div class="figures">{figures}</div></section>'
    )
    return _page(f"assetferry {summary.mode}: {summary.route}", "run", body, rows, "status",
                 list(RUN_GROUPS), generated, "")


def _headline(text: str) -> str:
    """The run summary's own lines (counts, how the source was listed, stopped, prune), without
    the per-item lines (the item list below holds those)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("  "))


def _row(group: str, kind: str, path: str, target: str | None, reason: str,
         warnings: Iterable[str], notes: Iterable[str], source_id: str | None
         ) -> dict[str, Any]:
    """One item of the page's list; every text on one line (control characters escaped)."""
    row: dict[str, Any] = {"group": group, "kind": kind, "path": one_line(path),
                           "reason": one_line(reason), "id": one_line(source_id or "")}
    if target and target != path:
        row["target"] = one_line(target)
    if warnings := [one_line(w) for w in warnings]:
        row["warnings"] = warnings
    if notes := [one_line(n) for n in notes]:
        row["notes"] = notes
    return row


def _figure(key: str, label: str, value: Any) -> str:
    shown = f"{value:,}" if isinstance(value, int) else str(value)
    extra = ""
    if key == "bytes" and isinstance(value, int):
        extra = f" ({_size(value)})"
    elif key == "estimated_seconds" and isinstance(value, int | float) and value >= 60:
        extra = f" ({_duration(value)})"
    zero = " zero" if value in (0, 0.0) else ""
    return (f'<div class="figure{zero}"><span class="v" data-key="{escape(key)}" '
            f'data-value="{escape(str(value))}">{escape(shown)}</span>'
            f'<span class="l">{escape(label + extra)}</span></div>')


def _lines(text: str) -> str:
    return "<br>".join(escape(one_line(line)) for line in text.splitlines())


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


def _duration(seconds: float) -> str:
    """``8.0 s``, ``12 min 5 s``, ``3 h 20 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


class _Tree:
    """Folder paths with a count of assets in each folder and below, and a mark."""

    def __init__(self) -> None:
        self.children: dict[str, _Tree] = {}
        self.assets = 0
        self.mark = ""

    def add(self, path: Sequence[str], assets: int = 0, mark: str = "") -> None:
        node = self
        node.assets += assets
        for name in path:
            node = node.children.setdefault(name, _Tree())
            node.assets += assets
        if mark:
            node.mark = mark

    def html(self, depth: int = 0) -> str:
        if not self.children:
            return ""
        items = []
        for name, child in sorted(self.children.items()):
            label = (f'<bdi class="name">{escape(one_line(name))}</bdi> '
                     f'<span class="muted">{child.assets:,} asset'
                     f'{"" if child.assets == 1 else "s"}</span>'
                     + (f' <span class="mark {escape(child.mark.split()[0])}">'
                        f"{escape(child.mark)}</span>" if child.mark else ""))
            if child.children:
                opened = " open" if depth < 2 else ""
                items.append(f"<li><details{opened}><summary>{label}</summary>"
                             f"{child.html(depth + 1)}</details></li>")
            else:
                items.append(f'<li class="leaf">{label}</li>')
        return f'<ul class="tree">{"".join(items)}</ul>'


def _source_tree(plan: Plan) -> str:
    """The source's folders that hold assets, with the assets in each (excluded ones not)."""
    tree = _Tree()
    for a in plan.assets:
        if a.asset is not None and not a.asset.skipped:
            tree.add(a.asset.folder_path, 1)
    root = sum(1 for a in plan.assets if a.asset is not None and not a.asset.skipped
               and not a.asset.folder_path)
    return _tree_block(tree, root)


def _target_tree(plan: Plan) -> str:
    """The target's folders once the plan is carried out: those there and those created, with
    the assets each will hold (created, replaced, updated or already there)."""
    tree = _Tree()
    for f in plan.folders:
        mark = {Op.CREATE: "new", Op.UNSUPPORTED: "not created"}.get(f.op, "")
        tree.add(f.target_path, 0, mark)
    root = 0
    for a in plan.assets:
        if a.target_folder is None or a.op in (Op.DELETE, Op.CONFLICT, Op.UNSUPPORTED):
            continue
        if a.asset is not None and a.asset.skipped:
            continue
        tree.add(a.target_folder, 1)
        root += not a.target_folder
    return _tree_block(tree, root)


def _tree_block(tree: _Tree, root: int) -> str:
    total = tree.assets
    head = (f'<p class="muted">{total:,} asset{"" if total == 1 else "s"}, '
            f"{root:,} of them at the root</p>")
    return head + (tree.html() or '<p class="muted">no folders</p>')


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&`` or line
    separators left raw, so no string can end the block or start a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _page(title: str, kind: str, body: str, rows: list[dict[str, Any]], group_label: str,
          groups: list[str], generated: datetime | None, note: str) -> str:
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    config = {"groups": groups, "groupLabel": group_label, "pageRows": PAGE_ROWS}
    csp = (f"default-src 'none'; img-src data:; style-src {_csp_hash(_CSS)}; "
           f"script-src {_csp_hash(_JS)}; base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp, quote=False)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(one_line(title))}</title><style>{_CSS}</style></head>"
        f'<body data-report="{kind}"><header><h1><bdi>{escape(one_line(title))}</bdi></h1>'
        f'<p class="muted">generated {escape(when)} by assetferry'
        + (f"; {escape(note)}" if note else "") + "</p></header>"
        + body
        + '<section id="items"><h2>Items</h2>'
        '<noscript><p class="warn">The item list needs JavaScript; the same items are in '
        "the JSON output.</p></noscript>"
        '<div class="controls"><div id="groups" role="group"></div>'
        '<label>kind <select id="kind"><option value="">all</option>'
        '<option value="asset">assets</option><option value="folder">folders</option>'
        "</select></label>"
        '<label>search <input id="search" type="search" autocomplete="off" '
        'placeholder="name, path, reason, warning, id"></label></div>'
        '<p id="shown" class="muted"></p>'
        '<table id="list"><thead><tr><th></th><th>' + escape(group_label)
        + "</th><th>kind</th><th>path</th><th>reason, warnings, notes</th></tr></thead>"
        '<tbody></tbody></table><button id="more" type="button" hidden>show more</button>'
        "</section>"
        f'<script type="application/json" id="config">{_script_json(config)}</script>'
        f'<script type="application/json" id="rows">{_script_json(rows)}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;
max-width:1400px;padding:0 16px 40px;color:#1d1d1f;background:#fff}
h1{font-size:20px;margin:16px 0 4px;overflow-wrap:anywhere}h2{font-size:17px;margin:24px 0 8px}
h3{font-size:15px;margin:8px 0}.muted{color:#666}.warn{color:#9a3412}.ok{color:#166534}
.line{background:#f5f5f7;padding:8px 10px;border-radius:6px;overflow-wrap:anywhere}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:6px;
margin:10px 0}.figure{border:1px solid #e2e2e2;border-radius:6px;padding:4px 8px}
.figure .v{display:block;font-size:18px;font-weight:600;font-variant-numeric:tabular-nums}
.figure .l{color:#555;font-size:12px}.figure.zero .v{color:#aaa}
.trees{display:grid;grid-template-columns:1fr 1fr;gap:24px}
.trees>div{min-width:0;max-height:480px;overflow:auto;border:1px solid #ddd;border-radius:6px;
padding:4px 10px}
ul.tree{list-style:none;padding-left:16px;margin:0}ul.tree li{margin:1px 0}
li.leaf{padding-left:14px}.name,.cell-text{unicode-bidi:isolate;overflow-wrap:anywhere}
.mark{font-size:12px;border-radius:4px;padding:0 4px}.mark.new{background:#dcfce7}
.mark.not{background:#fee2e2}
.controls{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin-bottom:8px}
#groups button{border:1px solid #bbb;background:#fff;border-radius:14px;padding:2px 10px;
margin:2px;cursor:pointer}#groups button[aria-pressed=true]{background:#1d4ed8;color:#fff;
border-color:#1d4ed8}#groups button:disabled{opacity:.4;cursor:default}
#search{width:280px}
#list{border-collapse:collapse;width:100%;table-layout:fixed}
#list th{text-align:left;border-bottom:2px solid #ccc;padding:4px}
#list th:nth-child(1){width:60px}#list th:nth-child(2){width:130px}
#list th:nth-child(3){width:60px}#list th:nth-child(4){width:38%}
#list td{border-bottom:1px solid #eee;padding:4px;vertical-align:top}
#list td div{max-height:9em;overflow:auto;overflow-wrap:anywhere}
#list img{max-width:56px;max-height:56px;display:block}
.op{font-weight:600}.op-create,.op-done{color:#166534}.op-update,.op-replace{color:#1d4ed8}
.op-delete,.op-failed,.op-conflict{color:#b91c1c}.op-unsupported,.op-not{color:#9a3412}
.op-skip,.op-excluded,.op-folder{color:#666}.target{color:#555}.w{color:#9a3412}.n{color:#555}
"""

_JS = """
(function(){
"use strict";
var config=JSON.parse(document.getElementById("config").textContent);
var rows=JSON.parse(document.getElementById("rows").textContent);
var body=document.querySelector("#list tbody"),shown=document.getElementById("shown");
var more=document.getElementById("more"),search=document.getElementById("search");
var kind=document.getElementById("kind"),groupsBox=document.getElementById("groups");
var active={},matching=[],drawn=0;
var counts={};
rows.forEach(function(r){counts[r.group]=(counts[r.group]||0)+1;
r.text=[r.path,r.target||"",r.reason,r.id,(r.warnings||[]).join("\\n"),
(r.notes||[]).join("\\n")].join("\\n").toLowerCase();});
function el(tag,cls,text){var e=document.createElement(tag);if(cls){e.className=cls;}
if(text!==undefined){e.textContent=text;}return e;}
config.groups.forEach(function(g){
var b=el("button",null,g+" "+(counts[g]||0));b.type="button";b.dataset.group=g;
b.dataset.count=String(counts[g]||0);b.setAttribute("aria-pressed","false");
b.disabled=!counts[g];
b.addEventListener("click",function(){active[g]=!active[g];
b.setAttribute("aria-pressed",active[g]?"true":"false");update();});
groupsBox.appendChild(b);});
function row(r){
var tr=el("tr");tr.dataset.group=r.group;tr.dataset.kind=r.kind;
var t=el("td");if(r.thumb&&r.thumb.indexOf("data:image/")===0){var img=el("img");
img.alt="";img.src=r.thumb;t.appendChild(img);}tr.appendChild(t);
tr.appendChild(el("td","op op-"+r.group.split(" ")[0],r.group));
tr.appendChild(el("td",null,r.kind));
var p=el("td"),d=el("div");d.appendChild(el("bdi","cell-text path",r.path));
if(r.target){d.appendChild(el("br"));d.appendChild(el("span","target","\\u2192 "));
d.appendChild(el("bdi","cell-text target",r.target));}
if(r.id){d.appendChild(el("br"));d.appendChild(el("span","muted","id "));
d.appendChild(el("bdi","cell-text muted",r.id));}p.appendChild(d);tr.appendChild(p);
var c=el("td"),cd=el("div");cd.appendChild(el("bdi","cell-text reason",r.reason));
(r.warnings||[]).forEach(function(w){cd.appendChild(el("br"));
cd.appendChild(el("bdi","cell-text w","! "+w));});
(r.notes||[]).forEach(function(n){cd.appendChild(el("br"));
cd.appendChild(el("bdi","cell-text n","i "+n));});
c.appendChild(cd);tr.appendChild(c);return tr;}
function draw(){var end=Math.min(matching.length,drawn+config.pageRows);
var frag=document.createDocumentFragment();
for(var i=drawn;i<end;i++){frag.appendChild(row(matching[i]));}
body.appendChild(frag);drawn=end;more.hidden=drawn>=matching.length;
shown.textContent=matching.length+" of "+rows.length+" items match; showing "+drawn;
shown.dataset.matching=String(matching.length);shown.dataset.drawn=String(drawn);}
function update(){var q=search.value.trim().toLowerCase(),k=kind.value;
var any=Object.keys(active).some(function(g){return active[g];});
matching=rows.filter(function(r){return(!any||active[r.group])&&(!k||r.kind===k)&&
(!q||r.text.indexOf(q)!==-1);});
body.textContent="";drawn=0;draw();}
search.addEventListener("input",update);kind.addEventListener("change",update);
more.addEventListener("click",draw);
update();
})();
"""
