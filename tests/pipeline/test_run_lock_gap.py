"""The run lock covers a run's listing and plan, not only its execution (a tester's
finding): it used to be taken after the plan, so a run of the same job that ended while
this one listed left it a plan built on the ledger as it was before: every asset sent
twice (orphans the ledger no longer knows), or false "changed in the target" conflicts
over the other run's own writes. Deterministic: run A is started from inside run B's
``on_plan`` hook, i.e. after B listed and planned, and runs to its end there."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import pytest

from pipeline.cli import main
from pipeline.config import load_job
from pipeline.plan import Plan
from pipeline.report import RunSummary
from pipeline.run import execute_job
from state.store import RunStatus, StateStore
from tests.pipeline.helpers import local_job


def test_a_run_that_ends_while_another_plans_is_refused_not_done_twice(tmp_path: Path) -> None:
    job = load_job(local_job(tmp_path))
    others: list[RunSummary] = []

    def run_a_to_its_end(plan: Plan) -> None:  # B has listed and planned: A comes and goes
        with ThreadPoolExecutor(1) as pool:
            others.append(pool.submit(anyio.run, partial(execute_job, job, "migrate")).result())

    b = anyio.run(partial(execute_job, job, "migrate", on_plan=run_a_to_its_end))
    [a] = others
    assert a.locked, f"A ran in B's gap between plan and lock: {a.fatal} {a.outcomes}"
    assert a.exit_code() == 2
    assert a.fatal is not None
    assert "is being run by another process" in a.fatal, a.fatal
    assert not a.outcomes, "A carried out nothing"
    assert b.fatal is None
    assert b.exit_code() == 0
    assert sorted(o.path for o in b.outcomes if o.kind == "asset") == ["A/x.bin", "y.bin"]
    with StateStore(str(tmp_path / "s.db")) as store:
        runs = store.runs(b.route)
    assert [r.status for r in runs] == [RunStatus.DONE], "one run did the job, once"
    assert runs[0].summary.get("planned") == 2, "the plan's size is still recorded"


def test_plan_takes_no_run_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path)
    assert main(["migrate", "-c", str(job)]) == 0
    with StateStore(str(tmp_path / "s.db")) as store:
        [last] = store.runs(store.routes()[0], limit=1)
        held = store.start_run(last.route, "sync")  # a live run of the job (this process)
        try:
            capsys.readouterr()
            assert main(["plan", "-c", str(job)]) == 0, capsys.readouterr().out
            assert main(["sync", "-c", str(job)]) == 2, "a run is refused"
        finally:
            store.finish_run(held, RunStatus.DONE, {})
