"""An asset activity retried while its first attempt still runs (a worker cut off from the
server, not dead) waits for the first attempt's claim in the ledger, then finds the asset
done: one upload, never two. Without the claim, the retry finds only the first attempt's
intent, looks for the asset in the target before the upload has landed, and sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from connectors.contentstack.demo import ContentstackDemo
from connectors.emulation import LoopbackServer
from connectors.plugin import EmulatorSettings
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.run import plan_job
from pipeline.temporal import run_owner
from pipeline.temporal.activities import Activities
from pipeline.temporal.shared import ItemInput, RunRef
from state.store import ItemStatus, StateStore

pytestmark = pytest.mark.slow


class SlowUploads:
    """ASGI middleware: an upload (POST /v3/assets) reaches the emulator only after 2 s, so
    it is in flight while the retry looks for the asset."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" \
                and scope.get("path") == "/v3/assets":
            await asyncio.sleep(2)
        await self.app(scope, receive, send)


def in_flight(store: StateStore, route: str, source_id: str) -> bool:
    rec = store.item(route, "asset", source_id)
    return rec is not None and rec.status is ItemStatus.IN_FLIGHT


def environment(attempt: int, heartbeat_timeout: float = 3) -> ActivityEnvironment:
    """Attempt ``attempt`` of the asset activity; its claim's lease is twice
    ``heartbeat_timeout``, renewed every third of it."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, workflow_id="wf-claims",
                                   activity_id="asset-1",
                                   # a lease of 6 s (renewed every 1 s): a 2 s lease expired
                                   # once under load 12 while a renewal waited for a thread
                                   heartbeat_timeout=timedelta(seconds=heartbeat_timeout))
    return env


@dataclasses.dataclass
class OneAsset:
    """A run of one 200 kB asset opened in the ledger (as the plan activity opens it), its
    uploads slowed by :class:`SlowUploads`, and two workers' activities for its attempts."""

    store: StateStore
    route: str
    source_id: str
    inp: ItemInput
    workers: tuple[Activities, Activities]
    uploads: list[str]


@contextlib.asynccontextmanager
async def one_asset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[OneAsset]:
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "movie.bin").write_bytes(b"x" * 200_000)
    demo = ContentstackDemo(EmulatorSettings(unlimited=True))
    for name, value in demo.env.items():
        monkeypatch.setenv(name, value)
    with LoopbackServer(SlowUploads(demo.app)) as server:
        job_path = tmp_path / "job.toml"
        job_path.write_text(
            '[source]\nconnector = "local"\npath = "./library"\n\n'
            f"[target]\n{demo.job_section(server.url)}\n"
            '[run]\nstate = "state.db"\n', encoding="utf-8")
        job = load_job(job_path)
        plan = await plan_job(job)
        (action,) = [a for a in plan.assets if a.op is Op.CREATE]
        store = StateStore(job.run.state)
        owner = run_owner("wf-claims")
        run_id = store.start_run(plan.route, "migrate", owner=owner)
        inp = ItemInput(RunRef(str(job_path), plan.route, run_id, owner), action, [([], "")])
        uploads: list[str] = []
        one = OneAsset(store, plan.route, action.source_id, inp, (Activities(), Activities()),
                       uploads)
        try:
            yield one
        finally:
            for worker in one.workers:
                await worker.resources.aclose()
            store.close()
    uploads.extend(a["filename"] for a in demo.emulator.assets.values())
    demo.close()


async def test_a_retry_while_the_first_attempt_runs_uploads_nothing_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with one_asset(tmp_path, monkeypatch) as run:
        first_worker, second_worker = run.workers
        first = asyncio.ensure_future(environment(1).run(first_worker.asset, run.inp))
        while not in_flight(run.store, run.route, run.source_id):
            await asyncio.sleep(0.05)  # the first attempt's upload has started
        second = await environment(2).run(second_worker.asset, run.inp)
        done = await first
    assert run.uploads == ["movie.bin"]
    assert done.status is ItemStatus.DONE
    assert second.status is ItemStatus.DONE
    assert second.target_id == done.target_id


async def test_a_retry_cancelled_while_the_first_attempt_runs_ends_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's cancel reaches a retry waiting for the claim of an attempt that still runs
    (its worker cut off from Temporal, not from the ledger and the target): the retry ends
    only once that attempt has ended, so the run's finish step (which runs once every
    activity has ended) counts the DONE row it writes. The retry once ended at once, and a
    cancelled run's figures missed an asset the ledger then held as done."""
    async with one_asset(tmp_path, monkeypatch) as run:
        first_worker, second_worker = run.workers
        first = asyncio.ensure_future(environment(1).run(first_worker.asset, run.inp))
        while not in_flight(run.store, run.route, run.source_id):
            await asyncio.sleep(0.05)  # the first attempt's upload has started
        retry = environment(2)
        waiting = asyncio.Event()
        retry.on_heartbeat = lambda *details: waiting.set() if details == (
            "waiting for the claim",) else None
        second = asyncio.ensure_future(retry.run(second_worker.asset, run.inp))
        await waiting.wait()
        retry.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        rec = run.store.item(run.route, "asset", run.source_id)
        assert rec is not None
        assert rec.status is ItemStatus.DONE, "the retry ended before the first attempt"
        done = await first
    assert done.status is ItemStatus.DONE
    assert run.uploads == ["movie.bin"]


def test_a_domain_shares_the_jobs_rate_not_only_the_documented_one(tmp_path: Path) -> None:
    """The task queue's activity rate is half the rate the job's target keeps: the job's
    ``requests_per_second = 2`` gives 1 asset a second across every worker (it gave 5, half
    the documented 10, and two workers pacing 2/s each met 429s)."""
    from connectors.contentstack import ContentstackConfig, ContentstackConnector
    from pipeline.config import load_job
    from pipeline.temporal.client import domain_for

    (tmp_path / "lib").mkdir()
    job_path = tmp_path / "job.toml"
    job_path.write_text(
        '[source]\nconnector = "local"\npath = "lib"\n\n[target]\nconnector = "contentstack"\n'
        'api_key = "blt1"\nmanagement_token = "${T}"\nrequests_per_second = 2\n',
        encoding="utf-8")
    job = load_job(job_path, env={"T": "x"})
    assert isinstance(job.target, ContentstackConfig)
    target = ContentstackConnector(job.target)
    assert domain_for(job, target, "q").activities_per_second == 1.0


async def test_an_attempt_whose_claim_was_taken_over_writes_nothing_more(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An attempt that stood still past its lease (a frozen VM, a stopped process) and lost
    the asset's claim to another worker checks the claim before each ledger write, not only
    at its next renewal (every 20 s here): it records nothing for the asset, whose new
    holder carries it out. It once wrote its DONE row over the new holder's."""
    async with one_asset(tmp_path, monkeypatch) as run:
        first = asyncio.ensure_future(
            environment(1, heartbeat_timeout=60).run(run.workers[0].asset, run.inp))
        while not in_flight(run.store, run.route, run.source_id):
            await asyncio.sleep(0.05)  # the first attempt's upload has started
        key = ("asset", run.source_id)
        first_owner = (f"{run.inp.run.owner}/asset-1#1@{socket.gethostname()}:"
                       f"{os.getpid()}")
        run.store.release(run.route, [key], first_owner)  # its lease ran out meanwhile
        assert run.store.claim(run.route, [key], "another-worker",
                               lease=timedelta(minutes=5)) == [key]
        with pytest.raises(ApplicationError, match="another worker holds it now"):
            await first
        rec = run.store.item(run.route, "asset", run.source_id)
        assert rec is not None
        assert rec.status is ItemStatus.IN_FLIGHT, "left to the claim's new holder"
        assert run.store.claims(run.route)[key][0] == "another-worker"
