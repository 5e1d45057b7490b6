"""Contentstack connector against the Contentstack emulator (in-process ASGI, no sockets).

The emulator is written from the vendor's docs, not from the connector, so agreement here
means both read the docs the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import AssetMeta, StagedFile, UploadRequest
from connectors.contentstack import ContentstackConfig, ContentstackConnector
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import Faults, in_process_transport
from connectors.errors import AmbiguousError, AuthError, ItemError

API_KEY = "blt0123456789abcdef"
TOKEN = "cs-emulator-token"


@pytest.fixture
def emu() -> Iterator[ContentstackEmulator]:
    emulator = ContentstackEmulator(api_key=API_KEY, management_token=TOKEN, rate_limit=None)
    yield emulator
    emulator.close()


def connector(emu: ContentstackEmulator, **overrides: Any) -> ContentstackConnector:
    values: dict[str, Any] = {
        "connector": "contentstack",
        "api_key": API_KEY,
        "management_token": TOKEN,
        "base_url": "http://cs.emulator",
        "requests_per_second": 1000.0,
    }
    values.update(overrides)
    config = ContentstackConfig.model_validate(values)
    return ContentstackConnector(config, transport=in_process_transport(emu.app))


@pytest.fixture
async def conn(emu: ContentstackEmulator) -> AsyncIterator[ContentstackConnector]:
    async with connector(emu) as c:
        yield c


def stage(tmp_path: Path, data: bytes, name: str = "staged.bin") -> StagedFile:
    path = tmp_path / name
    path.write_bytes(data)
    return StagedFile(
        path=path,
        size=len(data),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/octet-stream",
    )


def request(
    filename: str, folder_id: str | None = None, meta: AssetMeta | None = None
) -> UploadRequest:
    return UploadRequest(
        source_id="src",
        filename=filename,
        folder_id=folder_id,
        folder_path=(),
        content_type="text/plain",
        meta=meta or AssetMeta(),
    )


class Journal:
    previous: dict[str, str] = {}

    async def record(self, step: str, data: Any) -> None:
        raise AssertionError("a one-step upload journals nothing")


async def read(conn: ContentstackConnector, asset: Any) -> bytes:
    async with conn.open_asset(asset) as chunks:
        return b"".join([c async for c in chunks])


async def test_lists_folder_tree_and_pages_through_all_assets(
    emu: ContentstackEmulator, conn: ContentstackConnector
) -> None:
    photos = emu.add_folder("Photos")
    summer = emu.add_folder("Summer 2024", photos)
    docs = emu.add_folder("Docs")
    parents = [None, photos, summer, docs]
    expected: dict[str, tuple[tuple[str, ...], int]] = {}
    paths = {None: (), photos: ("Photos",), summer: ("Photos", "Summer 2024"), docs: ("Docs",)}
    for i in range(230):
        parent = parents[i % 4]
        data = f"file {i}".encode() * (i + 1)
        uid = emu.add_asset(f"file-{i:03d}.txt", data, parent_uid=parent, tags=[f"t{i % 3}"])
        expected[uid] = (paths[parent], len(data))

    folders = [f async for f in conn.iter_folders()]
    assets = [a async for a in conn.iter_assets()]

    assert {f.path for f in folders} == {("Photos",), ("Photos", "Summer 2024"), ("Docs",)}
    assert folders[-1].path == ("Photos", "Summer 2024")  # parents first
    assert len(assets) == 230
    assert {a.source_id: (a.folder_path, a.size) for a in assets} == expected
    assert [a.filename for a in assets] == [f"file-{i:03d}.txt" for i in range(230)]
    assert all(a.meta.tags == (f"t{int(a.filename[5:8]) % 3}",) for a in assets)
    assert all(a.created_at is not None and a.created_at.tzinfo for a in assets)
    # one folder listing + three pages of at most 100
    assert emu.requests == 4


async def test_creates_nested_folders_up_to_the_depth_limit(
    emu: ContentstackEmulator, conn: ContentstackConnector
) -> None:
    parent: str | None = None
    for level in range(1, 6):
        folder = await conn.create_folder(parent, f"level {level}")
        assert folder.path == tuple(f"level {n}" for n in range(1, level + 1))
        assert emu.folders[folder.source_id]["parent_uid"] == parent
        parent = folder.source_id
    with pytest.raises(ItemError, match="nested only up to 5") as info:
        await conn.create_folder(parent, "level 6")
    assert info.value.status == 422
    assert len(emu.folders) == 5
    listed = [f async for f in conn.iter_folders()]
    assert len(listed) == 5


async def test_folder_count_limit_is_an_item_error(tmp_path: Path) -> None:
    emu = ContentstackEmulator(
        api_key=API_KEY, management_token=TOKEN, rate_limit=None, max_folders=2
    )
    try:
        async with connector(emu) as conn:
            await conn.create_folder(None, "a")
            await conn.create_folder(None, "b")
            with pytest.raises(ItemError, match="maximum of 2 folders"):
                await conn.create_folder(None, "c")
    finally:
        emu.close()


async def test_upload_then_download_returns_the_same_bytes(
    emu: ContentstackEmulator, conn: ContentstackConnector, tmp_path: Path
) -> None:
    folder = await conn.create_folder(None, "Press kit")
    data = bytes(range(256)) * 1000
    meta = AssetMeta(title="Logo", description="The logo, large", tags=("brand", "2024"))
    ref = await conn.upload(
        request("logo #1.bin", folder.source_id, meta), stage(tmp_path, data), Journal()
    )

    record = emu.assets[ref.target_id]
    assert record["filename"] == "logo__1.bin"  # the API rewrites restricted characters
    assert record["parent_uid"] == folder.source_id
    assert (record["title"], record["description"]) == ("Logo", "The logo, large")
    assert record["tags"] == ["brand", "2024"]
    assert emu.blob(ref.target_id) == data

    async with connector(emu) as fresh:
        [asset] = [a async for a in fresh.iter_assets()]
        assert asset.source_id == ref.target_id
        assert asset.url == ref.url
        assert asset.folder_path == ("Press kit",)
        assert asset.size == len(data)
        assert asset.meta == meta
        assert await read(fresh, asset) == data
    assert emu.credential_leaks == []


async def test_replace_keeps_the_uid_and_swaps_the_bytes(
    emu: ContentstackEmulator, conn: ContentstackConnector, tmp_path: Path
) -> None:
    uid = emu.add_asset("notes.txt", b"old", title="Notes")
    ref = await conn.replace(
        uid, request("notes.txt", meta=AssetMeta(title="Notes v2")),
        stage(tmp_path, b"new bytes"), Journal(),
    )
    assert ref.target_id == uid
    assert emu.blob(uid) == b"new bytes"
    assert emu.assets[uid]["title"] == "Notes v2"
    [asset] = [a async for a in conn.iter_assets()]
    assert asset.size == len(b"new bytes")
    assert asset.version == "2"
    assert await read(conn, asset) == b"new bytes"
    assert emu.credential_leaks == []


async def test_update_metadata_sets_title_description_and_tags(
    emu: ContentstackEmulator, conn: ContentstackConnector
) -> None:
    uid = emu.add_asset("a.txt", b"a", title="A", description="old", tags=["x"])
    await conn.update_metadata(uid, AssetMeta(title="New A", description="new", tags=("y", "z")))
    record = emu.assets[uid]
    assert (record["title"], record["description"], record["tags"]) == ("New A", "new", ["y", "z"])
    await conn.update_metadata(uid, AssetMeta())  # clears description and tags, keeps title
    record = emu.assets[uid]
    assert (record["title"], record["description"], record["tags"]) == ("New A", "", [])


async def test_delete_removes_the_asset_and_tolerates_a_second_delete(
    emu: ContentstackEmulator, conn: ContentstackConnector
) -> None:
    uid = emu.add_asset("gone.txt", b"x")
    keep = emu.add_asset("kept.txt", b"y")
    await conn.delete(uid)
    assert set(emu.assets) == {keep}
    await conn.delete(uid)  # already gone: done
    assert set(emu.assets) == {keep}


async def test_find_asset_by_folder_stored_name_and_size(
    emu: ContentstackEmulator, conn: ContentstackConnector, tmp_path: Path
) -> None:
    folder = emu.add_folder("Uploads")
    ref = await conn.upload(
        request("my photo #1.txt", folder), stage(tmp_path, b"12345"), Journal()
    )
    emu.add_asset("my photo #1.txt", b"12345")  # same name and size, but at the root
    other = emu.add_folder("Other")
    emu.add_asset("my photo #1.txt", b"12345", parent_uid=other)

    found = await conn.find_asset(folder, "my photo #1.txt", 5)
    assert found is not None
    assert found.target_id == ref.target_id
    assert await conn.find_asset(folder, "my photo #1.txt", 6) is None
    assert await conn.find_asset(folder, "someone else.txt", 5) is None
    at_root = await conn.find_asset(None, "my photo #1.txt", 5)
    assert at_root is not None
    assert emu.assets[at_root.target_id]["parent_uid"] is None


async def test_ambiguous_upload_is_reconciled_with_find_asset(
    emu: ContentstackEmulator, conn: ContentstackConnector, tmp_path: Path
) -> None:
    emu.faults = Faults(error_after_commit_rate=1.0)
    with pytest.raises(AmbiguousError):
        await conn.upload(request("report.txt"), stage(tmp_path, b"report"), Journal())
    assert len(emu.assets) == 1  # it did take effect
    emu.faults = Faults()
    found = await conn.find_asset(None, "report.txt", 6)
    assert found is not None
    assert found.target_id in emu.assets


async def test_wrong_api_key_and_wrong_token_are_auth_errors(emu: ContentstackEmulator) -> None:
    async with connector(emu, api_key="bltwrong") as conn:
        with pytest.raises(AuthError, match="api_key is not valid") as info:
            [f async for f in conn.iter_folders()]
        assert info.value.status == 412
    async with connector(emu, management_token="not-the-token") as conn:
        with pytest.raises(AuthError, match="refused the management_token") as info:
            [a async for a in conn.iter_assets()]
        assert "not-the-token" not in str(info.value)


async def test_authtoken_is_accepted(tmp_path: Path) -> None:
    emu = ContentstackEmulator(
        api_key=API_KEY, management_token=None, authtoken="user-session", rate_limit=None
    )
    try:
        emu.add_asset("a.txt", b"a")
        async with connector(emu, management_token=None, authtoken="user-session") as conn:
            assert len([a async for a in conn.iter_assets()]) == 1
    finally:
        emu.close()


@pytest.mark.real_waits
async def test_listing_survives_the_emulators_rate_limit() -> None:
    emu = ContentstackEmulator(api_key=API_KEY, management_token=TOKEN, rate_limit=2.0)
    try:
        for i in range(250):
            emu.add_asset(f"f{i}.txt", b"x")
        async with connector(emu) as conn:  # paced far above the emulator's limit
            assets = [a async for a in conn.iter_assets()]
        assert len(assets) == 250
        assert len({a.source_id for a in assets}) == 250
    finally:
        emu.close()
