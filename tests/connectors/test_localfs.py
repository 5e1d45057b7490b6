"""The local folder connector: listing, metadata manifest, atomic and confined writes."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import mimetypes
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import anyio
import pytest
from PIL import Image

from connectors import localfs
from connectors.base import (
    NO_STRINGS,
    SYSTEM_FILES,
    Asset,
    AssetMeta,
    Capabilities,
    Folder,
    LocalizedText,
    StagedFile,
    SupportsListingBatches,
    UploadRequest,
    system_file_reason,
)
from connectors.errors import ConfigError, FatalError, ItemError, NotFoundError
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.localfs.manifest import NO_META, Entry
from pipeline.run import list_all
from tests.connectors.staging import MemoryJournal, stage_bytes

FULL_META = AssetMeta(
    title="Harbour at dawn",
    description="Fishing boats, low tide",
    alt_text="Boats resting on wet sand",
    tags=("harbour", "boats", "Ümlaut"),
    copyright="© 2024 Jane Doe",
    focus="0.25,0.75",
    locales={
        "de": LocalizedText(title="Hafen im Morgengrauen", alt_text="Boote auf nassem Sand"),
        "fr": LocalizedText(description="Bateaux de pêche", copyright="© Jane"),
    },
)


def connector(
    root: Path, role: Literal["source", "target"] = "source"
) -> LocalFolderConnector:
    return LocalFolderConnector(LocalConfig(connector="local", path=root), role=role)


def request(
    filename: str,
    folder_id: str | None = None,
    meta: AssetMeta | None = None,
    source_id: str = "src-1",
) -> UploadRequest:
    return UploadRequest(
        source_id=source_id,
        filename=filename,
        folder_id=folder_id,
        folder_path=tuple(folder_id.split("/")) if folder_id else (),
        content_type="application/octet-stream",
        meta=meta or AssetMeta(),
    )


async def folders_of(conn: LocalFolderConnector) -> list[Folder]:
    return [f async for f in conn.iter_folders()]


async def assets_of(conn: LocalFolderConnector) -> list[Asset]:
    return [a async for a in conn.iter_assets()]


async def read_all(conn: LocalFolderConnector, asset: Asset) -> bytes:
    async with conn.open_asset(asset) as chunks:
        return b"".join([chunk async for chunk in chunks])


def png_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, format="PNG")
    return out.getvalue()


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


async def test_files_without_checksums_or_extra_share_one_empty_mapping(root: Path) -> None:
    """A listing of 100,000 plain files holds no empty dict per file: they share
    :data:`NO_STRINGS`, which refuses changes and serialises as an empty object."""
    (root / "a.txt").write_bytes(b"a")
    (root / "b.txt").write_bytes(b"b")
    first, second = await assets_of(connector(root))
    assert first.checksums is second.checksums is NO_STRINGS
    assert first.extra is second.extra is NO_STRINGS
    assert json.dumps(dataclasses.asdict(first)["extra"]) == "{}"
    with pytest.raises(TypeError, match="cannot be changed"):
        first.extra["source"] = "x"  # type: ignore[index]
    assert first.extra == {}


async def test_a_listing_holds_one_string_per_path_with_its_manifest(root: Path) -> None:
    """A local target's listing of 100,000 files: the asset's id is the manifest's key (an
    entry holding only its source id, as a local -> local migrate writes it, keeps the key's
    string, not a copy), one string per path for the manifest and the listing (interned, as
    the plan's ledger read interns its ids); a file's folder id is one string per folder.
    Each asset is as before: id, folder, version, metadata, times."""
    (root / "d").mkdir()
    for name in ("a.txt", "b.txt"):
        (root / "d" / name).write_bytes(b"x")
    (root / ".assetferry.json").write_text(json.dumps({"version": 1, "assets": {
        "d/a.txt": {"source_id": "d/a.txt"}, "d/b.txt": {"source_id": "elsewhere/b.txt"}}}))
    conn = connector(root, role="target")
    first, second = await assets_of(conn)
    stored = await conn._manifest._stored()
    keys = {key: key for key in stored}
    assert first.source_id is keys["d/a.txt"]
    assert stored["d/a.txt"] is keys["d/a.txt"]  # the plain entry's source id: the key
    assert stored["d/b.txt"] == "elsewhere/b.txt"
    assert second.source_id is keys["d/b.txt"]
    assert first.source_id is sys.intern("d/a.txt")
    assert first.folder_id is second.folder_id == "d"
    assert first.folder_path is second.folder_path == ("d",)
    st = (root / "d" / "a.txt").stat()
    assert first.version == f"1:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"
    assert first.updated_at == datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)
    assert first.meta is NO_META
    assert (first.filename, first.size, first.content_type) == ("a.txt", 1, "text/plain")
    assert await conn.read_asset("d/a.txt") == first  # one file, as its listing shows it


CONTENT_TYPE_NAMES = ["a.png", "b.png", "c.PNG", "x.tar.gz", "y.tar.gz", "y.tgz", "z.TGZ",
                      ".bashrc", "bashrc", ".hidden.jpg", "..x.svg", "a.b.c.pdf", "a..png",
                      "trailing.", "s.svgz", "report.final.PDF", "a:b.png", "data:x.png",
                      "e.Z", "noext"]


@pytest.mark.parametrize("names", [CONTENT_TYPE_NAMES, CONTENT_TYPE_NAMES[::-1]])
def test_content_type_is_asked_once_per_suffixes_with_the_same_answer(
        names: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing asks ``mimetypes`` once per suffixes (``photo.tar.gz`` -> ``.tar.gz``);
    every name, in either order, gets what ``mimetypes`` says about that very name."""
    monkeypatch.setattr(localfs.files, "_TYPE_BY_SUFFIXES", {})
    for name in names:
        guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        assert localfs.files.guess_content_type(name) == guessed, name


def test_system_files_are_told_by_their_name_in_any_case() -> None:
    """One lookup per listed name finds each system file name in any case (Windows')."""
    for name, what in SYSTEM_FILES.items():
        for variant in (name, name.upper(), name.lower(), name.swapcase()):
            assert system_file_reason(variant) == (
                f"operating-system file ({what}); set include_system_files = true to "
                "migrate it"), variant
    assert system_file_reason("thumbs.db.png") is None
    assert system_file_reason("._photo.png") is not None


# --- metadata round trip ------------------------------------------------------------------------


async def test_metadata_survives_a_round_trip(root: Path, tmp_path: Path) -> None:
    target = connector(root)
    folder = await target.create_folder(None, "photos")
    ref = await target.upload(
        request("harbour.png", folder.source_id, FULL_META, source_id="sb:42"),
        stage_bytes(tmp_path, png_bytes(3, 2), "image/png"),
        MemoryJournal(),
    )
    assert ref.target_id == "photos/harbour.png"
    assert ref.url == (root / "photos" / "harbour.png").resolve().as_uri()
    await target.aclose()  # the manifest's change journal is folded in

    # A fresh connector reads only what is on disk.
    [asset] = await assets_of(connector(root))
    assert asset.meta == FULL_META
    assert asset.source_id == "photos/harbour.png"
    assert (asset.width, asset.height) == (3, 2)

    manifest = json.loads((root / ".assetferry.json").read_text(encoding="utf-8"))
    assert manifest["version"] == 1
    entry = manifest["assets"]["photos/harbour.png"]
    assert entry["source_id"] == "sb:42"
    assert entry["locales"]["de"] == {
        "title": "Hafen im Morgengrauen",
        "alt_text": "Boote auf nassem Sand",
    }


async def test_update_metadata_keeps_provenance_and_extra(root: Path, tmp_path: Path) -> None:
    target = connector(root)
    await target.upload(
        request("a.txt", meta=FULL_META, source_id="cs:blt1"),
        stage_bytes(tmp_path, b"hello", "text/plain"),
        MemoryJournal(),
    )
    await target.aclose()
    manifest_path = root / ".assetferry.json"
    doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    doc["assets"]["a.txt"]["extra"] = {"photographer": "Jane"}
    manifest_path.write_text(json.dumps(doc), encoding="utf-8")

    fresh = connector(root)
    new_meta = AssetMeta(title="Renamed", tags=("x",))
    await fresh.update_metadata("a.txt", new_meta)
    await fresh.aclose()

    [asset] = await assets_of(connector(root))
    assert asset.meta == new_meta
    assert asset.extra == {"photographer": "Jane"}
    entry = json.loads(manifest_path.read_text(encoding="utf-8"))["assets"]["a.txt"]
    assert entry["source_id"] == "cs:blt1"


async def test_update_metadata_of_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(NotFoundError, match="no longer exists"):
        await connector(root).update_metadata("gone.txt", AssetMeta(title="x"))


# --- listing ------------------------------------------------------------------------------------


async def test_lists_a_deep_unicode_tree_parents_first_and_sorted(root: Path) -> None:
    names = ["level 1", "Ébène", "日本語", "with  two spaces", "e", "f", "seventh level"]
    deep = root.joinpath(*names)
    deep.mkdir(parents=True)
    (deep / "deepest file.txt").write_bytes(b"bottom")
    (root / "empty.bin").write_bytes(b"")
    (root / "level 1" / "zz.jpg").write_bytes(b"not really a jpeg")
    (root / "level 1" / "aa.txt").write_bytes(b"aa")
    (root / "b dir").mkdir()
    (root / "b dir" / "Ünïcødé name.txt").write_bytes(b"u")
    conn = connector(root)

    folders = await folders_of(conn)
    assert len(folders) == 8
    ids = [f.source_id for f in folders]
    assert ids == sorted(ids, key=lambda i: i.split("/"))
    seen: set[str] = set()
    for folder in folders:  # every parent is listed before its children
        assert folder.parent_id is None or folder.parent_id in seen
        seen.add(folder.source_id)
    seventh = folders[-1]
    assert seventh.path == tuple(names)
    assert seventh.name == "seventh level"
    assert seventh.parent_id == "/".join(names[:-1])

    assets = await assets_of(conn)
    paths = [a.source_id for a in assets]
    assert paths == [
        "b dir/Ünïcødé name.txt",
        "empty.bin",
        "level 1/aa.txt",
        "level 1/zz.jpg",  # "z" sorts before "É" (code point order)
        "/".join([*names, "deepest file.txt"]),
    ]
    by_id = {a.source_id: a for a in assets}

    empty = by_id["empty.bin"]
    assert (empty.size, empty.folder_id, empty.folder_path) == (0, None, ())
    assert empty.content_type == "application/octet-stream"
    assert empty.checksums == {}
    assert await read_all(conn, empty) == b""

    deepest = by_id["/".join([*names, "deepest file.txt"])]
    assert deepest.folder_path == tuple(names)
    assert deepest.folder_id == "/".join(names)
    assert deepest.content_type == "text/plain"
    assert deepest.url is None
    st = (deep / "deepest file.txt").stat()
    assert deepest.version == f"6:{st.st_mtime_ns}"
    assert deepest.updated_at is not None
    assert deepest.updated_at.utcoffset() is not None
    assert await read_all(conn, deepest) == b"bottom"

    broken_jpeg = by_id["level 1/zz.jpg"]  # header unreadable: no size, no crash
    assert broken_jpeg.content_type == "image/jpeg"
    assert (broken_jpeg.width, broken_jpeg.height) == (None, None)


async def test_large_file_streams_in_64k_chunks(root: Path) -> None:
    data = os.urandom(localfs.CHUNK_SIZE * 2 + 17)
    (root / "big.bin").write_bytes(data)
    conn = connector(root)
    [asset] = await assets_of(conn)
    async with conn.open_asset(asset) as chunks:
        sizes = [len(c) async for c in chunks]
    assert sizes == [localfs.CHUNK_SIZE, localfs.CHUNK_SIZE, 17]


async def test_listing_interleaves_subfolders_in_path_order(root: Path) -> None:
    for i in range(10):
        (root / f"f{i:02d}.txt").write_bytes(b"x" * i)
    (root / "f04b").mkdir()
    (root / "f04b" / "inner.txt").write_bytes(b"in")
    ids = [a.source_id async for a in connector(root).iter_assets()]
    assert ids == [
        "f00.txt", "f01.txt", "f02.txt", "f03.txt", "f04.txt",
        "f04b/inner.txt",
        "f05.txt", "f06.txt", "f07.txt", "f08.txt", "f09.txt",
    ]  # fmt: skip


async def test_the_listing_in_one_walk_is_the_folders_and_the_assets(root: Path) -> None:
    """``iter_listing`` (what the pipeline lists through: one walk, no async step per
    asset) yields what ``iter_folders`` and ``iter_assets`` do, in path order: a folder's
    files between two subfolders per list, an excluded entry in a list of its own."""
    for name in ("a.txt", "b.txt", "m/in.txt", "m/n/deep.txt", "m/z.txt", "y.txt", "z.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "._a.txt").write_bytes(b"fork")
    conn = connector(root)
    assert isinstance(conn, SupportsListingBatches)
    listed = [found.source_id if isinstance(found, Folder) else [a.source_id for a in found]
              async for found in conn.iter_listing()]
    assert listed == [["._a.txt"], ["a.txt", "b.txt"], "m", ["m/in.txt"], "m/n",
                      ["m/n/deep.txt"], ["m/z.txt"], ["y.txt", "z.txt"]]
    assert [a.source_id for a in await assets_of(conn)] == [
        i for found in listed if isinstance(found, list) for i in found]
    assert [f.source_id async for f in conn.iter_folders()] == ["m", "m/n"]
    by_walk = await list_all(conn, "source")
    assert [f.source_id for f in by_walk.folders] == ["m", "m/n"]
    assert [a.source_id for a in by_walk.assets] == [a.source_id for a in await assets_of(conn)]


async def test_manifest_and_temp_files_are_not_listed(root: Path, tmp_path: Path) -> None:
    conn = connector(root)
    await conn.upload(
        request("keep.txt", meta=AssetMeta(title="t")),
        stage_bytes(tmp_path, b"k", "text/plain"),
        MemoryJournal(),
    )
    (root / "sub").mkdir()
    (root / "sub" / ".assetferry-tmp-0123456789abcdef").write_bytes(b"half a fi")
    (root / ".assetferry-tmp-deadbeefdeadbeef").write_bytes(b"half")
    (root / "sub" / ".assetferry.json").write_text("{}")  # only the root's manifest is ours
    listed = await assets_of(connector(root))
    assert [a.source_id for a in listed if "tmp" not in a.source_id] == [
        "keep.txt", "sub/.assetferry.json"]
    # a source's file named exactly like our temp files is listed as excluded, saying why
    # (README: nothing a source finds is invisible), never silently left out
    excluded = {a.filename: a.skipped for a in listed if "tmp" in a.source_id}
    assert set(excluded) == {".assetferry-tmp-0123456789abcdef",
                             ".assetferry-tmp-deadbeefdeadbeef"}
    assert all("reserved temp-file name" in (why or "") for why in excluded.values())
    # a target's own temp files stay out of its listing (they are reclaimed, not assets)
    target = connector(root, role="target")
    assert [a.source_id for a in await assets_of(target)] == ["keep.txt",
                                                            "sub/.assetferry.json"]


async def test_missing_source_root_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="does not exist"):
        await assets_of(connector(missing))
    with pytest.raises(ConfigError, match="does not exist"):
        await folders_of(connector(missing))


async def test_missing_target_root_lists_empty_and_is_created_on_write(tmp_path: Path) -> None:
    missing = tmp_path / "new" / "target"
    conn = connector(missing, role="target")
    assert await assets_of(conn) == []
    assert await folders_of(conn) == []
    assert not missing.exists()  # listing (and so `plan`) creates nothing
    await conn.upload(
        request("a.txt", "x"), stage_bytes(tmp_path, b"a", "text/plain"), MemoryJournal()
    )
    assert (missing / "x" / "a.txt").read_bytes() == b"a"


async def test_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"")
    with pytest.raises(ConfigError, match="not a folder"):
        await assets_of(connector(file))


def test_scope_is_the_resolved_root(root: Path) -> None:
    conn = connector(root / "." / "sub" / "..")
    assert conn.scope == str(root.resolve())


def test_manifest_setting_must_be_a_plain_name(root: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        LocalConfig(connector="local", path=root, manifest="sub/meta.json")


def test_claims_every_capability(root: Path) -> None:
    caps = Capabilities.of(connector(root))
    assert caps == Capabilities(
        target=True, replace=True, update_metadata=True, delete=True, find_asset=True,
        asset_exists=True, read_asset=True,
    )
    limits = connector(root).limits
    assert limits.forbidden_name_chars == "/\\\x00"
    assert (limits.max_name_length, limits.max_name_bytes) == (None, 255)  # bytes, not characters
    assert limits.folders_and_files_share_names


# --- symlinks -----------------------------------------------------------------------------------


async def test_symlinks_out_of_the_root_are_skipped(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"do not copy")
    (root / "real").mkdir()
    (root / "real" / "photo.txt").write_bytes(b"p")
    (root / "out-dir").symlink_to(outside, target_is_directory=True)
    (root / "out-file.txt").symlink_to(outside / "secret.txt")
    (root / "in-link.txt").symlink_to(root / "real" / "photo.txt")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "real" / "loop").symlink_to(root / "real", target_is_directory=True)
    conn = connector(root)

    folders = [f.source_id for f in await folders_of(conn)]
    listed = await assets_of(conn)
    assets = [a for a in listed if a.skipped is None]

    assert folders == ["real"]
    assert [a.source_id for a in assets] == ["in-link.txt", "real/photo.txt"]
    assert await read_all(conn, assets[0]) == b"p"  # a link inside the root is followed
    # nothing is invisible: each entry left out is listed, with its reason, as a skip
    skipped = {a.source_id: a.skipped for a in listed if a.skipped is not None}
    assert skipped == {
        "out-dir": "symlink to a place outside the source folder (not followed)",
        "out-file.txt": "symlink to a place outside the source folder (not followed)",
        "dangling": "broken symlink (its target does not exist)",
        "real/loop": "symlink to one of its own parent folders (a loop)",
    }


async def test_open_refuses_an_id_that_escapes(root: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_bytes(b"s")
    conn = connector(root)
    fake = Asset(
        source_id="../secret.txt", filename="secret.txt", folder_path=(), folder_id=None,
        content_type="text/plain", size=1,
    )
    with pytest.raises(ItemError):
        await read_all(conn, fake)


async def test_a_local_path_looks_below_the_root_only_and_refuses_a_link_out(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root is resolved once: a file's path costs one ``lstat`` per component below it
    (issue 12: ``Path.resolve`` made one per component from ``/``, on every upload), and a
    folder swapped for a symlink out of the root after the listing is still refused."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "photo.txt").write_bytes(b"p")
    (root / "real").mkdir()
    (root / "real" / "x.txt").write_bytes(b"x")
    (root / "in").symlink_to(root / "real", target_is_directory=True)
    conn = connector(root)
    listed = {a.source_id: a for a in await assets_of(conn)}
    looked: list[str] = []
    lstat = os.lstat

    def counting(path: str | Path, *args: object, **kwargs: object) -> os.stat_result:
        looked.append(os.fspath(path))
        return lstat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", counting)
    assert conn.local_path(listed["a/b/photo.txt"]) == root / "a" / "b" / "photo.txt"
    assert looked == [str(root / "a"), str(root / "a" / "b"), str(root / "a" / "b" / "photo.txt")]
    assert conn.local_path(listed["in/x.txt"]) == root / "in" / "x.txt"  # a link inside: fine
    monkeypatch.undo()

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "photo.txt").write_bytes(b"secret")
    (root / "a" / "b" / "photo.txt").unlink()
    (root / "a" / "b").rmdir()
    (root / "a" / "b").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ItemError, match="outside"):
        conn.local_path(listed["a/b/photo.txt"])
    with pytest.raises(ItemError, match="outside"):
        await read_all(conn, listed["a/b/photo.txt"])


# --- hostile names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "folder_id"),
    [
        ("../evil.txt", None),
        ("/etc/passwd", None),
        ("a/../../b", None),
        ("nul\x00byte.txt", None),
        ("back\\slash.txt", None),
        ("..", None),
        ("ok.txt", "../elsewhere"),
        ("ok.txt", "/etc"),
        ("ok.txt", "a/../../b"),
        ("ok.txt", "a//b"),
        ("ok.txt", "a\x00"),
        (".assetferry.json", None),
        (".assetferry-tmp-1234", "sub"),
        ("x" * 256, None),
    ],
)
async def test_hostile_names_are_refused_and_others_still_work(
    root: Path, tmp_path: Path, filename: str, folder_id: str | None
) -> None:
    conn = connector(root)
    before = files_under(tmp_path)
    with pytest.raises(ItemError):
        await conn.upload(
            request(filename, folder_id),
            stage_bytes(tmp_path, b"evil", "text/plain"),
            MemoryJournal(),
        )
    staged = stage_bytes(tmp_path, b"fine", "text/plain")
    ref = await conn.upload(request("fine.txt", "ok"), staged, MemoryJournal())
    assert (root / ref.target_id).read_bytes() == b"fine"
    await conn.aclose()
    new_files = set(files_under(tmp_path)) - set(before)
    assert {p for p in new_files if not p.startswith("staging")} == {
        "root/ok", "root/ok/fine.txt", "root/.assetferry.json", "root/.assetferry.json.lock",
    }  # fmt: skip


async def test_folder_symlinked_out_of_the_root_is_refused_as_target(
    root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    conn = connector(root)
    with pytest.raises(ItemError, match="outside"):
        await conn.upload(
            request("x.txt", "escape"), stage_bytes(tmp_path, b"x", "text/plain"), MemoryJournal()
        )
    with pytest.raises(ItemError, match="outside"):
        await conn.create_folder("escape", "sub")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("name", ["..", "a/b", "", "x\x00"])
async def test_create_folder_refuses_bad_names(root: Path, name: str) -> None:
    with pytest.raises(ItemError):
        await connector(root).create_folder(None, name)
    assert list(root.iterdir()) == []


async def test_create_folder_nests_and_reuses(root: Path) -> None:
    conn = connector(root)
    a = await conn.create_folder(None, "A b")
    b = await conn.create_folder(a.source_id, "Ç")
    again = await conn.create_folder(a.source_id, "Ç")
    assert b == again == Folder(source_id="A b/Ç", name="Ç", parent_id="A b", path=("A b", "Ç"))
    assert (root / "A b" / "Ç").is_dir()
    (root / "file").write_bytes(b"")
    with pytest.raises(ItemError, match="in the way"):
        await conn.create_folder(None, "file")


# --- atomic writes ------------------------------------------------------------------------------


async def test_interrupted_copy_leaves_no_temp_and_no_partial_file(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_chunks(path: Path) -> Iterator[bytes]:
        yield b"first half"
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(localfs.files, "_read_chunks", broken_chunks)
    conn = connector(root)
    await conn.create_folder(None, "dst")
    with pytest.raises(ItemError, match="Input/output error"):
        await conn.upload(
            request("photo.bin", "dst"),
            stage_bytes(tmp_path, b"first half, second half", "application/octet-stream"),
            MemoryJournal(),
        )
    assert list((root / "dst").iterdir()) == []
    assert not (root / ".assetferry.json").exists()
    monkeypatch.undo()
    assert await assets_of(conn) == []


async def test_short_staged_file_is_refused_without_leftovers(root: Path, tmp_path: Path) -> None:
    good = stage_bytes(tmp_path, b"12345", "text/plain")
    lying = StagedFile(good.path, 999, good.md5, good.sha256, good.content_type)
    with pytest.raises(ItemError, match="expected 999"):
        await connector(root).upload(request("a.txt"), lying, MemoryJournal())
    assert list(root.iterdir()) == []


async def test_vanished_staged_file_is_an_item_error(root: Path, tmp_path: Path) -> None:
    staged = stage_bytes(tmp_path, b"x", "text/plain")
    staged.path.unlink()
    with pytest.raises(ItemError, match="vanished"):
        await connector(root).upload(request("a.txt"), staged, MemoryJournal())
    assert list(root.iterdir()) == []


async def test_upload_refuses_to_overwrite_a_different_file(root: Path, tmp_path: Path) -> None:
    conn = connector(root)
    first = stage_bytes(tmp_path, b"original", "text/plain")
    ref = await conn.upload(request("a.txt"), first, MemoryJournal())
    with pytest.raises(ItemError, match="already exists"):
        await conn.upload(
            request("a.txt"), stage_bytes(tmp_path, b"imposter", "text/plain"), MemoryJournal()
        )
    assert (root / "a.txt").read_bytes() == b"original"
    # The same bytes again (a resumed upload) are taken as ours.
    again = await conn.upload(
        request("a.txt", meta=AssetMeta(title="now titled")), first, MemoryJournal()
    )
    assert again == ref
    [asset] = await assets_of(connector(root))
    assert asset.meta.title == "now titled"
    await conn.aclose()
    assert sorted(p.name for p in root.iterdir()) == [
        ".assetferry.json", ".assetferry.json.lock", "a.txt"]


async def test_upload_without_hard_links_still_refuses_to_clobber(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    conn = connector(root)
    first = stage_bytes(tmp_path, b"original", "text/plain")
    ref = await conn.upload(request("a.txt", "f"), first, MemoryJournal())
    assert (root / "f" / "a.txt").read_bytes() == b"original"
    with pytest.raises(ItemError, match="already exists"):
        await conn.upload(
            request("a.txt", "f"), stage_bytes(tmp_path, b"other", "text/plain"), MemoryJournal()
        )
    assert await conn.upload(request("a.txt", "f"), first, MemoryJournal()) == ref
    assert sorted(p.name for p in (root / "f").iterdir()) == ["a.txt"]


async def test_unreadable_folder_stops_the_listing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "locked").mkdir()
    (root / "locked" / "x.txt").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path: Path) -> object:  # chmod 000 does not stop root, so fake the refusal
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(FatalError, match=r"cannot list .*Permission denied"):
        await assets_of(connector(root))


async def test_replace_overwrites_in_place(root: Path, tmp_path: Path) -> None:
    conn = connector(root)
    ref = await conn.upload(
        request("a.txt", meta=AssetMeta(title="v1")),
        stage_bytes(tmp_path, b"version one", "text/plain"),
        MemoryJournal(),
    )
    new_ref = await conn.replace(
        ref.target_id,
        request("a.txt", meta=AssetMeta(title="v2"), source_id="src-2"),
        stage_bytes(tmp_path, b"v2", "text/plain"),
        MemoryJournal(),
    )
    assert (new_ref.target_id, new_ref.url) == (ref.target_id, ref.url)
    assert new_ref.version != ref.version  # the marker of the new file
    assert (root / "a.txt").read_bytes() == b"v2"
    [asset] = await assets_of(connector(root))
    assert (asset.size, asset.meta.title) == (2, "v2")
    await conn.aclose()
    assert sorted(p.name for p in root.iterdir()) == [
        ".assetferry.json", ".assetferry.json.lock", "a.txt"]

    with pytest.raises(NotFoundError):
        await conn.replace(
            "missing.txt", request("missing.txt"),
            stage_bytes(tmp_path, b"x", "text/plain"), MemoryJournal(),
        )
    with pytest.raises(ItemError):
        await conn.replace(
            "../a.txt", request("a.txt"), stage_bytes(tmp_path, b"x", "text/plain"), MemoryJournal()
        )


async def test_delete_removes_file_and_manifest_entry(root: Path, tmp_path: Path) -> None:
    conn = connector(root)
    for name in ("a.txt", "b.txt"):
        await conn.upload(
            request(name, "f", meta=AssetMeta(title=name)),
            stage_bytes(tmp_path, name.encode(), "text/plain"),
            MemoryJournal(),
        )
    await conn.delete("f/a.txt")
    await conn.delete("f/a.txt")  # already gone: fine
    assert not (root / "f" / "a.txt").exists()
    await conn.aclose()
    doc = json.loads((root / ".assetferry.json").read_text(encoding="utf-8"))
    assert list(doc["assets"]) == ["f/b.txt"]
    with pytest.raises(ItemError, match="folder"):
        await conn.delete("f")
    assert (root / "f" / "b.txt").exists()


async def test_find_asset_matches_name_and_size(root: Path, tmp_path: Path) -> None:
    conn = connector(root)
    ref = await conn.upload(
        request("a.txt", "f"), stage_bytes(tmp_path, b"12345", "text/plain"), MemoryJournal()
    )
    assert await conn.find_asset("f", "a.txt", 5) == ref
    assert await conn.find_asset("f", "a.txt", 4) is None
    assert await conn.find_asset(None, "a.txt", 5) is None
    assert await conn.find_asset("f", "other.txt", 5) is None
    with pytest.raises(ItemError):
        await conn.find_asset("..", "a.txt", 5)


# --- vanished files, corrupt manifest -----------------------------------------------------------


async def test_file_vanished_since_listing_is_an_item_error_on_open(root: Path) -> None:
    (root / "here.txt").write_bytes(b"soon gone")
    conn = connector(root)
    [asset] = await assets_of(conn)
    (root / "here.txt").unlink()
    with pytest.raises(ItemError, match="no longer exists; re-run"):
        async with conn.open_asset(asset):
            pytest.fail("opened a file that is gone")


async def test_entries_gone_between_the_folder_listing_and_their_stat_are_skipped(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file or folder deleted after its folder was read (its name listed) and before its
    stat or its own listing: a skip saying so; the other entries are listed."""
    for name in ("a.txt", "gone.txt", "z.txt"):
        (root / name).write_bytes(b"x")
    (root / "sub").mkdir()
    (root / "sub" / "in.txt").write_bytes(b"in")
    (root / "sub2").mkdir()
    real_scandir = os.scandir

    class Listed:  # the folder's names as read, then the deletions
        def __init__(self, path: Path) -> None:
            with real_scandir(path) as it:
                self.entries = list(it)
            if Path(path) == root and (root / "sub2").exists():
                (root / "gone.txt").unlink()
                (root / "sub2").rmdir()

        def __enter__(self) -> Iterator[os.DirEntry[str]]:
            return iter(self.entries)

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(os, "scandir", Listed)
    conn = connector(root)
    listed = {a.source_id: a.skipped for a in await assets_of(conn)}
    assert listed == {"a.txt": None, "gone.txt": "file vanished while listing",
                      "sub/in.txt": None, "sub2": "folder vanished while listing",
                      "z.txt": None}
    assert [f.source_id async for f in connector(root).iter_folders()] == ["sub"]
    assert await conn.read_asset("gone.txt") is None
    found = await conn.read_asset("sub/in.txt")
    assert found is not None
    assert (found.size, found.folder_id) == (2, "sub")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"version": 1, "assets": {"a.txt": {"title": "x"}', "not valid JSON"),
        ('{"version": 1, "assets": {"a.txt": {"tags": "one"}}}',
         "has 1 problem:\n  asset 'a.txt', key 'tags': should be a list of strings"),
        ('{"version": 2, "assets": {}}', "has 1 problem:\n  version: should be 1"),
        ('{"version": 1, "assets": {"a.txt": {"titel": "typo"}}}',
         "asset 'a.txt', key 'titel': unknown key"),
        ("[]", r"has 1 problem:\n  \(top\): should be an object"),
    ],
)
async def test_corrupt_manifest_is_a_config_error_and_is_kept(
    root: Path, tmp_path: Path, content: str, why: str
) -> None:
    (root / "a.txt").write_bytes(b"a")
    manifest = root / ".assetferry.json"
    manifest.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=why) as caught:
        await assets_of(connector(root))
    assert str(manifest) in str(caught.value)
    assert "move it aside" in str(caught.value)
    with pytest.raises(ConfigError):
        await connector(root).upload(
            request("b.txt"), stage_bytes(tmp_path, b"b", "text/plain"), MemoryJournal()
        )
    assert manifest.read_text(encoding="utf-8") == content  # metadata not silently dropped
    assert not (root / "b.txt").exists()  # stopped before writing a file without its metadata


# --- concurrency --------------------------------------------------------------------------------


async def test_concurrent_uploads_are_all_recorded(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localfs.manifest, "COMPACT_AFTER", 3)  # rewrites while uploading
    real_write = localfs.manifest.Manifest._write

    def slow_disk(
        self: localfs.manifest.Manifest, snapshot: dict[str, localfs.manifest.Entry | str]
    ) -> None:
        # Older (smaller) snapshots take longer: unserialized writes would land out of order.
        time.sleep((20 - len(snapshot)) * 0.001)
        real_write(self, snapshot)

    monkeypatch.setattr(localfs.manifest.Manifest, "_write", slow_disk)
    conn = connector(root)
    await conn.create_folder(None, "many")
    staged = [stage_bytes(tmp_path, f"file {i}".encode(), "text/plain") for i in range(20)]

    async def one(i: int) -> None:
        await conn.upload(
            request(f"f{i:02d}.txt", "many", AssetMeta(title=f"t{i}"), source_id=f"s{i}"),
            staged[i],
            MemoryJournal(),
        )

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)

    await conn.aclose()
    doc = json.loads((root / ".assetferry.json").read_text(encoding="utf-8"))
    assert len(doc["assets"]) == 20
    assets = await assets_of(connector(root))
    assert [(a.filename, a.meta.title) for a in assets] == [
        (f"f{i:02d}.txt", f"t{i}") for i in range(20)
    ]
    assert not [p for p in root.rglob("*") if p.name.startswith(localfs.TMP_PREFIX)]


@pytest.mark.parametrize("field", ["title", "description", "alt_text", "tags", "copyright",
                                   "focus", "locales", None])
def test_a_manifest_entry_gives_all_of_its_metadata(field: str | None) -> None:
    """A manifest entry without metadata shares one empty AssetMeta (100,000 files list
    100,000 of them); an entry with any one field set still gives that field."""
    values: dict[str, object] = {"title": "t", "description": "d", "alt_text": "a",
                                 "tags": ("x",), "copyright": "c", "focus": "0.5,0.5",
                                 "locales": {"fr": {"title": "t"}}}
    entry = Entry.model_validate({"source_id": "s", "extra": {"source": "cms"},
                                  **({field: values[field]} if field else {})})
    meta = entry.meta()
    if field is None:
        assert meta is NO_META
        assert meta == AssetMeta()
    else:
        assert meta != AssetMeta()
        got = getattr(meta, field)
        assert (dict(got) if field == "locales" else got) == (
            {"fr": LocalizedText(title="t")} if field == "locales" else values[field])


@pytest.mark.skipif(os.name == "nt", reason="Windows refuses \\ in file names")
async def test_every_name_the_file_system_holds_can_be_read_and_deleted(
    root: Path, tmp_path: Path
) -> None:
    """A backslash is an ordinary character of a POSIX name: a listed file with one is read,
    checked and deleted by its id (a name we write still may not hold one)."""
    (root / "back\\slash.txt").write_bytes(b"abc")
    conn = connector(root, role="target")
    [asset] = await assets_of(conn)
    assert asset.source_id == "back\\slash.txt"
    assert await read_all(conn, asset) == b"abc"
    assert conn.local_path(asset) == root / "back\\slash.txt"
    assert await conn.asset_exists(asset.source_id)
    await conn.update_metadata(asset.source_id, AssetMeta(title="t"))
    await conn.delete(asset.source_id)
    assert not (root / "back\\slash.txt").exists()
    with pytest.raises(ItemError, match="separators"):
        await conn.upload(request("new\\name.txt"), stage_bytes(tmp_path, b"x", "text/plain"),
                          MemoryJournal())


async def test_a_listed_asset_compares_by_value(root: Path) -> None:
    """An :class:`Asset` is not a frozen dataclass (issue 12: 200,000 of them per plan of
    100,000 assets, each field set through ``object.__setattr__``), but it is still equal
    by value, and a changed one is a copy (``dataclasses.replace``)."""
    (root / "a.txt").write_bytes(b"x")
    [first] = await assets_of(connector(root))
    [again] = await assets_of(connector(root))
    assert first == again
    assert first is not again
    moved = dataclasses.replace(first, folder_path=("m",))
    assert moved != first
    assert first.folder_path == ()
    assert moved.source_id == first.source_id


async def test_checksum_option_lists_each_files_sha256(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``checksum = true``: a byte change keeping the size and mtime changes the listing
    (the quick check alone sees nothing); an unreadable file fails alone; a target reads
    no checksum."""
    (root / "f.txt").write_bytes(b"content 01\n")
    (root / "locked.txt").write_bytes(b"x")
    quick = connector(root)
    summed = LocalFolderConnector(LocalConfig(connector="local", path=root, checksum=True))
    before = {a.source_id: a for a in await assets_of(summed)}
    assert before["f.txt"].checksums == {"sha256": hashlib.sha256(b"content 01\n").hexdigest()}
    assert (await assets_of(quick))[0].checksums == {}
    st = (root / "f.txt").stat()
    (root / "f.txt").write_bytes(b"content 99\n")
    os.utime(root / "f.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    after = {a.source_id: a for a in await assets_of(summed)}
    assert after["f.txt"].version == before["f.txt"].version, "size and mtime kept"
    assert after["f.txt"].checksums["sha256"] == hashlib.sha256(b"content 99\n").hexdigest()
    assert (await summed.read_asset("f.txt")) == after["f.txt"]
    target = LocalFolderConnector(LocalConfig(connector="local", path=root, checksum=True),
                                  role="target")
    assert all(a.checksums == {} for a in await assets_of(target))

    def refuse(path: Path) -> str:
        if path.name == "locked.txt":
            raise PermissionError(errno.EACCES, "Permission denied")
        return hashlib.sha256(path.read_bytes()).hexdigest()

    monkeypatch.setattr("connectors.localfs.connector.sha256_of", refuse)
    listed = {a.source_id: a for a in await assets_of(summed)}
    assert listed["locked.txt"].unreachable == "unreadable: Permission denied"
    assert listed["f.txt"].checksums == after["f.txt"].checksums, "the others go on"


def _deep_tree(root: Path, name: str, depth: int) -> None:
    """``depth`` nested folders ``name`` below ``root``, a file at the bottom, built through
    folder descriptors (the whole path may exceed PATH_MAX)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("f.txt", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


@pytest.mark.skipif(sys.platform == "win32", reason="dir_fd is POSIX only")
async def test_a_tree_deeper_than_path_max_says_so_not_fix_its_permissions(
    tmp_path: Path,
) -> None:
    """ENAMETOOLONG is no permission problem: the listing stops (a partial one can't be
    trusted) saying the path is too long and to shorten or flatten the folders."""
    _deep_tree(tmp_path / "src", "d" * 200, 25)  # 25 x 201 characters: over 4096
    with pytest.raises(FatalError) as caught:
        await assets_of(connector(tmp_path / "src"))
    text = str(caught.value)
    assert "longer than the system allows" in text
    assert "shorten or flatten the folders" in text
    assert "permissions" not in text


async def test_a_deep_tree_resolves_only_its_root_and_symlinked_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain subfolder's real path is its parent's plus its name: resolving each folder's
    whole path (an lstat per component) made listing a tree of depth N cost N^2 lstats
    (1,500 folders deep: minutes). A symlinked folder is still resolved (loops found)."""
    _deep_tree(tmp_path / "src", "dd", 40)
    (tmp_path / "src" / "dd" / "up").symlink_to(tmp_path / "src", target_is_directory=True)
    resolved: list[Path] = []
    real = Path.resolve

    def counting(self: Path, strict: bool = False) -> Path:
        resolved.append(self)
        return real(self, strict=strict)

    monkeypatch.setattr(Path, "resolve", counting)
    conn = connector(tmp_path / "src")
    assets = await assets_of(conn)
    assert [a.source_id for a in assets if not a.skipped] == ["/".join(["dd"] * 40 + ["f.txt"])]
    [loop] = [a for a in assets if a.skipped]
    assert loop.source_id == "dd/up"
    walk = [p for p in resolved if p.is_relative_to(tmp_path / "src")]
    assert len(walk) <= 10, walk  # the root, the symlink: not one per folder
