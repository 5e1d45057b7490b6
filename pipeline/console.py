"""What a run shows while it works and when it ends, behind one small interface.

The pipeline reports through :class:`Console` (``started(plan)``, ``item_done(outcome)``,
``waiting(api, reason, until)``, ``finished(summary, ...)``); nothing below ``pipeline/``
prints. Two implementations:

- :class:`RichConsole` on a terminal: a Rich progress bar per run (assets done / total,
  bytes, rate, ETA from the target's rate limit, failures so far) with a line saying when the
  run waits for a rate limit or a ``Retry-After`` and until when; at the end a summary table
  (created / updated / replaced / adopted / skipped / deleted / not migrated / failed, bytes,
  time, the slowest waits) and where the report and the id map are.
- :class:`LogConsole` elsewhere (a pipe, cron, ``--log-format json``): one structlog line per
  event (the stages already log one per item), the summary as plain text on stdout.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog
from rich.console import Console as RichTerminal
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from connectors.http import human_seconds
from pipeline.plan import Op, Plan
from pipeline.report import RunSummary
from pipeline.stages import Outcome
from pipeline.text import one_line
from state.store import ItemStatus

log = structlog.get_logger(__name__)

UPLOADS = (Op.CREATE, Op.REPLACE)
SLOWEST_SHOWN = 3


@dataclass(frozen=True, slots=True)
class Where:
    """Where a run's results are, for the closing lines."""

    job: Path
    state: str
    report: Path | None = None


@dataclass(order=True, frozen=True, slots=True)
class Wait:
    seconds: float
    api: str = field(compare=False)
    reason: str = field(compare=False)


class Console(Protocol):
    def started(self, plan: Plan) -> None: ...
    def item_done(self, outcome: Outcome) -> None: ...
    def waiting(self, api: str, reason: str, until: float) -> None: ...
    def finished(self, summary: RunSummary, where: Where) -> None: ...
    def stop(self) -> None:
        """End any live display (idempotent; also on an interruption)."""


class _Tally:
    """What both consoles count: totals from the plan, progress from the outcomes."""

    def __init__(self) -> None:
        self.total = 0
        self.total_bytes = 0
        self.done = 0
        self.failed = 0
        self.bytes = 0
        self.estimated_seconds = 0.0
        self.waits: list[Wait] = []

    def plan(self, plan: Plan) -> None:
        self.total = len(plan.assets)
        self.total_bytes = sum(a.asset.size or 0 for a in plan.assets
                               if a.op in UPLOADS and a.asset is not None)
        self.estimated_seconds = plan.estimated_seconds

    def outcome(self, outcome: Outcome) -> None:
        if outcome.kind != "asset":
            return
        self.done += 1
        self.failed += outcome.status is ItemStatus.FAILED
        self.bytes += outcome.bytes

    def wait(self, api: str, reason: str, until: float) -> Wait:
        wait = Wait(max(0.0, until - time.time()), api, reason)
        self.waits.append(wait)
        self.waits = sorted(self.waits, reverse=True)[:SLOWEST_SHOWN]
        return wait

    def eta(self) -> float | None:
        """Seconds left at the target's rate limit (the plan's estimate, pro rata)."""
        if not self.total or not self.estimated_seconds:
            return None
        return self.estimated_seconds * (self.total - self.done) / self.total


def _closing_lines(summary: RunSummary, where: Where) -> list[str]:
    """Where the results are and what to do next; each line only when it is true.

    The id map and state lines need a run recorded in the state DB (``run_id``); "resume"
    needs that too and an error that a re-run can get past (not an input to fix first).
    """
    lines = []
    if where.report is not None:
        lines.append(f"report: {where.report}")
    saved = summary.run_id is not None
    if saved:
        lines.append(f"id map: assetferry export-map -c {where.job} --out map.csv")
        lines.append(f"state:  {where.state} (assetferry status -c {where.job})")
    if summary.locked:  # nothing ran: the other run is the one to wait for
        lines.append(f"another run of this job is going on: wait for it to end (assetferry "
                     f"status -c {where.job} shows it), then run the same command again")
    elif summary.exit_code() in (2, 130, 143):
        if summary.input_error:
            lines.append("fix what the error above names, then run the same command again"
                         + (" (the state is saved: it resumes)" if saved else ""))
        elif saved:
            lines.append("run the same command again to resume")
        else:
            lines.append("nothing was recorded in the state DB; run the same command again "
                         "once the error above is fixed")
    return lines


class LogConsole:
    """Plain log lines (text or JSON, as configured); the summary as text on stdout."""

    def __init__(self) -> None:
        self.tally = _Tally()

    def started(self, plan: Plan) -> None:
        self.tally.plan(plan)
        log.info("run.planned", assets=self.tally.total, bytes=self.tally.total_bytes,
                 estimated_seconds=self.tally.estimated_seconds)

    def item_done(self, outcome: Outcome) -> None:
        self.tally.outcome(outcome)  # the stages log each item themselves

    def waiting(self, api: str, reason: str, until: float) -> None:
        wait = self.tally.wait(api, reason, until)
        log.info("run.waiting", api=api, reason=reason, seconds=round(wait.seconds, 1),
                 until=datetime.fromtimestamp(until).astimezone().isoformat(timespec="seconds"))

    def finished(self, summary: RunSummary, where: Where) -> None:
        text = "\n".join([summary.text(), *_closing_lines(summary, where)])
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def stop(self) -> None:
        pass


class _Failures(ProgressColumn):
    def render(self, task: Task) -> Text:
        failed = int(task.fields.get("failed", 0))
        return Text(f"{failed} failed", style="bold red" if failed else "dim")


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "--/s", style="cyan")


class _Eta(ProgressColumn):
    """ETA from the target's rate limit (the plan's estimate), not from a noisy rate."""

    def __init__(self, tally: _Tally) -> None:
        super().__init__()
        self._tally = tally

    def render(self, task: Task) -> Text:
        eta = self._tally.eta()
        if eta is None:
            return Text("ETA: no rate limit", style="dim")
        return Text(f"ETA {human_seconds(eta)} (rate limit)", style="yellow")


class RichConsole:
    """A live display on the terminal (stderr), a summary table at the end (stdout)."""

    def __init__(self, *, stderr: RichTerminal | None = None,
                 stdout: RichTerminal | None = None) -> None:
        self.tally = _Tally()
        self._err = stderr or RichTerminal(stderr=True)
        self._out = stdout or RichTerminal()
        self._bytes = Progress(TextColumn("  bytes "), DownloadColumn(), TransferSpeedColumn(),
                               console=self._err)
        self._progress = Progress(
            TextColumn("  assets"), BarColumn(bar_width=30), MofNCompleteColumn(),
            TaskProgressColumn(), _Rate(), _Eta(self.tally),
            _Failures(), TimeElapsedColumn(), console=self._err)
        self._task = self._progress.add_task("run", total=None, failed=0)
        self._bytes_task = self._bytes.add_task("bytes", total=None)
        self._header = Text("")
        self._wait_line = Text("")
        self._wait_until = 0.0
        self._live = Live(self._render(), console=self._err, refresh_per_second=4,
                          transient=False, redirect_stderr=True, redirect_stdout=False,
                          get_renderable=self._render)

    def _render(self) -> RenderableType:
        line = self._wait_line if time.time() < self._wait_until else Text("")
        return Group(self._header, self._progress, self._bytes, line)

    def started(self, plan: Plan) -> None:
        self.tally.plan(plan)
        self._header = Text(one_line(plan.route), style="bold")
        self._progress.update(self._task, description="assets", total=self.tally.total)
        self._bytes.update(self._bytes_task, total=self.tally.total_bytes or None)
        self._live.start()

    def item_done(self, outcome: Outcome) -> None:
        self.tally.outcome(outcome)
        if outcome.kind == "asset":
            self._progress.update(self._task, completed=self.tally.done,
                                  failed=self.tally.failed)
            self._bytes.update(self._bytes_task, completed=self.tally.bytes)

    def waiting(self, api: str, reason: str, until: float) -> None:
        self.tally.wait(api, reason, until)
        if until >= self._wait_until:
            clock = datetime.fromtimestamp(until).astimezone().strftime("%H:%M:%S")
            self._wait_line = Text(f"  waiting: {api} {reason} until {clock}", style="magenta")
            self._wait_until = until

    def stop(self) -> None:
        if self._live.is_started:
            self._live.stop()

    def finished(self, summary: RunSummary, where: Where) -> None:
        self.stop()
        if summary.not_started():  # the run lock refused it, or an error: no figures
            self._out.print(Text(summary.text()), soft_wrap=True)
        else:
            self._out.print(Text(f"{summary.mode} {one_line(summary.route)}", style="bold"),
                            soft_wrap=True)
            self._out.print(summary_table(summary, self.tally.waits))
        for line in _closing_lines(summary, where):
            self._out.print(Text(line))


def summary_table(summary: RunSummary, waits: list[Wait]) -> Table:
    c = summary.counts()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [("created", c["created"]), ("updated", c["updated"]), ("replaced", c["replaced"]),
            ("adopted", c["adopted"]), ("skipped", c["skipped"]), ("deleted", c["deleted"]),
            ("not migrated", c["not_migrated"]), ("failed", c["failed"]),
            ("folders created", c["folders_created"])]
    for name, n in rows:
        style = "red" if name in ("failed", "not migrated") and n else None
        table.add_row(name, Text(f"{n:,}", style=style or ""))
    table.add_row("bytes sent", f"{c['bytes']:,}")
    table.add_row("time", f"{summary.seconds:.1f} s")
    for i, w in enumerate(waits):
        table.add_row("slowest waits" if i == 0 else "",
                      f"{human_seconds(w.seconds)} {w.api}: {one_line(w.reason)}")
    if summary.fatal:
        table.add_row("stopped", Text(one_line(summary.fatal), style="bold red"))
    for o in summary.failed():
        table.add_row(Text("FAILED", style="red"), f"{one_line(o.path)}: {one_line(o.reason)}")
    for o in summary.not_migrated():
        table.add_row(Text("NOT MIGRATED", style="yellow"),
                      f"{one_line(o.path)}: {one_line(o.reason)}")
    return table
