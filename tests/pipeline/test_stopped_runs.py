"""Runs that stop before they carry anything out still say the truth (the last testers'
findings): one refused by the run lock prints who holds it and what to do, no zero summary;
one stopped by ``[run] on_conflict = "fail"`` counts its whole source listing; and ``plan``
exits 1 when the run it shows would hold items back (a conflict), like that run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from state.store import RunStatus, StateStore
from tests.pipeline.helpers import local_job


def test_a_run_refused_by_the_run_lock_says_who_holds_it_and_to_wait(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path)
    report = tmp_path / "run.json"
    assert main(["migrate", "-c", str(job), "--report", str(report)]) == 0
    route = json.loads(report.read_text())["route"]
    store = StateStore(str(tmp_path / "s.db"))
    held = store.start_run(route, "migrate", planned=0)  # this live process holds the lock
    capsys.readouterr()
    try:
        code = main(["migrate", "-c", str(job), "--report", str(report)])
        out, err = capsys.readouterr()
    finally:
        store.finish_run(held, RunStatus.DONE, {})
        store.close()
    assert code == 2, out + err
    assert f"is being run by another process (run {held}" in out, out
    assert "not started" in out, out
    assert "wait for it to end (assetferry status -c" in out, out
    assert "0 created" not in out, "no zero summary"
    assert "once the error above is fixed" not in out, out
    assert json.loads(report.read_text())["locked"] is True


def test_a_run_stopped_by_on_conflict_fail_counts_its_listing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path, 'on_conflict = "fail"\n')
    assert main(["migrate", "-c", str(job)]) == 0
    (tmp_path / "out" / "y.bin").write_text("edited in the target, longer\n")
    (tmp_path / "lib" / "A" / "x.bin").write_text("one, changed\n")  # an update to carry
    report = tmp_path / "run.json"
    capsys.readouterr()
    assert main(["sync", "-c", str(job), "--report", str(report)]) == 2
    out = capsys.readouterr().out
    assert "2 source entries" in out, out
    assert json.loads(report.read_text())["counts"]["source_entries"] == 2
    assert (tmp_path / "out" / "A" / "x.bin").read_text() == "one\n", "nothing written"


def test_plan_exits_1_when_the_run_would_hold_items_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path)
    assert main(["plan", "-c", str(job)]) == 0, "all would go: 0"
    assert main(["migrate", "-c", str(job)]) == 0
    assert main(["plan", "-c", str(job)]) == 0, "nothing to do: 0"
    (tmp_path / "out" / "y.bin").write_text("edited in the target, longer\n")
    capsys.readouterr()
    assert main(["plan", "-c", str(job), "--format", "json"]) == 1
    plan = json.loads(capsys.readouterr().out)
    assert plan["summary"]["conflict"] == 1
    assert main(["sync", "-c", str(job)]) == 1, "the run holds the same item back"
