"""A healthy SQLite state DB on a read-only file system (the README tester's finding 2):
``status``, ``plan``, ``export-map`` and ``verify`` only read it, so they must work there;
``migrate`` must say the state folder is read-only (what to do), never "damaged" / "move it
aside", which throws away a good ledger.

SQLite needs to create the ``-shm`` file beside a WAL database to read it, which a read-only
folder refuses ("unable to open database file"). Two ways to get there: a real read-only bind
mount in a user namespace (``unshare -rm``: root passes every permission-bit test, so a
chmod cannot do it in CI), and, in-process, a ``-shm`` SQLite cannot create (a dangling link
into ``/proc``) with the folder reported read-only (`state.paths.folder_read_only`).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from state.records import StateError
from tests.pipeline.helpers import local_job

READERS = (["status"], ["plan"], ["export-map"], ["verify"])
DAMAGED = ("damaged", "move it aside")


def _migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    job = local_job(tmp_path)
    job.write_text(job.read_text().replace('state = "s.db"', 'state = "st/s.db"'))
    assert main(["migrate", "-c", str(job)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    assert not (tmp_path / "st" / "s.db-shm").exists(), "a closed store removes its -shm"
    return job


def _shm_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only folder does to SQLite, simulated: the ``-shm`` cannot be created,
    and the folder is reported read-only."""
    (tmp_path / "st" / "s.db-shm").symlink_to("/proc/self/no-such-folder/shm")
    monkeypatch.setattr("state.paths.folder_read_only", lambda path: True, raising=False)


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_reading_commands_read_a_state_db_whose_shm_cannot_be_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        command: list[str]) -> None:
    job = _migrated(tmp_path, capsys)
    _shm_cannot_be_created(tmp_path, monkeypatch)
    code = main([*command, "-c", str(job)])
    out = capsys.readouterr()
    assert code == 0, out
    assert not any(word in out.out + out.err for word in DAMAGED), out
    if command == ["export-map"]:
        assert "y.bin" in out.out, "the mapping is read"
        assert "A/x.bin" in out.out, "the mapping is read"
    if command == ["status"]:
        assert "2 done" in out.out, out.out


def test_migrate_says_the_state_folder_is_read_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    job = _migrated(tmp_path, capsys)
    _shm_cannot_be_created(tmp_path, monkeypatch)
    assert main(["migrate", "-c", str(job)]) == 2
    out = capsys.readouterr().out
    assert "is read-only" in out, out
    assert "make the folder writable" in out, out
    assert "point [run] state" in out, out
    assert not any(word in out for word in DAMAGED), out


def test_an_unmerged_wal_on_a_read_only_folder_is_not_read_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``immutable=1`` skips the ``-wal`` file: with writes in it and no ``-shm`` (a stopped
    run) the reader refuses with what to do rather than read an older ledger."""
    from state.paths import read_only_state, sqlite_read_uri  # new here: the rest runs on old code

    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    (tmp_path / "s.db-wal").write_bytes(b"\0" * 32)
    monkeypatch.setattr("state.paths.folder_read_only", lambda path: True)
    with pytest.raises(StateError, match="Make the folder writable once") as err:
        sqlite_read_uri(path)
    assert not any(word in str(err.value) for word in DAMAGED)
    (tmp_path / "s.db-wal").unlink()
    assert sqlite_read_uri(path).endswith("?mode=ro&immutable=1")
    monkeypatch.setattr("state.paths.folder_read_only", lambda path: False)
    assert sqlite_read_uri(path).endswith("?mode=ro")
    assert read_only_state(path, "unable to open database file") is None, "writable: no"


def _bind_read_only_works(folder: Path) -> bool:
    """Whether ``unshare -rm`` can bind-mount ``folder`` read-only here (user namespaces)."""
    unshare = shutil.which("unshare")
    if sys.platform != "linux" or unshare is None:
        return False
    probe = subprocess.run([unshare, "-rm", "sh", "-c",
                            f"mount --bind -o ro {folder} {folder}"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.slow
def test_a_read_only_mount_of_the_state_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The tester's set-up: the state folder remounted read-only after a run."""
    job = _migrated(tmp_path, capsys)
    folder = tmp_path / "st"
    if not _bind_read_only_works(folder):
        pytest.skip("needs unshare -rm and mount (user namespaces) for a real read-only "
                    "bind mount; the in-process tests above simulate it")
    cli = f"{sys.executable} -c 'import sys; from pipeline.cli import main; sys.exit(main())'"
    script = f"mount --bind -o ro {folder} {folder} && " + " && ".join(
        f"{{ {cli} {c[0]} -c {job}; echo rc=$?; }}"
        for c in [*READERS, ["migrate"]])
    done = subprocess.run([str(shutil.which("unshare")), "-rm", "sh", "-c", script],
                          capture_output=True, text=True, check=False,
                          cwd=Path(__file__).parents[2], timeout=120)
    out = done.stdout + done.stderr
    assert out.count("rc=0") == len(READERS), out
    assert out.count("rc=2") == 1, out
    assert "file://" in out, "export-map read the mapping"
    assert "y.bin" in out, out
    assert f"its folder {folder} is read-only" in out, out
    assert not any(word in out for word in DAMAGED), out
