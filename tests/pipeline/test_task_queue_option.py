"""``--task-queue`` names a queue a worker can poll: an empty name (the server's RPC error
surfaced as "unexpected error") or one with a space (a typo no worker polls: the workflow
waited forever and blocked the job) is exit 2 before anything starts. Found by the
README-only tester."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli


@pytest.mark.parametrize("argv", [
    ["worker", "--temporal", "127.0.0.1:1"],
    ["migrate", "-c", "job.toml", "--temporal", "127.0.0.1:1"],
    ["sync", "-c", "job.toml", "--temporal", "127.0.0.1:1"],
])
@pytest.mark.parametrize("queue", ["", "a b/c", "tab\there"])
def test_a_task_queue_no_worker_could_poll_is_refused(
        argv: list[str], queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.toml").write_text("", encoding="utf-8")
    assert cli.main([*argv, "--task-queue", queue]) == 2
    assert "is not a task queue name" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--task-queue", "q"], ["--heartbeat-timeout", "5"]])
def test_a_temporal_option_without_temporal_is_refused(
        option: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """It was accepted and the run went on in-process, the option ignored."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.toml").write_text("", encoding="utf-8")
    assert cli.main(["migrate", "-c", "job.toml", *option]) == 2
    assert "only applies to a run on Temporal" in capsys.readouterr().err
