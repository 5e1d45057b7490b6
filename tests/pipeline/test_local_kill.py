"""local -> local: SIGKILL the migrate at several points, re-run: every file once, identical.

The local target groups its folder and manifest-journal fsyncs across concurrent uploads
(issue 12); an upload still returns only once its file, its name and its manifest entry are
on disk, so a kill right after it loses nothing and the resume writes nothing twice.
"""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest

from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.localfs.manifest import Manifest
from tests.pipeline.helpers import job_toml, library, local_inventory, run_migrate, sha

pytestmark = pytest.mark.slow


def test_killed_local_runs_resume_to_every_file_once(tmp_path: Path) -> None:
    # before a write, right after one (file and manifest entry durable, done not yet
    # recorded), and after its done was posted: each kill ends a run, the next resumes
    crash_points = ("upload.before:5", "upload.after:3", "asset.done:9")
    root, files = library(tmp_path)
    dest = tmp_path / "dest"
    job = job_toml(tmp_path, f'connector = "local"\npath = "{root}"\n',
                   f'connector = "local"\npath = "{dest}"\n', run="concurrency = 4\n")
    inodes: dict[Path, int] = {}
    for point in crash_points:
        killed = run_migrate(job, {}, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        # a file written before a kill is never written again (no rename or copy over it)
        for path in dest.rglob("*"):
            if path.is_file() and not path.name.startswith(".assetferry"):
                assert inodes.setdefault(path, path.stat().st_ino) == path.stat().st_ino, path
    final = run_migrate(job, {})
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]

    assert local_inventory(dest) == sorted((f.folder, f.name, sha(f.data)) for f in files), \
        "each file once, bytes identical"
    for path, ino in inodes.items():
        assert path.stat().st_ino == ino, f"{path} was written again"
    # a kill mid-write may leave a hidden temp file of another upload: the folder, listed as
    # the next job's source, holds exactly the files, no temp file
    async def listed() -> list[str]:
        conn = LocalFolderConnector(LocalConfig(connector="local", path=dest))
        return sorted([a.source_id async for a in conn.iter_assets() if a.skipped is None])

    assert anyio.run(listed) == sorted("/".join((*f.folder, f.name)) for f in files)
    entries = anyio.run(Manifest(dest / ".assetferry.json").entries)
    assert {key: e.title for key, e in entries.items()} == {
        "/".join((*f.folder, f.name)): f.title for f in files
    }, "every file's metadata in the manifest, none lost to a kill"
    # a kill between a file's link and its journal line leaves the file without an entry:
    # the resume adopts it and writes its whole entry, provenance included
    assert all(e.source_id == key for key, e in entries.items())
