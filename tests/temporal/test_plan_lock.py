"""The plan activity opens the run in the ledger (the run lock, ``temporal:<workflow id>``)
before it reads the ledger and lists: an in-process run of the job that comes and goes
while the activity lists and plans is refused, instead of leaving the workflow a plan
built on the ledger as it was before (every asset sent twice). The workflow-id lock keeps
two workflows of the job apart, but not a workflow and an in-process run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import pytest
from temporalio.testing import ActivityEnvironment

import pipeline.run
from pipeline.config import load_job
from pipeline.plan import Plan
from pipeline.report import RunSummary
from pipeline.run import execute_job
from pipeline.temporal import activities
from pipeline.temporal.activities import Activities
from pipeline.temporal.shared import Domain, RunInput
from state.store import RunStatus, StateStore
from tests.pipeline.helpers import local_job


async def test_an_in_process_run_during_the_plan_activity_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job_path = local_job(tmp_path)
    job = load_job(job_path)
    others: list[RunSummary] = []

    def run_a_to_its_end(plan: Plan) -> None:  # the activity has listed and planned
        with ThreadPoolExecutor(1) as pool:
            others.append(pool.submit(anyio.run, partial(execute_job, job, "migrate")).result())

    def counting(summary: RunSummary, on_plan: Callable[[Plan], None] | None = None
                 ) -> Callable[[Plan], None]:
        return pipeline.run.counting(summary, run_a_to_its_end)

    monkeypatch.setattr(activities, "counting", counting)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="wf-plan-lock")
    acts = Activities()
    try:
        planned = await env.run(acts.plan, RunInput(str(job_path), "migrate",
                                                    Domain("q", None, 1)))
    finally:
        await acts.resources.aclose()
    [a] = others
    assert a.locked, f"the in-process run ran in the plan activity's gap: {a.outcomes}"
    assert not a.outcomes
    assert planned.fatal is None
    assert planned.run_id is not None
    with StateStore(str(tmp_path / "s.db")) as store:
        [run] = store.runs(planned.route)
        assert run.status is RunStatus.RUNNING
        assert run.owner == "temporal:wf-plan-lock"
        assert run.summary.get("planned") == 2
        store.finish_run(run.id, RunStatus.DONE, {})
