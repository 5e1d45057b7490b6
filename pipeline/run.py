"""One run of a job: list, plan, and (unless planning) execute. Modes differ only in wiring."""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import structlog

from connectors.base import (
    Asset,
    Capabilities,
    Folder,
    FolderPath,
    PublishRule,
    PublishTargets,
    Source,
    SupportsAssetExists,
    SupportsChangedSince,
    SupportsEnvironmentNames,
    SupportsListingBatches,
    SupportsPublish,
    SupportsReferences,
    SupportsTempReclaim,
    SupportsWriteCheck,
    Target,
    lists_in_process,
)
from connectors.errors import AuthError, ConfigError, FatalError, SyncError
from mappings.fields import EffectiveRules, FieldRuleError
from mappings.filters import KEY as FILTERS_KEY
from mappings.filters import FilterRules, needs_references
from mappings.folders import parse_root, root_problem
from mappings.locales import rule_problems
from pipeline.checkpoint import Checkpointer
from pipeline.config import JobConfig
from pipeline.idmap import MapWriter, default_map_path
from pipeline.plan import AssetAction, Op, Plan, PlanInput, make_plan
from pipeline.registry import open_connector
from pipeline.report import RunSummary, listed_entries
from pipeline.search_gate import SearchGate
from pipeline.stages import AssetLoader, Outcome, create_folders, run_assets, settled
from state.paths import check_location, discard_fresh, fresh_sqlite_files, sqlite_files
from state.records import (
    ItemRecord,
    ItemStatus,
    RunLockedError,
    RunRecord,
    RunStatus,
    StateError,
)

if TYPE_CHECKING:  # imported where a run opens the store: plan reads a SQLite file without it
    from state.store import StateStore

log = structlog.get_logger(__name__)

Transports = Mapping[str, httpx.AsyncBaseTransport]
"""In-process transports by side (``"source"``, ``"target"``): tests and the demo."""


@contextmanager
def unwrap_groups() -> Iterator[None]:
    """A task group wraps errors in ExceptionGroup; surface our first error as itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        for exc in _leaves(group):
            if isinstance(exc, SyncError | StateError | KeyboardInterrupt):
                raise exc from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


@dataclass(frozen=True, slots=True)
class Listing:
    folders: list[Folder]
    assets: list[Asset]


async def list_all(connector: Source, side: str, *, since: datetime | None = None) -> Listing:
    """The full listing of one side (with ``since``, its folders and the assets changed since
    then: see ``SupportsChangedSince``); any failure is fatal (no diff on half a listing)."""
    folders: list[Folder] = []
    assets: list[Asset] = []
    try:
        if since is None and isinstance(connector, SupportsListingBatches):
            async for found in connector.iter_listing():  # one walk, no step per asset
                if isinstance(found, Folder):
                    folders.append(found)
                else:
                    assets.extend(found)
        else:
            folders.extend([folder async for folder in connector.iter_folders()])
            if since is not None and isinstance(connector, SupportsChangedSince):
                assets.extend([a async for a in connector.iter_assets_changed_since(since)])
            else:
                assets.extend([asset async for asset in connector.iter_assets()])
    except FatalError:
        raise
    except SyncError as exc:
        raise FatalError(
            f"listing the {side} ({connector.name}) failed, so no diff can be trusted: {exc}"
        ) from None
    log.info("list.done", side=side, connector=connector.name, folders=len(folders),
             assets=len(assets))
    return Listing(folders, assets)


async def list_sides(source: Source, target: Source, *, since: datetime | None = None
                     ) -> tuple[Listing, Listing]:
    """The listings of both sides (:func:`list_all`; ``since`` for the source's): at the
    same time when either waits on a network (an HTTP listing), one after the other when
    both are CPU work in this process (two local folders, :func:`lists_in_process`: run
    together they only contend for the interpreter lock). The first failure stops both."""
    if lists_in_process(source) and lists_in_process(target):
        return await list_all(source, "source", since=since), await list_all(target, "target")
    listings: dict[str, Listing] = {}

    async def grab(side: str, conn: Source) -> None:
        listings[side] = await list_all(conn, side, since=since if side == "source" else None)

    with unwrap_groups():
        async with anyio.create_task_group() as tg:
            tg.start_soon(grab, "source", source)
            tg.start_soon(grab, "target", target)
    return listings["source"], listings["target"]


def open_state(job: JobConfig, *, create: bool) -> StateStore | None:
    """The job's state DB; with ``create`` False, read-only (it never waits for a run that
    is writing the ledger, and creates nothing), and ``None`` when a SQLite file is not there
    yet (after checking a run could create it: StateError if not)."""
    from state.store import StateStore

    url = job.run.state
    if not create and "://" not in url and not Path(url).exists():
        check_location(url)
        return None
    return StateStore(url, read_only=not create)


def resolve_field_rules(job: JobConfig, target: Target) -> EffectiveRules:
    """The job's field rules against the target's declared fields; ConfigError (exit 2)
    naming the key when a rule names a field the target does not have."""
    try:
        return job.mapping.field_rules().resolve(target.limits)
    except FieldRuleError as exc:
        raise ConfigError(f"invalid job file for target {target.name}:\n  {exc}") from None


def check_folder_root(job: JobConfig, target: Target) -> None:
    """ConfigError (exit 2) naming the key and the target's limit when ``folder_root``
    cannot exist in the target (:func:`mappings.folders.root_problem`)."""
    problem = root_problem(parse_root(job.mapping.folder_root), target.limits)
    if problem is not None:
        raise ConfigError(f"invalid job file for target {target.name}:\n  mapping.folder_root: "
                          f"{problem}")


def _check_locale_rules(job: JobConfig, target: Target) -> None:
    """ConfigError (exit 2) when ``[mapping.locales] codes`` names a locale the target does
    not have (:func:`mappings.locales.rule_problems`)."""
    problems = rule_problems(job.mapping.locales, target.limits)
    if problems:
        raise ConfigError("[mapping.locales] names locales the target lacks:\n  "
                          + "\n  ".join(problems))


LISTING_OVERLAP = timedelta(minutes=10)
"""An incremental listing asks for what changed since the last completed run's listing
started, less this much: a CMS whose clock runs behind ours, or an edit saved while we
listed, is not missed (an asset listed twice costs nothing: it is unchanged)."""


def incremental_since(runs: Sequence[RunRecord], every: int) -> datetime | None:
    """Where a sync's source listing may start (an aware UTC time), or ``None`` for a full
    listing. ``runs``: the route's runs, newest first.

    Incremental when the newest run that completed (DONE: listed whole, nothing failed,
    nothing interrupted) recorded when its listing started (the watermark), and a completed
    full listing is among the last ``every - 1`` runs (``[run] full_listing_every``: a full
    listing at least every ``every`` runs catches the deletions an incremental one cannot
    see). A partial, failed or interrupted run never advances the watermark, so what it
    left undone is listed again.
    """
    if every <= 1:
        return None
    watermark: datetime | None = None
    for run in runs:
        listing = run.summary.get("listing")
        if run.status is RunStatus.DONE and isinstance(listing, dict):
            try:
                watermark = datetime.fromisoformat(str(listing["started_at"]))
            except (KeyError, ValueError):
                return None
            break
    if watermark is None or watermark.tzinfo is None:
        return None
    recent_full = any(
        r.status is RunStatus.DONE and isinstance(r.summary.get("listing"), dict)
        and r.summary["listing"].get("kind") == "full" for r in runs[:every - 1])
    return watermark - LISTING_OVERLAP if recent_full else None


def check_job_against(job: JobConfig, source: Source, target: Target,
                      ) -> tuple[FilterRules, EffectiveRules]:
    """The job-file checks that need the connectors' declared limits (locale rules,
    ``folder_root``, filters, field rules): ConfigError (exit 2) naming the key; returns the
    filter and field rules they resolved. A run makes them before it opens the ledger, so a
    bad job leaves no state file behind; :func:`build_plan` makes them before any listing."""
    _check_locale_rules(job, target)
    check_folder_root(job, target)
    rules = job.mapping.filters.rules()
    check_filters(rules, source)
    return rules, resolve_field_rules(job, target)


async def build_plan(job: JobConfig, source: Source, target: Target, route: str,
                     records: Mapping[tuple[str, str], ItemRecord], *,
                     retry_failed: bool = False, prune: bool | None = None,
                     since: datetime | None = None) -> Plan:
    """List both sides (the source since ``since`` where it can filter by update time)
    and plan; confirms each deletion by a direct read of the source."""
    rules, field_rules = check_job_against(job, source, target)  # before any listing
    if since is not None and not isinstance(source, SupportsChangedSince):
        since = None  # the source cannot list by update time: a full listing
    listed_source, listed_target = await list_sides(source, target, since=since)
    listings = {"source": listed_source, "target": listed_target}
    _check_locale_rules(job, target)  # again: a target may learn its locales by listing
    caps = Capabilities.of(target)
    references: dict[str, int | str] | None = None
    if rules.only_referenced:
        assert isinstance(source, SupportsReferences)  # noqa: S101 - check_filters did
        references = await read_references(
            source, [a.source_id for a in listings["source"].assets
                     if needs_references(a, rules)],
            concurrency=job.run.concurrency)
    inp = PlanInput(
        source_folders=listings["source"].folders,
        source_assets=listings["source"].assets,
        target_folders=listings["target"].folders,
        target_assets=listings["target"].assets,
        records=records,
        limits=target.limits,
        capabilities=caps,
        policy=job.mapping.folder_overflow,
        locale_rules=job.mapping.locales,
        folder_rules=job.mapping.folders(),
        prune=job.run.prune if prune is None else prune,
        max_deletes=job.run.max_deletes,
        retry_failed_only=retry_failed,
        source_limits=source.limits if isinstance(source, Target) else None,
        on_conflict=job.run.on_conflict,
        changed_since=since,
        filters=rules,
        references=references,
        reference_requests=len(references or {}),
        **await _publishing(source, target, listings["source"].assets),
        field_rules=field_rules,
    )
    plan = make_plan(route, inp)
    if since is not None and any(a.op is Op.CONFLICT and not a.drift for a in plan.assets):
        # a name held by an asset the incremental listing left out (a re-upload under a new
        # id takes over a gone asset's copy): only the full listing can tell, so list it all
        log.info("list.full_after_conflict", side="source", connector=source.name)
        full = await list_all(source, "source")
        inp = replace(inp, source_folders=full.folders, source_assets=full.assets,
                      changed_since=None)
        plan = make_plan(route, inp)
    if plan.to_confirm:
        reads = await confirm_gone(source, plan.to_confirm)
        plan = make_plan(route, replace(inp, direct_reads=reads))
    if plan.prune_note:
        log.warning("prune.held_back", held=plan.held_deletes, max_deletes=job.run.max_deletes,
                    note=plan.prune_note)
    return plan


async def _publishing(source: Source, target: Target,
                      assets: Sequence[Asset]) -> dict[str, Any]:
    """The target's publish rule and, when something is to be published, what it has to
    publish to; ConfigError (exit 2) for a job-file publication naming an environment or a
    locale the target lacks."""
    if not isinstance(target, SupportsPublish):
        return {}
    rule = target.publish_rule
    carry = rule.fixed is None and rule.carry and any(a.published for a in assets)
    if rule.fixed is None and not carry:
        return {"publish_rule": rule}
    names: Mapping[str, str] = {}
    try:
        if carry and isinstance(source, SupportsEnvironmentNames):
            names = await source.environment_names()
        known = await target.publish_targets()
    except FatalError:
        raise
    except SyncError as exc:
        raise FatalError(f"reading the environments and locales to publish to failed, so nothing "
                         f"can be published: {exc}") from None
    if rule.fixed is not None:
        check_publication(rule, known)
    return {"publish_rule": rule, "publish_targets": known, "source_environments": names}


def check_publication(rule: PublishRule, known: PublishTargets) -> None:
    """ConfigError naming the key and the names the target has, for a fixed publication to
    an environment or locale the target lacks."""
    assert rule.fixed is not None  # noqa: S101
    envs = sorted({e for e, _ in rule.fixed.pairs} - known.environments)
    locales = sorted({lc for _, lc in rule.fixed.pairs} - known.locales)
    problems = []
    if envs:
        problems.append(f"{rule.key}.environments: the target has no environment "
                        f"{', '.join(map(repr, envs))} (it has: "
                        f"{', '.join(sorted(known.environments)) or 'none'})")
    if locales:
        problems.append(f"{rule.key}.locales: the target has no locale "
                        f"{', '.join(map(repr, locales))} (it has: "
                        f"{', '.join(sorted(known.locales)) or 'none'})")
    if problems:
        raise ConfigError("; ".join(problems) + ". Fix the names in the job file, or create "
                          "them in the target first.")


def check_filters(rules: FilterRules, source: Source) -> None:
    """ConfigError (exit 2) for a filter rule the source cannot serve, before any listing."""
    if rules.only_referenced and not isinstance(source, SupportsReferences):
        raise ConfigError(
            f"{FILTERS_KEY}.only_referenced: the {source.name} source cannot tell which assets "
            "entries reference (a Contentstack source can, through its asset references "
            "endpoint); remove the rule or filter by path, type, size or date instead")


async def read_references(source: SupportsReferences, source_ids: Sequence[str], *,
                          concurrency: int = 4) -> dict[str, int | str]:
    """How many entries reference each asset, or why that could not be read (the asset is
    then kept, with a note); at most ``concurrency`` requests at once, paced by the source's
    client. A FatalError (credentials) stops the run."""
    out: dict[str, int | str] = {}
    todo = iter(source_ids)

    async def worker() -> None:
        for source_id in todo:  # shared: each id is taken by one worker
            try:
                out[source_id] = await source.reference_count(source_id)
            except FatalError:
                raise
            except SyncError as exc:
                out[source_id] = str(exc)

    with unwrap_groups():
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, min(concurrency, 8, len(source_ids)))):
                tg.start_soon(worker)
    log.info("filters.references_read", assets=len(out),
             unreferenced=sum(1 for v in out.values() if v == 0))
    return out


async def confirm_gone(source: Source, source_ids: Sequence[str]) -> dict[str, bool | str]:
    """Read each source asset directly: True still there, False gone, else why unknown.

    Absence from a listing is no proof of deletion (design: "Listings you can trust"); a
    source that can't be read item by item confirms nothing, so prune deletes nothing.
    """
    if not isinstance(source, SupportsAssetExists):
        why = f"the {source.name} connector cannot read one asset directly"
        return dict.fromkeys(source_ids, why)
    reads: dict[str, bool | str] = {}
    for source_id in source_ids:
        try:
            reads[source_id] = await source.asset_exists(source_id)
        except FatalError:
            raise
        except SyncError as exc:
            reads[source_id] = str(exc)
    log.info("prune.confirmed", read=len(reads),
             gone=sum(1 for v in reads.values() if v is False),
             present=sum(1 for v in reads.values() if v is True))
    return reads


STATE_FILE_REASON = ("assetferry's state database ([run] state, or a file SQLite keeps beside "
                     "it): never an asset")


MAP_FILE_REASON = "assetferry's live id map ([run] map_file, or beside the state database): " \
    "never an asset"


def own_files(job: JobConfig) -> dict[Path, str]:
    """assetferry's own files of ``job`` that a local source or target must not list as assets
    (nor a plan adopt as a migrated copy): the SQLite state database and its sidecars, and
    the live id map (resolved path -> reason)."""
    own = dict.fromkeys(sqlite_files(job.run.state), STATE_FILE_REASON)
    map_path = default_map_path(job.run.state, job.run.map_file)
    if map_path is not None:
        own[map_path.resolve()] = MAP_FILE_REASON
    return own


async def open_pair(job: JobConfig, stack: AsyncExitStack,
                    transports: Transports | None) -> tuple[Source, Target]:
    """Open the job's source and target (``transports`` routes a side's HTTP in process),
    closed when ``stack`` closes; both skip assetferry's own files. Raises ConfigError when
    the target is a read-only connector."""
    transports = transports or {}
    source = open_connector(job.source, transport=transports.get("source"),
                            own_files=own_files(job))
    stack.push_async_callback(source.aclose)
    target = open_connector(job.target, role="target", transport=transports.get("target"),
                            own_files=own_files(job))
    stack.push_async_callback(target.aclose)
    if not isinstance(target, Target):
        raise ConfigError(f"target.connector: {job.target.connector} is read-only")
    caps = Capabilities.of(target)
    log.info("run.capabilities", connector=target.name, **{k: getattr(caps, k) for k in
                                                         caps.__dataclass_fields__})
    return source, target


async def plan_job(job: JobConfig, *, transports: Transports | None = None,
                   prune: bool | None = None,
                   with_source: Callable[[Source, Plan], Awaitable[None]] | None = None
                   ) -> Plan:
    """The dry run: lists both sides, reads state if present, writes nothing.

    ``with_source`` is awaited with the still open source and the plan (the HTML plan reads
    a few images through it for thumbnails).
    """
    async with AsyncExitStack() as stack:
        source, target = await open_pair(job, stack, transports)
        route = job.route(source.scope, target.scope)
        if isinstance(target, SupportsWriteCheck):  # a read-only target shows now, exit 2
            await target.check_writable()
        records = _read_records(job, route, times=False)
        plan = await build_plan(job, source, target, route, records, prune=prune)
        if with_source is not None:
            await with_source(source, plan)
        return plan


async def execute_job(
    job: JobConfig,
    mode: str,
    *,
    transports: Transports | None = None,
    retry_failed: bool = False,
    prune: bool | None = None,
    progress: Callable[[Outcome], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    summary: RunSummary | None = None,
) -> RunSummary:
    """migrate or sync: plan with the same code as ``plan``, then carry it out.

    ``summary``: the caller's (empty) summary to fill, so a run cancelled by a signal, which
    re-raises the cancellation, still leaves its finished summary with the caller."""
    started = time.monotonic()
    store: StateStore | None = None
    summary = summary if summary is not None else RunSummary(route="", mode=mode, run_id=None)
    run_id: int | None = None
    fresh: list[Path] = []  # the state DB's files when this run creates it
    seen: list[Outcome] = []  # as they come, so an interrupted run reports what it did

    def collect(outcome: Outcome) -> None:
        seen.append(outcome)
        if progress is not None:
            progress(outcome)

    try:
        async with AsyncExitStack() as stack:
            source, target = await open_pair(job, stack, transports)
            route = job.route(source.scope, target.scope)
            summary.route = route
            check_job_against(job, source, target)  # a bad job: no state file
            # the run lock first: the ledger and the listing the plan rests on are read
            # under it, so a run of the job that ends meanwhile can't leave this one a
            # plan built on the ledger as it was before (each asset sent twice)
            from state.store import StateStore

            fresh = fresh_sqlite_files(job.run.state)
            store = StateStore(job.run.state)
            try:
                run_id = store.start_run(route, mode)
            except RunLockedError as exc:
                summary.locked = True
                raise FatalError(run_locked_message(exc)) from None
            with structlog.contextvars.bound_contextvars(run_id=run_id, route=route):
                async with run_heartbeat(store, run_id):
                    records = _read_records(job, route)
                    plan, summary.listing = await plan_for_run(
                        job, mode, source, target, route, records, retry_failed=retry_failed,
                        prune=prune, on_plan=counting(summary, on_plan))
                summary.held_deletes, summary.prune_note = plan.held_deletes, plan.prune_note
                store.set_planned(run_id, planned_work(plan, records))
                # the summary names the run once it carries something out: one stopped in
                # its listing or plan leaves no run (abandon_unplanned)
                summary.run_id = run_id
                if isinstance(target, SupportsTempReclaim):  # a killed run's partial files
                    await target.reclaim_temp_files()
                summary.outcomes = await _carry_out(job, plan, source, target, store, run_id,
                                                    records, collect, summary)
    except FatalError as exc:
        summary.fatal = str(exc)
        summary.input_error = isinstance(exc, ConfigError | AuthError)
        log.error("run.fatal", error=str(exc))
    except StateError as exc:  # a bad [run] state or a damaged file: the user's to fix
        summary.fatal = str(exc)
        summary.input_error = True
        log.error("run.state_error", error=str(exc))
    except Exception as exc:
        summary.fatal = crash_message(exc, run_closed=summary.run_id is not None)
        log.error("run.crashed", error=summary.fatal)
        log.debug("run.crashed.traceback", exc_info=exc)
    except anyio.get_cancelled_exc_class():
        summary.interrupted = True
        summary.outcomes = summary.outcomes or seen
        empty = abandon_unplanned(store, run_id, summary)
        finish_summary(store, summary.run_id, summary, started)
        discard_fresh(fresh if empty else [])
        raise
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.outcomes = summary.outcomes or seen
    empty = abandon_unplanned(store, run_id, summary)
    finish_summary(store, summary.run_id, summary, started)
    discard_fresh(fresh if empty else [])
    return summary


def abandon_unplanned(store: StateStore | None, run_id: int | None,
                      summary: RunSummary) -> bool:
    """Release the run lock of run ``run_id`` when it stopped before its plan was made
    (``summary.run_id`` still None: nothing carried out), leaving no run behind, as a run
    that never started; a failure to is logged (the lock then goes stale with this process).
    True when the state DB then holds nothing at all (a state file this run created may go:
    :func:`state.store.discard_fresh`)."""
    if store is None or run_id is None or summary.run_id is not None:
        return False
    try:
        store.abandon_run(run_id)
        return store.holds_nothing()
    except Exception as exc:  # noqa: BLE001 - keep the run's own error for the user
        log.error("run.abandon_failed", run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        return False


def counting(summary: RunSummary, on_plan: Callable[[Plan], None] | None = None
             ) -> Callable[[Plan], None]:
    """An ``on_plan`` for :func:`plan_for_run` that first counts the plan's source listing
    into ``summary.listed`` (then calls ``on_plan``), so every run that got as far as a plan
    counts the whole listing in its source entries: one stopped by ``[run] on_conflict =
    "fail"``, refused by the run lock, or interrupted, as much as one that finished."""
    def planned(plan: Plan) -> None:
        summary.listed = listed_entries(plan)
        if on_plan is not None:
            on_plan(plan)

    return planned


async def plan_for_run(job: JobConfig, mode: str, source: Source, target: Target, route: str,
                       records: Mapping[tuple[str, str], ItemRecord], *,
                       retry_failed: bool = False, prune: bool | None = None,
                       on_plan: Callable[[Plan], None] | None = None,
                       ) -> tuple[Plan, dict[str, str]]:
    """The plan a migrate or sync carries out (an incremental listing where a sync may use
    one), and how the source was listed (``RunSummary.listing``). Raises FatalError when
    ``[run] on_conflict = "fail"`` meets assets edited in the target (nothing written)."""
    since = None
    pruning = job.run.prune if prune is None else prune
    # deletions show only in a full listing: a pruning run lists the source whole
    if mode == "sync" and not retry_failed and not pruning:
        since = incremental_since(_read_runs(job, route, job.run.full_listing_every),
                                  job.run.full_listing_every)
    listed_at = datetime.now(UTC)
    plan = await build_plan(job, source, target, route, records, retry_failed=retry_failed,
                            prune=prune if mode == "sync" else False, since=since)
    listing = {"kind": "full" if plan.listing == "full" else "incremental",
               "started_at": listed_at.isoformat(), "source": plan.listing}
    if on_plan is not None:
        on_plan(plan)
    if plan.stop is not None:  # [run] on_conflict = "fail" and drift: nothing written
        raise FatalError(plan.stop)
    return plan, listing


def run_locked_message(exc: RunLockedError, config: object = "JOB.toml") -> str:
    """The run lock's refusal, saying who runs the job: a run going on on Temporal is named
    by its workflow, with how to follow and stop it (:func:`pipeline.temporal.follow_hint`),
    since starting it again in-process only meets the lock again."""
    from pipeline.temporal import follow_hint, workflow_of

    workflow = workflow_of(exc.owner)
    if workflow is None:
        return str(exc)
    return f"this job is being run by its workflow on Temporal; {follow_hint(workflow, config)}"


def crash_message(exc: BaseException, *, run_closed: bool = True) -> str:
    """What to tell the user when a run or command itself hit an unexpected error.

    One line naming the error's type and message (the first of a task group's errors); the
    traceback is only in the debug log (``-v``).
    """
    if isinstance(exc, BaseExceptionGroup):
        exc = next(iter(_leaves(exc)), exc)
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    head = f"unexpected error {type(exc).__name__}" + (f": {text}" if text else "")
    closed = ("; the run was closed as failed and its state saved: run the same command "
              "again to resume, and if this repeats" if run_closed else "; if this repeats")
    return f"{head}{closed}, run it with -v and report the traceback"


def planned_work(plan: Plan, records: Mapping[tuple[str, str], ItemRecord]) -> int:
    """How many asset actions of ``plan`` will write the ledger (``status``: pending).

    Everything but a plain skip; a skip that adopts an asset found in the target writes too
    (the same test as ``AssetLoader._dispatch``).
    """
    return sum(1 for a in plan.assets if writes_ledger(a, records))


def writes_ledger(a: AssetAction, records: Mapping[tuple[str, str], ItemRecord]) -> bool:
    """Whether carrying out ``a`` writes its ledger row: all but what the plan alone
    settled (:func:`pipeline.stages.settled`, the test of ``AssetLoader._dispatch``)."""
    return not settled(a, records.get(("asset", a.source_id)))


def _read_runs(job: JobConfig, route: str, every: int) -> list[RunRecord]:
    """The route's last ``every`` ended runs, newest first (none without a state DB): not
    the RUNNING one, the run asking, which holds the run lock while it lists."""
    store = open_state(job, create=False)
    if store is None:
        return []
    try:
        runs = store.runs(route, limit=max(every, 1) + 1)
        return [r for r in runs if r.status is not RunStatus.RUNNING][:max(every, 1)]
    finally:
        store.close()


def _read_records(job: JobConfig, route: str, *,
                  times: bool = True) -> dict[tuple[str, str], ItemRecord]:
    """The route's ledger rows (none without a state DB); ``times=False``: without their
    ``updated_at`` (:meth:`StateStore.items`), for a plan, which never reads it: a SQLite
    file is then read with the standard library (`state.reader.SqliteLedger`, read-only),
    with no SQLAlchemy engine made for it."""
    url = job.run.state
    if not times and "://" not in url and url.strip():
        path = Path(url).expanduser()
        if not path.exists():
            check_location(url)
            return {}
        from state.reader import SqliteLedger

        with SqliteLedger(path.resolve()) as ledger:
            return {(rec.kind, rec.source_id): rec for rec in ledger.plan_records(route)}
    store = open_state(job, create=False)
    if store is None:
        return {}
    try:
        return store.items(route, times=times)
    finally:
        store.close()


def finish_summary(store: StateStore | None, run_id: int | None, summary: RunSummary,
            started: float) -> None:
    """Close the run ``run_id`` in ``store`` with ``summary``'s status and figures (and
    close ``store``); ``started``: the run's start, ``time.monotonic()`` seconds."""
    summary.seconds = time.monotonic() - started
    if store is None:
        return
    if run_id is not None:
        if summary.interrupted:
            status = RunStatus.INTERRUPTED
        elif summary.fatal:
            status = RunStatus.FAILED
        elif summary.exit_code() == 1:
            status = RunStatus.PARTIAL
        else:
            status = RunStatus.DONE
        result: dict[str, Any] = summary.to_dict()
        result.pop("map", None)
        try:
            store.finish_run(run_id, status, result)
        except Exception as exc:  # noqa: BLE001 - report it, don't trade the summary for it
            log.error("run.finish_failed", run_id=run_id, error=f"{type(exc).__name__}: {exc}")
            summary.fatal = summary.fatal or (
                f"the run's end could not be recorded in the state DB ({type(exc).__name__}: "
                f"{exc}); the next run will find it stale and take over")
    store.close()


async def _carry_out(job: JobConfig, plan: Plan, source: Source, target: Target,
                     store: StateStore, run_id: int,
                     records: Mapping[tuple[str, str], ItemRecord],
                     progress: Callable[[Outcome], None] | None,
                     summary: RunSummary) -> list[Outcome]:
    id_map = open_map(job, plan.route, records)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="assetferry-") as tmp, unwrap_groups(), \
            _closing(id_map):
        async with anyio.create_task_group() as tg, \
                ledger_writer(store, run_id, records, id_map=id_map) as ckpt:
            beat = anyio.CancelScope()
            tg.start_soon(_heartbeat, store, run_id, beat)
            try:
                folder_ids, folder_outcomes = await create_folders(target, plan.folders,
                                                                   ckpt, plan.route)
                outcomes.extend(folder_outcomes)
                deletes = [a for a in plan.assets if a.op is Op.DELETE]
                others = [a for a in plan.assets if a.op is not Op.DELETE]
                outcomes.extend(await run_item_set(
                    source, target, ckpt, plan.route, folder_ids, others, Path(tmp),
                    concurrency=job.run.concurrency, progress=progress,
                    on_conflict=job.run.on_conflict))
                deletes = hold_back_deletes(
                    deletes, sum(1 for o in outcomes if o.status is ItemStatus.FAILED), summary)
                outcomes.extend(await run_item_set(
                    source, target, ckpt, plan.route, folder_ids, deletes, Path(tmp),
                    concurrency=job.run.concurrency, progress=progress,
                    on_conflict=job.run.on_conflict))
            finally:
                beat.cancel()
    return outcomes


@asynccontextmanager
async def ledger_writer(store: StateStore, run_id: int,
                        records: Mapping[tuple[str, str], ItemRecord], *,
                        id_map: MapWriter | None = None,
                        before_write: Callable[[Sequence[ItemRecord]], None] | None = None,
                        ) -> AsyncIterator[Checkpointer]:
    """The run's single ledger writer (:class:`Checkpointer`) running for the block: every
    record posted in it is written (one group commit a batch) before the block ends.
    ``records``: the ledger rows the items start from; ``id_map``: the live map to append;
    ``before_write``: :attr:`Checkpointer.before_write`."""
    ckpt = Checkpointer(store, run_id, records,
                        on_written=id_map.written if id_map is not None else None,
                        before_write=before_write)
    async with anyio.create_task_group() as tg:
        await tg.start(ckpt.run)
        try:
            yield ckpt
        finally:
            await ckpt.close()


async def run_item_set(source: Source, target: Target, ckpt: Checkpointer, route: str,
                       folder_ids: dict[FolderPath, str], actions: Sequence[AssetAction],
                       tmpdir: Path, *, concurrency: int,
                       progress: Callable[[Outcome], None] | None = None,
                       on_conflict: str = "skip",
                       gate: SearchGate | None = None) -> list[Outcome]:
    """Carry out one set of asset actions (a whole run's, or a partition's on a Temporal
    worker) through the intent-then-reconcile protocol of :class:`AssetLoader`: at most
    ``concurrency`` at once, their ledger rows written through ``ckpt``, files staged in
    ``tmpdir``. ``folder_ids``: target folder ids by target path (the folders step's).
    ``on_conflict``: ``[run] on_conflict``, for a target asset edited there since the plan.
    ``gate``: the :class:`~pipeline.search_gate.SearchGate` of every loader writing to the
    same target in this process (``None``: one for this set alone). Raises FatalError
    (credentials, a job taken over, such an edit under ``"fail"``); an item's error fails
    that item."""
    loader = AssetLoader(source, target, ckpt, route, folder_ids, tmpdir,
                         on_conflict=on_conflict, gate=gate)
    return await run_assets(loader, actions, concurrency=concurrency, progress=progress)


def hold_back_deletes(deletes: Sequence[AssetAction], failed: int,
                      summary: RunSummary) -> list[AssetAction]:
    """The prune's deletions as they may run: all of them when nothing failed, else each
    turned into a SKIP saying why (never prune on a run that did not fully succeed), with
    ``summary``'s held count and note updated."""
    if not failed or not deletes:
        return list(deletes)
    note = (f"{len(deletes)} deletion{'s' if len(deletes) != 1 else ''} held "
            f"back: {failed} items failed in this run")
    log.warning("prune.held_back", held=len(deletes), failed=failed)
    summary.held_deletes += len(deletes)
    summary.prune_note = f"{summary.prune_note}; {note}" if summary.prune_note else note
    return [replace(a, op=Op.SKIP, reason=(
        f"gone from the source; not pruned because {failed} items failed in this run"))
        for a in deletes]


def open_map(job: JobConfig, route: str,
             records: Mapping[tuple[str, str], ItemRecord]) -> MapWriter | None:
    """The live id map of ``job`` (pipeline.idmap), brought up to the ledger; ``None`` when
    it has no location (a server state DB without ``[run] map_file``) or cannot be written
    (logged as a warning: the run goes on, ``export-map`` still has everything)."""
    path = default_map_path(job.run.state, job.run.map_file)
    if path is None:
        return None
    writer = MapWriter(path, route, job.source.connector, job.target.connector)
    try:
        writer.open(records.values())
    except OSError as exc:
        writer.close()
        log.warning("map.unavailable", path=str(path), error=exc.strerror or str(exc))
        return None
    return writer


@contextmanager
def _closing(id_map: MapWriter | None) -> Iterator[None]:
    try:
        yield
    finally:
        if id_map is not None:
            id_map.close()


HEARTBEAT_SECONDS = 20.0


@asynccontextmanager
async def run_heartbeat(store: StateStore, run_id: int) -> AsyncIterator[None]:
    """Keep run ``run_id``'s heartbeat fresh for the block (a long listing and plan, under
    the run lock, commit nothing); a take-over by another process ends the block with
    FatalError."""
    with unwrap_groups():
        async with anyio.create_task_group() as tg:
            beat = anyio.CancelScope()
            tg.start_soon(_heartbeat, store, run_id, beat)
            try:
                yield
            finally:
                beat.cancel()


async def _heartbeat(store: StateStore, run_id: int, scope: anyio.CancelScope) -> None:
    """Keep the run's heartbeat fresh while long uploads commit nothing."""
    with scope:
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            try:
                await anyio.to_thread.run_sync(store.heartbeat, run_id)
            except RunLockedError as exc:
                raise FatalError(f"another process took this job over: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a missed beat must not end the run
                # (a busy or briefly unreachable state DB: the next beat tries again)
                log.warning("run.heartbeat_failed", run_id=run_id,
                            error=f"{type(exc).__name__}: {exc}")
