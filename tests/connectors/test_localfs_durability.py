"""The local target's durability: what is fsynced before an upload returns, and in what order.

A file's bytes are fsynced before its name appears (link), its folder after, and the manifest's
journal last; uploads running together share one folder fsync and one journal fsync (group
commit), and none of them returns before its own folder and journal line are on disk.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import anyio
import pytest

from connectors import localfs
from connectors.base import AssetMeta, UploadRequest
from connectors.errors import ItemError
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.localfs.manifest import Entry, Manifest, journal_path
from tests.connectors.staging import MemoryJournal, stage_bytes

Event = tuple[str, int]
"""("fsync", inode) or ("link", inode of the file linked) or ("return", inode)."""


def request(filename: str, folder_id: str | None) -> UploadRequest:
    return UploadRequest(source_id=f"src/{filename}", filename=filename, folder_id=folder_id,
                         folder_path=tuple(folder_id.split("/")) if folder_id else (),
                         content_type="text/plain", meta=AssetMeta(title=filename))


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """Every fsync (by inode) and hard link (by the inode linked), in order."""
    seen: list[Event] = []
    lock = threading.Lock()
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            seen.append(("fsync", os.fstat(fd).st_ino))

    def link(src: str | Path, dst: str | Path, **kw: object) -> None:
        real_link(src, dst, **kw)  # type: ignore[arg-type]
        with lock:
            seen.append(("link", os.stat(dst).st_ino))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    return seen


def first(events: list[Event], event: Event, after: int = -1) -> int:
    """Index of the first ``event`` after index ``after``; fails the test when missing."""
    for i in range(after + 1, len(events)):
        if events[i] == event:
            return i
    raise AssertionError(f"{event} not found after #{after} in {events}")


def target_at(root: Path) -> LocalFolderConnector:
    """A local folder target at ``root``."""
    return LocalFolderConnector(LocalConfig(connector="local", path=root), role="target")


async def test_an_upload_returns_once_file_folder_and_journal_are_synced_in_that_order(
    tmp_path: Path, events: list[Event]
) -> None:
    root = tmp_path / "root"
    target = target_at(root)
    await target.create_folder(None, "dst")
    for name, folder in (("a.txt", "dst"), ("top.txt", None)):
        ref = await target.upload(request(name, folder),
                                  stage_bytes(tmp_path, name.encode(), "text/plain"),
                                  MemoryJournal())
        events.append(("return", (root / ref.target_id).stat().st_ino))
        path = root / ref.target_id
        file_ino = path.stat().st_ino
        synced = first(events, ("fsync", file_ino))
        linked = first(events, ("link", file_ino))
        folder_synced = first(events, ("fsync", path.parent.stat().st_ino), after=linked)
        journal_synced = first(events, ("fsync", journal_path(root / ".assetferry.json")
                                        .stat().st_ino), after=folder_synced)
        returned = first(events, ("return", file_ino))
        assert synced < linked < folder_synced < journal_synced < returned, events
    await target.aclose()


async def test_an_identical_file_found_in_place_gets_its_folder_synced(
    tmp_path: Path, events: list[Event]
) -> None:
    """A killed run may have linked the file without syncing its folder: the upload that
    takes it as ours makes its name durable before it returns."""
    root = tmp_path / "root"
    (root / "dst").mkdir(parents=True)
    (root / "dst" / "a.txt").write_bytes(b"same")
    target = target_at(root)
    await target.upload(request("a.txt", "dst"), stage_bytes(tmp_path, b"same", "text/plain"),
                        MemoryJournal())
    first(events, ("fsync", (root / "dst").stat().st_ino))
    await target.aclose()


async def test_replace_syncs_the_folder_of_its_rename_before_returning(
    tmp_path: Path, events: list[Event]
) -> None:
    root = tmp_path / "root"
    target = target_at(root)
    await target.create_folder(None, "dst")
    ref = await target.upload(request("a.txt", "dst"), stage_bytes(tmp_path, b"1", "text/plain"),
                              MemoryJournal())
    events.clear()
    await target.replace(ref.target_id, request("a.txt", "dst"),
                         stage_bytes(tmp_path, b"22", "text/plain"), MemoryJournal())
    file_ino = (root / "dst" / "a.txt").stat().st_ino
    synced = first(events, ("fsync", file_ino))
    folder_synced = first(events, ("fsync", (root / "dst").stat().st_ino), after=synced)
    first(events, ("fsync", journal_path(root / ".assetferry.json").stat().st_ino),
          after=folder_synced)
    await target.aclose()


async def test_uploads_running_together_share_one_folder_and_one_journal_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first upload's journal append is held until four more have written their files:
    the next append carries all four, with one fsync of their folder (was one each)."""
    root = tmp_path / "root"
    target = target_at(root)
    await target.create_folder(None, "dst")
    manifest: Manifest = target._manifest
    release = threading.Event()
    appends: list[int] = []
    folder_syncs: list[Path] = []
    real_append, real_sync = Manifest._append, localfs.files.fsync_dir

    def held_append(self: Manifest, lines: list[bytes], folders: object = ()) -> None:
        if not appends:
            release.wait(30)
        appends.append(len(lines))
        real_append(self, lines, folders)  # type: ignore[arg-type]

    def counted_sync(path: Path) -> None:
        folder_syncs.append(path)
        real_sync(path)

    monkeypatch.setattr(Manifest, "_append", held_append)
    monkeypatch.setattr(localfs.manifest, "fsync_dir", counted_sync)

    async def upload(i: int) -> None:
        await target.upload(request(f"f{i}.txt", "dst"),
                            stage_bytes(tmp_path, b"%d" % i, "text/plain"), MemoryJournal())

    async with anyio.create_task_group() as tg:
        tg.start_soon(upload, 0)
        with anyio.fail_after(30):
            while not manifest._flushing:
                await anyio.sleep(0.01)
        for i in range(1, 5):
            tg.start_soon(upload, i)
        with anyio.fail_after(30):
            while len(manifest._pending) < 4:
                await anyio.sleep(0.01)
        release.set()
    assert appends == [1, 4]
    assert [p for p in folder_syncs if p.name == "dst"] == [root / "dst"] * 2
    await target.aclose()
    assert sorted(p.name for p in (root / "dst").iterdir()) == [f"f{i}.txt" for i in range(5)]


async def test_when_a_group_append_fails_every_change_it_carried_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The three changes queued behind a held append go out together and that append fails:
    each of the three writers gets the error (before, the one that appended raised and the
    two others returned as if their change were on disk)."""
    manifest = Manifest(tmp_path / "m.json")
    await manifest.entries()
    release = threading.Event()
    calls: list[int] = []
    real_append = Manifest._append

    def flaky_append(self: Manifest, lines: list[bytes], folders: object = ()) -> None:
        calls.append(len(lines))
        if len(calls) == 1:
            release.wait(30)
            real_append(self, lines, folders)  # type: ignore[arg-type]
            return
        raise ItemError("writing the metadata manifest journal failed: I/O error")

    monkeypatch.setattr(Manifest, "_append", flaky_append)
    outcome: dict[str, str] = {}

    async def put(key: str) -> None:
        try:
            await manifest.put(key, Entry(title=key))
        except ItemError as exc:
            outcome[key] = str(exc)
        else:
            outcome[key] = "on disk"

    async with anyio.create_task_group() as tg:
        tg.start_soon(put, "first")
        with anyio.fail_after(30):
            while not manifest._flushing:
                await anyio.sleep(0.01)
        for key in ("a", "b", "c"):
            tg.start_soon(put, key)
        with anyio.fail_after(30):
            while len(manifest._pending) < 3:
                await anyio.sleep(0.01)
        release.set()
    assert calls == [1, 3]
    error = "writing the metadata manifest journal failed: I/O error"
    assert outcome == {"first": "on disk", **dict.fromkeys("abc", error)}
