"""What the Temporal client says and does when the fault or the stop is not the run's own:
a worker's missing job file or ``${VAR}`` named as the worker's; a detach that says how to
follow and stop the run and writes what ``--report`` can hold; ``status`` during a run on
Temporal naming its workflow, never suggesting a command that would exit 2. (A run no
worker picks up: test_temporal_run.py's second-run test.)
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from connectors.contentstack.demo import ContentstackDemo
from connectors.emulation import LoopbackServer
from connectors.plugin import EmulatorSettings
from pipeline.temporal.activities import Activities
from pipeline.temporal.devserver import DevServer, start_worker, stop_worker
from pipeline.temporal.shared import CONTROL_ATTEMPTS, Domain, RunInput
from tests.temporal.test_temporal_run import client_env, write_job, write_library

pytestmark = pytest.mark.slow

DOMAIN = Domain("q.contentstack-x", None, 1)


async def test_a_workers_missing_variable_or_job_file_is_named_as_the_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan activity (on a worker) reads the job file and resolves its ${VAR}s: what it
    misses is that worker's to fix, and the message says which worker and what to set."""
    monkeypatch.delenv("CONTENTSTACK_MANAGEMENT_TOKEN", raising=False)
    write_library(tmp_path / "library")
    job = write_job(tmp_path, ContentstackDemo(EmulatorSettings()).job_section(
        "http://127.0.0.1:9"))
    worker = Activities()
    try:
        planned = await ActivityEnvironment().run(
            worker.plan, RunInput(str(job), "migrate", DOMAIN))
        assert planned.fatal is not None
        assert planned.input_error
        assert planned.fatal.startswith("on worker assetferry@"), planned.fatal
        assert "CONTENTSTACK_MANAGEMENT_TOKEN is not set in that worker's environment" \
            in planned.fatal
        assert "where `assetferry worker` runs on" in planned.fatal

        gone = tmp_path / "elsewhere" / "job.toml"
        planned = await ActivityEnvironment().run(
            worker.plan, RunInput(str(gone), "migrate", DOMAIN))
        assert planned.fatal is not None
        assert planned.input_error
        assert planned.fatal.startswith("on worker assetferry@"), planned.fatal
        assert f"put the job file at {gone} on" in planned.fatal
    finally:
        await worker.resources.aclose()


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """stderr lines of ``proc`` up to the first holding ``text``."""
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        line = proc.stderr.readline()
        assert line, f"the client ended before saying {text!r}: {seen}"
        assert time.monotonic() < deadline, seen
        seen += line
    return seen


def test_status_and_a_detach_during_a_run_on_temporal(
        tmp_path: Path, temporal_server: DevServer, capsys: pytest.CaptureFixture[str]) -> None:
    """While a worker carries out the run: ``status`` names the workflow and how to follow
    and stop it (not "run the same command again", which would exit 2), and Ctrl-C of the
    client detaches saying so and writes the report it can (the workflow, its progress)."""
    from pipeline.cli import main

    write_library(tmp_path / "library")
    demo = ContentstackDemo(EmulatorSettings())
    queue = "test-detach"
    with LoopbackServer(demo.app) as server:
        # 2 requests/s: the domain's share is 1 asset/s, so the run outlasts the test's steps
        job = write_job(tmp_path, demo.job_section(server.url) + "requests_per_second = 2\n")
        worker = start_worker(temporal_server.address, queue, env=dict(demo.env),
                              log=tmp_path / "worker.log")
        report = tmp_path / "detached.json"
        run = _start(["migrate", "-c", str(job), "--temporal", temporal_server.address,
                      "--task-queue", queue, "--report", str(report)], client_env())
        try:
            err = _wait_for(run, ": assets: ")
            wid = err.split("started workflow ")[1].split()[0]
            assert main(["status", "-c", str(job)]) == 0
            status = capsys.readouterr().out
            assert f"it runs on Temporal as workflow {wid}" in status, status
            assert f"temporal workflow cancel --workflow-id {wid}" in status
            assert "same command again" not in status
            run.send_signal(signal.SIGINT)
            _, rest = run.communicate(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
            subprocess.run([str(temporal_server.binary), "workflow", "terminate",
                            "--workflow-id", wid, "--address", temporal_server.address,
                            "--reason", "test"], capture_output=True, check=False, timeout=30)
            stop_worker(worker)
    demo.close()
    assert run.returncode == 130, err + rest
    assert f"detached (SIGINT): workflow {wid} goes on on the workers" in rest
    assert f"temporal workflow cancel --workflow-id {wid} --address " \
           f"{temporal_server.address}" in rest
    body = json.loads(report.read_text(encoding="utf-8"))
    assert body["interrupted"] == "SIGINT"
    assert body["temporal"]["workflow_id"] == wid
    assert body["temporal"]["client"] == "detached"
    assert body["temporal"]["progress"]["planned"] == 32


async def test_a_progress_query_a_busy_worker_fails_does_not_end_the_client() -> None:
    """Under load the SDK's deadlock guard fails a query ("workflow didn't yield within 2
    second(s)"): the run goes on, so following it must too (it ended the client with
    "unexpected error WorkflowQueryFailedError", exit 2, while the run went on)."""
    import asyncio
    from typing import Any

    from temporalio.client import WorkflowQueryFailedError

    from pipeline.temporal.client import follow
    from pipeline.temporal.shared import Progress

    class Handle:
        def __init__(self) -> None:
            self.queries = 0
            self.done = asyncio.Event()

        async def result(self) -> dict[str, Any]:
            await self.done.wait()
            return {"exit_code": 0, "text": "done"}

        async def query(self, _: str, result_type: type[Progress]) -> Progress:
            self.queries += 1
            if self.queries == 1:
                raise WorkflowQueryFailedError("Potential deadlock detected")
            self.done.set()
            return result_type(phase="assets", planned=2, done=1)

    said: list[str] = []
    handle = Handle()
    result = await follow(handle, say=said.append, every=0.01)  # type: ignore[arg-type]
    assert result["exit_code"] == 0
    assert handle.queries >= 2


async def test_a_refused_token_on_a_worker_leaves_no_state_db_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A management token the target refuses stops a Temporal run in its plan activity: the
    state DB and the ``state/`` folder the worker created for it are removed again (they
    hold nothing), as an in-process run's are (tests/pipeline/test_stopped_runs.py); a
    folder that was there before stays. (The worker once left an empty state DB.)"""
    demo = ContentstackDemo(EmulatorSettings())
    for name in demo.env:
        monkeypatch.setenv(name, "not-the-token")
    write_library(tmp_path / "library")
    worker = Activities()
    try:
        with LoopbackServer(demo.app) as server:
            job = write_job(tmp_path, demo.job_section(server.url))
            kept = tmp_path / "kept.toml"
            kept.write_text(job.read_text().replace("state/assetferry.db", "mine/new/a.db"))
            (tmp_path / "mine").mkdir()  # the user's, empty: not the run's to remove
            for path in (job, kept):
                planned = await ActivityEnvironment().run(
                    worker.plan, RunInput(str(path), "migrate", DOMAIN))
                assert planned.fatal is not None, planned
                assert planned.fatal.startswith("on worker assetferry@"), planned.fatal
                assert planned.input_error
                assert planned.run_id is None
    finally:
        await worker.resources.aclose()
        demo.close()
    assert not (tmp_path / "state").exists(), "no empty state DB, nor its folder"
    assert (tmp_path / "mine").is_dir()
    assert not (tmp_path / "mine" / "new").exists()


async def test_an_unexpected_error_in_the_plan_ends_the_run_on_its_last_try(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error in the plan activity is retried; its last try ends the run with
    the error in one line (exit 2 on the client) and, as in process, leaves no run open in
    the ledger and no empty state DB. It once failed the workflow: no summary, the run left
    running in the ledger until its heartbeat went stale (the job blocked for 60 s)."""
    import pipeline.temporal.activities as activities

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the plan")

    monkeypatch.setattr(activities, "plan_for_run", broken)
    demo = ContentstackDemo(EmulatorSettings())
    for name, value in demo.env.items():
        monkeypatch.setenv(name, value)
    write_library(tmp_path / "library")
    job = write_job(tmp_path, demo.job_section("http://127.0.0.1:9"))
    worker = Activities()
    try:
        first = ActivityEnvironment()  # attempt 1: raised, for Temporal to retry
        with pytest.raises(ExceptionGroup) as raised:
            await first.run(worker.plan, RunInput(str(job), "migrate", DOMAIN))
        assert raised.group_contains(RuntimeError, match="a bug in the plan")
        last = ActivityEnvironment()
        last.info = dataclasses.replace(last.info, attempt=CONTROL_ATTEMPTS)
        planned = await last.run(worker.plan, RunInput(str(job), "migrate", DOMAIN))
    finally:
        await worker.resources.aclose()
        demo.close()
    assert planned.fatal is not None
    assert planned.fatal.startswith("unexpected error RuntimeError: a bug in the plan; "), \
        planned.fatal
    assert planned.run_id is None
    assert not (tmp_path / "state").exists(), "no run left open, no empty state DB"
