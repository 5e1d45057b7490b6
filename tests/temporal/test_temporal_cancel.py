"""A run on Temporal cancelled mid-run (``temporal workflow cancel``, a client's
``cancel()``) closes its run in the ledger as interrupted, with figures that agree with the
ledger and the whole listing in its source entries, as an interrupted in-process run does;
the client following it prints that summary and exits 130. (It once ran no finish step: the
run stayed "running" until its heartbeat was 60 s old, and the figures counted only the
partitions that had ended.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.contentstack.demo import ContentstackDemo
from connectors.emulation import LoopbackServer
from connectors.plugin import EmulatorSettings
from pipeline.temporal.devserver import DevServer, start_worker, stop_worker
from state.store import ItemStatus, RunStatus, StateStore
from tests.temporal.test_temporal_run import ASSETS, client_env, write_job, write_library

pytestmark = pytest.mark.slow


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
    with LoopbackServer(demo.app) as server:
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
                asyncio.run(cancel(temporal_server.address, wid))
                out, _ = run.communicate(timeout=90)
        finally:
            stop_worker(worker)
    demo.close()
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
