"""The run's activities: list and plan once, folders once, one asset, finish.

Each one calls the same functions as the in-process run (``pipeline.run``): the plan of
:func:`pipeline.run.plan_for_run`, the folders of :func:`pipeline.stages.create_folders`, the
per-asset intent-then-reconcile protocol of :func:`pipeline.run.run_item_set`, the run's end
of :func:`pipeline.run.finish_summary`, all through the shared ledger. What Temporal adds:
an asset is claimed in the ledger (``StateStore.claim``) before it is touched, so an activity
retried while its first attempt still runs (a worker cut off, not dead) waits for the claim
instead of uploading twice; and a long transfer heartbeats, so a worker killed mid-file has
its asset retried on another worker once the heartbeat timeout passes.

Credentials: each worker reads the job file named in the input and resolves its ``${ENV}``
references from its own environment; no input or result carries a resolved secret.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import FolderPath, Source, SupportsTempReclaim, Target
from connectors.errors import AuthError, ConfigError, FatalError
from pipeline.config import JobConfig, JobFileError, MissingVariableError, load_job
from pipeline.plan import AssetAction, FolderAction, Op
from pipeline.report import RunSummary
from pipeline.run import (
    _read_records,
    abandon_unplanned,
    counting,
    crash_message,
    finish_summary,
    ledger_writer,
    open_pair,
    plan_for_run,
    planned_work,
    run_heartbeat,
    run_item_set,
    run_locked_message,
    unwrap_groups,
)
from pipeline.search_gate import SearchGate
from pipeline.stages import Outcome, create_folders
from pipeline.temporal import run_owner
from pipeline.temporal.shared import (
    CONTROL_ATTEMPTS,
    PARTITION_SIZE,
    FinishInput,
    FoldersDone,
    ItemInput,
    Planned,
    RunInput,
    RunRef,
)
from state.paths import discard_fresh, fresh_sqlite_files
from state.store import (
    PRUNED_NOTE,
    ItemRecord,
    ItemStatus,
    RunLockedError,
    RunStatus,
    StateError,
    StateStore,
)

log = structlog.get_logger(__name__)

CANCELLED = "cancelled"
"""What interrupted a run whose workflow was cancelled (its summary's ``interrupted``)."""
FATAL = "FatalError"
"""ApplicationError type of an error that ends the run (credentials, a job taken over):
never retried."""


def worker_identity() -> str:
    """This worker process as the server and the messages name it: ``assetferry@HOST:PID``."""
    return f"assetferry@{socket.gethostname()}:{os.getpid()}"


def on_worker(exc: FatalError | StateError) -> FatalError | StateError:
    """``exc`` (raised while this worker read the job file, resolved its ``${VAR}``s or
    opened the connectors or the ledger) with a message saying that the fault is on this
    worker, which one, and what to set there: the client shows it, and its own input was
    fine (the client reads neither the credentials nor the workers' disks). Same kind, so
    an input error stays one (exit 2)."""
    host = socket.gethostname()
    head = f"on worker {worker_identity()}"
    if str(exc).startswith("on worker "):
        return exc
    if isinstance(exc, MissingVariableError):
        return ConfigError(
            f"{head}: {exc.key}: environment variable {exc.name} {exc.state} in that worker's "
            f"environment (the workers, not the client, resolve the job file's ${{VAR}}s): "
            f"set it (export {exc.name}=...) where `assetferry worker` runs on {host} and "
            "restart that worker")
    if isinstance(exc, JobFileError):
        return ConfigError(
            f"{head}: {exc} on {host} (each worker reads the job file from its own disk, at "
            f"the path the client gave: put the job file at {exc.path} on {host}, the same "
            "path on every worker's machine)")
    text = f"{head} (host {host}, with that worker's environment): {exc}"
    for kind in (StateError, AuthError, ConfigError):
        if isinstance(exc, kind):
            return kind(text)
    return FatalError(text)


def remote(action: AssetAction) -> bool:
    """Whether ``action`` calls the target (an activity on the rate-limited task queue);
    the others (plain skips, conflicts, unsupported) are carried out by the plan activity."""
    return (action.op in (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE)
            or action.adopt_from is not None or action.publish is not None)


def partitions(actions: Sequence[AssetAction], size: int = PARTITION_SIZE
               ) -> list[list[AssetAction]]:
    """``actions`` in partitions of at most ``size``, by folder subtree: sorted by target
    path, a new partition starts where the top folder changes once the current one holds
    half of ``size`` or more, and wherever it is full."""
    def top(a: AssetAction) -> str:
        folder = a.target_folder if a.target_folder is not None else tuple(a.path.split("/")[:-1])
        return folder[0] if folder else ""

    ordered = sorted(actions, key=lambda a: (a.target_folder or (), a.filename, a.source_id))
    out: list[list[AssetAction]] = []
    for action in ordered:
        if (not out or len(out[-1]) >= size
                or (top(out[-1][-1]) != top(action) and len(out[-1]) >= size // 2)):
            out.append([])
        out[-1].append(action)
    return out


@dataclass
class _Opened:
    job: JobConfig
    source: Source
    target: Target
    store: StateStore
    route: str
    stack: AsyncExitStack
    tmpdir: Path
    gate: SearchGate = field(default_factory=SearchGate)
    """Shared by the activities of this process: their searches of the target are not
    raced by their uploads (pipeline.search_gate)."""
    fresh: list[Path] = field(default_factory=list)
    """The state DB's files and folders when this worker created them
    (:func:`state.paths.fresh_sqlite_files`): removed again if the first run stops before
    its plan and leaves them holding nothing, as an in-process run's are."""


@dataclass
class Resources:
    """What one worker process keeps open per job file: the connectors (so their pacers
    and connection pools are shared by every activity of the process) and the state store."""

    opened: dict[str, _Opened] = field(default_factory=dict)
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def get(self, job_path: str) -> _Opened:
        async with self.lock:
            found = self.opened.get(job_path)
            if found is not None:
                return found
            stack = AsyncExitStack()
            try:
                job = load_job(Path(job_path))
                source, target = await open_pair(job, stack, None)
                fresh = fresh_sqlite_files(job.run.state)
                store = StateStore(job.run.state)
                stack.callback(store.close)
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="assetferry-"))
            except (FatalError, StateError) as exc:
                await stack.aclose()
                raise on_worker(exc) from None
            except BaseException:
                await stack.aclose()
                raise
            found = _Opened(job, source, target, store, job.route(source.scope, target.scope),
                            stack, Path(tmp), fresh=fresh)
            self.opened[job_path] = found
            return found

    async def discard(self, job_path: str) -> None:
        """Close what ``job_path`` opened (its connectors, its state store), and remove the
        state DB files and folders this worker created for it (:attr:`_Opened.fresh`): for a
        run that stopped before its plan and left the state DB holding nothing. The next
        activity of the job opens it again."""
        async with self.lock:
            opened = self.opened.pop(job_path, None)
            if opened is not None:
                await opened.stack.aclose()
                discard_fresh(opened.fresh)

    async def aclose(self) -> None:
        async with self.lock:
            for opened in self.opened.values():
                await opened.stack.aclose()
            self.opened.clear()


def _open_run(store: StateStore, route: str, mode: str, owner: str) -> int:
    """The run's id in the ledger: the RUNNING run this workflow opened already (a retried
    plan activity), else a new one. RunLockedError when another process runs the route."""
    latest = store.runs(route, limit=1)
    if latest and latest[0].status is RunStatus.RUNNING and latest[0].owner == owner:
        return latest[0].id
    return store.start_run(route, mode, owner=owner)


def reached(actions: Sequence[AssetAction], records: dict[tuple[str, str], ItemRecord],
            run_id: int) -> list[Outcome]:
    """The outcomes of ``actions`` as the ledger ``records`` hold them for run ``run_id``:
    done, failed, or deleted by prune (what a cancelled run did without hearing back, so its
    figures agree with the ledger). An action this run did not finish has none."""
    out = []
    for a in actions:
        rec = records.get(("asset", a.source_id))
        if rec is None or rec.last_run_id != run_id:
            continue
        gone = a.asset is None
        if a.op is Op.DELETE and rec.status is ItemStatus.SKIPPED \
                and rec.last_error == PRUNED_NOTE:
            out.append(Outcome("asset", a.source_id, a.path, a.op, ItemStatus.DONE, "deleted",
                               gone=gone))
        elif rec.status is ItemStatus.DONE and a.op is not Op.DELETE:
            sent = a.asset.size or 0 if a.asset is not None and a.op in (
                Op.CREATE, Op.REPLACE) else 0
            out.append(Outcome("asset", a.source_id, a.path, a.op, ItemStatus.DONE, a.reason,
                               rec.target_id, rec.target_url, sent, gone=gone))
        elif rec.status is ItemStatus.FAILED:
            out.append(Outcome("asset", a.source_id, a.path, a.op, ItemStatus.FAILED,
                               rec.last_error or "failed", gone=gone))
    return out


def _first_application_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The ApplicationError in a task group's errors (else the group itself)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found = _first_application_error(exc)
            if found is not exc:
                return found
        elif isinstance(exc, ApplicationError):
            return exc
    return group


def _fatal(exc: BaseException) -> ApplicationError:
    return ApplicationError(str(exc), type=FATAL, non_retryable=True)


class Activities:
    """The activities of one worker process, sharing its :class:`Resources`."""

    def __init__(self, resources: Resources | None = None) -> None:
        self.resources = resources or Resources()

    @activity.defn(name="assetferry.plan")
    async def plan(self, inp: RunInput) -> Planned:
        """List both sides and plan (once per run), open the run in the ledger, and carry
        out the actions that call no target (skips, conflicts, unsupported) at once."""
        owner = run_owner(activity.info().workflow_id or "")
        route = ""
        run_id: int | None = None
        planned_yet = False
        box = RunSummary(route="", mode=inp.mode, run_id=None)  # counts the listing
        try:
            opened = await self.resources.get(inp.job_path)
            job, route = opened.job, opened.route
            # the run lock before the ledger and the listing are read (as in process)
            try:
                run_id = await anyio.to_thread.run_sync(
                    _open_run, opened.store, route, inp.mode, owner)
            except RunLockedError as exc:
                return Planned(route=route, fatal=run_locked_message(exc, inp.job_path),
                               input_error=True, locked=True)
            async with run_heartbeat(opened.store, run_id):
                records = await anyio.to_thread.run_sync(_read_records, job, route)
                with unwrap_groups():
                    plan, listing = await plan_for_run(
                        job, inp.mode, opened.source, opened.target, route, records,
                        retry_failed=inp.retry_failed, prune=inp.prune, on_plan=counting(box))
            await anyio.to_thread.run_sync(opened.store.set_planned, run_id,
                                           planned_work(plan, records))
            planned_yet = True
            if isinstance(opened.target, SupportsTempReclaim):  # a killed run's partial files
                await opened.target.reclaim_temp_files()
            local = [a for a in plan.assets if not remote(a)]
            outcomes: list[Outcome] = []
            if local:
                async with ledger_writer(opened.store, run_id, records) as ckpt:
                    outcomes = await run_item_set(
                        opened.source, opened.target, ckpt, route, {}, local, opened.tmpdir,
                        concurrency=1, on_conflict=job.run.on_conflict)
        except (FatalError, StateError) as exc:
            if isinstance(exc, StateError | AuthError):  # the worker's ledger, its credentials
                exc = on_worker(exc)
            fatal = str(exc)
            input_error = isinstance(exc, ConfigError | AuthError | StateError)
        except Exception as exc:
            # an unexpected error: retried (CONTROL_ATTEMPTS in all); the last attempt ends
            # the run as an in-process run's crash does, its state DB cleaned up alike
            if activity.info().attempt < CONTROL_ATTEMPTS:
                raise
            fatal, input_error = crash_message(exc, run_closed=planned_yet), False
            log.error("temporal.plan_crashed", error=fatal)
            log.debug("temporal.plan_crashed.traceback", exc_info=exc)
        else:
            work = [a for a in plan.assets if remote(a) and a.op is not Op.DELETE]
            log.info("temporal.planned", route=route, run_id=run_id, assets=len(work),
                     local=len(local))
            return Planned(route=route, run_id=run_id, folders=list(plan.folders),
                           partitions=partitions(work),
                           deletes=[a for a in plan.assets if a.op is Op.DELETE],
                           listing=listing, held_deletes=plan.held_deletes,
                           prune_note=plan.prune_note, outcomes=outcomes,
                           listed=list(box.listed) if box.listed else None)
        if run_id is not None and not planned_yet:  # stopped in its plan: no run (else
            # its heartbeat goes stale), and a state DB it left empty goes (as in process)
            if await anyio.to_thread.run_sync(abandon_unplanned, opened.store, run_id, box):
                await self.resources.discard(inp.job_path)
            run_id = None
        return Planned(route=route, run_id=run_id, fatal=fatal,  # closed by finish
                       input_error=input_error,
                       listed=list(box.listed) if box.listed else None)

    @activity.defn(name="assetferry.folders")
    async def folders(self, run: RunRef, folder_actions: list[FolderAction]) -> FoldersDone:
        """Create the plan's folders, parents first (one writer: this activity)."""
        opened = await self.resources.get(run.job_path)
        records = await anyio.to_thread.run_sync(opened.store.items, run.route, "folder")
        try:
            async with ledger_writer(opened.store, run.run_id, records) as ckpt:
                ids, outcomes = await create_folders(opened.target, folder_actions, ckpt,
                                                     run.route)
        except FatalError as exc:
            raise _fatal(exc) from None
        return FoldersDone([(list(path), fid) for path, fid in ids.items()], outcomes)

    @activity.defn(name="assetferry.asset")
    async def asset(self, inp: ItemInput) -> Outcome:
        """Carry out one asset action, holding its claim in the ledger the whole time."""
        info = activity.info()
        run, action = inp.run, inp.action
        opened = await self.resources.get(run.job_path)
        key = ("asset", action.source_id)
        owner = (f"{run.owner}/{info.activity_id}#{info.attempt}"
                 f"@{socket.gethostname()}:{os.getpid()}")
        timeout = (info.heartbeat_timeout or timedelta(seconds=30)).total_seconds()
        beat = max(0.5, timeout / 3)
        lease = timedelta(seconds=max(2 * timeout, 3 * beat))
        try:
            return await self._asset(inp, opened, key, owner, lease, beat)
        except BaseExceptionGroup as group:  # the heartbeat task's fatal error, unwrapped
            raise _first_application_error(group) from None

    async def _asset(self, inp: ItemInput, opened: _Opened, key: tuple[str, str], owner: str,
                     lease: timedelta, beat: float) -> Outcome:
        run, action, store = inp.run, inp.action, opened.store
        async with _heartbeats(store, run, key, owner, lease, beat) as claimed:
            try:
                await claimed.wait()
            except anyio.get_cancelled_exc_class():
                # cancelled (the run's cancel) while an earlier attempt holds the asset: that
                # one (its worker cut off from Temporal, not from the ledger) may still
                # write for the run; end once it has (its claim released, or its lease
                # run out: within a lease), so the run's finish, after every activity
                # ended, counts it
                with anyio.move_on_after(lease.total_seconds() + 2 * beat, shield=True):
                    await claimed.wait()
                raise
            rec = await anyio.to_thread.run_sync(store.item, run.route, *key)
            if (rec is not None and rec.status is ItemStatus.DONE
                    and rec.last_run_id == run.run_id and rec.source_hash == action.source_hash):
                # an earlier attempt of this run did it (its worker died before saying so)
                return Outcome("asset", action.source_id, action.path, action.op,
                               ItemStatus.DONE, action.reason, rec.target_id, rec.target_url)
            folder_ids: dict[FolderPath, str] = {tuple(p): i for p, i in inp.folder_ids}

            def fence(_batch: object) -> None:  # each write, the intent's before its upload
                _still_held(store, run.route, key, owner)

            try:
                async with ledger_writer(store, run.run_id, {key: rec} if rec else {},
                                         before_write=fence) as ckpt:
                    with unwrap_groups():
                        outcomes = await run_item_set(
                            opened.source, opened.target, ckpt, run.route, folder_ids,
                            [action], opened.tmpdir, concurrency=1,
                            on_conflict=opened.job.run.on_conflict, gate=opened.gate)
            except (FatalError, RunLockedError) as exc:
                raise _fatal(exc) from None
        return outcomes[0]

    @activity.defn(name="assetferry.finish")
    async def finish(self, inp: FinishInput) -> dict[str, Any]:
        """Close the run in the ledger with its figures; the run report as JSON, plus its
        text (``"text"``) for the client. A cancelled run (``inp.interrupted``) is closed as
        interrupted, the outcomes of its ``pending`` actions read from the ledger."""
        summary = RunSummary(route=inp.run.route, mode=inp.mode, run_id=inp.run.run_id or None,
                             outcomes=list(inp.outcomes), fatal=inp.fatal,
                             held_deletes=inp.held_deletes, prune_note=inp.prune_note,
                             listing=inp.listing, interrupted=inp.interrupted,
                             signal=CANCELLED, locked=inp.locked,
                             listed=(inp.listed[0], inp.listed[1]) if inp.listed else None)
        store: StateStore | None = None
        if inp.run.run_id:
            try:
                store = StateStore(load_job(Path(inp.run.job_path), secrets=False).run.state)
                if inp.pending:
                    records = await anyio.to_thread.run_sync(store.items, inp.run.route,
                                                             "asset")
                    summary.outcomes.extend(reached(inp.pending, records, inp.run.run_id))
            except (FatalError, StateError) as exc:
                summary.fatal = summary.fatal or str(on_worker(exc))
        try:
            finish_summary(store, inp.run.run_id or None, summary,
                           time.monotonic() - inp.seconds)
        except Exception as exc:  # noqa: BLE001 - the summary is still worth returning
            summary.fatal = summary.fatal or crash_message(exc)
        result = summary.to_dict()
        result["text"] = summary.text()
        return result


def _claim(store: StateStore, route: str, key: tuple[str, str], owner: str,
           lease: timedelta) -> bool:
    """Claim (or renew) ``key`` for ``owner`` in the ledger: whether it is held."""
    return bool(store.claim(route, [key], owner, lease=lease))


def _lost(key: tuple[str, str]) -> ApplicationError:
    return ApplicationError(f"asset {key[1]}: its claim expired and another worker holds it "
                            "now; tried again later")


def _still_held(store: StateStore, route: str, key: tuple[str, str], owner: str) -> None:
    """Raise (:func:`_lost`) unless ``owner`` holds ``key``'s claim, unexpired, now: checked
    in the ledger before each write of an asset activity (its intent before the upload
    starts, its result), because the heartbeat task renews the claim only every few
    seconds, and an attempt whose process stood still past its lease (a frozen VM, a
    stopped process) would otherwise go on writing, and upload, after another worker
    took the asset over. A read (no commit); the lease outlasts the write that follows."""
    found = store.claims(route).get(key)
    if found is not None:
        holder, until = found
        until = until if until.tzinfo is not None else until.replace(tzinfo=UTC)
        if holder == owner and until > datetime.now(UTC):
            return
    raise _lost(key)


def _release(store: StateStore, route: str, key: tuple[str, str], owner: str) -> None:
    store.release(route, [key], owner)


@asynccontextmanager
async def _heartbeats(store: StateStore, run: RunRef, key: tuple[str, str], owner: str,
                      lease: timedelta, every: float) -> AsyncIterator[anyio.Event]:
    """Claim ``key`` for ``owner`` and keep the claim, the activity and the ledger's run
    alive every ``every`` seconds for the block; the event is set once the claim is held
    (an earlier attempt still holding it is waited for). Released at the end."""
    claimed = anyio.Event()

    async def keep() -> None:
        while True:
            held = await anyio.to_thread.run_sync(_claim, store, run.route, key, owner, lease)
            if held:
                claimed.set()
                try:
                    await anyio.to_thread.run_sync(store.heartbeat, run.run_id)
                except RunLockedError as exc:
                    raise _fatal(exc) from None
            elif claimed.is_set():  # this attempt was too slow to renew: stop, retry later
                raise _lost(key)
            activity.heartbeat("working" if held else "waiting for the claim")
            await anyio.sleep(every)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(keep)
            try:
                yield claimed
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_release, store, run.route, key, owner)
