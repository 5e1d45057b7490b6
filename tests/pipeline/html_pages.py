"""Plans and run summaries with hostile names, for the HTML report tests."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from typing import Any

from PIL import Image

from connectors.base import Asset, AssetMeta
from pipeline.plan import AssetAction, FolderAction, Op, Plan
from pipeline.report import RunSummary
from pipeline.stages import Outcome
from state.store import ItemStatus

SCRIPT_NAME = "<script>window.__pwned=1;alert(1)</script>.png"
IMG_NAME = "\"'><img src=x onerror=\"window.__pwned=2\">.jpg"
RTL_NAME = "invoice\u202egnp.exe"
"""A right-to-left override: shown escaped (as the text table does), never reordering."""
HEBREW_NAME = "תמונה של חתול.png"
LONG_NAME = "L" * 5000 + ".png"
HOSTILE = (SCRIPT_NAME, IMG_NAME, RTL_NAME, HEBREW_NAME, LONG_NAME)


def png(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def _asset(n: int, name: str, folder: tuple[str, ...], ctype: str = "image/png") -> Asset:
    return Asset(source_id=f"s{n}", filename=name, folder_path=folder, folder_id=None,
                 content_type=ctype, size=100 + n, meta=AssetMeta(title=name))


def hostile_plan() -> Plan:
    """A plan with every op, folders, warnings, notes and the hostile names."""
    ops = [Op.CREATE, Op.CREATE, Op.UPDATE, Op.REPLACE, Op.CONFLICT, Op.UNSUPPORTED, Op.SKIP,
           Op.CREATE, Op.CREATE, Op.SKIP]
    folders = [("Photos",), ("Photos", "<b>bold</b>"), ("Docs",)]
    actions: list[AssetAction] = []
    names = [*HOSTILE, "cat.png", "dog.png", "readme.txt", "logo.png", "plain.png"]
    for n, (op, name) in enumerate(zip(ops, names, strict=False)):
        folder = folders[n % len(folders)]
        asset = _asset(n, name, folder, "text/plain" if name.endswith(".txt") else "image/png")
        actions.append(AssetAction(
            op=op, source_id=asset.source_id, path="/".join((*folder, name)),
            reason=f"reason for {name}", asset=asset, target_folder=folder, filename=name,
            warnings=(f"warning about {name}",) if n % 2 else (),
        ))
    actions.append(AssetAction(op=Op.DELETE, source_id="gone1", path="Old/<i>gone</i>.png",
                               reason="gone from the source; deleted (prune)"))
    excluded = Asset(source_id="fifo", filename="pipe", folder_path=(), folder_id=None,
                     content_type="", size=None, skipped="a FIFO, not a file")
    actions.append(AssetAction(op=Op.SKIP, source_id="fifo", path="pipe",
                               reason="excluded: a FIFO, not a file", asset=excluded))
    folder_actions = (
        FolderAction(Op.CREATE, ("Photos",), ("f1",), "not in the target"),
        FolderAction(Op.CREATE, ("Photos", "<b>bold</b>"), ("f2",), "not in the target",
                     warnings=("renamed: <b> not allowed",)),
        FolderAction(Op.SKIP, ("Docs",), ("f3",), "already in the target", target_id="t3"),
    )
    return Plan(route="local:/src<script>->local:/dst", folders=folder_actions,
                assets=tuple(actions), requests_per_second=10.0)


def hostile_run() -> RunSummary:
    """A run with a failure listed last among its outcomes (the page must show it first)."""
    outcomes = [
        Outcome("asset", "s1", f"Photos/{IMG_NAME}", Op.CREATE, ItemStatus.DONE, "created",
                target_id="t1", target_url="https://cdn.example/t1.jpg", bytes=10),
        Outcome("asset", "s2", "Docs/ok.png", Op.SKIP, ItemStatus.SKIPPED, "unchanged"),
        Outcome("asset", "s3", f"Docs/{RTL_NAME}", Op.CONFLICT, ItemStatus.SKIPPED,
                "conflict: changed in the target"),
        Outcome("asset", "s4", "pipe", Op.SKIP, ItemStatus.SKIPPED, "a FIFO", excluded=True),
        Outcome("asset", "s5", f"Photos/{SCRIPT_NAME}", Op.CREATE, ItemStatus.FAILED,
                "upload failed: 500 <html>oops</html>"),
    ]
    return RunSummary(route="local:/a->local:/b", mode="migrate", run_id=3, outcomes=outcomes,
                      seconds=1.5)


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.blocks: dict[str, str] = {}
        self._block: str | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-key" in a and a.get("data-value") is not None:
            self.figures[a["data-key"] or ""] = a["data-value"] or ""
        if tag == "script":
            self.scripts += 1
            self._block = a.get("id")

    def handle_data(self, data: str) -> None:
        if self._block:
            self.blocks[self._block] = self.blocks.get(self._block, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._block = None


def parse_page(page: str) -> tuple[dict[str, str], list[dict[str, Any]], int]:
    """(the figures by data-key, the embedded rows, how many script elements)."""
    parser = _Figures()
    parser.feed(page)
    return parser.figures, json.loads(parser.blocks["rows"]), parser.scripts


def figure_value(text: str) -> Any:
    return float(text) if re.fullmatch(r"-?\d+\.\d+", text) else (
        int(text) if re.fullmatch(r"-?\d+", text) else text)
