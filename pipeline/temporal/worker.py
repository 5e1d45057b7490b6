"""``assetferry worker``: one process polling the control task queue, and the asset task
queue of every rate-limit domain a running job names.

The control queue runs the workflows and the plan, folders and finish activities. A run's
rate-limit domain (its target: connector and stack/space/site) is in the workflow's memo
(``MEMO_DOMAIN``); the worker looks for running runs every few seconds and starts polling
each new domain's queue with ``max_task_queue_activities_per_second`` set to the domain's
rate, which the server then enforces across every worker polling that queue, and with at
most the job's ``concurrency`` asset activities at once in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from dataclasses import dataclass, field

import structlog
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from pipeline.temporal.activities import Activities, worker_identity
from pipeline.temporal.shared import MEMO_DOMAIN, WORKFLOW_NAME, Domain
from pipeline.temporal.workflows import PartitionWorkflow, RunWorkflow

log = structlog.get_logger(__name__)

PASSED_THROUGH = ("pipeline", "connectors", "mappings", "state", "structlog", "anyio",
                  "httpx", "sqlalchemy", "pydantic", "PIL", "rich", "click", "starlette")

SANDBOX = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default
                                  .with_passthrough_modules(*PASSED_THROUGH))
"""The workflows run in Temporal's sandbox; assetferry's own packages and the libraries they
import are passed through (imported once, outside it): the workflows use only their pure
data classes and functions, and a class imported twice would not match its own values."""

DISCOVER_SECONDS = 2.0
"""How often the worker looks for new rate-limit domains among the running runs."""


def identity() -> str:
    return worker_identity()


def domain_of(memo: object) -> Domain | None:
    """The :class:`Domain` a run's memo value names, or None when it names none."""
    if not isinstance(memo, dict):
        return None
    queue, rate, concurrency = (memo.get("task_queue"), memo.get("activities_per_second"),
                                memo.get("concurrency"))
    if not isinstance(queue, str) or not queue or not isinstance(concurrency, int):
        return None
    if rate is not None and not isinstance(rate, int | float):
        return None
    return Domain(queue, float(rate) if rate is not None else None, max(1, concurrency))


@dataclass
class AssetferryWorker:
    """The workers of one process: control queue plus one per discovered domain."""

    client: Client
    task_queue: str
    activities: Activities = field(default_factory=Activities)
    domains: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def _domain_worker(self, domain: Domain) -> None:
        worker = Worker(self.client, task_queue=domain.task_queue,
                        activities=[self.activities.asset],
                        max_concurrent_activities=domain.concurrency,
                        max_task_queue_activities_per_second=domain.activities_per_second,
                        identity=identity())
        self.workers.append(worker)
        self.domains[domain.task_queue] = asyncio.create_task(worker.run())
        log.info("worker.domain", task_queue=domain.task_queue,
                 activities_per_second=domain.activities_per_second,
                 concurrency=domain.concurrency)

    async def discover(self) -> None:
        """Poll for running runs of this control queue and serve their domains."""
        query = (f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running' "
                 f"AND TaskQueue = '{self.task_queue}'")
        while True:
            try:
                async for execution in self.client.list_workflows(query):
                    memo = await execution.memo()
                    domain = domain_of(memo.get(MEMO_DOMAIN))
                    if domain is not None and domain.task_queue not in self.domains:
                        self._domain_worker(domain)
            except Exception as exc:  # noqa: BLE001 - the server may be briefly away
                log.warning("worker.discover_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(DISCOVER_SECONDS)

    async def run(self) -> None:
        """Serve until cancelled; then stop polling and finish or hand back running tasks."""
        control = Worker(self.client, task_queue=self.task_queue,
                         workflows=[RunWorkflow, PartitionWorkflow],
                         workflow_runner=SANDBOX,
                         activities=[self.activities.plan, self.activities.folders,
                                     self.activities.finish],
                         identity=identity())
        self.workers.append(control)
        discover = asyncio.create_task(self.discover())
        try:
            await control.run()
        finally:
            discover.cancel()
            for worker in self.workers[1:]:
                with contextlib.suppress(Exception):
                    await worker.shutdown()
            for task in self.domains.values():
                task.cancel()
            await self.activities.resources.aclose()


def serve(address: str, task_queue: str) -> None:
    """Run the worker until SIGINT or SIGTERM; ConfigError (exit 2) when the server at
    ``address`` cannot be reached."""
    from pipeline.temporal.client import connect

    async def main() -> None:
        client = await connect(address)
        worker = AssetferryWorker(client, task_queue)
        running = asyncio.create_task(worker.run())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sys.stderr.write(f"assetferry worker {identity()} polling task queue {task_queue} on "
                         f"{address}; Ctrl-C stops it\n")
        sys.stderr.flush()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            for w in worker.workers:
                with contextlib.suppress(Exception):
                    await w.shutdown()
        stopping.cancel()
        await running

    try:
        asyncio.run(main())
    finally:
        gc.collect()  # drop the Temporal client now, not while the interpreter exits
