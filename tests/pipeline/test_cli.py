"""The command line: exit codes, help, and plan output files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.pipeline.helpers import library


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("plan", "migrate", "sync", "status", "export-map", "emulate", "demo"):
        assert command in out


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
