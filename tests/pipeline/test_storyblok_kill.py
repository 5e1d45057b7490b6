"""Kill the migrate process at each step of Storyblok's three-step upload, then resume.

sign -> storage POST -> finish_upload -> metadata PUT; the journal records each step, and a
kill right after any of them must leave exactly one visible asset per source asset.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.pipeline.helpers import library, run_migrate, sha

pytestmark = pytest.mark.slow

SPACE = 288868932106293
TOKEN = "sb-emulator-token"  # what `assetferry emulate storyblok` accepts


def visible_assets(url: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    with httpx.Client(base_url=f"{url}/v1/spaces/{SPACE}/",
                      headers={"Authorization": TOKEN}, timeout=10) as client:
        page = 1
        while True:
            resp = client.get("assets/", params={"page": page, "per_page": 100})
            resp.raise_for_status()
            assets = resp.json()["assets"]
            out.extend((a["short_filename"], sha(httpx.get(a["filename"]).content))
                       for a in assets)
            if page * 100 >= int(resp.headers["total"]):
                break
            page += 1
    return sorted(out)


@pytest.mark.parametrize("crash_points", [
    ("journal.signed:3",),
    ("journal.stored:3",),
    ("journal.finished:3",),
    ("journal.signed:2", "journal.stored:5", "journal.finished:4", "upload.after:6"),
])
def test_killed_between_upload_steps_resumes_to_exactly_one_asset(
    tmp_path: Path, sb_emulator: str, crash_points: tuple[str, ...]
) -> None:
    root, files = library(tmp_path)
    files = files[:20]
    for extra in sorted(root.rglob("*"), reverse=True):
        rel = extra.relative_to(root)
        if extra.is_file() and not extra.name.startswith(".") and all(
                rel != Path(*f.folder, f.name) for f in files):
            extra.unlink()
    job = tmp_path / "job.toml"
    job.write_text(
        f'[source]\nconnector = "local"\npath = "{root}"\n\n'
        f'[target]\nconnector = "storyblok"\nspace_id = {SPACE}\ntoken = "${{SB_TOKEN}}"\n'
        f'base_url = "{sb_emulator}"\nrequests_per_second = 500\n\n'
        f'[run]\nstate = "{tmp_path / "state.db"}"\nconcurrency = 3\n',
        encoding="utf-8",
    )
    for point in crash_points:
        killed = run_migrate(job, {"SB_TOKEN": TOKEN}, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
    final = run_migrate(job, {"SB_TOKEN": TOKEN})
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]
    assert visible_assets(sb_emulator) == sorted((f.name, sha(f.data)) for f in files)
