"""Listings you can trust, per connector: an editor deletes an asset between two pages of our
listing (through the API's own DELETE), and every asset still there is listed, once; the
direct read that prune relies on tells gone from present."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest

from connectors.base import Capabilities
from connectors.contentstack import ContentstackConfig, ContentstackConnector
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from connectors.errors import ItemError
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.storyblok import StoryblokConfig, StoryblokConnector
from connectors.storyblok.emulator import StoryblokEmulator
from connectors.webflow import WebflowConfig, WebflowConnector
from connectors.webflow.emulator import WebflowEmulator
from tests.connectors.editing import EditBetweenPages

SPACE = 288868932106293
SB_TOKEN = "sb-listing-token"
SB = "http://sb.emulator"
CS_KEY = "blt0123456789abcdef"
CS_TOKEN = "cs-listing-token"
CS = "http://cs.emulator"
WF_SITE = "6390c49674a71f84b51a08d8"
WF_TOKEN = "wf-listing-token"
WF_LOCALE = "65427cf400e02b306eaa04a0"
WF = "http://wf.emulator"


@pytest.fixture
def sb() -> Iterator[StoryblokEmulator]:
    emulator = StoryblokEmulator(space_id=SPACE, token=SB_TOKEN, rate_limit=None)
    yield emulator
    emulator.close()


@pytest.fixture
def cs() -> Iterator[ContentstackEmulator]:
    emulator = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    yield emulator
    emulator.close()


@pytest.fixture
def wf() -> Iterator[WebflowEmulator]:
    emulator = WebflowEmulator(site_id=WF_SITE, token=WF_TOKEN, locales=(WF_LOCALE,),
                               rate_limit_per_minute=None)
    yield emulator
    emulator.close()


def webflow(transport: httpx.AsyncBaseTransport) -> WebflowConnector:
    config = WebflowConfig.model_validate({
        "connector": "webflow", "site_id": WF_SITE, "token": WF_TOKEN, "base_url": WF,
        "rate_limit_per_minute": 60_000, "locales": {"de": WF_LOCALE}})
    return WebflowConnector(config, transport=transport)


def storyblok(transport: httpx.AsyncBaseTransport) -> StoryblokConnector:
    config = StoryblokConfig.model_validate({
        "connector": "storyblok", "space_id": SPACE, "token": SB_TOKEN, "base_url": SB,
        "requests_per_second": 1000})
    return StoryblokConnector(config, transport=transport)


def contentstack(transport: httpx.AsyncBaseTransport) -> ContentstackConnector:
    config = ContentstackConfig.model_validate({
        "connector": "contentstack", "api_key": CS_KEY, "management_token": CS_TOKEN,
        "base_url": CS, "requests_per_second": 1000})
    return ContentstackConnector(config, transport=transport)


def sb_first_page(request: httpx.Request) -> bool:
    return (request.method == "GET" and request.url.path.endswith("/assets/")
            and request.url.params.get("page", "1") == "1")


def cs_first_page(request: httpx.Request) -> bool:
    return (request.method == "GET" and request.url.path == "/v3/assets"
            and "query" not in request.url.params and request.url.params.get("skip") == "0")


def wf_first_page(listing: str) -> Callable[[httpx.Request], bool]:
    """The first page of ``listing`` (``assets``, ``asset_folders``) in the primary locale."""
    def matches(request: httpx.Request) -> bool:
        return (request.method == "GET" and request.url.path.endswith(f"/{listing}")
                and "localeId" not in request.url.params
                and request.url.params.get("offset") == "0")
    return matches


def sb_delete(asset_id: int) -> httpx.Request:
    return httpx.Request("DELETE", f"{SB}/v1/spaces/{SPACE}/assets/{asset_id}",
                         headers={"authorization": SB_TOKEN})


def cs_delete(uid: str) -> httpx.Request:
    return httpx.Request("DELETE", f"{CS}/v3/assets/{uid}",
                         headers={"api_key": CS_KEY, "authorization": CS_TOKEN})


@pytest.mark.parametrize("which", ["newest", "an early one"])
async def test_storyblok_listing_survives_a_deletion_between_pages(
    sb: StoryblokEmulator, which: str
) -> None:
    ids = [sb.add_asset(f"a{i:03d}.txt", f"{i}".encode()) for i in range(150)]
    doomed = ids[-1] if which == "newest" else ids[5]
    editor = EditBetweenPages(in_process_transport(sb.app), is_first_page=sb_first_page,
                              edit=sb_delete(doomed))
    async with storyblok(editor) as conn:
        listed = [a.source_id async for a in conn.iter_assets()]
    assert editor.edited == 200
    live = {str(i) for i in ids if i != doomed}
    assert live <= set(listed), f"missed: {sorted(live - set(listed))}"
    assert len(listed) == len(set(listed)), "each asset once"


async def test_contentstack_listing_survives_a_deletion_between_pages(
    cs: ContentstackEmulator,
) -> None:
    uids = [cs.add_asset(f"a{i:03d}.txt", f"{i}".encode()) for i in range(150)]
    editor = EditBetweenPages(in_process_transport(cs.app), is_first_page=cs_first_page,
                              edit=cs_delete(uids[5]))
    async with contentstack(editor) as conn:
        listed = [a.source_id async for a in conn.iter_assets()]
    assert editor.edited == 200
    live = set(uids) - {uids[5]}
    assert live <= set(listed), f"missed: {sorted(live - set(listed))}"
    assert len(listed) == len(set(listed)), "each asset once"


@pytest.mark.parametrize("which", ["newest", "an early one"])
async def test_webflow_listing_survives_a_deletion_between_pages(
    wf: WebflowEmulator, which: str
) -> None:
    """The per-locale alt texts stay with their assets even when the deletion shifts the
    locale's page against the primary one."""
    ids = [wf.add_asset(f"a{i:03d}.png", f"{i}".encode(), alt=f"alt {i}",
                        alt_by_locale={WF_LOCALE: f"Alt {i}"} if i % 3 == 0 else None)
           for i in range(150)]
    doomed = ids[-1] if which == "newest" else ids[5]
    editor = EditBetweenPages(
        in_process_transport(wf.app), is_first_page=wf_first_page("assets"),
        edit=httpx.Request("DELETE", f"{WF}/v2/assets/{doomed}",
                           headers={"authorization": f"Bearer {WF_TOKEN}"}))
    async with aclosing(webflow(editor)) as conn:
        listed = [a async for a in conn.iter_assets()]
    assert editor.edited == 204
    got = [a.source_id for a in listed]
    live = set(ids) - {doomed}
    assert live <= set(got), f"missed: {sorted(live - set(got))}"
    assert len(got) == len(set(got)), "each asset once"
    for asset in listed:
        i = ids.index(asset.source_id)
        assert asset.meta.alt_text == f"alt {i}"
        expected = {"de": f"Alt {i}"} if i % 3 == 0 else {}
        assert {code: text.alt_text for code, text in asset.meta.locales.items()} == expected


async def test_webflow_folder_listing_survives_a_folder_created_between_pages(
    wf: WebflowEmulator,
) -> None:
    names = [f"f{i:03d}" for i in range(150)]
    for name in names:
        wf.add_folder(name)
    editor = EditBetweenPages(
        in_process_transport(wf.app), is_first_page=wf_first_page("asset_folders"),
        edit=httpx.Request("POST", f"{WF}/v2/sites/{WF_SITE}/asset_folders",
                           json={"displayName": "late"},
                           headers={"authorization": f"Bearer {WF_TOKEN}"}))
    async with aclosing(webflow(editor)) as conn:
        listed = [f.name async for f in conn.iter_folders()]
    assert editor.edited in (200, 201)
    assert set(names) <= set(listed)
    assert len(listed) == len(set(listed)), "each folder once"


async def test_storyblok_direct_read_tells_gone_from_present(sb: StoryblokEmulator) -> None:
    kept, deleted = sb.add_asset("kept.png", b"k"), sb.add_asset("gone.png", b"g")
    sb.assets[deleted]["deleted_at"] = "2026-11-29T10:00:00.000Z"   # soft-deleted
    async with storyblok(in_process_transport(sb.app)) as conn:
        assert Capabilities.of(conn).asset_exists
        assert await conn.asset_exists(str(kept)) is True
        assert await conn.asset_exists(str(deleted)) is False
        assert await conn.asset_exists("999") is False
        with pytest.raises(ItemError, match="not a Storyblok asset id"):
            await conn.asset_exists("abc")


async def test_contentstack_direct_read_tells_gone_from_present(cs: ContentstackEmulator) -> None:
    kept = cs.add_asset("kept.png", b"k")
    folder = cs.add_folder("Folder")
    async with contentstack(in_process_transport(cs.app)) as conn:
        assert Capabilities.of(conn).asset_exists
        assert await conn.asset_exists(kept) is True
        assert await conn.asset_exists("bltgone000000000") is False
        assert await conn.asset_exists(folder) is False, "a folder is not the asset"


async def test_local_direct_read_tells_gone_from_present(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    async with LocalFolderConnector(LocalConfig(connector="local", path=tmp_path)) as conn:
        assert Capabilities.of(conn).asset_exists
        assert await conn.asset_exists("sub/a.txt") is True
        assert await conn.asset_exists("sub/b.txt") is False
        assert await conn.asset_exists("sub") is False, "a folder is not an asset"
        with pytest.raises(ItemError):
            await conn.asset_exists("../outside.txt")
