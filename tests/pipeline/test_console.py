"""The run's display: Rich on a terminal, log lines elsewhere, the same figures in both."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console as RichTerminal
from structlog.testing import capture_logs

from pipeline.console import LogConsole, RichConsole, Where
from pipeline.plan import AssetAction, Op, Plan
from pipeline.report import RunSummary
from pipeline.stages import Outcome
from state.store import ItemStatus


def plan(n: int = 4) -> Plan:
    return Plan(route="local:/a->contentstack:blt1@main", folders=(),
                assets=tuple(AssetAction(Op.CREATE, str(i), f"f/{i}.png", "new")
                             for i in range(n)),
                requests_per_second=2.0)


def outcomes() -> list[Outcome]:
    return [Outcome("asset", "0", "f/0.png", Op.CREATE, ItemStatus.DONE, "new", "t0", None, 100),
            Outcome("asset", "1", "f/1\nevil.png", Op.CREATE, ItemStatus.FAILED, "500 x")]


def terminal() -> tuple[RichTerminal, io.StringIO]:
    out = io.StringIO()
    return RichTerminal(file=out, force_terminal=True, width=120, color_system=None), out


def test_rich_console_shows_progress_waits_and_a_summary_table() -> None:
    err, err_text = terminal()
    out, out_text = terminal()
    console = RichConsole(stderr=err, stdout=out)
    console.started(plan())
    for o in outcomes():
        console.item_done(o)
    console.waiting("Contentstack", "Retry-After 30 s (429 on /v3/assets)", time.time() + 30)
    console._live.refresh()
    live = err_text.getvalue()
    assert "local:/a->contentstack:blt1@main" in live
    assert "2/4" in live
    assert "1 failed" in live
    assert "ETA 1 s (rate limit)" in live
    assert "waiting: Contentstack Retry-After 30 s (429 on /v3/assets) until" in live
    summary = RunSummary("local:/a->contentstack:blt1@main", "migrate", 1, outcomes(), 3.2)
    console.finished(summary, Where(Path("job.toml"), "state.db", Path("report.json")))
    table = out_text.getvalue()
    for word in ("created", "updated", "replaced", "skipped", "deleted", "failed", "bytes sent",
                 "slowest waits", "30 s Contentstack", "report: report.json",
                 "id map: assetferry export-map -c job.toml"):
        assert word in table, word
    assert "f/1\\nevil.png" in table, "a newline in a name stays on its row"


def test_log_console_writes_lines_not_bars() -> None:
    console = LogConsole()
    with capture_logs() as logs:
        console.started(plan())
        console.waiting("Storyblok", "rate limit (2.91 requests/s)", time.time() + 5)
    events = [e["event"] for e in logs]
    assert events == ["run.planned", "run.waiting"]
    assert logs[1]["api"] == "Storyblok"
    assert logs[1]["reason"] == "rate limit (2.91 requests/s)"
