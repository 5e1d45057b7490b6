"""`assetferry status` tells the truth: ledger aggregates, pending per run, deleted as deleted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipeline.cli import main, status_data, status_text
from state.store import PRUNED_NOTE, ItemRecord, ItemStatus, RunStatus, StateStore
from tests.pipeline.helpers import job_toml

ROUTE = "local:/a->local:/b"


def asset(i: int, status: ItemStatus, **kw: object) -> ItemRecord:
    return ItemRecord(route=ROUTE, kind="asset", source_id=str(i), status=status,
                      path=f"dir/file {i}.png", **kw)  # type: ignore[arg-type]


def test_a_killed_run_shows_what_it_planned_and_did_not_reach(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "s.db"))
    first = store.start_run(ROUTE, "sync", planned=3)
    store.write([asset(1, ItemStatus.DONE, target_id="t1"),
                 asset(2, ItemStatus.SKIPPED, last_error=PRUNED_NOTE),
                 asset(3, ItemStatus.SKIPPED, last_error="conflict: another file")], run_id=first)
    store.finish_run(first, RunStatus.DONE, {"counts": {"created": 1, "deleted": 1}})
    run = store.start_run(ROUTE, "migrate", planned=10)  # then SIGKILLed: no finish_run
    store.write([asset(i, ItemStatus.DONE, target_id=f"t{i}") for i in range(10, 14)]
                + [asset(14, ItemStatus.FAILED, last_error="500 from the API\nretry later")],
                run_id=run)
    data = status_data(store, ROUTE)
    store.close()
    assert data["counts"]["done"] == 5
    assert data["counts"]["deleted"] == 1, "a pruned asset counts as deleted"
    assert data["counts"]["skipped"] == 0, "...not as skipped"
    assert data["counts"]["not_migrated"] == 1, "a conflict held back is not migrated"
    last = data["last_run"]
    assert (last["id"], last["status"], last["planned"]) == (run, "running", 10)
    assert (last["done"], last["failed"], last["pending"]) == (4, 1, 5)
    assert data["runs"][1]["counts"] == {"created": 1, "deleted": 1}
    text = status_text({"route": ROUTE, "state": "s.db", **data})
    assert ("10 planned, 4 done, 1 failed, 0 begun or about to begin, 0 skipped, 0 not migrated, "
            "0 deleted, 5 pending") in text
    assert "500 from the API\\nretry later" in text, "a newline in a reason stays on one line"
    assert "no figures recorded" not in text, "a live run is not called killed"
    assert f"  {run} migrate running " in text
    assert "running now: its figures are recorded at its end" in text


def test_only_a_dead_run_without_figures_says_killed(tmp_path: Path) -> None:
    """The runs list infers nothing from missing figures: a live run (here, or on Temporal)
    says it is running; one whose process is gone says killed."""
    store = StateStore(str(tmp_path / "s.db"))
    temporal = store.start_run(ROUTE, "migrate", owner="temporal:assetferry-0123")
    text = _status_of(store)
    assert "killed" not in text
    assert f"  {temporal} migrate running " in text
    with sqlite3.connect(tmp_path / "s.db") as conn:  # its workers stopped writing long ago
        conn.execute("UPDATE runs SET heartbeat_at = '2026-01-01 00:00:00', started_at = "
                     "'2026-01-01 00:00:00' WHERE id = ?", (temporal,))
    conn.close()
    text = _status_of(store)
    assert f"  {temporal} migrate interrupted " in text
    assert "no figures recorded (its process is gone: killed)" in text
    store.close()


@pytest.mark.slow
def test_status_at_100000_ledger_rows_uses_aggregates(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(str(tmp_path / "big.db"))
    run = store.start_run(ROUTE, "migrate", planned=100_000)
    statuses = ("done",) * 8 + ("failed", "skipped")
    with sqlite3.connect(tmp_path / "big.db") as conn:  # bulk: the store writes in batches
        conn.executemany(
            "INSERT INTO items (route, kind, source_id, status, path, attempts, journal, "
            "last_error, last_run_id, updated_at) VALUES (?, 'asset', ?, ?, ?, 1, '{}', ?, ?, "
            "'2026-01-01 00:00:00')",
            [(ROUTE, str(i), statuses[i % 10], f"dir/{i}.png",
              "x" if i % 10 == 8 else None, run) for i in range(100_000)])
    conn.close()

    def no_row_by_row(*_: object, **__: object) -> None:
        raise AssertionError("status loaded every ledger row into Python")

    monkeypatch.setattr(StateStore, "items", no_row_by_row)
    data = status_data(store, ROUTE)
    store.close()
    assert data["counts"]["done"] == 80_000
    assert data["counts"]["failed"] == 10_000
    assert len(data["failed"]) == 50, "the failures listed are capped; the count is not"
    assert data["last_run"]["pending"] == 0


def test_status_reads_no_secret_and_says_when_nothing_ran(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATUS_TEST_TOKEN", raising=False)
    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{tmp_path}"\n\n'
                   '[target]\nconnector = "contentstack"\napi_key = "blt1"\n'
                   'management_token = "${STATUS_TEST_TOKEN}"\n'
                   'base_url = "http://127.0.0.1:9"\n')
    assert main(["status", "-c", str(job)]) == 2  # no state DB: a job never run, or a typo
    err = capsys.readouterr().err
    assert "no state database at" in err
    assert "has this job run yet? check [run] state" in err
    assert "STATUS_TEST_TOKEN" not in err, "reading the state needs no credentials"


STATUS_NEVER_IMPORTS = ("pipeline.run", "pipeline.checkpoint", "pipeline.plan",
                        "pipeline.stages", "rich", "pygments",
                        "sqlalchemy.dialects.postgresql", "httpx", "connectors.http",
                        "connectors.localfs.connector", "connectors.contentstack.connector",
                        "PIL", "sqlalchemy")
"""What ``status`` has no use for (issue 12, start-up): the run machinery, Rich (structlog
imports it for tracebacks we never render with it), SQLAlchemy on a SQLite file (read with
``sqlite3``: ``state.reader``), the connectors and their HTTP client (the route comes from the
config models' scopes)."""


@pytest.mark.slow
def test_status_imports_no_run_machinery(tmp_path: Path) -> None:
    """Import boundary of ``status`` in a fresh interpreter (this one has everything loaded):
    each module listed costs every ``status`` start-up time and none is used."""
    import subprocess
    import sys

    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{tmp_path / "src"}"\n\n'
                   '[target]\nconnector = "contentstack"\napi_key = "blt1"\n'
                   'management_token = "${STATUS_TEST_TOKEN}"\n\n'
                   f'[run]\nstate = "{tmp_path / "state.db"}"\n')
    (tmp_path / "src").mkdir()
    StateStore(str(tmp_path / "state.db")).close()
    probe = ("import sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
             f"print('LOADED', [m for m in {STATUS_NEVER_IMPORTS!r} if m in sys.modules]); "
             "sys.exit(rc)")
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", probe, "status", "-c", str(job)], cwd=root,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "no run recorded yet" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "LOADED []", run.stdout


def test_ledger_counts_put_every_folder_under_folders_whatever_its_status(
        tmp_path: Path) -> None:
    """The counts come from the (route, status) index minus the folders' rows: a folder that
    failed, or a pruned one, is a folder, never a failed or deleted asset."""
    store = StateStore(str(tmp_path / "s.db"))
    folder = ItemRecord(route=ROUTE, kind="folder", source_id="f1", status=ItemStatus.FAILED)
    store.write([folder,
                 ItemRecord(route=ROUTE, kind="folder", source_id="f2",
                            status=ItemStatus.SKIPPED, last_error=PRUNED_NOTE),
                 asset(1, ItemStatus.SKIPPED, last_error=PRUNED_NOTE),
                 asset(2, ItemStatus.SKIPPED), asset(3, ItemStatus.FAILED),
                 ItemRecord(route="other", kind="asset", source_id="9",
                            status=ItemStatus.FAILED)])
    counts = store.ledger_counts(ROUTE)
    store.close()
    assert counts == {"pending": 0, "in_flight": 0, "done": 0, "failed": 1, "skipped": 1,
                      "deleted": 1, "not_migrated": 0, "folders": 2}


def _status_of(store: StateStore, config: str = "job.toml") -> str:
    return status_text({"route": ROUTE, "state": "s.db", **status_data(store, ROUTE)}, config)


def test_status_suggests_only_commands_that_work_in_the_runs_situation(tmp_path: Path) -> None:
    """A run going on (here, or on Temporal) is followed, never started again: "run the same
    command again" would meet the run lock or the running workflow (exit 2). A run whose
    workers are gone says how to bring one back or end the workflow; a stopped one names
    the command to resume with."""
    store = StateStore(str(tmp_path / "s.db"))
    run = store.start_run(ROUTE, "migrate", planned=3, owner="temporal:assetferry-0123")
    text = _status_of(store)
    assert "it runs on Temporal as workflow assetferry-0123: follow it with `assetferry " \
           "status -c job.toml`" in text
    assert "`temporal workflow cancel --workflow-id assetferry-0123 --address HOST:PORT`" \
        in text
    assert "`temporal workflow terminate --workflow-id assetferry-0123" in text
    assert "same command again" not in text
    assert status_data(store, ROUTE)["last_run"]["workflow_id"] == "assetferry-0123"

    with sqlite3.connect(tmp_path / "s.db") as conn:  # its workers stopped writing long ago
        conn.execute("UPDATE runs SET heartbeat_at = '2026-01-01 00:00:00', started_at = "
                     "'2026-01-01 00:00:00' WHERE id = ?", (run,))
    conn.close()
    text = _status_of(store)
    assert "no worker has written for its Temporal workflow assetferry-0123" in text
    assert "`assetferry worker --temporal HOST:PORT" in text
    assert "then run `assetferry migrate -c job.toml` again (with the same options) to " \
           "resume" in text

    store.finish_run(run, RunStatus.INTERRUPTED, {})
    here = store.start_run(ROUTE, "sync", planned=2)  # this process: live
    text = _status_of(store)
    assert "running now (process " in text
    assert "`assetferry status -c job.toml` again shows how far it got" in text
    store.finish_run(here, RunStatus.INTERRUPTED, {})
    text = _status_of(store)
    assert "run `assetferry sync -c job.toml` again (with the same options) to do the " \
           "pending ones" in text
    store.close()


async def test_an_in_process_run_meeting_a_run_on_temporal_names_its_workflow(
        tmp_path: Path) -> None:
    from pipeline.config import load_job
    from pipeline.run import execute_job

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.txt").write_text("a")
    config = job_toml(tmp_path, f'connector = "local"\npath = "{tmp_path / "lib"}"\n',
                      f'connector = "local"\npath = "{tmp_path / "out"}"\n', state="s.db")
    job = load_job(config, env={})
    route = f"local:{tmp_path / 'lib'}->local:{tmp_path / 'out'}"
    store = StateStore(job.run.state)
    store.start_run(route, "migrate", owner="temporal:assetferry-4567")
    store.close()
    summary = await execute_job(job, "migrate")
    assert summary.exit_code() == 2
    assert summary.fatal is not None
    assert "being run by its workflow on Temporal; it runs on Temporal as workflow " \
           "assetferry-4567" in summary.fatal
    assert "temporal workflow cancel --workflow-id assetferry-4567" in summary.fatal


def test_status_and_export_map_answer_while_a_run_holds_the_write_lock(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run in the middle of a commit holds SQLite's write lock (its change not committed
    yet): ``status`` and ``export-map`` read the last committed ledger at once. On the code
    before, each opened the store through a write transaction of its own, waited out the
    15 s busy timeout and exited 2 ("stayed locked by another process")."""
    from pipeline.cli import _route_scopes
    from pipeline.config import load_job

    for side in ("src", "dst"):
        (tmp_path / side).mkdir()
    job = job_toml(tmp_path, f'connector = "local"\npath = "{tmp_path / "src"}"',
                   f'connector = "local"\npath = "{tmp_path / "dst"}"')
    route = _route_scopes(load_job(job, secrets=False))
    with StateStore(str(tmp_path / "state.db")) as store:
        run = store.start_run(route, "migrate", planned=1)
        store.write([ItemRecord(route=route, kind="asset", source_id="a.png", path="a.png",
                                status=ItemStatus.DONE, target_id="a.png",
                                target_path="a.png")], run_id=run)
        store.finish_run(run, RunStatus.DONE, {"counts": {"created": 1}})
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE items SET status = 'failed'")
        assert main(["status", "-c", str(job)]) == 0
        assert "ledger: 1 done, 0 failed" in capsys.readouterr().out
        assert main(["export-map", "-c", str(job), "--format", "json"]) == 0
        assert '"target_id": "a.png"' in capsys.readouterr().out
    finally:
        writer.close()
