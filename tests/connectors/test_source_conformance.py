"""One suite for every connector as a source: the Source contract, run against each.

Each factory seeds the same small library (through the emulator's seeding helpers, or files on
disk) and opens the connector on it. What a source cannot tell is declared, not skipped:
Contento knows only the folders the job file names (here: one of the two) and sizes only as
estimates; the Contentstack Delivery API exposes no folders at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.base import Source
from connectors.contento import ContentoConfig, ContentoConnector
from connectors.contento.emulator import ContentoEmulator
from connectors.contentstack.config import ContentstackConfig
from connectors.contentstack.connector import ContentstackConnector
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.contentstack_delivery import (
    ContentstackDeliveryConfig,
    ContentstackDeliveryConnector,
)
from connectors.emulation import in_process_transport
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow import WebflowConfig, WebflowConnector
from connectors.webflow.demo import seed as seed_webflow
from connectors.webflow.emulator import WebflowEmulator
from pipeline.samples import SampleFile, write_local_library

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
       b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")
LIBRARY = [
    SampleFile((), "root.txt", b"at the root\n" * 50, "text/plain", title="Root"),
    SampleFile(("Brand",), "logo.png", PNG, "image/png", title="Logo"),
    SampleFile(("Brand", "Heroes"), "hero one.png", PNG + b"\x00" * 3000, "image/png",
               title="Hero"),
    SampleFile(("Docs",), "guide.txt", b"x" * 70_000, "text/plain", title="Guide"),
]


@dataclass(frozen=True)
class Opened:
    source: Source
    folders: frozenset[tuple[str, ...]] | None
    """The folder paths this source can tell; ``None``: all of them."""
    leaks: Callable[[], list[str]]


Factory = Callable[[Path], AbstractAsyncContextManager[Opened]]


@asynccontextmanager
async def local(tmp_path: Path) -> AsyncIterator[Opened]:
    write_local_library(tmp_path / "lib", LIBRARY)
    conn = LocalFolderConnector(LocalConfig(connector="local", path=tmp_path / "lib"),
                                role="source")
    try:
        yield Opened(conn, None, list)
    finally:
        await conn.aclose()


@asynccontextmanager
async def contentstack(tmp_path: Path) -> AsyncIterator[Opened]:
    emu = ContentstackEmulator(rate_limit=None)
    ids: dict[tuple[str, ...], str | None] = {(): None}
    for f in LIBRARY:
        for depth in range(1, len(f.folder) + 1):
            if f.folder[:depth] not in ids:
                ids[f.folder[:depth]] = emu.add_folder(f.folder[depth - 1],
                                                       ids[f.folder[:depth - 1]])
        emu.add_asset(f.name, f.data, parent_uid=ids[f.folder], title=f.title,
                      content_type=f.content_type)
    cfg = ContentstackConfig(connector="contentstack", api_key=emu.api_key,
                             management_token=SecretStr("cs-emulator-token"),
                             base_url="http://cs.emulator", requests_per_second=1000)
    conn = ContentstackConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield Opened(conn, None, lambda: emu.credential_leaks)
    finally:
        await conn.aclose()
        emu.close()


@asynccontextmanager
async def storyblok(tmp_path: Path) -> AsyncIterator[Opened]:
    emu = StoryblokEmulator(rate_limit=None)
    ids: dict[tuple[str, ...], int | None] = {(): None}
    for f in LIBRARY:
        for depth in range(1, len(f.folder) + 1):
            if f.folder[:depth] not in ids:
                ids[f.folder[:depth]] = emu.add_folder(f.folder[depth - 1],
                                                       ids[f.folder[:depth - 1]])
        emu.add_asset(f.name, f.data, folder_id=ids[f.folder], title=f.title,
                      content_type=f.content_type)
    cfg = StoryblokConfig(connector="storyblok", space_id=emu.space_id,
                          token=SecretStr("sb-emulator-token"), base_url="http://sb.emulator",
                          requests_per_second=1000)
    conn = StoryblokConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield Opened(conn, None, lambda: emu.credential_leaks)
    finally:
        await conn.aclose()
        emu.close()


@asynccontextmanager
async def contento(tmp_path: Path) -> AsyncIterator[Opened]:
    emu = ContentoEmulator(rate_limit=None)
    heroes = emu.add_folder("Heroes")
    docs = emu.add_folder("Docs")
    for f in LIBRARY:
        folder = {("Brand", "Heroes"): heroes, ("Docs",): docs}.get(f.folder)
        emu.add_asset(f.name, f.data, name=f.title, folder_id=folder,
                      content_type=f.content_type)
    # the job file names one folder only: the rest lands at the root
    cfg = ContentoConfig(connector="contento", site_id=emu.site_id,
                         token=SecretStr("contento-emulator-token"),
                         base_url="http://ct.emulator/api", requests_per_second=1000,
                         folders={heroes: "Brand/Heroes"})
    conn = ContentoConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield Opened(conn, frozenset({("Brand", "Heroes")}), lambda: emu.credential_leaks)
    finally:
        await conn.aclose()
        emu.close()


@asynccontextmanager
async def contentstack_delivery(tmp_path: Path) -> AsyncIterator[Opened]:
    emu = ContentstackEmulator(rate_limit=None)
    folder = emu.add_folder("Brand")
    for f in LIBRARY:
        uid = emu.add_asset(f.name, f.data, parent_uid=folder if f.folder else None,
                            title=f.title, content_type=f.content_type)
        emu.publish(uid, ["production"])
    cfg = ContentstackDeliveryConfig(connector="contentstack-delivery", api_key=emu.api_key,
                                     delivery_token=SecretStr("cs-delivery-token"),
                                     environment="production", base_url="http://cdn.emulator",
                                     requests_per_second=1000)
    conn = ContentstackDeliveryConnector(cfg, transport=in_process_transport(emu.delivery_app))
    try:
        yield Opened(conn, frozenset(), lambda: emu.credential_leaks)
    finally:
        await conn.aclose()
        emu.close()


@asynccontextmanager
async def webflow(tmp_path: Path) -> AsyncIterator[Opened]:
    emu = WebflowEmulator(rate_limit_per_minute=None)
    seed_webflow(emu, LIBRARY)
    cfg = WebflowConfig(connector="webflow", site_id=emu.site_id,
                        token=SecretStr("wf-emulator-token"), base_url="http://wf.emulator",
                        rate_limit_per_minute=60_000)
    conn = WebflowConnector(cfg, transport=in_process_transport(emu.app))
    try:
        yield Opened(conn, None, lambda: emu.credential_leaks)
    finally:
        await conn.aclose()
        emu.close()


SOURCES = {"local": local, "contentstack": contentstack, "storyblok": storyblok,
           "contento": contento, "contentstack-delivery": contentstack_delivery,
           "webflow": webflow}


@pytest.fixture(params=sorted(SOURCES))
def make(request: pytest.FixtureRequest) -> Factory:
    return SOURCES[request.param]


def stored_name(name: str) -> str:
    # Contentstack stores filenames with whitespace as "_"; other sources keep them
    return name.replace(" ", "_")


async def test_every_asset_once_with_its_bytes_size_title_and_a_known_folder(
    make: Factory, tmp_path: Path,
) -> None:
    async with make(tmp_path) as opened:
        src = opened.source
        folders = {f.path: f async for f in src.iter_folders()}
        assets = [a async for a in src.iter_assets()]
        again = sorted([a.source_id async for a in src.iter_assets()])
        assert sorted(a.source_id for a in assets) == again, "listing twice gives the same"
        assert len({a.source_id for a in assets}) == len(assets) == len(LIBRARY)
        by_name = {stored_name(a.filename): a for a in assets}
        assert set(by_name) == {stored_name(f.name) for f in LIBRARY}
        for f in LIBRARY:
            asset = by_name[stored_name(f.name)]
            async with src.open_asset(asset) as chunks:
                data = b"".join([c async for c in chunks])
            assert data == f.data, f.name
            if asset.size is not None:
                assert asset.size == len(f.data)
            else:
                assert asset.size_estimate is not None, "a size or at least an estimate"
                assert abs(asset.size_estimate - len(f.data)) <= len(f.data) * 0.01 + 1024
            assert asset.meta.title in (f.title, None)
            expected = f.folder if opened.folders is None or f.folder in opened.folders else ()
            assert asset.folder_path == expected, f.name
            assert asset.folder_path == () or asset.folder_path in folders
        for path, folder in folders.items():
            assert folder.path == path
            assert folder.parent_id is None or folder.parent_id in {
                f.source_id for f in folders.values()}
        assert opened.leaks() == [], "downloads carry no credentials"


async def test_what_a_source_cannot_tell_is_said_in_its_notes(
    make: Factory, tmp_path: Path,
) -> None:
    async with make(tmp_path) as opened:
        assets = [a async for a in opened.source.iter_assets()]
        if opened.folders is None:
            assert all(not a.notes for a in assets), "nothing to explain"
        else:
            assert all(a.notes for a in assets), "each asset says where its folder came from"
