"""The command line: exit codes, help, and plan output files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.pipeline.helpers import library


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("plan", "migrate", "sync", "status", "export-map", "emulate", "demo"):
        assert command in out


def test_the_command_line_loads_only_what_a_command_runs() -> None:
    """Issue 12 (start-up): ``assetferry --help`` (and the parsing every command does first)
    imports neither the state store (SQLAlchemy), the wire models (pydantic), HTTP, the
    planner nor the HTML report and thumbnails (Pillow); each command imports its own.
    A fresh interpreter: this process has them all loaded already."""
    heavy = ("sqlalchemy", "pydantic", "httpx", "PIL", "state.store", "pipeline.plan",
             "pipeline.run", "pipeline.html_report", "pipeline.thumbnails",
             "pipeline.mapping_rules", "connectors.http")
    probe = ("import sys; from pipeline.cli import main; main(['--help']); "
             f"print([m for m in {heavy!r} if m in sys.modules])")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out


def test_bad_job_file_exits_2_with_the_key_named(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.toml"
    job.write_text('[source]\nconnector = "local"\npath = "."\n\n'
                   '[target]\nconnector = "contentstack"\nregion = "eu"\n')
    assert main(["plan", "-c", str(job)]) == 2
    err = capsys.readouterr().err
    assert "target.api_key" in err
    assert not (tmp_path / "state").exists()


def test_plan_json_to_a_file_has_the_documented_shape(tmp_path: Path) -> None:
    root, files = library(tmp_path)
    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{root}"\n\n'
                   f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n')
    out = tmp_path / "plan.json"
    assert main(["plan", "-c", str(job), "--format", "json", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["summary"]["create"] == len(files)
    assert {"estimated_requests", "estimated_seconds"} <= set(report["summary"])
    item = next(i for i in report["items"] if i["kind"] == "asset")
    assert {"op", "kind", "source_id", "path", "reason", "warnings"} <= set(item)
    assert not (tmp_path / "out").exists(), "plan touches nothing"
    assert not (tmp_path / "state").exists(), "plan writes no state"

    md = tmp_path / "plan.md"
    assert main(["plan", "-c", str(job), "--format", "markdown", "--out", str(md)]) == 0
    assert md.read_text().startswith("# assetferry plan")


def _local_job(tmp_path: Path) -> Path:
    root, _ = library(tmp_path)
    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{root}"\n\n'
                   f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n')
    return job


@pytest.mark.parametrize(("name", "starts"), [
    ("plan.htm", "<!DOCTYPE html>"), ("plan.HTML", "<!DOCTYPE html>"), ("plan.json", "{"),
    ("plan.md", "# assetferry plan"), ("plan.txt", "OP "), ("plan", "OP "),
])
def test_plan_out_takes_its_format_from_the_suffix(tmp_path: Path, name: str, starts: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / name
    assert main(["plan", "-c", str(_local_job(tmp_path)), "--out", str(out),
                 "--thumbnails", "0"]) == 0
    assert out.read_text().lstrip().startswith(starts), out.read_text()[:80]
    assert "names no format" not in capsys.readouterr().err


def test_an_out_suffix_that_names_no_format_says_which_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = str(_local_job(tmp_path))
    assert main(["plan", "-c", job, "--out", str(tmp_path / "plan.pdf")]) == 0
    err = capsys.readouterr().err
    assert "--out" in err
    assert "'.pdf' names no format, so it is written as table" in err
    assert ".htm (html)" in err
    assert "--format" in err
    # the format option wins over the suffix, with no warning
    assert main(["plan", "-c", job, "--format", "json", "--out",
                 str(tmp_path / "plan.pdf")]) == 0
    assert json.loads((tmp_path / "plan.pdf").read_text())["summary"]
    assert "names no format" not in capsys.readouterr().err


def test_report_verify_and_export_map_take_their_format_from_the_suffix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = str(_local_job(tmp_path))
    assert main(["migrate", "-c", job, "--report", str(tmp_path / "run.htm")]) == 0
    assert (tmp_path / "run.htm").read_text().lstrip().startswith("<!DOCTYPE html>")
    assert main(["migrate", "-c", job, "--report", str(tmp_path / "run.log")]) == 0
    assert json.loads((tmp_path / "run.log").read_text())["counts"]
    assert "'.log' names no format, so it is written as json" in capsys.readouterr().err
    assert main(["verify", "-c", job, "--out", str(tmp_path / "verify.json")]) == 0
    assert "summary" in json.loads((tmp_path / "verify.json").read_text())
    assert main(["export-map", "-c", job, "--out", str(tmp_path / "map.json")]) == 0
    assert isinstance(json.loads((tmp_path / "map.json").read_text()), list)
    assert main(["export-map", "-c", job, "--out", str(tmp_path / "map.jsonl")]) == 0
    first = (tmp_path / "map.jsonl").read_text().splitlines()[0]
    assert isinstance(json.loads(first), dict)


def test_plan_after_a_run_counts_the_unchanged_and_unchanged_lists_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A re-run's table plan counts its unchanged assets (and the folders already there) in
    one line; ``plan --unchanged`` lists them as every plan did before (issue 12)."""
    job = str(_local_job(tmp_path))
    assert main(["migrate", "-c", job]) == 0
    capsys.readouterr()
    assert main(["plan", "-c", job]) == 0
    table = capsys.readouterr().out
    summary = json.loads(_plan_json(job, capsys))["summary"]
    assets, folders = summary["skip"], summary["folders_skip"]
    assert assets > 0
    assert folders > 0
    assert (f"{assets} assets unchanged since the last run and {folders} folder"
            f"{'s' if folders != 1 else ''} already in the target (not listed; --unchanged "
            "lists them)\n") in table
    assert "unchanged since the last run\n" not in table.split("(not listed")[0]
    assert main(["plan", "-c", job, "--unchanged"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("unchanged since the last run\n") == assets
    assert "not listed" not in listed


def _plan_json(job: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["plan", "-c", job, "--format", "json"]) == 0
    return capsys.readouterr().out


def test_plan_reads_a_sqlite_ledger_with_no_sqlalchemy_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: ``plan`` reads a SQLite ledger of 100,000 rows with the standard library
    (`state.reader`), not through a `StateStore` whose engine it never uses; the rows are
    the store's, but for ``updated_at``, which a plan never reads."""
    from dataclasses import replace

    from pipeline import run
    from pipeline.cli import _route_scopes
    from pipeline.config import load_job
    from state import store

    job_file = _local_job(tmp_path)
    assert main(["migrate", "-c", str(job_file)]) == 0
    job = load_job(job_file)
    route = _route_scopes(job)
    with store.StateStore(job.run.state, read_only=True) as ledger:
        expected = {key: replace(rec, updated_at=None)
                    for key, rec in ledger.items(route).items()}
    assert len(expected) > 1

    def no_store(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("plan made a StateStore (a SQLAlchemy engine) to read a file")

    monkeypatch.setattr(store, "StateStore", no_store)
    monkeypatch.setattr(run, "StateStore", no_store, raising=False)  # imported where used
    assert run._read_records(job, route, times=False) == expected


@pytest.mark.slow
def test_plan_on_a_sqlite_ledger_imports_no_sqlalchemy(tmp_path: Path) -> None:
    """Issue 12 (start-up): ``plan`` reads a SQLite ledger with the standard library, so it
    imports neither the state store nor SQLAlchemy (a third of a second of every plan);
    a run, which writes the ledger, does. A fresh interpreter: this one has them loaded."""
    job = str(_local_job(tmp_path))
    assert main(["migrate", "-c", job]) == 0
    probe = ("import sys; from pipeline.cli import main; code = main(['plan', '-c', "
             f"{job!r}]); print(code, [m for m in ('sqlalchemy', 'state.store') "
             "if m in sys.modules])")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []", out[-2000:]
