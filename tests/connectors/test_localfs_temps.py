"""A local target's leftovers and its error advice.

A killed run leaves partial temp files (``.assetferry-tmp-...``, up to a whole file) that
listings skip: the next migrate/sync removes those no live writer can own and logs the bytes
reclaimed; ``plan`` (a dry run) removes nothing. A file-system error's advice matches its
errno, and ``plan`` refuses a target folder it cannot write (exit 2).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import structlog.testing

from connectors.errors import ConfigError, FatalError, ItemError
from connectors.localfs import TMP_PREFIX, LocalConfig, LocalFolderConnector
from connectors.localfs.files import HOST_TAG, STALE_TEMP_AFTER, os_error, temp_name


def target_at(root: Path) -> LocalFolderConnector:
    return LocalFolderConnector(LocalConfig(connector="local", path=root), role="target")


def dead_pid() -> int:
    """The pid of a process that has ended (reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def temp(folder: Path, name: str, size: int, *, age: float = 0.0) -> Path:
    path = folder / f"{TMP_PREFIX}{name}"
    path.write_bytes(b"x" * size)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


async def test_a_run_reclaims_only_temp_files_no_live_writer_owns(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "kept.txt").write_text("a file of the target")
    dead = temp(root / "sub", f"{HOST_TAG}-{dead_pid()}-{'0' * 16}", 4000)
    live = temp(root, f"{HOST_TAG}-{os.getpid()}-{'1' * 16}", 10)  # this process writes it
    init = temp(root, f"{HOST_TAG}-1-{'2' * 16}", 10)  # pid 1 runs
    other_host = temp(root, f"0badc0de-{dead_pid()}-{'3' * 16}", 10)  # a run elsewhere
    old_name_fresh = temp(root, "4" * 16, 10)  # an older version's name: no pid
    old_name_stale = temp(root, "5" * 16, 300, age=STALE_TEMP_AFTER + 60)
    target = target_at(root)
    assert [a.source_id async for a in target.iter_assets()] == ["sub/kept.txt"]
    with structlog.testing.capture_logs() as logs:
        assert await target.reclaim_temp_files() == (2, 4300)
    assert not dead.exists()
    assert not old_name_stale.exists()
    assert all(p.exists() for p in (live, init, other_host, old_name_fresh))
    assert (root / "sub" / "kept.txt").exists()
    assert {"event": "local.temp_reclaimed", "files": 2, "bytes": 4300,
            "log_level": "info"} in logs
    await target.aclose()


async def test_a_users_file_with_the_reserved_prefix_is_never_reclaimed(tmp_path: Path) -> None:
    """Only names of our exact format are ours: a user's ``.assetferry-tmp-notes.txt`` (or a
    name one character off ours) older than the hour stays; a local source lists it as an
    excluded entry that says why, not silently."""
    root = tmp_path / "out"
    root.mkdir()
    stale = STALE_TEMP_AFTER + 60
    users = [temp(root, "notes.txt", 7, age=stale),
             temp(root, "5" * 15, 7, age=stale),  # 15 hex digits: not ours
             temp(root, f"{HOST_TAG}-{dead_pid()}-{'6' * 16}.bak", 7, age=stale)]
    ours = temp(root, "5" * 16, 300, age=stale)
    target = target_at(root)
    assert all([a.skipped async for a in target.iter_assets()])
    assert await target.reclaim_temp_files() == (1, 300)
    assert not ours.exists()
    assert all(p.exists() for p in users), "a user's file is never deleted"
    await target.aclose()

    source = LocalFolderConnector(LocalConfig(connector="local", path=root), role="source")
    listed = [a async for a in source.iter_assets()]
    assert sorted(a.filename for a in listed) == sorted(p.name for p in users)
    assert all(a.skipped is not None and "reserved for assetferry's temp files" in a.skipped
               for a in listed), [a.skipped for a in listed]
    await source.aclose()


def test_temp_names_carry_this_host_and_pid() -> None:
    name = temp_name()
    assert name.startswith(f"{TMP_PREFIX}{HOST_TAG}-{os.getpid()}-")


def job_file(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.txt").write_text("a")
    config = tmp_path / "job.toml"
    config.write_text(f'[source]\nconnector = "local"\npath = "{tmp_path / "lib"}"\n\n'
                      f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n\n'
                      f'[run]\nstate = "{tmp_path / "s.db"}"\n', encoding="utf-8")
    return config


async def test_migrate_reclaims_a_killed_runs_temp_file_and_plan_does_not(
        tmp_path: Path) -> None:
    from pipeline.config import load_job
    from pipeline.run import execute_job, plan_job

    job = load_job(job_file(tmp_path), env={})
    (tmp_path / "out").mkdir()
    left = temp(tmp_path / "out", f"{HOST_TAG}-{dead_pid()}-{'6' * 16}", 1000)
    await plan_job(job)
    assert left.exists(), "a dry run removes nothing"
    with structlog.testing.capture_logs() as logs:
        summary = await execute_job(job, "migrate")
    assert summary.fatal is None
    assert not left.exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
    assert any(e["event"] == "local.temp_reclaimed" and e["bytes"] == 1000 for e in logs)


@pytest.mark.parametrize(("code", "fatal", "advice"), [
    (errno.EROFS, True, "read-only file system: mount it writable or choose another `path`"),
    (errno.EACCES, False, "fix the folder's permissions"),
    (errno.ENOSPC, True, "free space on that disk"),
])
def test_the_advice_matches_the_errno(code: int, fatal: bool, advice: str) -> None:
    error = os_error(OSError(code, os.strerror(code)), "creating folder Folder")
    assert isinstance(error, FatalError if fatal else ItemError)
    assert advice in str(error)
    if code != errno.ENOSPC:
        assert "free space" not in str(error)


def test_plan_refuses_a_read_only_target_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Simulated (tests may run as root, whom permissions don't stop): the probe folder in
    the target meets EROFS, as on a read-only mount."""
    from pipeline.cli import main

    config = job_file(tmp_path)
    real = tempfile.mkdtemp

    def read_only(*args: object, **kw: object) -> str:
        if str(kw.get("dir", "")).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, **kw)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    assert main(["plan", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Read-only file system" in err
    assert "mount it writable or choose another `path`" in err
    assert "Traceback" not in err


async def test_a_writable_target_passes_the_check_and_keeps_no_probe(tmp_path: Path) -> None:
    root = tmp_path / "out" / "not made yet"
    target = target_at(root)
    await target.check_writable()
    assert list(tmp_path.iterdir()) == []
    root.parent.mkdir()
    (root.parent).chmod(0o500)
    if os.geteuid() != 0:  # root writes anyway
        with pytest.raises(ConfigError, match="fix the folder's permissions"):
            await target.check_writable()
    root.parent.chmod(0o700)
