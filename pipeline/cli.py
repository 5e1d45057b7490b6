"""The ``assetferry`` command line.

Exit codes: 0 all done; 1 finished but some items failed or could not be migrated (listed);
2 bad config or credentials, or the run could not go on (state saved); 130 interrupted
(state saved, re-run resumes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import structlog

from connectors.errors import FatalError
from pipeline import logs
from pipeline.config import JobConfig, load_job
from pipeline.plan import Plan
from pipeline.registry import emulated, plugin_for, writable
from pipeline.report import map_csv, map_rows, plan_json, plan_markdown, plan_table
from pipeline.run import crash_message, execute_job, open_state, plan_job
from pipeline.stages import Outcome

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 130


def _job_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, type=Path, metavar="JOB.toml",
                   help="the job file (see README: job file)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assetferry",
        description="Move media assets, folder trees and metadata between headless CMSs.",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines as text (default) or JSON for cron")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="dry-run diff: what migrate/sync would do; touches nothing")
    _job_arg(p)
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--out", type=Path, help="write the report to FILE instead of stdout")
    p.add_argument("--prune", action="store_true", help="plan deletions as sync --prune would")

    for name, text in (("migrate", "one-off migration; resumes from the state DB"),
                       ("sync", "mirror only what changed since the last run")):
        p = sub.add_parser(name, help=text)
        _job_arg(p)
        p.add_argument("--retry-failed", action="store_true",
                       help="only retry the items that failed last time")
        p.add_argument("--report", type=Path, help="also write the run report as JSON to FILE")
        if name == "sync":
            p.add_argument("--prune", action="store_true", default=None,
                           help="delete from the target what is gone from the source "
                                "(capped by run.max_deletes; skipped when anything failed)")

    p = sub.add_parser("status", help="what the state DB says about this job")
    _job_arg(p)
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("export-map", help="source -> target id/url map for rewriting content")
    _job_arg(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", type=Path)

    p = sub.add_parser("emulate", help="serve a CMS emulator on loopback")
    p.add_argument("cms", choices=emulated())
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--seed", choices=("empty", "demo"), default="empty",
                   help="start empty (a target) or with the demo library (a source)")
    p.add_argument("--rate-limit", type=float, default=None,
                   help="requests per second (per minute where the vendor documents a "
                        "per-minute limit) before 429s (default: the documented limit)")
    p.add_argument("--space-id", type=_space_id, default=None,
                   help="storyblok: the emulated space's id (default: a random one); each "
                        "space hands out its own asset and folder ids")

    p = sub.add_parser("demo", help="a full offline migration between emulators")
    p.add_argument("--dir", type=Path, default=Path("demo-output"),
                   help="where the sample library, job file, state and reports go")
    p.add_argument("--from", dest="origin", choices=("local", *emulated()), default="storyblok",
                   help="migrate a seeded emulator (default: storyblok) or a local folder")
    p.add_argument("--to", dest="destination", default="contentstack",
                   choices=[name for name in emulated() if name in writable()],
                   help="the emulated target (default: contentstack)")
    return parser


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {out}\n")


def render_plan(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return plan_json(plan)
    if fmt == "markdown":
        return plan_markdown(plan)
    return plan_table(plan)


class Progress:
    """A one-line bar on a terminal; nothing otherwise (the log lines say it all)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.enabled = sys.stderr.isatty()

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += outcome.status == "failed"
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                             f"{self.done}/{self.total} assets, {self.failed} failed ")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _route_scopes(job: JobConfig) -> str:
    from pipeline.registry import open_connector

    async def scopes() -> str:
        source = open_connector(job.source)
        target = open_connector(job.target, role="target")
        try:
            return job.route(source.scope, target.scope)
        finally:
            await source.aclose()
            await target.aclose()

    return anyio.run(scopes)


def cmd_plan(args: argparse.Namespace) -> int:
    job = load_job(args.config)
    plan = anyio.run(lambda: plan_job(job, prune=args.prune or None))
    _write(render_plan(plan, args.format), args.out)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    job = load_job(args.config)
    progress: Progress | None = None

    def on_plan(plan: Plan) -> None:
        nonlocal progress
        progress = Progress(len(plan.assets))

    def tick(outcome: Outcome) -> None:
        if progress is not None:
            progress(outcome)

    summary = anyio.run(lambda: execute_job(
        job, args.command, retry_failed=args.retry_failed,
        prune=getattr(args, "prune", None), progress=tick, on_plan=on_plan))
    sys.stdout.write(summary.text() + "\n")
    if args.report:
        _write(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False), args.report)
    return summary.exit_code()


def cmd_status(args: argparse.Namespace) -> int:
    job = load_job(args.config)
    route = _route_scopes(job)
    store = open_state(job, create=False)
    if store is None:
        data: dict[str, Any] = {"route": route, "state": job.run.state, "counts": {}, "runs": []}
    else:
        try:
            runs = store.runs(route)
            data = {
                "route": route, "state": job.run.state, "counts": store.counts(route),
                "failed": [{"source_id": r.source_id, "path": r.path, "error": r.last_error}
                           for r in store.items(route, "asset").values()
                           if r.status == "failed"],
                "runs": [{"id": r.id, "mode": r.mode, "status": r.status.value,
                          "started_at": r.started_at.isoformat(),
                          "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                          "counts": dict(r.summary).get("counts")} for r in runs],
            }
        finally:
            store.close()
    if args.format == "json":
        _write(json.dumps(data, indent=2, ensure_ascii=False), None)
        return EXIT_OK
    lines = [f"job {route}", f"state {job.run.state}"]
    counts = data["counts"] or {}
    lines.append("items: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                              or "none yet (no run recorded)"))
    lines.extend(f"  failed {f['path']}: {f['error']}" for f in data.get("failed", []))
    lines.extend(f"run {r['id']} {r['mode']} {r['status']} started {r['started_at']}"
                 f" counts {r['counts']}" for r in data["runs"])
    _write("\n".join(lines), None)
    return EXIT_OK


def cmd_export_map(args: argparse.Namespace) -> int:
    job = load_job(args.config)
    route = _route_scopes(job)
    store = open_state(job, create=False)
    rows: list[dict[str, str]] = []
    if store is not None:
        try:
            rows = map_rows(store.items(route).values())
        finally:
            store.close()
    if args.format == "json":
        text = json.dumps(rows, indent=2, ensure_ascii=False)
    else:
        text = map_csv(rows)
    _write(text, args.out)
    return EXIT_OK


def _space_id(text: str) -> int:
    """A space id: a positive integer below 2**53 (Storyblok's ids are JavaScript numbers)."""
    if not text.isdigit() or not 0 < int(text) < 2**53:
        raise argparse.ArgumentTypeError(f"{text!r} is not a space id (a positive integer)")
    return int(text)


def cmd_emulate(args: argparse.Namespace) -> int:
    from pipeline.demo import serve_emulator

    if args.space_id is not None and not plugin_for(args.cms).emulated_spaces:
        sys.stderr.write(f"error: --space-id: the {args.cms} emulator has no spaces\n")
        return EXIT_FATAL
    serve_emulator(args.cms, args.port, seed=args.seed, rate_limit=args.rate_limit,
                   space_id=args.space_id)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo

    return run_demo(args.dir, origin=args.origin, destination=args.destination)


COMMANDS = {"plan": cmd_plan, "migrate": cmd_run, "sync": cmd_run, "status": cmd_status,
            "export-map": cmd_export_map, "emulate": cmd_emulate, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_format, verbose=args.verbose,
                   terminal=sys.stderr.isatty() and args.log_format == "text")
    try:
        return COMMANDS[args.command](args)
    except FatalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FATAL
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: state saved; run the same command again to resume\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug gets a clear line, the traceback goes to -v
        structlog.get_logger(__name__).debug("cli.crashed", exc_info=exc)
        sys.stderr.write(f"error: {crash_message(exc, run_closed=False)}\n")
        return EXIT_FATAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
