"""One suite for every writable connector: the Target contract, run against each.

Each API connector talks to its emulator in-process; the local folder to a temp dir. A test
that needs an optional capability asks Capabilities.of() and is skipped with the reason when a
connector lacks it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.base import (
    Asset,
    AssetMeta,
    Capabilities,
    LocalizedText,
    SupportsDelete,
    SupportsFindAsset,
    SupportsReadAsset,
    SupportsReplace,
    SupportsUpdateMetadata,
    Target,
    UploadRequest,
)
from connectors.contentstack.config import ContentstackConfig
from connectors.contentstack.connector import ContentstackConnector
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow import WebflowConfig, WebflowConnector
from connectors.webflow.emulator import WebflowEmulator
from tests.connectors.staging import MemoryJournal, stage_bytes

WF_LOCALE = "65427cf400e02b306eaa04a0"

Factory = Callable[[Path], AbstractAsyncContextManager[Target]]
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
       b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


@asynccontextmanager
async def local(tmp_path: Path) -> AsyncIterator[Target]:
    conn = LocalFolderConnector(LocalConfig(connector="local", path=tmp_path / "target"),
                                role="target")
    try:
        yield conn
    finally:
        await conn.aclose()


@asynccontextmanager
async def contentstack(tmp_path: Path) -> AsyncIterator[Target]:
    emu = ContentstackEmulator(rate_limit=None)
    cfg = ContentstackConfig(connector="contentstack", api_key="blt0123456789abcdef",
                             management_token=SecretStr("cs-emulator-token"),
                             base_url="http://cs.emulator", requests_per_second=1000)
    conn = ContentstackConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield conn
    finally:
        await conn.aclose()
        emu.close()


@asynccontextmanager
async def storyblok(tmp_path: Path) -> AsyncIterator[Target]:
    emu = StoryblokEmulator(rate_limit=None)
    cfg = StoryblokConfig(connector="storyblok", space_id=emu.space_id,
                          token=SecretStr("sb-emulator-token"), base_url="http://sb.emulator",
                          requests_per_second=1000)
    conn = StoryblokConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield conn
    finally:
        await conn.aclose()
        emu.close()


@asynccontextmanager
async def webflow(tmp_path: Path) -> AsyncIterator[Target]:
    emu = WebflowEmulator(rate_limit_per_minute=None, locales=(WF_LOCALE,))
    cfg = WebflowConfig(connector="webflow", site_id=emu.site_id,
                        token=SecretStr("wf-emulator-token"), base_url="http://wf.emulator",
                        rate_limit_per_minute=60_000, locales={"de": WF_LOCALE})
    conn = WebflowConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield conn
    finally:
        await conn.aclose()
        emu.close()


TARGETS = {"local": local, "contentstack": contentstack, "storyblok": storyblok,
           "webflow": webflow}


@pytest.fixture(params=sorted(TARGETS))
def make(request: pytest.FixtureRequest) -> Factory:
    return TARGETS[request.param]


async def listed(conn: Target) -> dict[str, Asset]:
    return {a.source_id: a async for a in conn.iter_assets()}


async def read(conn: Target, asset: Asset) -> bytes:
    async with conn.open_asset(asset) as chunks:
        return b"".join([c async for c in chunks])


META = AssetMeta(title="Hero", description="The hero image", alt_text="A hero",
                 tags=("demo", "hero"), copyright="© us",
                 locales={"de": LocalizedText(alt_text="Ein Held")})


def expected_meta(conn: Target) -> AssetMeta:
    """What the target keeps of META: only the fields it declares."""
    keep = conn.limits.metadata_fields
    return AssetMeta(
        title=META.title if "title" in keep else None,
        description=META.description if "description" in keep else None,
        alt_text=META.alt_text if "alt_text" in keep else None,
        tags=META.tags if "tags" in keep else (),
        copyright=META.copyright if "copyright" in keep else None,
        locales=META.locales if "locales" in keep else {},
    )


async def test_folder_upload_list_and_read_back(make: Factory, tmp_path: Path) -> None:
    async with make(tmp_path) as conn:
        parent = await conn.create_folder(None, "Brand")
        child = await conn.create_folder(parent.source_id, "Logos")
        assert child.path == ("Brand", "Logos")
        folders = {f.path: f async for f in conn.iter_folders()}
        assert set(folders) == {("Brand",), ("Brand", "Logos")}
        assert folders[("Brand", "Logos")].parent_id == parent.source_id

        staged = stage_bytes(tmp_path, PNG, "image/png")
        request = UploadRequest("src-1", "hero.png", child.source_id, child.path, "image/png",
                                META)
        ref = await conn.upload(request, staged, MemoryJournal())
        assets = await listed(conn)
        assert list(assets) == [ref.target_id]
        asset = assets[ref.target_id]
        assert asset.filename == "hero.png"
        assert asset.folder_path == ("Brand", "Logos")
        assert asset.size == len(PNG)
        assert await read(conn, asset) == PNG
        got = asset.meta
        want = expected_meta(conn)
        assert (got.title, got.description, got.alt_text, sorted(got.tags), got.copyright) == (
            want.title, want.description, want.alt_text, sorted(want.tags), want.copyright)
        assert {k: v.alt_text for k, v in got.locales.items()} == {
            k: v.alt_text for k, v in want.locales.items()}


async def test_find_asset_reconciles_an_upload(make: Factory, tmp_path: Path) -> None:
    async with make(tmp_path) as conn:
        if not Capabilities.of(conn).find_asset:
            pytest.skip(f"{conn.name} cannot look for an asset")
        assert isinstance(conn, SupportsFindAsset)
        finder: SupportsFindAsset = conn
        folder = await conn.create_folder(None, "Docs")
        staged = stage_bytes(tmp_path, b"hello world", "text/plain")
        assert await finder.find_asset(folder.source_id, "note.txt", staged.size) is None
        ref = await conn.upload(UploadRequest("s", "note.txt", folder.source_id, folder.path,
                                              "text/plain", AssetMeta(title="n")),
                                staged, MemoryJournal())
        found = await finder.find_asset(folder.source_id, "note.txt", staged.size)
        assert found is not None
        assert found.target_id == ref.target_id
        assert await finder.find_asset(folder.source_id, "note.txt", staged.size + 1) is None
        assert await finder.find_asset(None, "note.txt", staged.size) is None


async def test_replace_update_and_delete(make: Factory, tmp_path: Path) -> None:
    async with make(tmp_path) as conn:
        caps = Capabilities.of(conn)
        if not (caps.replace and caps.update_metadata and caps.delete):
            pytest.skip(f"{conn.name} lacks replace/update/delete")
        assert isinstance(conn, SupportsReplace)
        replacer: SupportsReplace = conn
        assert isinstance(conn, SupportsUpdateMetadata)
        updater: SupportsUpdateMetadata = conn
        assert isinstance(conn, SupportsDelete)
        deleter: SupportsDelete = conn
        request = UploadRequest("s", "a.txt", None, (), "text/plain", AssetMeta(title="one"))
        ref = await conn.upload(request, stage_bytes(tmp_path, b"first", "text/plain"),
                                MemoryJournal())
        new = await replacer.replace(ref.target_id, request,
                                 stage_bytes(tmp_path, b"second version", "text/plain"),
                                 MemoryJournal())
        assert new.target_id == ref.target_id, "replace keeps the asset"
        await updater.update_metadata(ref.target_id, AssetMeta(title="two"))
        assets = await listed(conn)
        assert list(assets) == [ref.target_id]
        assert await read(conn, assets[ref.target_id]) == b"second version"
        assert assets[ref.target_id].meta.title == "two"
        await deleter.delete(ref.target_id)
        assert await listed(conn) == {}


async def test_update_metadata_and_delete(make: Factory, tmp_path: Path) -> None:
    """For every target that updates and deletes, replace or not (Webflow cannot replace)."""
    async with make(tmp_path) as conn:
        caps = Capabilities.of(conn)
        if not (caps.update_metadata and caps.delete):
            pytest.skip(f"{conn.name} lacks update/delete")
        assert isinstance(conn, SupportsUpdateMetadata)
        updater: SupportsUpdateMetadata = conn
        assert isinstance(conn, SupportsDelete)
        deleter: SupportsDelete = conn
        keep = conn.limits.metadata_fields
        request = UploadRequest("s", "b.txt", None, (), "text/plain",
                                AssetMeta(title="one", alt_text="one"))
        ref = await conn.upload(request, stage_bytes(tmp_path, b"bytes", "text/plain"),
                                MemoryJournal())
        await updater.update_metadata(ref.target_id, AssetMeta(title="two", alt_text="two"))
        [asset] = (await listed(conn)).values()
        got = (asset.meta.title if "title" in keep else "two",
               asset.meta.alt_text if "alt_text" in keep else "two")
        assert got == ("two", "two")
        assert await read(conn, asset) == b"bytes"
        await deleter.delete(ref.target_id)
        assert await listed(conn) == {}
        await deleter.delete(ref.target_id)  # gone already: fine


async def test_read_asset_shows_what_the_listing_shows(make: Factory, tmp_path: Path) -> None:
    """A direct read of one asset tells its change markers (version, size, update time) as
    the listing does: the pipeline compares it with the ledger's marker before a destructive
    write, as the plan compares the listing."""
    async with make(tmp_path) as conn:
        if not Capabilities.of(conn).read_asset:
            pytest.skip(f"{conn.name} cannot read one asset")
        assert isinstance(conn, SupportsReadAsset)
        reader: SupportsReadAsset = conn
        folder = await conn.create_folder(None, "Docs")
        ref = await conn.upload(UploadRequest("s", "r.txt", folder.source_id, folder.path,
                                              "text/plain", AssetMeta(title="r", alt_text="r")),
                                stage_bytes(tmp_path, b"read me", "text/plain"),
                                MemoryJournal())
        [asset] = (await listed(conn)).values()
        got = await reader.read_asset(ref.target_id)
        assert got is not None
        assert (got.source_id, got.filename, got.size, got.version, got.updated_at) == (
            asset.source_id, asset.filename, asset.size, asset.version, asset.updated_at)
        assert got.folder_path == ("Docs",), "folders listed in this process: its path"
        assert (got.meta.title, got.meta.alt_text) == (asset.meta.title, asset.meta.alt_text)
        if isinstance(conn, SupportsDelete):
            await conn.delete(ref.target_id)
            assert await reader.read_asset(ref.target_id) is None, "gone: None"
