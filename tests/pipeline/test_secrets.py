"""A real migration, then a search for the token everywhere it must never be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.helpers import EMU_TOKEN, cs_job_file, library

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_token_never_reaches_logs_reports_state_or_cassettes(tmp_path: Path,
                                                             emulator: str) -> None:
    root, files = library(tmp_path)
    job = cs_job_file(tmp_path, root, emulator, rate=500)
    env = {**os.environ, "CS_TOKEN": EMU_TOKEN}
    outputs = []
    for args in (
        ["plan", "-c", str(job), "--format", "json", "--out", str(tmp_path / "plan.json")],
        ["-v", "--log-format", "json", "migrate", "-c", str(job),
         "--report", str(tmp_path / "report.json")],
        ["plan", "-c", str(job), "--format", "html", "--out", str(tmp_path / "plan.html")],
        ["sync", "-c", str(job), "--report", str(tmp_path / "report.html")],
        ["status", "-c", str(job), "--format", "json"],
        ["export-map", "-c", str(job)],
    ):
        run = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs.append(run.stdout + run.stderr)
    logs = "\n".join(outputs)
    assert "load.done" in logs, "debug/json logs were captured"
    assert len([line for line in logs.splitlines() if "load.done" in line]) == len(files)

    secret = EMU_TOKEN.encode()
    assert secret not in logs.encode()
    for path in (tmp_path / "plan.json", tmp_path / "report.json", tmp_path / "plan.html",
                 tmp_path / "report.html"):
        assert secret not in path.read_bytes(), path
    for path in tmp_path.glob("state.db*"):
        assert secret not in path.read_bytes(), path
    for cassette in (REPO / "tests" / "cassettes").rglob("*"):
        if cassette.is_file():
            assert b"cs-emulator-token" not in cassette.read_bytes(), cassette
            assert b"sb-emulator-token" not in cassette.read_bytes(), cassette
