"""The run as Temporal workflows: plan once, folders once, assets in partitions.

:class:`RunWorkflow` (on the control task queue): the plan activity, then the folders
activity (one writer, parents first), then one :class:`PartitionWorkflow` child per partition
(a folder subtree, at most ``PARTITION_SIZE`` assets: each child's history stays bounded),
whose assets are activities on the target's rate-limit domain queue (``Domain``: the server
starts at most its rate of them per second across every worker), then the prune's deletions
(held back when anything failed, as in-process), then the finish activity.

A cancelled run (``temporal workflow cancel``, a client's ``cancel()``) still runs the finish
activity: the run is closed in the ledger as interrupted, its figures those the ledger holds
(the actions it had not heard back from are looked up there), as an interrupted in-process
run's are, and the workflow completes with that summary (exit code 130).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pipeline.plan import AssetAction
    from pipeline.report import RunSummary
    from pipeline.run import hold_back_deletes
    from pipeline.stages import Outcome
    from pipeline.temporal import run_owner
    from pipeline.temporal.activities import FATAL, Activities
    from pipeline.temporal.shared import (
        CONTROL_ATTEMPTS,
        PARTITION_WORKFLOW_NAME,
        WORKFLOW_NAME,
        FinishInput,
        ItemInput,
        PartitionInput,
        Planned,
        Progress,
        RunInput,
        RunRef,
    )
    from state.store import ItemStatus

PLAN_TIMEOUT = timedelta(hours=2)
PROGRESS_EVERY = 10
"""A partition signals its run's progress each this many assets."""
ASSET_TIMEOUT = timedelta(hours=6)
"""Longest one asset activity may run (a huge file on a slow link): its heartbeat, not this,
finds a dead worker."""

ASSET_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30), maximum_attempts=10,
                          non_retryable_error_types=[FATAL])
"""An asset activity that crashed (its worker died, the state DB was unreachable) is tried
again, on any worker; a FatalError (credentials, the run taken over) ends the run."""

CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2),
                            maximum_attempts=CONTROL_ATTEMPTS,
                            non_retryable_error_types=[FATAL])


ALL_ENDED_PATCH = "assetferry-all-ended-waits-for-every-step"
"""The :func:`workflow.patched` id of :func:`_all_ended` waiting for every step after a step
failed or was ended by the cancel (histories recorded before it replay the old way)."""


async def _all_ended(*steps: Any) -> list[Any]:
    """Run ``steps`` (activities, child workflows) at once: their results, in order.

    Returns or raises only once every step has ended, so the finish step reads a ledger
    nothing of the run still writes to. Cancelled (the workflow's cancel), it cancels every
    step and waits for each to end its cancellation (an activity in flight ends with its
    ledger rows written: ``WAIT_CANCELLATION_COMPLETED``), then raises CancelledError. A step
    that fails, or that the cancel ended (it raises ActivityError or ChildWorkflowError, not
    CancelledError), has the others cancelled and waited for too, then its error is raised
    (the first in ``steps``' order that is not a cancellation). ``asyncio.gather`` returned
    at that first error while the other steps still ran: a cancelled run was closed, its
    figures counted, before the uploads in flight wrote their DONE rows.

    Histories recorded before this (no :data:`ALL_ENDED_PATCH` marker) replay the old way."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    if not workflow.patched(ALL_ENDED_PATCH):
        try:
            return list(await asyncio.gather(*tasks))
        except asyncio.CancelledError:
            if tasks:
                await asyncio.wait(tasks)
            raise
    if not tasks:
        return []
    cancelled = False
    try:
        await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        cancelled = True
    if cancelled or any(t.done() and (t.cancelled() or t.exception() is not None)
                        for t in tasks):
        for task in tasks:
            task.cancel()
        while not all(t.done() for t in tasks):
            try:
                await workflow.wait(tasks)
            except asyncio.CancelledError:  # cancelled again: still wait for every step
                cancelled = True
        errors = [e for t in tasks if not t.cancelled() and (e := t.exception()) is not None]
        if cancelled or not errors:
            raise asyncio.CancelledError
        # a step's own failure before the cancellations it caused in the others
        raise next((e for e in errors if not is_cancelled_exception(e)), errors[0])
    return [t.result() for t in tasks]


def _cause(exc: BaseException) -> str:
    """The innermost message of an activity or child workflow failure."""
    while isinstance(exc, ActivityError | ChildWorkflowError) and exc.cause is not None:
        exc = exc.cause
    return str(exc)


@workflow.defn(name=PARTITION_WORKFLOW_NAME)
class PartitionWorkflow:
    """One partition's assets, each an activity on the rate-limit domain's task queue."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0

    async def _report(self, index: int) -> None:
        parent = workflow.info().parent
        if parent is not None:
            await workflow.get_external_workflow_handle(
                parent.workflow_id, run_id=parent.run_id).signal(
                    "partition_progress", args=[index, self.done, self.failed])

    @workflow.run
    async def run(self, inp: PartitionInput) -> list[Outcome]:
        ids = {tuple(path): fid for path, fid in inp.folder_ids}

        async def one(action: AssetAction) -> Outcome:
            folder = action.target_folder
            needs = ([(list(folder), ids[folder])] if folder is not None and folder in ids
                     else [])
            outcome: Outcome = await workflow.execute_activity(
                "assetferry.asset", ItemInput(inp.run, action, needs),
                result_type=Outcome,
                task_queue=inp.domain.task_queue,
                start_to_close_timeout=ASSET_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                retry_policy=ASSET_RETRY,
                # cancelled, an asset in flight ends (its ledger records written) first
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
            self.done += 1
            self.failed += outcome.status is ItemStatus.FAILED
            if self.done % PROGRESS_EVERY == 0:  # the run's progress, a signal each N assets
                await self._report(inp.index)
            return outcome

        return list(await _all_ended(*(one(a) for a in inp.actions)))


@workflow.defn(name=WORKFLOW_NAME)
class RunWorkflow:
    """One migrate or sync of one job; answers the ``progress`` query."""

    def __init__(self) -> None:
        self._progress = Progress()
        self._partitions: dict[int, tuple[int, int]] = {}

    @workflow.query
    def progress(self) -> Progress:
        return self._progress

    @workflow.signal
    def partition_progress(self, index: int, done: int, failed: int) -> None:
        """A partition's assets done and failed so far (its child workflow's signal)."""
        old = self._partitions.get(index, (0, 0))
        self._partitions[index] = (max(old[0], done), max(old[1], failed))
        self._progress.done = sum(d for d, _ in self._partitions.values())
        self._progress.failed = sum(f for _, f in self._partitions.values())

    @workflow.run
    async def run(self, inp: RunInput) -> dict[str, Any]:
        started = workflow.time()
        info = workflow.info()
        progress = self._progress
        interrupted = False
        planning = asyncio.ensure_future(workflow.execute_activity_method(
            Activities.plan, inp, start_to_close_timeout=PLAN_TIMEOUT,
            retry_policy=CONTROL_RETRY))
        try:
            planned: Planned = await asyncio.shield(planning)
        except asyncio.CancelledError:
            # the plan activity opens the run in the ledger: let it end, then close the run
            interrupted = True
            planned = await planning
        progress.route, progress.run_id = planned.route, planned.run_id
        ref = RunRef(inp.job_path, planned.route, planned.run_id or 0, run_owner(info.workflow_id))
        outcomes: list[Outcome] = list(planned.outcomes)
        summary = RunSummary(route=planned.route, mode=inp.mode, run_id=planned.run_id,
                             held_deletes=planned.held_deletes, prune_note=planned.prune_note)
        fatal = planned.fatal
        if fatal is None and not interrupted:
            try:
                await self._carry_out(inp, planned, ref, summary, outcomes)
            except asyncio.CancelledError:
                interrupted = True
            except (ActivityError, ChildWorkflowError) as exc:
                if is_cancelled_exception(exc):
                    interrupted = True
                else:
                    fatal = _cause(exc)
        pending: list[AssetAction] = []
        if interrupted and fatal is None:  # what it did not hear back about: in the ledger
            heard = {o.source_id for o in outcomes if o.kind == "asset"}
            pending = [a for part in (*planned.partitions, planned.deletes) for a in part
                       if a.source_id not in heard]
        progress.phase = "finishing"
        result: dict[str, Any] = await workflow.execute_activity_method(
            Activities.finish,
            FinishInput(ref, inp.mode, outcomes, planned.listing, summary.held_deletes,
                        summary.prune_note, workflow.time() - started, fatal,
                        interrupted=interrupted, pending=pending,
                        listed=list(planned.listed) if planned.listed else None,
                        locked=planned.locked),
            start_to_close_timeout=timedelta(minutes=10), retry_policy=CONTROL_RETRY)
        if planned.input_error:
            result["input_error"] = True
        progress.phase = "done"
        return result

    async def _carry_out(self, inp: RunInput, planned: Planned, ref: RunRef,
                         summary: RunSummary, outcomes: list[Outcome]) -> None:
        """Folders, partitions, deletions; each step's outcomes go into ``outcomes`` as it
        ends, so a cancelled run knows what it heard back about."""
        progress = self._progress
        progress.phase = "folders"
        making = asyncio.ensure_future(workflow.execute_activity_method(
            Activities.folders, args=[ref, planned.folders],
            start_to_close_timeout=PLAN_TIMEOUT, retry_policy=CONTROL_RETRY))
        try:
            folders = await asyncio.shield(making)
        except asyncio.CancelledError:  # the folders it makes are in the ledger: count them
            outcomes.extend((await making).outcomes)
            raise
        outcomes.extend(folders.outcomes)
        progress.planned = sum(len(p) for p in planned.partitions) + len(planned.deletes)
        progress.partitions = len(planned.partitions)
        progress.phase = "assets"
        info = workflow.info()

        async def partition(index: int, actions: list[AssetAction]) -> list[Outcome]:
            done: list[Outcome] = await workflow.execute_child_workflow(
                PartitionWorkflow.run,
                PartitionInput(ref, inp.domain, actions, folders.folder_ids,
                               inp.heartbeat_seconds, index),
                id=f"{info.workflow_id}/{info.run_id}/part-{index}",
                task_queue=info.task_queue)
            progress.partitions_done += 1
            self.partition_progress(
                index, len(done), sum(1 for o in done if o.status is ItemStatus.FAILED))
            outcomes.extend(done)
            return done

        await _all_ended(*(partition(i, p) for i, p in enumerate(planned.partitions)))
        failed = sum(1 for o in outcomes if o.status is ItemStatus.FAILED)
        deletes = hold_back_deletes(planned.deletes, failed, summary)
        if deletes:
            progress.phase = "deletes"
            await partition(len(planned.partitions), deletes)
