"""How a conflict with an edit in the target reads (the last testers' findings): the plan's
summary counts a prune deletion held back as a conflict as a conflict, not as a "gone from
the source" skip; a drift names what changed as a user reads it (size, time), never a
connector's raw version text; and every such message names the key to set, in one wording,
``[run] on_conflict = "source-wins"``, in the plan and in the run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import Asset
from pipeline.cli import main
from pipeline.plan import target_drift, write_marker
from pipeline.report import GONE_CONFLICT
from tests.pipeline.helpers import local_job

KEY = '[run] on_conflict = "source-wins"'


def edited_and_gone(tmp_path: Path) -> Path:
    """Migrated, then ``A/x.bin`` edited in the target and deleted in the source."""
    job = local_job(tmp_path)
    assert main(["migrate", "-c", str(job)]) == 0
    with (tmp_path / "out" / "A" / "x.bin").open("a") as f:
        f.write("edited in the target\n")
    (tmp_path / "lib" / "A" / "x.bin").unlink()
    return job


def planned_prune(job: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``plan --prune`` prints for ``job`` (:func:`edited_and_gone`): exit 1, the
    deletion held back."""
    capsys.readouterr()
    assert main(["plan", "-c", str(job), "--prune"]) == 1
    return capsys.readouterr().out


def test_plan_prune_counts_a_deletion_held_as_a_conflict_as_a_conflict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = planned_prune(edited_and_gone(tmp_path), capsys)
    summary = out[out.index("\n\n"):]
    assert f"1 gone from the source: {GONE_CONFLICT}" in summary, summary
    assert "1 skip (0 excluded by the source)" in summary, "y.bin, unchanged: the only skip"
    assert "1 conflict" in summary, summary


def test_a_drift_reads_as_size_and_time_never_a_raw_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = planned_prune(edited_and_gone(tmp_path), capsys)
    [line] = [x for x in out.splitlines() if "changed in the target since" in x
              and "gone from the source, but" in x and not x.startswith("1 source")]
    assert "it is now 25 bytes, we wrote 4; updated there at " in line, line
    assert "version" not in line, line  # a local file's size:mtime:inode:ctime


def test_a_numbered_version_is_named_and_any_other_is_not() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    listed = Asset(source_id="t1", filename="x.png", folder_id=None, folder_path=(),
                   content_type="image/png", size=12, version="13",
                   updated_at=datetime(2026, 2, 1, tzinfo=UTC))
    assert target_drift(write_marker(12, "12", at), listed) == (
        "its version is 13, we wrote version 12")
    raw = Asset(source_id="t1", filename="x.png", folder_id=None, folder_path=(),
                   content_type="image/png", size=12,
                version="13:1700000001", updated_at=None)
    said = target_drift('{"at": "2026-01-01T00:00:00+00:00", "size": 12, '
                        '"version": ["12", 1700000000]}', raw)
    assert said == "it is now 12 bytes", said


def test_the_prune_conflict_names_the_key_in_the_plan_and_in_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = edited_and_gone(tmp_path)
    planned = planned_prune(job, capsys)
    assert main(["sync", "-c", str(job), "--prune"]) == 1
    ran = capsys.readouterr().out
    for said in (planned, ran):
        assert f"set {KEY} for a run to delete it" in said, said
        assert "set it to" not in said, said
