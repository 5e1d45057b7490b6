"""A run on Temporal cancelled mid-run (``temporal workflow cancel``, a client's
``cancel()``) closes its run in the ledger as interrupted, with figures that agree with the
ledger and the whole listing in its source entries, as an interrupted in-process run does;
the client following it prints that summary and exits 130. (It once ran no finish step: the
run stayed "running" until its heartbeat was 60 s old, and the figures counted only the
partitions that had ended. And it once closed the run while asset activities still ran:
the partition stopped waiting at the first activity the cancel had ended, so an upload in
flight wrote its DONE row after the finish step had counted the ledger; the test holds an
upload in the emulator across the cancel to make that window wide.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from connectors.contentstack.demo import ContentstackDemo
from connectors.emulation import LoopbackServer
from connectors.plugin import EmulatorSettings
from pipeline.temporal.devserver import DevServer, start_worker, stop_worker
from state.store import ItemStatus, RunStatus, StateStore
from tests.temporal.test_temporal_run import ASSETS, client_env, write_job, write_library

pytestmark = pytest.mark.slow

HOLD_SECONDS = 10.0
"""Longest an upload is held once the cancel is sent: the run must not be closed before."""
SLOTS = 4
"""Asset activities one worker runs at once (the job's ``[run] concurrency``)."""


def run_closed(state: Path) -> bool:
    """Whether the newest run in the ledger at ``state`` is closed (not running)."""
    if not state.exists():
        return False
    store = StateStore(str(state))
    try:
        runs = [r for route in store.routes() for r in store.runs(route, limit=1)]
    finally:
        store.close()
    return bool(runs) and all(r.status is not RunStatus.RUNNING for r in runs)


class HoldUploads:
    """ASGI middleware: once :meth:`arm` is called, every upload (POST /v3/assets) is held,
    its body read, until the run is closed in the ledger, ``HOLD_SECONDS`` have passed since
    :meth:`cancelled`, or its client gave up (then it never reaches the emulator). An upload
    held when the run is closed means the run was closed while an asset activity of it was
    still in flight (:attr:`closed_in_flight`)."""

    def __init__(self, app: Any, state: Path) -> None:
        self.app = app
        self.state = state
        self.armed = False
        self.held = 0
        self.cancelled_at: float | None = None
        self.closed_in_flight = 0

    def arm(self) -> None:
        self.armed = True

    def cancelled(self) -> None:
        self.cancelled_at = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (self.armed and scope["type"] == "http" and scope.get("method") == "POST"
                and scope.get("path") == "/v3/assets"):
            await self.app(scope, receive, send)
            return
        messages = []
        while True:  # the whole body, so a client that gives up can be told apart
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if messages[-1]["type"] == "http.disconnect":
            return
        self.held += 1
        gone = asyncio.ensure_future(receive())  # http.disconnect once the client gives up
        try:
            while not gone.done():
                if run_closed(self.state):
                    self.closed_in_flight += 1
                    break
                if (self.cancelled_at is not None
                        and time.monotonic() - self.cancelled_at > HOLD_SECONDS):
                    break
                await asyncio.sleep(0.05)
        finally:
            self.held -= 1
        if gone.done():
            return
        gone.cancel()
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, {"type": "http.disconnect"})

        await self.app(scope, replayed, send)


async def partition_caught_up(address: str) -> bool:
    """Whether the running partition workflow has handled every event of its history (its
    last event a completed workflow task): nothing the cancel could meet in one activation."""
    from temporalio.client import Client

    client = await Client.connect(address)
    async for wf in client.list_workflows(
            "WorkflowType = 'AssetferryPartition' AND ExecutionStatus = 'Running'"):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        return history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    return False


async def cancel(address: str, workflow_id: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    await client.get_workflow_handle(workflow_id).cancel()


def started_workflow(err: Path, run: subprocess.Popen[str]) -> str:
    """The workflow id the client printed on stderr (``started workflow ID on ...``)."""
    deadline = time.monotonic() + 60
    while "started workflow " not in (text := err.read_text() if err.exists() else ""):
        assert run.poll() is None, text
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    return text.split("started workflow ")[1].split()[0]


def test_a_cancelled_run_is_closed_interrupted_with_the_ledgers_figures(
        tmp_path: Path, temporal_server: DevServer) -> None:
    write_library(tmp_path / "library")
    demo = ContentstackDemo(EmulatorSettings())  # the documented 10 requests/s
    emu = demo.emulator
    queue = "test-cancel"
    report, err = tmp_path / "report.json", tmp_path / "client.err"
    hold = HoldUploads(demo.app, tmp_path / "state" / "assetferry.db")
    with LoopbackServer(hold) as server:
        job = write_job(tmp_path, demo.job_section(server.url))
        worker = start_worker(temporal_server.address, queue, env=demo.env,
                              log=tmp_path / "worker.log")
        try:
            with err.open("w") as errors:
                run = subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", "migrate", "-c", str(job),
                     "--temporal", temporal_server.address, "--task-queue", queue,
                     "--report", str(report)],
                    stdout=subprocess.PIPE, stderr=errors, text=True, env=client_env())
                wid = started_workflow(err, run)
                deadline = time.monotonic() + 60
                while len(emu.assets) < 4:
                    assert run.poll() is None, err.read_text()
                    assert time.monotonic() < deadline, "no asset uploaded in 60 s"
                    time.sleep(0.05)
                hold.arm()  # the next uploads stay in flight across the cancel
                # every slot held and the partition caught up: no activity can complete in
                # the cancel's activation (then the old code waited, by luck), and the
                # queued ones the cancel ends at once come first
                while hold.held < SLOTS or not asyncio.run(
                        partition_caught_up(temporal_server.address)):
                    assert run.poll() is None, err.read_text()
                    assert time.monotonic() < deadline, "uploads not all held in 60 s"
                    time.sleep(0.05)
                hold.cancelled()
                asyncio.run(cancel(temporal_server.address, wid))
                out, _ = run.communicate(timeout=90)
        finally:
            stop_worker(worker)
    demo.close()
    assert not hold.closed_in_flight, "the run was closed while an upload of it was in flight"
    assert run.returncode == 130, out + err.read_text()
    assert "interrupted (cancelled): state saved; run the same command again" in out, out
    assert f"{ASSETS} source entries" in out, out
    body = json.loads(report.read_text())
    store = StateStore(str(tmp_path / "state" / "assetferry.db"))
    try:
        [last] = store.runs(body["route"], limit=1)
        done = [r for r in store.items(body["route"], "asset").values()
                if r.last_run_id == last.id and r.status is ItemStatus.DONE]
    finally:
        store.close()
    assert last.status is RunStatus.INTERRUPTED, "closed at once, not left running"
    assert last.summary["counts"]["source_entries"] == ASSETS
    assert 0 < len(done) < ASSETS, "the cancel landed mid-run"
    assert last.summary["counts"]["created"] == len(done), "the figures are the ledger's"
    assert body["counts"]["created"] == len(done)
    assert body["interrupted"] == "cancelled"
