"""Contentstack Delivery API source: cassettes from the CDA docs' samples and recorded traffic
shapes, fakes for misbehaviour, and the delivery endpoints of the Contentstack emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from pydantic import ValidationError

from connectors.base import Asset
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.contentstack_delivery import (
    ContentstackDeliveryConfig,
    ContentstackDeliveryConnector,
)
from connectors.contentstack_delivery.connector import FLAT_NOTE
from connectors.emulation import in_process_transport
from connectors.errors import AuthError, ConfigError, MalformedResponseError

CASSETTES = Path(__file__).parent.parent / "cassettes" / "contentstack_delivery"
API_KEY = "blt0123456789abcdef"
DELIVERY = "cs-delivery-test-token-91c2"
MANAGEMENT = "cs-management-test-token-4b7e"

cda_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["api_key", "access_token"],
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


def config(**overrides: Any) -> ContentstackDeliveryConfig:
    values: dict[str, Any] = {"connector": "contentstack-delivery", "api_key": API_KEY,
                              "delivery_token": DELIVERY, "environment": "production",
                              "requests_per_second": 1000.0}
    values.update(overrides)
    return ContentstackDeliveryConfig.model_validate(values)


async def listed(conn: ContentstackDeliveryConnector) -> dict[str, Asset]:
    return {a.source_id: a async for a in conn.iter_assets()}


# -- cassettes ----------------------------------------------------------------------------


async def test_doc_sample_assets_with_float_dimensions_and_publish_details() -> None:
    conn = ContentstackDeliveryConnector(config())
    with cda_vcr.use_cassette("list.yaml") as cassette:
        assets = await listed(conn)
        assert cassette.all_played
    await conn.aclose()
    assert list(assets) == ["blt41cb1c94d363d824", "bltaf7230686bd6513c", "blt19c34e5374418484"]
    logo = assets["blt41cb1c94d363d824"]
    assert logo.filename == "Samsung_Logo.png"
    assert logo.size == 3780
    assert (logo.width, logo.height) == (91, 30), "30.223 x 91.026 rounded"
    assert logo.folder_path == ()
    assert logo.notes == (FLAT_NOTE,)
    assert logo.extra["publish_environment"] == "blta39a4441696e35e0"
    assert logo.extra["publish_locale"] == "en-us"
    assert logo.extra["publish_time"] == "2019-08-19T12:28:47.432Z"
    assert logo.version == "1"
    assert logo.url is not None
    assert logo.url.startswith("https://images.contentstack.io/v3/assets/")
    assert assets["blt19c34e5374418484"].size == 69609
    assert [f async for f in conn.iter_folders()] == []


async def test_an_asset_listed_once_per_locale_becomes_one_with_overrides() -> None:
    conn = ContentstackDeliveryConnector(config(region="eu", branch="develop"))
    with cda_vcr.use_cassette("locales.yaml") as cassette:
        assets = await listed(conn)
        assert cassette.all_played
    await conn.aclose()
    assert sorted(assets) == ["blt89aa0000000000a1", "blt90bb0000000000b2"]
    shoes = assets["blt89aa0000000000a1"]
    assert shoes.meta.title == "Spring sale"
    assert shoes.meta.tags == ("spring",)
    assert shoes.meta.locales["de-de"].title == "Frühlingsangebot"
    assert shoes.meta.locales["de-de"].description == "Schuhe auf einem Tisch"
    assert shoes.extra["publish_locale"] == "en-us"
    assert assets["blt90bb0000000000b2"].meta.locales == {}
    assert (assets["blt90bb0000000000b2"].width, assets["blt90bb0000000000b2"].height) == (
        None, None)


async def test_a_refused_delivery_token_is_fatal_and_names_the_keys() -> None:
    conn = ContentstackDeliveryConnector(config())
    with cda_vcr.use_cassette("unauthorized.yaml"), pytest.raises(AuthError) as exc:
        await listed(conn)
    await conn.aclose()
    assert "delivery_token" in str(exc.value)
    assert "production" in str(exc.value)
    assert DELIVERY not in str(exc.value)


def test_config_uses_the_delivery_hosts_and_needs_an_environment() -> None:
    assert config().api_base() == "https://cdn.contentstack.io/v3/"
    assert config(region="azure-eu").api_base() == "https://azure-eu-cdn.contentstack.com/v3/"
    assert config(base_url="http://127.0.0.1:5/v3/").api_base() == "http://127.0.0.1:5/v3/"
    assert config(locale=" EN-us ").locale == "en-us"
    with pytest.raises(ValidationError, match="environment"):
        ContentstackDeliveryConfig.model_validate(
            {"connector": "contentstack-delivery", "api_key": API_KEY,
             "delivery_token": DELIVERY})
    with pytest.raises(ValidationError, match="management_token"):
        config(management_token="x")


# -- fakes --------------------------------------------------------------------------------


def record(uid: str, locale: str = "en-us") -> dict[str, Any]:
    return {"uid": uid, "filename": f"{uid}.png", "file_size": "10", "content_type": "image/png",
            "url": f"https://images.contentstack.io/v3/assets/k/{uid}/u/{uid}.png",
            "publish_details": {"environment": "e", "locale": locale}}


def fake(body: Any) -> ContentstackDeliveryConnector:
    return ContentstackDeliveryConnector(
        config(), transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))


async def test_the_same_asset_twice_in_one_locale_is_an_error() -> None:
    conn = fake({"assets": [record("a"), record("a")], "count": 2})
    with pytest.raises(MalformedResponseError, match="twice"):
        await listed(conn)
    await conn.aclose()


async def test_a_page_beyond_the_announced_count_is_an_error() -> None:
    conn = fake({"assets": [record("a"), record("b")], "count": 1})
    with pytest.raises(MalformedResponseError, match="announced"):
        await listed(conn)
    await conn.aclose()


# -- the emulator: publish through the management API, read through delivery --------------


@pytest.fixture
def emu() -> Iterator[ContentstackEmulator]:
    e = ContentstackEmulator(api_key=API_KEY, management_token=MANAGEMENT, rate_limit=None,
                             delivery_tokens={DELIVERY: "production", "cs-dev": "development"},
                             fallback_locales={"de-ch": "de-de"})
    yield e
    e.close()


def cma(emu: ContentstackEmulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=in_process_transport(emu.app), base_url="http://cma",
                             headers={"api_key": API_KEY, "authorization": MANAGEMENT})


def delivery(emu: ContentstackEmulator, **overrides: Any) -> ContentstackDeliveryConnector:
    return ContentstackDeliveryConnector(config(base_url="http://cdn", **overrides),
                                         transport=in_process_transport(emu.delivery_app))


async def read_all(emu: ContentstackEmulator, **overrides: Any) -> dict[str, Asset]:
    conn = delivery(emu, **overrides)
    try:
        return await listed(conn)
    finally:
        await conn.aclose()


async def publish(c: httpx.AsyncClient, uid: str, env: str = "production",
                  locales: tuple[str, ...] = ("en-us",)) -> None:
    r = await c.post(f"/v3/assets/{uid}/publish",
                     json={"asset": {"environments": [env], "locales": list(locales)}})
    assert r.status_code == 200, r.text


async def test_only_what_is_published_to_the_environment_is_read(
    emu: ContentstackEmulator,
) -> None:
    shown = emu.add_asset("shown.png", b"\x89PNG shown", title="Shown", description="yes")
    hidden = emu.add_asset("draft.png", b"draft bytes", title="Draft")
    elsewhere = emu.add_asset("dev.txt", b"dev only", title="Dev")
    async with cma(emu) as c:
        await publish(c, shown)
        await publish(c, elsewhere, env="development")
        conn = delivery(emu)
        assets = await listed(conn)
        assert list(assets) == [shown], "unpublished and other-environment assets stay unread"
        async with conn.open_asset(assets[shown]) as chunks:
            assert b"".join([x async for x in chunks]) == b"\x89PNG shown"
        assert hidden not in assets
        # an edit after publishing is not delivered until published again
        r = await c.put(f"/v3/assets/{shown}", json={"asset": {"title": "Edited"}})
        assert r.status_code == 200
        assert (await listed(conn))[shown].meta.title == "Shown"
        await publish(c, shown)
        assert (await listed(conn))[shown].meta.title == "Edited"
        r = await c.post(f"/v3/assets/{shown}/unpublish",
                         json={"asset": {"environments": ["production"], "locales": ["en-us"]}})
        assert r.status_code == 200
        assert await listed(conn) == {}
        await conn.aclose()
    assert emu.credential_leaks == []


async def test_a_replaced_file_is_delivered_in_its_published_version(
    emu: ContentstackEmulator,
) -> None:
    uid = emu.add_asset("v.txt", b"version one", title="v")
    emu.publish(uid, ["production"])
    async with cma(emu) as c:
        r = await c.put(f"/v3/assets/{uid}", files={"asset[upload]": ("v.txt", b"version two!")})
        assert r.status_code == 200, r.text
    conn = delivery(emu)
    asset = (await listed(conn))[uid]
    assert asset.size == len(b"version one")
    async with conn.open_asset(asset) as chunks:
        assert b"".join([x async for x in chunks]) == b"version one"
    await conn.aclose()


async def test_locale_and_fallback(emu: ContentstackEmulator) -> None:
    uid = emu.add_asset("l.png", b"l", title="L")
    emu.publish(uid, ["production"], ["de-de"])
    assert await read_all(emu) == {}, "not in the master locale"
    assert await read_all(emu, locale="de-ch") == {}
    got = await read_all(emu, locale="de-ch", include_fallback=True)
    assert got[uid].extra["publish_locale"] == "de-de"


async def test_a_token_of_another_environment_is_refused_with_a_clear_message(
    emu: ContentstackEmulator,
) -> None:
    conn = delivery(emu, delivery_token="cs-dev")
    with pytest.raises(ConfigError, match="environment = 'production'"):
        await listed(conn)
    await conn.aclose()
    conn = delivery(emu, delivery_token="wrong")
    with pytest.raises(AuthError, match="delivery_token"):
        await listed(conn)
    await conn.aclose()


async def test_asset_exists_means_still_published(emu: ContentstackEmulator) -> None:
    uid = emu.add_asset("p.png", b"p", title="P")
    emu.publish(uid, ["production"])
    conn = delivery(emu)
    assert await conn.asset_exists(uid) is True
    emu.assets[uid]["publish_details"] = []  # unpublished
    assert await conn.asset_exists(uid) is False
    assert await conn.asset_exists("bltmissing") is False
    await conn.aclose()
