"""Runs that stop before they carry anything out still say the truth (the last testers'
findings): one refused by the run lock prints who holds it and what to do, no zero summary;
one stopped by ``[run] on_conflict = "fail"`` counts its whole source listing; and ``plan``
exits 1 when the run it shows would hold items back (a conflict), like that run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from pipeline.cli import main
from pipeline.run import execute_job
from state.store import RunStatus, StateStore, sqlite_files
from tests.pipeline.helpers import local_job, local_to_cs_job


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


@pytest.mark.parametrize("damage", ["state under a file", "damaged manifest"])
def test_an_error_before_the_run_starts_prints_the_error_and_no_zero_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    """The last testers' finding: a state DB that cannot be created, or a source manifest
    that cannot be read, printed "0 created, 0 replaced ..." above the error."""
    job = local_job(tmp_path)
    if damage == "state under a file":
        (tmp_path / "file").write_text("a file, not a folder\n")
        job.write_text(job.read_text().replace('state = "s.db"', 'state = "file/s.db"'))
    else:
        (tmp_path / "lib" / ".assetferry.json").write_text("{not json")
    capsys.readouterr()
    assert main(["migrate", "-c", str(job)]) == 2
    out = capsys.readouterr().out
    assert "migrate local:" in out, out
    assert ": not started: " in out, out
    assert "0 created" not in out, out
    assert "source entries" not in out, out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


async def test_a_refused_token_leaves_no_state_db_behind(tmp_path: Path,
                                                        cs: ContentstackEmulator) -> None:
    """A token the target refuses stops the run at its listing: the summary is the error
    only, and the state DB the run created is removed again (it held nothing)."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "x.bin").write_text("one\n")
    job = local_to_cs_job(tmp_path, "http://cs.emulator", source=tmp_path / "lib",
                          env={"E2E_CS": "not-the-token"})
    summary = await execute_job(job, "migrate",
                                transports={"target": in_process_transport(cs.app)})
    assert summary.exit_code() == 2, summary.text()
    assert ": not started: " in summary.text()
    assert "0 created" not in summary.text()
    assert not any(p.exists() for p in sqlite_files(job.run.state)), "no empty state DB"


@pytest.mark.parametrize("state", ["state/s.db", "state/deep/s.db"])
def test_an_error_before_the_run_removes_the_state_folders_it_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], state: str) -> None:
    """The README tester's finding: a damaged source manifest stopped the run before its
    plan, the empty state DB went, but the ``state/`` folder made for it stayed."""
    job = local_job(tmp_path)
    job.write_text(job.read_text().replace('state = "s.db"', f'state = "{state}"'))
    (tmp_path / "lib" / ".assetferry.json").write_text("{not json")
    assert main(["migrate", "-c", str(job)]) == 2, capsys.readouterr().out
    assert not (tmp_path / "state").exists(), "the folders the run made for its state DB go"


def test_an_error_before_the_run_keeps_a_state_folder_that_was_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path)
    job.write_text(job.read_text().replace('state = "s.db"', 'state = "kept/new/s.db"'))
    (tmp_path / "kept").mkdir()  # the user's, empty: not the run's to remove
    (tmp_path / "lib" / ".assetferry.json").write_text("{not json")
    assert main(["migrate", "-c", str(job)]) == 2, capsys.readouterr().out
    assert (tmp_path / "kept").is_dir()
    assert not (tmp_path / "kept" / "new").exists()


async def test_a_refused_token_leaves_no_state_folder_behind(tmp_path: Path,
                                                            cs: ContentstackEmulator) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "x.bin").write_text("one\n")
    job = local_to_cs_job(tmp_path, "http://cs.emulator", source=tmp_path / "lib",
                          env={"E2E_CS": "not-the-token"})
    job = job.model_copy(update={"run": job.run.model_copy(
        update={"state": str(tmp_path / "state" / "a.db")})})
    summary = await execute_job(job, "migrate",
                                transports={"target": in_process_transport(cs.app)})
    assert summary.exit_code() == 2, summary.text()
    assert not (tmp_path / "state").exists(), "no empty state folder"
