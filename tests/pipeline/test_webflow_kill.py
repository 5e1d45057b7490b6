"""Kill the migrate process between Webflow's two upload steps (and elsewhere), then resume.

create asset (step 1, journaled ``created``) -> storage POST (step 2, journaled ``stored``) ->
metadata PATCH. A kill right after either note, or at random points of the upload, must leave
exactly one visible asset per source asset, with its bytes and alt text.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.webflow.demo import SITE_ID, TOKEN
from tests.pipeline.conftest import emulator_process
from tests.pipeline.helpers import library, run_migrate, sha

pytestmark = pytest.mark.slow


@pytest.fixture
def wf_emulator() -> Iterator[str]:
    with emulator_process("webflow", rate_limit=600_000) as url:
        yield url


def visible_assets(url: str) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    with httpx.Client(base_url=f"{url}/v2/", headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=10) as client:
        offset = 0
        while True:
            resp = client.get(f"sites/{SITE_ID}/assets", params={"offset": offset, "limit": 100})
            resp.raise_for_status()
            body = resp.json()
            out.extend((a["originalFileName"], sha(httpx.get(a["hostedUrl"]).content),
                        a["altText"]) for a in body["assets"])
            offset += len(body["assets"])
            if offset >= body["pagination"]["total"] or not body["assets"]:
                break
    return sorted(out)


@pytest.mark.parametrize("crash_points", [
    ("journal.created:3",),
    ("journal.stored:3",),
    ("journal.created:2", "journal.stored:4", "upload.after:3", "journal.created:5"),
])
def test_killed_between_upload_steps_resumes_to_exactly_one_asset(
    tmp_path: Path, wf_emulator: str, crash_points: tuple[str, ...]
) -> None:
    root, files = library(tmp_path)
    files = files[:16]
    for extra in sorted(root.rglob("*"), reverse=True):
        rel = extra.relative_to(root)
        if extra.is_file() and not extra.name.startswith(".") and all(
                rel != Path(*f.folder, f.name) for f in files):
            extra.unlink()
    job = tmp_path / "job.toml"
    job.write_text(
        f'[source]\nconnector = "local"\npath = "{root}"\n\n'
        f'[target]\nconnector = "webflow"\nsite_id = "{SITE_ID}"\ntoken = "${{WF_TOKEN}}"\n'
        f'base_url = "{wf_emulator}"\nrate_limit_per_minute = 60000\n\n'
        f'[run]\nstate = "{tmp_path / "state.db"}"\nconcurrency = 3\n',
        encoding="utf-8",
    )
    for point in crash_points:
        killed = run_migrate(job, {"WF_TOKEN": TOKEN}, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
    final = run_migrate(job, {"WF_TOKEN": TOKEN})
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]
    assert visible_assets(wf_emulator) == sorted((f.name, sha(f.data), f.alt) for f in files)
