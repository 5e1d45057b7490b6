"""The local manifest's change journal: appended per change, folded in now and then, and
never losing a change that returned, whatever moment a run is killed at."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from connectors.base import AssetMeta
from connectors.errors import ConfigError
from connectors.localfs import LocalConfig, LocalFolderConnector, manifest
from connectors.localfs.manifest import Entry, Manifest, journal_path
from tests.connectors.staging import MemoryJournal, stage_bytes
from tests.connectors.test_localfs import assets_of, request

ROOT = Path(__file__).resolve().parents[2]


def titles(entries: Mapping[str, Entry]) -> dict[str, str | None]:
    return {key: entry.title for key, entry in sorted(entries.items())}


async def test_changes_go_to_the_journal_and_the_manifest_is_rewritten_on_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".assetferry.json"
    path.write_text('{"version": 1, "assets": {"old.txt": {"title": "old"}}}\n', "utf-8")
    before = path.read_bytes()
    m = Manifest(path)
    for i in range(5):
        await m.put(f"f{i}.txt", Entry(title=f"t{i}"))
    await m.remove("old.txt")
    assert path.read_bytes() == before  # not rewritten per change
    lines = journal_path(path).read_text("utf-8").splitlines()
    assert len(lines) == 6
    assert titles(await Manifest(path).entries()) == {f"f{i}.txt": f"t{i}" for i in range(5)}
    await m.close()
    assert not journal_path(path).exists()
    doc = json.loads(path.read_text("utf-8"))
    assert doc == {"version": 1, "assets": {f"f{i}.txt": {"title": f"t{i}"} for i in range(5)}}


async def test_the_journal_is_folded_in_when_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest, "COMPACT_AFTER", 4)
    path = tmp_path / "m.json"
    m = Manifest(path)
    for i in range(9):
        await m.put(f"f{i % 2}.txt", Entry(title=str(i)))
    # rewritten at the 4th and 8th change: the journal holds only the 9th
    assert len(journal_path(path).read_text("utf-8").splitlines()) == 1
    assert json.loads(path.read_text("utf-8"))["assets"] == {
        "f0.txt": {"title": "6"}, "f1.txt": {"title": "7"}}
    assert titles(await Manifest(path).entries()) == {"f0.txt": "8", "f1.txt": "7"}
    # new keys only: each rewrite waits for as many changes as the file had entries
    sizes: list[int] = []
    for i in range(9, 60):
        await m.put(f"f{i}.txt", Entry(title=str(i)))
        written = len(json.loads(path.read_text("utf-8"))["assets"])
        if not sizes or sizes[-1] != written:
            sizes.append(written)
    assert sizes == [2, 5, 10, 20, 40]


async def test_a_torn_last_line_is_dropped_and_cut_before_the_next_append(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.json"
    m = Manifest(path)
    await m.put("a.txt", Entry(title="a"))
    with journal_path(path).open("ab") as out:  # a kill in the middle of an append
        out.write(b'{"put": "b.txt", "entry": {"tit')
    again = Manifest(path)
    assert titles(await again.entries()) == {"a.txt": "a"}
    await again.put("c.txt", Entry(title="c"))
    assert titles(await Manifest(path).entries()) == {"a.txt": "a", "c.txt": "c"}
    for line in journal_path(path).read_text("utf-8").splitlines():
        json.loads(line)  # every line whole again


async def test_a_kill_between_rewrite_and_journal_removal_replays_harmlessly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.json"
    m = Manifest(path)
    await m.put("a.txt", Entry(title="a"))
    await m.put("b.txt", Entry(title="b"))
    await m.remove("a.txt")
    journal = journal_path(path).read_bytes()
    await m.close()
    journal_path(path).write_bytes(journal)  # as if killed before the unlink
    assert titles(await Manifest(path).entries()) == {"b.txt": "b"}


async def test_a_damaged_line_inside_the_journal_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    journal_path(path).write_text('{"put": "a.txt", "entry": {}}\nnot json\n'
                                  '{"remove": "a.txt"}\n', "utf-8")
    with pytest.raises(ConfigError, match=r"line 2 is damaged.*move the journal aside"):
        await Manifest(path).entries()


async def test_a_source_never_lists_or_rewrites_the_journal(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"a")
    journal_path(root / ".assetferry.json").write_text(
        '{"put": "a.txt", "entry": {"title": "from the journal"}}\n', "utf-8")
    source = LocalFolderConnector(LocalConfig(connector="local", path=root))
    assets = await assets_of(source)
    await source.aclose()
    assert [(a.filename, a.meta.title) for a in assets] == [("a.txt", "from the journal")]
    assert not (root / ".assetferry.json").exists()  # a source writes nothing
    assert ".assetferry.json.journal" in source.limits.reserved_names


async def test_a_target_upload_is_in_the_journal_until_close(tmp_path: Path) -> None:
    root = tmp_path / "root"
    target = LocalFolderConnector(LocalConfig(connector="local", path=root), role="target")
    await target.upload(request("a.txt", meta=AssetMeta(title="A")),
                        stage_bytes(tmp_path, b"a", "text/plain"), MemoryJournal())
    assert journal_path(root / ".assetferry.json").exists()
    await target.aclose()
    assert not journal_path(root / ".assetferry.json").exists()
    doc = json.loads((root / ".assetferry.json").read_text("utf-8"))
    assert doc["assets"]["a.txt"]["title"] == "A"


CHILD = textwrap.dedent("""
    import anyio, sys
    from pathlib import Path
    from connectors.localfs import manifest
    from connectors.localfs.manifest import Entry, Manifest

    manifest.COMPACT_AFTER = 7  # rewrites happen too, at moments the kill may hit

    async def main() -> None:
        m = Manifest(Path(sys.argv[1]))
        i = 0
        while True:
            await m.put(f"f{i}.txt", Entry(title=str(i)))
            if i % 3 == 2:
                await m.remove(f"f{i - 1}.txt")
            print(i, flush=True)
            i += 1

    anyio.run(main)
""")


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [5, 23, 60])
def test_a_killed_writer_loses_no_change_that_returned(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "m.json"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= kill_after:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    found = titles(anyio.run(Manifest(path).entries))
    for i in range(acked + 1):
        if i == acked and (acked + 1) % 3 == 2:
            continue  # the change in flight may have removed it
        removed = i % 3 == 1 and i + 1 <= acked
        assert (f"f{i}.txt" in found) is not removed, (i, acked)


async def test_entries_holding_only_a_source_id_read_and_write_as_before(tmp_path: Path) -> None:
    """An entry with nothing but its source id is kept as that string (a target of 100,000
    files holds no model object each); it still reads as the same :class:`Entry`, lists with
    no metadata, and is written back unchanged beside full entries."""
    path = tmp_path / ".assetferry.json"
    path.write_text(json.dumps({"version": 1, "assets": {
        "a.txt": {"source_id": "src/a.txt"},
        "b.txt": {"source_id": "src/b.txt", "title": "B", "extra": {"k": "v"}},
        "c.txt": {}}}), "utf-8")
    m = Manifest(path)
    entries = await m.entries()
    assert entries["a.txt"] == Entry(source_id="src/a.txt")
    assert entries["b.txt"] == Entry(source_id="src/b.txt", title="B", extra={"k": "v"})
    assert await m.get("a.txt") == Entry(source_id="src/a.txt")
    assert await m.get("missing") is None
    assert isinstance(m._entries and m._entries["a.txt"], str)  # the compact form
    assert entries.listing("a.txt") == (AssetMeta(), {})
    assert entries.listing("b.txt") == (AssetMeta(title="B"), {"k": "v"})
    assert entries.listing("missing") is None
    await m.put("d.txt", Entry(source_id="src/d.txt"))
    await m.close()
    assert json.loads(path.read_text("utf-8")) == {"version": 1, "assets": {
        "a.txt": {"source_id": "src/a.txt"},
        "b.txt": {"source_id": "src/b.txt", "title": "B", "extra": {"k": "v"}},
        "c.txt": {}, "d.txt": {"source_id": "src/d.txt"}}}


async def test_a_manifest_with_a_bad_entry_names_it_as_before(tmp_path: Path) -> None:
    """The quick read of plain entries leaves every problem to the whole file's check."""
    path = tmp_path / ".assetferry.json"
    path.write_text(json.dumps({"version": 1, "assets": {
        "a.txt": {"source_id": "src/a.txt"}, "b.txt": {"source_id": 7},
        "c.txt": {"colour": "red"}}}), "utf-8")
    with pytest.raises(ConfigError) as err:
        await Manifest(path).entries()
    assert "has 2 problems" in str(err.value)
    assert "asset 'b.txt', key 'source_id': should be a string" in str(err.value)
    assert "asset 'c.txt', key 'colour': unknown key" in str(err.value)


# --- several writers into one folder (runs of two jobs at once) -------------------------------


async def test_two_writers_keep_each_others_journal_lines(tmp_path: Path) -> None:
    """Each writer's append catches up with the other's lines first: none cuts them as a
    torn tail, and its entries in memory hold them."""
    path = tmp_path / "m.json"
    one, two = Manifest(path), Manifest(path)
    await one.entries()
    await two.entries()  # both loaded before either wrote
    await one.put("a.txt", Entry(title="a"))
    await two.put("b.txt", Entry(title="b"))
    await one.put("c.txt", Entry(title="c"))
    assert titles(await Manifest(path).entries()) == {"a.txt": "a", "b.txt": "b", "c.txt": "c"}
    assert one.get_sync("b.txt") == Entry(title="b")  # seen at its next append
    await two.put("a.txt", Entry(title="a2"))  # one key: the last change in journal order
    await one.close()
    await two.close()
    assert titles(await Manifest(path).entries()) == {
        "a.txt": "a2", "b.txt": "b", "c.txt": "c"}


async def test_a_rewrite_keeps_the_entries_of_another_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest, "COMPACT_AFTER", 3)
    path = tmp_path / "m.json"
    one, two = Manifest(path), Manifest(path)
    await one.entries()
    await two.entries()
    for i in range(10):
        await one.put(f"x{i}.bin", Entry(title=f"x{i}"))
        await two.put(f"y{i}.bin", Entry(title=f"y{i}"))
    await two.close()
    await one.close()  # the last rewrite: from the file on disk, not only its own view
    want = {f"{k}{i}.bin": f"{k}{i}" for k in "xy" for i in range(10)}
    assert not journal_path(path).exists()
    assert {key: raw["title"] for key, raw in
            json.loads(path.read_text("utf-8"))["assets"].items()} == want


def test_two_writers_in_threads_with_rewrites_lose_no_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tester's case: two jobs into one folder at once, each its own manifest in memory,
    the journal folded in often; the final manifest holds every entry of both."""
    monkeypatch.setattr(manifest, "COMPACT_AFTER", 5)
    path = tmp_path / ".assetferry.json"
    errors: list[BaseException] = []

    async def job(prefix: str) -> None:
        m = Manifest(path)
        await m.entries()
        async with anyio.create_task_group() as tg:  # several uploads at once (group commit)
            for i in range(1, 101):
                tg.start_soon(m.put, f"{prefix}{i}.bin", Entry(title=f"{prefix}{i}"))
        await m.close()

    def run(prefix: str) -> None:
        try:
            anyio.run(job, prefix)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    doc = json.loads(path.read_text("utf-8"))["assets"]
    assert {key: raw["title"] for key, raw in doc.items()} == {
        f"{k}{i}.bin": f"{k}{i}" for k in "xy" for i in range(1, 101)}


async def test_the_lock_file_is_reserved_and_never_listed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    target = LocalFolderConnector(LocalConfig(connector="local", path=root), role="target")
    await target.upload(request("a.txt", meta=AssetMeta(title="A")),
                        stage_bytes(tmp_path, b"a", "text/plain"), MemoryJournal())
    assert manifest.lock_path(root / ".assetferry.json").exists()
    assert ".assetferry.json.lock" in target.limits.reserved_names
    assert [a.filename for a in await assets_of(target)] == ["a.txt"]
    await target.aclose()
