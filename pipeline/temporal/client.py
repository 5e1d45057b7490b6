"""``migrate|sync --temporal``: start the run as a workflow, print its id, follow it.

Nothing but the job file's path and the rate-limit domain goes to the server: the client
reads the job without its secrets (``load_job(..., secrets=False)``) and each worker
resolves them from its own environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from connectors.base import Target
from connectors.errors import ConfigError, FatalError
from pipeline.config import JobConfig, load_job
from pipeline.registry import open_connector
from pipeline.temporal import follow_hint
from pipeline.temporal.shared import MEMO_DOMAIN, WORKFLOW_NAME, Domain, Progress, RunInput

RATE_SHARE = 0.5
"""The share of the target's documented rate the domain's activities may use. The server's
limit is a token bucket that holds up to one second's worth of starts: after a pause it
starts that many at once and then goes on at the rate, so one second may see twice the
rate. Half the documented limit keeps every second at or below it."""

_ADDRESS = re.compile(r"^\[?[A-Za-z0-9._:-]+\]?:\d{1,5}$")


def check_address(address: str) -> str:
    """``HOST:PORT`` as given; ConfigError (exit 2) for anything else."""
    if not _ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ConfigError(f"--temporal {address!r} is not HOST:PORT (e.g. 127.0.0.1:7233, "
                          "the Temporal server's gRPC address)")
    return address


async def connect(address: str) -> Client:
    """A client of the Temporal server at ``address`` (namespace ``default``); ConfigError
    (exit 2) saying what to check when it cannot be reached (the SDK tries for ~10 s)."""
    check_address(address)
    host, _, port = address.rpartition(":")
    try:  # a plain TCP connection first: nothing of the SDK's runtime is started in vain
        await asyncio.to_thread(_probe, host.strip("[]"), int(port))
        return await Client.connect(address)
    except (RuntimeError, RPCError, OSError) as exc:
        text = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        found = re.search(r'message: "([^"]+)"', text)
        why = (found.group(1) if found else text.strip().splitlines()[0][:160] if text.strip()
               else "no answer")
        raise ConfigError(
            f"cannot reach a Temporal server at {address} ({why}); check the address and "
            "that the server runs (temporal server start-dev --port PORT for a local one)"
        ) from None


def _probe(host: str, port: int) -> None:
    """Raise OSError when nothing accepts TCP connections at ``host:port`` in 5 s."""
    with socket.create_connection((host, port), timeout=5):
        pass


def domain_for(job: JobConfig, target: Target, task_queue: str) -> Domain:
    """The target's rate-limit domain: one task queue per target connector and scope (its
    stack, space or site: what one API key's documented limit covers), whose activity rate
    is ``RATE_SHARE`` x the documented requests per second / requests per upload (``None``:
    no documented limit)."""
    limits = target.limits
    key = hashlib.sha256(f"{job.target.connector}\0{target.scope}".encode()).hexdigest()[:12]
    rate = limits.requests_per_second
    per_asset = max(1, limits.requests_per_upload)
    return Domain(f"{task_queue}.{job.target.connector}-{key}",
                  round(rate * RATE_SHARE / per_asset, 3) if rate else None,
                  max(1, job.run.concurrency))


async def _route_and_domain(job: JobConfig, task_queue: str) -> tuple[str, Domain]:
    source = open_connector(job.source)
    target = open_connector(job.target, role="target")
    try:
        if not isinstance(target, Target):
            raise ConfigError(f"target.connector: {job.target.connector} is read-only")
        return job.route(source.scope, target.scope), domain_for(job, target, task_queue)
    finally:
        await source.aclose()
        await target.aclose()


def workflow_id(route: str) -> str:
    """One workflow id per job route: a second run of the job while one runs is refused."""
    return "assetferry-" + hashlib.sha256(route.encode()).hexdigest()[:16]


async def start(client: Client, config: Path, mode: str, *, task_queue: str,
                retry_failed: bool = False, prune: bool | None = None,
                heartbeat_seconds: float = 10.0, address: str | None = None
                ) -> WorkflowHandle[Any, Any]:
    """Start the run of the job file ``config`` (an absolute path: each worker reads it);
    FatalError (exit 2) when one of this job runs already (``address``: the server's, for
    the commands that message suggests)."""
    job = load_job(config, secrets=False, ledger=False)
    route, domain = await _route_and_domain(job, task_queue)
    wid = workflow_id(route)
    inp = RunInput(str(config), mode, domain, retry_failed=retry_failed, prune=prune,
                   heartbeat_seconds=heartbeat_seconds)
    try:
        return await client.start_workflow(
            WORKFLOW_NAME, inp, id=wid, task_queue=task_queue,
            memo={MEMO_DOMAIN: {"task_queue": domain.task_queue,
                                "activities_per_second": domain.activities_per_second,
                                "concurrency": domain.concurrency}},
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError:
        raise FatalError(
            f"this job ({route}) is already running on Temporal: wait for it to end, or stop "
            f"it; {follow_hint(wid, config, address)}") from None


def progress_line(p: Progress) -> str:
    run = f"run {p.run_id}" if p.run_id is not None else "run"
    if p.phase in ("assets", "deletes", "finishing", "done"):
        return (f"{run}: {p.phase}: {p.done}/{p.planned} assets done, {p.failed} failed "
                f"({p.partitions_done}/{p.partitions} partitions)")
    return f"{run}: {p.phase}"


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


async def has_pollers(client: Client, task_queue: str) -> bool:
    """Whether any worker polled the workflow task queue ``task_queue`` lately (the server
    keeps its pollers of the last minutes: ``DescribeTaskQueue``). A run started on a queue
    no worker polls waits, and only a terminate ends it (a cancel needs a worker to run the
    workflow's code)."""
    from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    try:
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    except RPCError:  # not allowed to look (a restricted namespace): assume one polls
        return True
    return bool(answer.pollers)


async def worker_started(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether a worker has run any of the workflow's code (a workflow task started in its
    history): before that, nothing of the run has happened, in the ledger or the target."""
    from temporalio.api.enums.v1 import EventType

    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return True
    return False


async def follow(handle: WorkflowHandle[Any, Any], say: Callable[[str], None] = _say,
                 every: float = 1.0, seen: list[Progress] | None = None) -> dict[str, Any]:
    """Print the run's progress as it changes until it ends; its result (the run report
    as JSON plus ``text``). ``seen``: gets the latest progress appended (what a client that
    detaches reports)."""
    result = asyncio.ensure_future(handle.result())
    last = ""
    try:
        while not result.done():
            try:
                p = await handle.query("progress", result_type=Progress)
            except RPCError:
                p = None  # not started on a worker yet
            except WorkflowQueryFailedError:  # a worker too busy to answer in time (the
                await asyncio.wait([result], timeout=every)  # SDK's deadlock guard): the
                continue  # run goes on; ask again
            if p is not None and seen is not None:
                seen.append(p)
                del seen[:-1]
            line = progress_line(p) if p is not None else "waiting for a worker"
            if line != last:
                say(line)
                last = line
            await asyncio.wait([result], timeout=every)
        out: dict[str, Any] = result.result()
        return out
    finally:
        if not result.done():
            result.cancel()
