"""End to end with the ledger on PostgreSQL: ``assetferry migrate`` into the Contentstack
emulator, a re-run that does nothing, ``status`` from the same ledger; the server's password
comes from ``${VAR}`` and shows nowhere (output, logs, report, the state DB itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipeline.cli import main
from pipeline.samples import sample_library
from state.store import StateStore
from tests.pgserver import PgServer
from tests.pipeline.helpers import CS_KEY, EMU_TOKEN, library

pytestmark = pytest.mark.slow


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--log-format", "json", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=240, check=False)


def test_migrate_rerun_and_status_with_the_ledger_on_postgresql(
        tmp_path: Path, emulator: str, pg_server: PgServer, pg_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    root, files = library(tmp_path, list(sample_library())[:8])
    url = pg_url.replace(f":{pg_server.password}@", ":${AF_PG_PASSWORD}@")
    assert pg_server.password not in url
    job = tmp_path / "job.toml"
    job.write_text(
        f'[source]\nconnector = "local"\npath = "{root}"\n\n'
        f'[target]\nconnector = "contentstack"\napi_key = "{CS_KEY}"\n'
        f'management_token = "${{CS_TOKEN}}"\nbase_url = "{emulator}"\n'
        "requests_per_second = 500\n\n"
        f'[run]\nstate = "{url}"\nconcurrency = 4\n', encoding="utf-8")
    env = {"CS_TOKEN": EMU_TOKEN, "AF_PG_PASSWORD": pg_server.password}
    report = tmp_path / "report.json"
    outputs = []

    first = _cli("migrate", "-c", str(job), "--report", str(report), env=env)
    outputs.append(first.stdout + first.stderr + report.read_text(encoding="utf-8"))
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    with StateStore(pg_url) as store:
        route = store.routes()[0]
        assert store.ledger_counts(route)["done"] == len(files)

    second = tmp_path / "again.json"
    rerun = _cli("migrate", "-c", str(job), "--report", str(second), env=env)
    outputs.append(rerun.stdout + rerun.stderr + second.read_text(encoding="utf-8"))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    counts = json.loads(second.read_text(encoding="utf-8"))["counts"]
    assert [counts[k] for k in ("created", "replaced", "updated", "deleted", "folders_created",
                                "failed")] == [0] * 6, counts  # the re-run planned nothing

    monkeypatch.setenv("AF_PG_PASSWORD", pg_server.password)  # and no CS token: not needed
    monkeypatch.delenv("CS_TOKEN", raising=False)
    assert main(["status", "-c", str(job), "--format", "json"]) == 0
    status_out, status_err = capsys.readouterr()
    outputs.append(status_out + status_err)
    data = json.loads(status_out)
    assert data["counts"]["done"] == len(files)
    assert data["state"].endswith(pg_url.rsplit("/", 1)[1])
    assert ":***@" in data["state"]

    for out in outputs:
        assert pg_server.password not in out
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            for table in ("runs", "items", "claims", "schema_version"):
                for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                    assert pg_server.password not in repr(tuple(row)), table
    finally:
        engine.dispose()


def test_a_wrong_or_missing_password_is_exit_2_and_never_echoed(
        tmp_path: Path, pg_server: PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_url.replace(f":{pg_server.password}@", ":${AF_PG_PASSWORD}@")
    job = tmp_path / "job.toml"
    job.write_text(
        f'[source]\nconnector = "local"\npath = "{tmp_path / "in"}"\n\n'
        f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n\n'
        f'[run]\nstate = "{url}"\n', encoding="utf-8")
    wrong = "not-the-Password-9f2"
    monkeypatch.setenv("AF_PG_PASSWORD", wrong)
    assert main(["status", "-c", str(job)]) == 2
    out, err = capsys.readouterr()
    assert "refused the login" in err
    assert wrong not in out + err
    assert "Traceback" not in err

    monkeypatch.delenv("AF_PG_PASSWORD")  # status needs the state DB's password, no other
    assert main(["status", "-c", str(job)]) == 2
    err = capsys.readouterr().err
    assert "run.state: environment variable AF_PG_PASSWORD is not set" in err
