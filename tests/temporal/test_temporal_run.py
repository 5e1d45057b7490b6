"""migrate --temporal end to end: a dev server, two worker processes, one SIGKILLed mid-run,
the shared ledger a SQLite file or a PostgreSQL database.

Every asset lands in the target exactly once (uploads counted per filename by the emulator),
the target's documented rate limit is never exceeded (the emulator's 429 count, and the most
API requests it saw in any one second), no credential is in the workflows' histories, and
``status`` reads the run from the same ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from bisect import bisect_left
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from connectors.contentstack.demo import DOCUMENTED_RATE, TOKEN, ContentstackDemo
from connectors.emulation import LoopbackServer
from connectors.plugin import EmulatorSettings
from pipeline.temporal.devserver import DevServer, start_worker, stop_worker

pytestmark = pytest.mark.slow

ASSETS = 32
FOLDERS = ("photos", "docs", "video/raw")


class RequestLog:
    """ASGI middleware noting when each API request (not a file download) arrived."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/v3/"):
            self.times.append(time.monotonic())
        await self.app(scope, receive, send)

    def max_per_second(self) -> int:
        times = sorted(self.times)
        return max((bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def uploading(log: Path) -> int:
    """How many assets the worker logging to ``log`` has carried out so far."""
    return log.read_text(errors="replace").count("load.done") if log.exists() else 0


def write_library(root: Path) -> list[str]:
    rng = random.Random(7)
    names = []
    for i in range(ASSETS):
        folder = root / FOLDERS[i % len(FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"asset-{i:03d}.bin"
        (folder / name).write_bytes(rng.randbytes(48_000 + i))
        names.append(name)
    return names


def write_job(tmp: Path, target_section: str, state: str = "state/assetferry.db") -> Path:
    job = tmp / "job.toml"
    job.write_text(
        '[source]\nconnector = "local"\npath = "./library"\n\n'
        f"[target]\n{target_section}\n"
        '[mapping]\nfolder_overflow = "collapse"\n\n'
        f'[run]\nstate = "{state}"\nconcurrency = 4\n', encoding="utf-8")
    return job


PG_PASSWORD_VAR = "ASSETFERRY_TEST_PG_PASSWORD"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """Where the workers share the ledger: ``[run] state`` and the environment it needs. A
    SQLite file (workers on one machine) or a fresh database on the session's throw-away
    PostgreSQL server (workers on many machines; skips, saying why, without one), its
    password from ``${VAR}`` as a user would write it."""
    if request.param == "sqlite":
        return "state/assetferry.db", {}
    server = request.getfixturevalue("pg_server")
    url = server.new_database("temporal")
    return (url.replace(f":{server.password}@", f":${{{PG_PASSWORD_VAR}}}@"),
            {PG_PASSWORD_VAR: server.password})


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env or client_env(), check=False)


def client_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The client's environment: no Contentstack token (only the workers have it), plus
    ``extra`` (the ledger's password, which status needs too)."""
    env = {k: v for k, v in os.environ.items() if k != "CONTENTSTACK_MANAGEMENT_TOKEN"}
    return {**env, **(extra or {})}


async def histories(address: str) -> str:
    """Every workflow's event history on the server, as JSON text."""
    from temporalio.client import Client

    client = await Client.connect(address)
    out = []
    async for wf in client.list_workflows():
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        out.append(history.to_json())
    return "\n".join(out)


def test_two_workers_one_killed_every_asset_once_under_the_rate_limit(
        tmp_path: Path, temporal_server: DevServer,
        ledger: tuple[str, dict[str, str]]) -> None:
    state, ledger_env = ledger
    names = write_library(tmp_path / "library")
    demo = ContentstackDemo(EmulatorSettings())  # the documented 10 requests/s
    emu = demo.emulator
    requests = RequestLog(demo.app)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    queue = "test-kill"
    with LoopbackServer(requests) as server:
        job = write_job(tmp_path, demo.job_section(server.url), state)
        workers = [start_worker(temporal_server.address, queue, env={**demo.env, **ledger_env},
                                log=log)
                   for log in logs]
        try:
            run = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "migrate", "-c", str(job), "--temporal",
                 temporal_server.address, "--task-queue", queue, "--heartbeat-timeout", "3"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=client_env(ledger_env))
            deadline = time.monotonic() + 60
            while len(emu.assets) < 6 or not any(map(uploading, logs)):
                assert run.poll() is None, run.communicate()
                assert time.monotonic() < deadline, "no asset uploaded in 60 s"
                time.sleep(0.05)
            assert len(emu.assets) < ASSETS  # the kill lands mid-run
            killed = max(range(len(logs)), key=lambda i: uploading(logs[i]))
            workers[killed].send_signal(signal.SIGKILL)  # one that carries out assets
            out, err = run.communicate(timeout=90)
        finally:
            for proc in workers:
                stop_worker(proc)
        worker_logs = "\n".join(log.read_text(errors="replace") for log in logs)
        assert run.returncode == 0, f"{out}\n{err}\n{worker_logs}"
        assert "started workflow assetferry-" in err
        assert f"{ASSETS} created" in out

        uploads = Counter(a["filename"] for a in emu.assets.values())
        assert uploads == Counter(names)  # every asset once: none missing, none twice
        assert emu.limiter.rejected == 0  # no 429: the rate limit was never exceeded
        assert requests.max_per_second() <= DOCUMENTED_RATE

        status = cli("status", "-c", str(job), env=client_env(ledger_env))
        assert status.returncode == 0, status.stderr
        assert f"{ASSETS} done" in status.stdout

        text = asyncio.run(histories(temporal_server.address))
        assert "assetferry.asset" in text  # the histories were read
        assert TOKEN not in text
        for password in ledger_env.values():  # the ledger was the PostgreSQL database
            assert not (tmp_path / "state").exists()
            assert password not in text
            assert password not in out + err + status.stdout + worker_logs
    demo.close()


def test_a_second_run_of_the_job_while_one_runs_is_refused(
        tmp_path: Path, temporal_server: DevServer) -> None:
    """No worker polls this queue, so the first run waits, and the client says so before it
    starts it; the second start is refused with commands that work then (a terminate: a
    cancel never takes effect without a worker). SIGTERM of the first client ends the
    waiting workflow (nothing of it ran), says so and writes its --report, so the job is not
    left blocked. The client needs neither the token nor the ledger's password: the ledger
    is the workers' (this one's password variable is set nowhere)."""
    write_library(tmp_path / "library")
    job = write_job(tmp_path, ContentstackDemo(EmulatorSettings()).job_section(
        "http://127.0.0.1:9"),
        state="postgresql+psycopg://af:${ASSETFERRY_UNSET_PG_PASSWORD}@127.0.0.1:9/af")
    report = tmp_path / "report.json"
    args = ("migrate", "-c", str(job), "--temporal", temporal_server.address,
            "--task-queue", "nobody-polls")
    env = {k: v for k, v in client_env().items() if k != "ASSETFERRY_UNSET_PG_PASSWORD"}
    first = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args, "--report",
                              str(report)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert first.stderr is not None
        warned = first.stderr.readline()
        assert "warning: no worker polls task queue nobody-polls" in warned, \
            warned + first.stderr.read()
        started = first.stderr.readline()
        assert "started workflow assetferry-" in started, started + first.stderr.read()
        wid = started.split("started workflow ")[1].split()[0]
        second = cli(*args, env=env)
        assert second.returncode == 2, second.stderr
        assert f"already running on Temporal: wait for it to end, or stop it; it runs on " \
               f"Temporal as workflow {wid}" in second.stderr
        assert f"temporal workflow terminate --workflow-id {wid} --address " \
               f"{temporal_server.address}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 143, err
    assert f"no worker had started workflow {wid} yet" in err
    assert "it was ended (terminated)" in err
    body = json.loads(report.read_text(encoding="utf-8"))
    assert body["interrupted"] == "SIGTERM"
    assert body["temporal"]["workflow_id"] == wid
    assert body["temporal"]["client"] == "ended"

    async def ended() -> str:
        from temporalio.client import Client

        client = await Client.connect(temporal_server.address)
        status = (await client.get_workflow_handle(wid).describe()).status
        return status.name if status is not None else "?"

    assert asyncio.run(ended()) == "TERMINATED"


@pytest.mark.parametrize(("address", "says"), [
    ("not-an-address", "is not HOST:PORT"),
    ("127.0.0.1:1", "cannot reach a Temporal server at 127.0.0.1:1 (Connection refused)"),
])
def test_a_bad_or_unreachable_server_exits_2(tmp_path: Path, address: str, says: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    write_library(tmp_path / "library")
    job = write_job(tmp_path, ContentstackDemo(EmulatorSettings()).job_section(
        "http://127.0.0.1:9"))
    for args in (["migrate", "-c", str(job), "--temporal", address],
                 ["worker", "--temporal", address]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert says in err
        assert "Traceback" not in err


def test_without_the_sdk_temporal_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    write_library(tmp_path / "library")
    job = write_job(tmp_path, ContentstackDemo(EmulatorSettings()).job_section(
        "http://127.0.0.1:9"))
    monkeypatch.setitem(sys.modules, "temporalio", None)  # import temporalio: ImportError
    for args in (["migrate", "-c", str(job), "--temporal", "127.0.0.1:7233"],
                 ["worker", "--temporal", "127.0.0.1:7233"]):
        assert main(args) == 2
        assert "pip install 'assetferry[temporal]'" in capsys.readouterr().err
