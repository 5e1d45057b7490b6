"""Kill the migrate process with SIGKILL at several points, re-run: every asset exactly once.

The emulator runs in its own process (``assetferry emulate``) so it outlives each killed run;
the check reads the target back through the API over a real socket.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.pipeline.helpers import CS_KEY, EMU_TOKEN, cs_job_file, library, run_migrate, sha

pytestmark = pytest.mark.slow


def target_inventory(url: str) -> list[tuple[str, str, str]]:
    headers = {"api_key": CS_KEY, "authorization": EMU_TOKEN}
    records: list[dict[str, object]] = []
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for query in ({"query": json.dumps({"is_dir": True})}, {}):
            skip = 0
            while True:
                page = client.get("/v3/assets", params={**query, "skip": skip, "limit": 100,
                                                       "include_count": "true"}).json()
                records.extend(page["assets"])
                skip += len(page["assets"])
                if skip >= page["count"] or not page["assets"]:
                    break
        folders = {str(r["uid"]): r for r in records if r.get("is_dir")}

        def path(uid: object) -> str:
            if not uid:
                return ""
            rec = folders[str(uid)]
            return f"{path(rec.get('parent_uid'))}/{rec['name']}"

        inv = []
        for rec in records:
            if rec.get("is_dir"):
                continue
            data = httpx.get(str(rec["url"]), timeout=10).content
            inv.append((path(rec.get("parent_uid")), str(rec["filename"]), sha(data)))
    return sorted(inv)


@pytest.mark.parametrize(
    "crash_points",
    [
        ("folder.created:3",),                       # during folder creation
        ("upload.before:4", "upload.after:9"),       # mid upload: before and after the POST
        # between uploads, repeatedly; and right after a group commit of intents, before
        # any of those uploads started (issue 12: intents ahead of their uploads)
        ("upload.after:2", "intents.committed:3", "asset.done:7", "asset.done:15"),
    ],
)
def test_killed_runs_resume_to_exactly_once(tmp_path: Path, emulator: str,
                                            crash_points: tuple[str, ...]) -> None:
    root, files = library(tmp_path)
    job = cs_job_file(tmp_path, root, emulator, rate=500)
    for point in crash_points:
        killed = run_migrate(job, {"CS_TOKEN": EMU_TOKEN}, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
    final = run_migrate(job, {"CS_TOKEN": EMU_TOKEN})
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]

    inventory = target_inventory(emulator)
    names = [name for _, name, _ in inventory]
    assert len(names) == len(files), "no duplicate, no missing asset"
    expected = sorted(hashlib.sha256(f.data).hexdigest() for f in files)
    assert sorted(digest for _, _, digest in inventory) == expected, "bytes identical"


@pytest.mark.parametrize(("signum", "code", "report_name"), [
    (signal.SIGINT, 130, "run.json"), (signal.SIGTERM, 143, "run.html")])
def test_ctrl_c_exits_130_saves_state_writes_the_report_and_resumes(
        tmp_path: Path, emulator: str, signum: int, code: int, report_name: str) -> None:
    """Ctrl-C (SIGINT, 130) or SIGTERM (143): the state, the summary and the --report file
    (JSON or HTML) are all written, saying the run was interrupted and how to resume."""
    root, files = library(tmp_path)
    # slow enough to interrupt half way even on a loaded machine (64 assets at 1 request/s
    # take a minute; at 3/s a starved poll loop once saw the run finish before Ctrl-C, and
    # the interrupt comes after the first asset, so the slow rate costs no test time)
    job = cs_job_file(tmp_path, root, emulator, rate=1, concurrency=1)
    env = {**os.environ, "CS_TOKEN": EMU_TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "migrate", "-c", str(job), "--report",
         str(tmp_path / report_name)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # interrupt once the run is under way (a fixed sleep raced the start on a loaded machine)
    deadline = time.monotonic() + 60
    while not target_inventory(emulator) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    name = signal.Signals(signum).name
    assert f"interrupted ({name}): state saved; run the same command again to resume" in out
    report = (tmp_path / report_name).read_text(encoding="utf-8")
    if report_name.endswith(".json"):
        data = json.loads(report)
        assert (data["exit_code"], data["interrupted"]) == (code, name)
        assert data["counts"]["created"] > 0
    else:
        assert f"interrupted ({name}): state saved" in report
        assert f'data-key="exit_code" data-value="{code}"' in report
    status = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "status", "-c", str(job), "--format", "json"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    runs = json.loads(status.stdout)["runs"]
    assert runs[0]["status"] == "interrupted"
    done_before = json.loads(status.stdout)["counts"]["done"]
    assert 0 < done_before < len(files)
    last = json.loads(status.stdout)["last_run"]
    assert last["planned"] == len(files)
    assert last["pending"] > 0, "what the interrupted run did not reach is pending"
    assert last["done"] + last["begun_or_about_to_begin"] + last["pending"] == len(files)
    # the run's own figures (not all zero); an outcome still in a stream buffer at Ctrl-C is
    # in the ledger (status counts it above) but not in the run's summary
    assert 0 < runs[0]["counts"]["created"] <= done_before

    if signum != signal.SIGINT:
        return  # the resume is the same after either signal: shown once (test time)
    # the resume at full speed: the rate is not part of the job's route, so the state carries
    job = cs_job_file(tmp_path, root, emulator, rate=500)
    final = run_migrate(job, {"CS_TOKEN": EMU_TOKEN})
    assert final.returncode == 0, final.stderr[-2000:]
    assert len(target_inventory(emulator)) == len(files)
