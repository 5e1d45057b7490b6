"""Contento connector: cassettes from the docs' samples, fakes for misbehaviour, the emulator.

Cassettes (tests/cassettes/contento/) replay the ``/v1/assets`` page's sample responses with
``record_mode="none"``. Fakes use ``httpx.MockTransport`` and never run inside a cassette.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from pydantic import ValidationError

from connectors.base import Asset
from connectors.contento import ContentoConfig, ContentoConnector
from connectors.contento.connector import ROOT_NOTE, estimate_size, filename_of, pixels
from connectors.contento.emulator import ContentoEmulator, display_size
from connectors.contento.wire import WireAsset
from connectors.emulation import in_process_transport
from connectors.errors import AuthError, MalformedResponseError

CASSETTES = Path(__file__).parent.parent / "cassettes" / "contento"
SITE = "s_01jDSh2WkN8Kp6SvRA8Ne5CJ69"
TOKEN = "contento-test-token-5d1e"
HEROES = "af_01JdHeroesK8Np2WkN8Kp6SvRA"

ct_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization", "x-contento-site"],
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


def config(**overrides: Any) -> ContentoConfig:
    values: dict[str, Any] = {"connector": "contento", "site_id": SITE, "token": TOKEN,
                              "requests_per_second": 1000.0}
    values.update(overrides)
    return ContentoConfig.model_validate(values)


async def listed(conn: ContentoConnector) -> list[Asset]:
    return [a async for a in conn.iter_assets()]


# -- cassettes ----------------------------------------------------------------------------


async def test_doc_samples_folders_paging_and_the_bare_one_object_result() -> None:
    conn = ContentoConnector(config(folders={HEROES: "Marketing/Heroes"}))
    with ct_vcr.use_cassette("list_with_folder.yaml") as cassette:
        # the pipeline's order: the folders (which list the named folder), then the assets,
        # which reuse that listing: each recorded request is played once
        folders = [f async for f in conn.iter_folders()]
        assets = {a.source_id: a for a in await listed(conn)}
        assert cassette.all_played
    await conn.aclose()
    assert len(assets) == 3
    bird = assets["a_01jDpv3Enjh6AJFjNNJpM2kxg2"]
    assert bird.filename == "bird.jpg"
    assert bird.folder_path == ("Marketing", "Heroes")
    assert bird.folder_id == HEROES
    assert bird.size is None, "a display size is never taken as exact"
    assert bird.size_estimate == round(1.86 * 1024 * 1024)
    assert (bird.width, bird.height) == (4844, 3234)
    assert bird.meta.title == "Bird"
    assert bird.meta.description is not None
    assert bird.meta.description.startswith("A picture of a blue and green bird")
    assert bird.meta.alt_text == bird.meta.description, "an image's description is its alt"
    assert bird.content_type == "image/jpeg"
    assert bird.url == "https://assets.contento.io/assets/s_01jDSh2WkN8Kp6SvRA8Ne5CJ69/bird.jpg"
    assert any("[source.folders]" in n and HEROES in n for n in bird.notes)

    report = assets["a_01jDpw7Rq2Xn5VbT8cLm3Hs9Kd"]
    assert report.filename == "annual report 2024.pdf"
    assert report.folder_path == ()
    assert report.notes == (ROOT_NOTE,)
    assert (report.width, report.height) == (None, None)
    assert report.meta.description is None
    assert report.meta.alt_text is None
    assert report.size_estimate == round(412.5 * 1024)

    logo = assets["a_01jDq01LogoP4sW9xYz7Tn2Bv6"]  # the bare object of the last page
    assert (logo.width, logo.height) == (512, 256)
    assert logo.size_estimate == 18 * 1024
    assert [(f.path, f.source_id) for f in folders] == [
        (("Marketing",), "path:Marketing"), (("Marketing", "Heroes"), HEROES)]
    assert folders[1].parent_id == "path:Marketing"
    assert [f.unconfirmed for f in folders] == [None, None], "Heroes lists the bird"


async def test_refused_token_and_site_are_fatal_and_say_which_key() -> None:
    with ct_vcr.use_cassette("unauthorized.yaml"):
        conn = ContentoConnector(config())
        with pytest.raises(AuthError, match=r"refused the token \(401") as bad_token:
            await listed(conn)
        await conn.aclose()
        conn = ContentoConnector(config(base_url="https://contento.proxy.example/api"))
        with pytest.raises(AuthError, match="site_id") as bad_site:
            await listed(conn)
        await conn.aclose()
    for exc in (bad_token, bad_site):
        assert TOKEN not in str(exc.value)


# -- pure parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("shown", "estimate"), [
    ("1.86 MB", 1950351), ("18 KB", 18432), ("512 B", 512), ("2,5 GB", 2684354560),
    ("3 bytes", 3), (1200, 1200), ("", None), ("big", None), (None, None), ("1.5 XB", None),
])
def test_display_sizes_become_estimates(shown: Any, estimate: int | None) -> None:
    assert estimate_size(shown) == estimate


@pytest.mark.parametrize(("value", "expected"), [
    ("4844", 4844), (4844, 4844), ("30.4", 30), (None, None), ("", None), ("-3", None),
])
def test_dimensions_as_strings_or_integers(value: Any, expected: int | None) -> None:
    assert pixels(value) == expected


def test_filename_falls_back_from_path_to_url_to_name() -> None:
    assert filename_of(WireAsset(id="a", path="assets/s/x%20y.png")) == "x y.png"
    # a name from a URL is decoded exactly once, and the URL wins over the storage path
    literal = WireAsset(id="a", path="assets/s/x%20y.png", url="https://h/assets/s/x%2520y.png")
    assert filename_of(literal) == "x%20y.png"
    assert filename_of(WireAsset(id="a", url="https://h/assets/s/x%20y.png")) == "x y.png"
    assert filename_of(WireAsset(id="a", url="https://h/assets/s/z.jpg")) == "z.jpg"
    assert filename_of(WireAsset(id="a", name="Bird", extension="jpg")) == "Bird.jpg"
    with pytest.raises(MalformedResponseError):
        filename_of(WireAsset(id="a"))


def test_config_checks_folders_and_adds_the_version_path() -> None:
    cfg = config(base_url="http://127.0.0.1:9/api/", folders={" af_1 ": "/A/B/"})
    assert cfg.api_base() == "http://127.0.0.1:9/api/v1/"
    assert config(base_url="http://h/api/v1").api_base() == "http://h/api/v1/"
    assert config().api_base() == "https://app.contento.io/api/v1/"
    assert cfg.named_folders() == {"af_1": ("A", "B")}
    with pytest.raises(ValidationError, match="folder path"):
        config(folders={"af_1": "A//B"})
    with pytest.raises(ValidationError, match="token"):
        config(token=" ")


# -- fakes: misbehaviour ----------------------------------------------------------------------


def asset_json(asset_id: str) -> dict[str, Any]:
    return {"id": asset_id, "name": asset_id, "path": f"assets/{SITE}/{asset_id}.png",
            "url": f"https://assets.contento.io/assets/{SITE}/{asset_id}.png",
            "size": "1 KB", "mime_type": "image/png", "width": "1", "height": "1"}


def page(ids: list[str], cursor: str | None, *, in_meta: bool = True) -> dict[str, Any]:
    nxt = f"https://app.contento.io/api/v1/assets?cursor={cursor}" if cursor else None
    return {"data": [asset_json(i) for i in ids],
            "links": {"first": None, "last": None, "prev": None, "next": nxt},
            "meta": {"per_page": 100, "next_cursor": cursor if in_meta else None}}


def fake(pages: Callable[[httpx.Request], dict[str, Any]]) -> ContentoConnector:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages(request))

    return ContentoConnector(config(), transport=httpx.MockTransport(handler))


async def test_a_repeated_cursor_is_an_error_not_an_endless_listing() -> None:
    conn = fake(lambda r: page([f"a_{r.url.params.get('cursor', 'start')}"], "same"))
    with pytest.raises(MalformedResponseError, match="repeated the cursor"):
        await listed(conn)
    await conn.aclose()


async def test_links_next_alone_is_followed_and_an_asset_listed_twice_is_an_error() -> None:
    def pages(request: httpx.Request) -> dict[str, Any]:
        cursor = request.url.params.get("cursor")
        return page(["a1", "a2"], "c2", in_meta=False) if cursor is None else page(["a2"], None)

    conn = fake(pages)
    with pytest.raises(MalformedResponseError, match="a2 twice"):
        await listed(conn)
    await conn.aclose()


async def test_links_next_without_a_cursor_stops_the_listing() -> None:
    conn = fake(lambda r: {**page(["a1", "a2"], None),
                           "links": {"next": "https://app.contento.io/api/v1/assets?page=2"}})
    with pytest.raises(MalformedResponseError, match="carries no cursor"):
        await listed(conn)
    await conn.aclose()


# -- the emulator ---------------------------------------------------------------------------


@pytest.fixture
def emu() -> Any:
    e = ContentoEmulator(site_id=SITE, token=TOKEN, rate_limit=None, max_limit=2)
    yield e
    e.close()


def client(emu: ContentoEmulator, **headers: str) -> httpx.AsyncClient:
    base = {"Authorization": f"Bearer {TOKEN}", "X-CONTENTO-SITE": SITE}
    base.update(headers)
    return httpx.AsyncClient(transport=in_process_transport(emu.app), base_url="http://ct",
                             headers={k: v for k, v in base.items() if v})


async def test_emulator_auth_read_only_and_documented_bodies(emu: ContentoEmulator) -> None:
    async with client(emu, Authorization="Bearer nope") as c:
        r = await c.get("/api/v1/assets")
        assert (r.status_code, r.json()) == (401, {"message": "Unauthenticated."})
    async with client(emu, **{"X-CONTENTO-SITE": ""}) as c:
        r = await c.get("/api/v1/assets")
        assert r.status_code == 403
        assert "Site ID" in r.json()["message"]
    async with client(emu, **{"X-CONTENTO-SITE": "s_other"}) as c:
        r = await c.get("/api/v1/assets")
        assert r.json() == {"message": "You are not permitted to access this Site."}
    async with client(emu) as c:
        r = await c.post("/api/v1/assets", json={})
        assert r.status_code == 405
        assert (await c.get("/api/v1/assets/a_missing")).status_code == 404


async def test_emulator_pages_by_cursor_and_unwraps_a_single_result(
    emu: ContentoEmulator,
) -> None:
    hero = emu.add_folder("Heroes")
    ids = [emu.add_asset(f"f{i}.txt", b"x" * (i + 1) * 700, folder_id=hero if i == 1 else None)
           for i in range(3)]
    async with client(emu) as c:
        first = (await c.get("/api/v1/assets", params={"limit": 5})).json()
        assert first["links"]["first"] is None
        assert first["links"]["last"] is None
        assert first["meta"]["per_page"] == 2, "limit is clamped to the maximum"
        assert [a["id"] for a in first["data"]] == [ids[2], ids[1]], "newest first by default"
        second = (await c.get("/api/v1/assets",
                              params={"cursor": first["meta"]["next_cursor"]})).json()
        assert second["id"] == ids[0], "one result comes without the envelope"
        assert second["size"] == display_size(700) == "700 B"
        only = (await c.get("/api/v1/assets", params={"folder_id[0]": hero})).json()
        assert only["id"] == ids[1]
        assert "folder_id" not in only, "an asset object carries no folder"
        both = await c.get("/api/v1/assets", params=[("folder_id[0]", hero),
                                                     ("folder_id[1]", "af_other")])
        assert both.json()["data"] == [], "several folder ids are AND-ed"
        assert (await c.get("/api/v1/assets", params={"sort": "size:asc"})).status_code == 422


async def test_emulator_cache_serves_a_stale_listing(emu: ContentoEmulator) -> None:
    emu.cache_seconds = 30
    emu.add_asset("one.txt", b"1")
    async with client(emu) as c:
        before = (await c.get("/api/v1/assets")).json()
        emu.add_asset("two.txt", b"2")
        assert (await c.get("/api/v1/assets")).json() == before, "cached for 30 s"
        emu.cache_seconds = 0
        assert len((await c.get("/api/v1/assets")).json()["data"]) == 2


def test_emulator_display_sizes_read_back_as_estimates_within_a_percent() -> None:
    for size in (1, 999, 1024, 5000, 1952645, 734003200):
        estimate = estimate_size(display_size(size))
        assert estimate is not None
        assert abs(estimate - size) <= size * 0.01


async def test_connector_against_emulator_downloads_without_credentials(
    emu: ContentoEmulator,
) -> None:
    hero = emu.add_folder("Heroes")
    data = {emu.add_asset(f"p{i}.png" if i else "p.png", bytes([i]) * (100 + i),
                          folder_id=hero if i % 2 else None, description=f"d{i}"): i
            for i in range(5)}
    conn = ContentoConnector(config(base_url="http://ct/api", folders={hero: "Heroes"}),
                             transport=in_process_transport(emu.app))
    assets = await listed(conn)
    assert sorted(a.source_id for a in assets) == sorted(data)
    for a in assets:
        i = data[a.source_id]
        assert a.folder_path == (("Heroes",) if i % 2 else ())
        assert a.meta.description == f"d{i}"
        async with conn.open_asset(a) as chunks:
            assert b"".join([c async for c in chunks]) == bytes([i]) * (100 + i)
    await conn.aclose()
    assert emu.credential_leaks == []
    assert json.dumps([a.notes for a in assets]).count("[source.folders]") == 5


async def test_asset_exists_reads_the_one_asset(emu: ContentoEmulator) -> None:
    kept = emu.add_asset("kept.txt", b"k")
    gone = emu.add_asset("gone.txt", b"g")
    emu.remove_asset(gone)
    conn = ContentoConnector(config(base_url="http://ct/api"),
                             transport=in_process_transport(emu.app))
    requests = emu.requests
    assert await conn.asset_exists(kept) is True
    assert await conn.asset_exists(gone) is False
    assert emu.requests == requests + 2, "one direct read each, no listing"
    await conn.aclose()


async def test_emulator_limits_requests_per_minute_with_retry_after() -> None:
    emu = ContentoEmulator(site_id=SITE, token=TOKEN, rate_limit=0.05)  # 3 per minute
    try:
        async with client(emu) as c:
            for _ in range(3):
                assert (await c.get("/api/v1/assets")).status_code == 200
            r = await c.get("/api/v1/assets")
            assert r.status_code == 429
            assert r.json() == {"message": "Too Many Attempts."}
            assert 1 <= int(r.headers["retry-after"]) <= 60, "a minute's window, not a second's"
    finally:
        emu.close()
