"""Storyblok connector: cassettes of documented responses, then fakes for misbehaviour.

Cassettes (``tests/cassettes/storyblok``) are hand-built from Storyblok's documented samples
and replayed with ``record_mode="none"``. A recording transport sits in front of vcrpy's
patched transport so the tests see the exact requests (headers included) the connector sent.
Fakes (``httpx.MockTransport``) live in separate tests: vcrpy also intercepts MockTransport.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from PIL import Image
from pydantic import SecretStr, ValidationError

from connectors.base import (
    Asset,
    AssetMeta,
    Capabilities,
    Folder,
    LocalizedText,
    TargetRef,
    UploadRequest,
)
from connectors.errors import AuthError, ItemError, MalformedResponseError, NotFoundError
from connectors.media import INLINE_FILE_BYTES
from connectors.storyblok import StoryblokConfig, StoryblokConnector
from connectors.storyblok.client import storyblok_error_text
from connectors.storyblok.connector import (
    dims_from_url,
    focus_to_canonical,
    focus_to_storyblok,
    name_from_url,
    parameterize,
)
from tests.connectors.staging import MemoryJournal, stage_bytes
from tests.shared_material import shared_file

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes" / "storyblok"
SPACE = 288868932106293
BIG = 9007199254740991
TOKEN = "sb-cassette-pat-7f3a9c"
ASSET_TOKEN = "sb-cassette-asset-token-51ee"
MAPI = f"https://mapi.storyblok.com/v1/spaces/{SPACE}/"
S3 = "https://s3.amazonaws.com/a.storyblok.com"

VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization"],
    filter_query_parameters=["token"],
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


class Recorder(httpx.AsyncBaseTransport):
    """Keeps every request as sent, then hands it to the (vcr-patched) real transport."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def config(**changes: Any) -> StoryblokConfig:
    values: dict[str, Any] = {"connector": "storyblok", "space_id": SPACE, "token": TOKEN,
                              "requests_per_second": 6}
    values.update(changes)
    return StoryblokConfig.model_validate(values)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 30, 200)).save(out, format="JPEG")
    return out.getvalue()


def sent(rec: Recorder) -> list[str]:
    return [f"{r.method} {r.url}" for r in rec.requests]


# -- cassettes: listing ----------------------------------------------------------------


async def _list(conf: StoryblokConfig) -> tuple[list[Folder], list[Asset], Recorder]:
    rec = Recorder()
    with VCR.use_cassette("list.yaml"):
        async with StoryblokConnector(conf, transport=rec) as conn:
            folders = [f async for f in conn.iter_folders()]
            assets = [a async for a in conn.iter_assets()]
    return folders, assets, rec


async def test_folders_resolve_paths_and_53_bit_ids() -> None:
    folders, _, _ = await _list(config())
    assert folders == [
        Folder("100", "Images", None, ("Images",)),
        Folder("200", "Documents", None, ("Documents",)),  # parent_id 0 is the root too
        Folder("281474976710777", "Thumbnails", "100", ("Images", "Thumbnails")),
    ]


async def test_assets_map_to_the_canonical_model_exactly() -> None:
    _, assets, rec = await _list(config())
    url0 = f"{S3}/f/{SPACE}/3799x6005/4c6b8f34b8/image-002.jpg"
    assert assets[0] == Asset(
        source_id="20022910",
        filename="image-002.jpg",  # list rows may lack short_filename: from the URL
        folder_path=(),
        folder_id=None,
        content_type="image/jpeg",
        size=3094788,
        meta=AssetMeta(),  # all nulls and meta_data [] tolerated
        width=3799,
        height=6005,
        created_at=datetime(2025, 1, 18, 8, 39, 10, 239000, tzinfo=UTC),
        updated_at=datetime(2025, 1, 18, 8, 39, 16, 758000, tzinfo=UTC),
        version="2025-01-18T08:39:16.758Z",
        url=url0,
    )
    hero = assets[1]
    assert hero.source_id == str(BIG) == "9007199254740991"
    assert hero.filename == "hero_final.jpg"
    assert hero.folder_path == ("Images", "Thumbnails")
    assert hero.folder_id == "281474976710777"
    assert (hero.width, hero.height, hero.size) == (1000, 800, 245760)
    assert hero.meta == AssetMeta(
        title="Hero",
        alt_text="A hero",
        copyright="2025 Storyblok",
        tags=("hero", "summer"),
        focus="0.4,0.375",  # centre of the 300x200:500x400 box in a 1000x800 image
        locales={
            "de": LocalizedText(title="Held", alt_text="Ein Held"),
            "fr": LocalizedText(copyright="2025 Storyblok FR", description="Un héros"),
        },
    )
    assert hero.extra == {"source": "https://example.com", "focus": "300x200:500x400"}
    secret = assets[2]
    assert secret.source_id == "89293614204583"
    assert secret.folder_path == ("Documents",)
    assert secret.meta.focus == "0.5,0.5"  # a 1-px box names its top-left pixel
    assert secret.extra == {"focus": "320x240:321x241", "is_private": "true"}
    manual = assets[3]
    assert (manual.filename, manual.width, manual.height) == ("manual.pdf", None, None)
    assert [a.source_id for a in assets] == [
        "20022910", "9007199254740991", "89293614204583", "89293614204584"
    ]  # the soft-deleted row is left out
    assert sent(rec) == [
        f"GET {MAPI}asset_folders/",
        f"GET {MAPI}assets/?sort_by=created_at%3Aasc&page=1&per_page=100",
    ]


async def test_personal_token_is_sent_raw() -> None:
    _, _, rec = await _list(config())
    assert {r.headers["authorization"] for r in rec.requests} == {TOKEN}


async def test_oauth_token_is_sent_as_bearer() -> None:
    _, _, rec = await _list(config(oauth=True))
    assert {r.headers["authorization"] for r in rec.requests} == {f"Bearer {TOKEN}"}


async def test_create_folder_under_a_parent() -> None:
    rec = Recorder()
    with VCR.use_cassette("create_folder.yaml"):
        async with StoryblokConnector(config(), transport=rec) as conn:
            folder = await conn.create_folder("100", "Header Images")
    assert folder == Folder("281474976710778", "Header Images", "100", ("Images", "Header Images"))
    assert json.loads(rec.requests[-1].content) == {
        "asset_folder": {"name": "Header Images", "parent_id": 100}
    }


# -- cassettes: upload, replace, metadata ------------------------------------------------


def _multipart_names(request: httpx.Request) -> list[str]:
    return re.findall(r'form-data; name="([^"]+)"', request.content.decode("latin-1"))


async def test_upload_signs_stores_finishes_and_sets_metadata(
    tmp_path: Path, thread_hops: list[object]
) -> None:
    """The signed upload, step by step. A small image's width and height are read from its
    header on the event loop: no worker-thread hop (issue 12)."""
    data = png(1000, 800)
    assert len(data) <= INLINE_FILE_BYTES
    staged = stage_bytes(tmp_path, data, "image/png")
    request = UploadRequest(
        source_id="cs-1",
        filename="hero.png",
        folder_id="100",
        folder_path=("Images",),
        content_type="image/png",
        meta=AssetMeta(
            title="Hero", alt_text="A hero", copyright="© 2025", tags=("hero", "new"),
            focus="0.5,0.25",
            locales={"de": LocalizedText(alt_text="Ein Held", title="Held")},
        ),
    )
    journal = MemoryJournal()
    rec = Recorder()
    with VCR.use_cassette("upload.yaml"):
        async with StoryblokConnector(config(), transport=rec) as conn:
            ref = await conn.upload(request, staged, journal)

    assert thread_hops == []
    signed_id = "140773191961982"
    url = f"https://a.storyblok.com/f/{SPACE}/1000x800/e5990a3595/hero.png"
    assert ref == TargetRef(signed_id, url)
    assert sent(rec) == [
        f"POST {MAPI}assets/",
        f"POST {S3}",
        f"GET {MAPI}assets/{signed_id}/finish_upload",
        f"GET {MAPI}internal_tags?by_object_type=asset",
        f"POST {MAPI}internal_tags",
        f"PUT {MAPI}assets/{signed_id}",
    ]
    sign, store, finish, _, new_tag, put = rec.requests
    assert json.loads(sign.content) == {
        "filename": "hero.png", "validate_upload": 1, "asset_folder_id": 100, "size": "1000x800"
    }
    # storage gets every signed field first, the file last, and never a credential
    assert "authorization" not in store.headers
    assert _multipart_names(store) == [
        "key", "acl", "Expires", "Cache-Control", "Content-Type", "policy",
        "x-amz-credential", "x-amz-algorithm", "x-amz-date", "x-amz-signature", "file",
    ]
    assert data in store.content
    assert b'filename="hero.png"' in store.content
    for mapi in (sign, finish, new_tag, put):
        assert mapi.headers["authorization"] == TOKEN
    assert json.loads(new_tag.content) == {"internal_tag": {"name": "new", "object_type": "asset"}}
    assert json.loads(put.content) == {
        "asset": {
            "alt": "A hero",
            "title": "Hero",
            "copyright": "© 2025",
            "internal_tag_ids": ["10", "30"],
            "focus": "500x200:501x201",
            "meta_data": {
                "alt": "A hero", "title": "Hero", "copyright": "© 2025",
                "alt__i18n__de": "Ein Held", "title__i18n__de": "Held",
            },
        }
    }
    assert [step for step, _ in journal.records] == ["signed", "stored", "finished"]
    assert journal.records[0][1]["signed_id"] == signed_id
    assert journal.records[-1][1] == {
        "signed_id": signed_id,
        "signed_at": journal.records[0][1]["signed_at"],
        "stored": "1",
        "finished": "1",
        "url": url,
    }


async def test_replace_keeps_the_id_and_foreign_meta_data(tmp_path: Path) -> None:
    staged = stage_bytes(tmp_path, jpeg(20, 10), "image/jpeg")
    request = UploadRequest("cs-2", "mypic.jpg", None, (), "image/jpeg", AssetMeta(title="New"))
    rec = Recorder()
    with VCR.use_cassette("replace.yaml"):
        async with StoryblokConnector(config(), transport=rec) as conn:
            ref = await conn.replace("111", request, staged, MemoryJournal())
    assert ref == TargetRef("111", f"{S3}/f/{SPACE}/3799x6005/3af265ee08/mypic.jpg")
    sign = rec.requests[0]
    assert json.loads(sign.content) == {
        "filename": "mypic.jpg", "validate_upload": 1, "id": 111, "size": "20x10"
    }
    put = next(r for r in rec.requests if r.method == "PUT")
    assert json.loads(put.content)["asset"] == {
        "alt": None,
        "title": "New",
        "copyright": None,
        "internal_tag_ids": [],
        "focus": None,
        # others' custom keys stay; our locale keys follow the canonical meta (none now)
        "meta_data": {"asset_category": "name", "alt": "", "title": "New", "copyright": ""},
    }


async def test_missing_asset_bare_array_body_is_not_found() -> None:
    with VCR.use_cassette("missing.yaml"):
        async with StoryblokConnector(config(), transport=Recorder()) as conn:
            with pytest.raises(NotFoundError) as info:
                await conn.update_metadata("404404", AssetMeta(title="x"))
    assert "This record could not be found" in str(info.value)
    assert info.value.status == 404


async def test_find_asset_matches_parameterized_name_folder_and_size() -> None:
    rec = Recorder()
    with VCR.use_cassette("find.yaml", allow_playback_repeats=True):
        async with StoryblokConnector(config(), transport=rec) as conn:
            found = await conn.find_asset("100", "my.pic.jpg", 1234)
            none = await conn.find_asset("100", "my.pic.jpg", 7)
    assert found == TargetRef("501", f"https://a.storyblok.com/f/{SPACE}/10x10/bbbbbbbbbb/my_pic.jpg")
    assert none is None
    assert rec.requests[0].url.params["search"] == "my_pic.jpg"  # the name as stored
    assert rec.requests[0].url.params["in_folder"] == "100"


async def test_downloads_carry_no_credentials_and_private_uses_asset_token() -> None:
    private = Asset(
        source_id="89293614204583", filename="secret.png", folder_path=(), folder_id=None,
        content_type="image/png", size=13,
        url=f"https://a.storyblok.com/f/{SPACE}/640x480/1a2b3c4d5e/secret.png",
        extra={"is_private": "true"},
    )
    public = Asset(
        source_id="20022910", filename="image-002.jpg", folder_path=(), folder_id=None,
        content_type="image/jpeg", size=12,
        url=f"{S3}/f/{SPACE}/3799x6005/4c6b8f34b8/image-002.jpg",
    )
    rec = Recorder()
    with VCR.use_cassette("download.yaml"):
        async with StoryblokConnector(config(asset_token=ASSET_TOKEN), transport=rec) as conn:
            async with conn.open_asset(private) as body:
                private_bytes = b"".join([c async for c in body])
            async with conn.open_asset(public) as body:
                public_bytes = b"".join([c async for c in body])
    assert (private_bytes, public_bytes) == (b"private bytes", b"public bytes")
    cda, signed, _public = rec.requests
    assert cda.url.host == "api.storyblok.com"
    assert cda.url.path == "/v2/cdn/assets/me"
    assert cda.url.params["token"] == ASSET_TOKEN
    assert cda.url.params["filename"] == private.url
    assert signed.url.params["X-Amz-Signature"] == "feedface"
    for request in rec.requests:
        assert "authorization" not in request.headers


def test_no_cassette_contains_a_credential() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 7
    for path in files:
        text = path.read_text()
        assert TOKEN not in text, path
        assert ASSET_TOKEN not in text, path
        assert "authorization" not in text.lower(), path
        assert "bearer" not in text.lower(), path
        assert "token=" not in text, path


def test_cassette_shapes_carry_every_documented_key() -> None:
    import yaml  # type: ignore[import-untyped]

    fixtures = shared_file("external/storyblok/php-client-fixtures")
    doc_row = json.loads((fixtures / "list-assets.json").read_text())["assets"][0]
    doc_signed = json.loads((fixtures / "upload-asset-signed-response.json").read_text())
    doc_folder = json.loads((fixtures / "list-asset-folders.json").read_text())["asset_folders"][0]

    def body(name: str, index: int) -> Any:
        cassette = yaml.safe_load((CASSETTES / name).read_text())
        return json.loads(cassette["interactions"][index]["response"]["body"]["string"])

    for row in body("list.yaml", 1)["assets"]:
        assert set(doc_row) <= set(row)
    assert set(body("list.yaml", 0)["asset_folders"][0]) == set(doc_folder)
    ours = body("upload.yaml", 0)
    assert set(ours) == set(doc_signed)
    assert list(ours["fields"]) == list(doc_signed["fields"])


# -- pure mapping ----------------------------------------------------------------------


def test_focus_round_trip_through_a_one_pixel_box() -> None:
    assert focus_to_storyblok("0.5,0.25", (1000, 800)) == "500x200:501x201"
    assert focus_to_canonical("500x200:501x201", (1000, 800)) == "0.5,0.25"
    assert focus_to_canonical("300x200:500x400", (1000, 800)) == "0.4,0.375"
    assert focus_to_canonical("300x200:500x400", None) is None
    assert focus_to_storyblok("0.5,0.25", None) is None
    assert focus_to_storyblok("1,1", (10, 10)) == "9x9:10x10"
    assert focus_to_storyblok("left", (10, 10)) is None


def test_parameterize_and_dimensions() -> None:
    assert parameterize("my.pic.final.jpg") == "my_pic_final.jpg"
    assert parameterize("README") == "README"
    assert dims_from_url("https://a.storyblok.com/f/1/1920x1080/abc/hero.jpg") == (1920, 1080)
    assert dims_from_url("//a.storyblok.com/f/1/abc/800x600.jpg") is None  # the name, not a segment
    assert dims_from_url("https://a.storyblok.com/f/1/0x0/abc/doc.pdf") is None


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://a.storyblok.com/f/1/abc/100%2520sure.png", "100%20sure.png"),  # a literal %20
        ("https://a.storyblok.com/f/1/abc/two%20words.png", "two words.png"),
        ("//a.storyblok.com/f/1/abc/%E6%B5%8B%E8%AF%95.png", "测试.png"),
        ("/f/1/abc/50%25.png?cv=1", "50%.png"),
        ("https://a.storyblok.com/f/1/abc/", "abc"),
        (None, None),
    ],
)
def test_a_name_from_a_url_is_decoded_exactly_once(url: str | None, name: str | None) -> None:
    assert name_from_url(url) == name


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "Unauthorized"}, "Unauthorized"),
        (["This record could not be found"], "This record could not be found"),
        ({"name": ["has already been taken"]}, "name: has already been taken"),
        ({"errors": {"filename": ["can't be blank"]}}, "filename: can't be blank"),
        ({"error": ["a", "b"]}, "a; b"),
        ({"message": "Error"}, "Error"),
    ],
)
def test_error_text_reads_every_documented_shape(body: Any, expected: str) -> None:
    response = httpx.Response(422, json=body, request=httpx.Request("GET", MAPI))
    assert storyblok_error_text(response) == expected


def test_config_rules() -> None:
    assert config().api_base() == f"https://mapi.storyblok.com/v1/spaces/{SPACE}/"
    assert config(region="us").api_base() == f"https://api-us.storyblok.com/v1/spaces/{SPACE}/"
    assert config(region="cn").api_base() == f"https://app.storyblokchina.cn/v1/spaces/{SPACE}/"
    assert config(base_url="http://sb.emulator/").api_base() == (
        f"http://sb.emulator/v1/spaces/{SPACE}/"
    )
    assert config(region="ap").cda_assets_me_url() == "https://api-ap.storyblok.com/v2/cdn/assets/me"
    with pytest.raises(ValidationError, match="at most 6"):
        config(requests_per_second=10)
    assert config(requests_per_second=50, base_url="http://sb.emulator").rate == 50
    assert StoryblokConfig(connector="storyblok", space_id=1, token=SecretStr("t")).rate == 3
    with pytest.raises(ValidationError):
        config(extra_field=1)
    assert TOKEN not in repr(config())


async def test_connector_claims_every_capability() -> None:
    async with StoryblokConnector(config()) as conn:
        caps = Capabilities.of(conn)
        assert conn.scope == str(SPACE)
        assert conn.limits.max_file_size == 5_242_879_999
        assert "description" not in conn.limits.metadata_fields
        assert conn.limits.requests_per_second == 6
    assert (caps.target, caps.replace, caps.update_metadata, caps.delete, caps.find_asset) == (
        True, True, True, True, True
    )


# -- fakes: misbehaviour -----------------------------------------------------------------

FAKE = "https://sb.test"
FAKE_API = f"/v1/spaces/{SPACE}/"


def fake_connector(
    handler: Callable[[httpx.Request], httpx.Response], **changes: Any
) -> StoryblokConnector:
    conf = config(base_url=FAKE, requests_per_second=1000, **changes)
    return StoryblokConnector(conf, transport=httpx.MockTransport(handler))


def _asset_row(asset_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": asset_id, "filename": f"https://a.test/f/{SPACE}/10x10/h/a{asset_id}.png",
            "short_filename": f"a{asset_id}.png", "content_type": "image/png",
            "content_length": 10, **extra}


def _routes(assets: Callable[[httpx.Request], httpx.Response]) -> Callable[
    [httpx.Request], httpx.Response
]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/asset_folders/"):
            return httpx.Response(200, json={"asset_folders": []})
        return assets(request)

    return handler


async def test_401_is_an_auth_error_without_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "Unauthorized"})

    async with fake_connector(handler) as conn:
        with pytest.raises(AuthError) as info:
            _ = [f async for f in conn.iter_folders()]
    assert "Unauthorized" in str(info.value)
    assert TOKEN not in str(info.value)


async def test_429_is_retried_then_the_page_is_read() -> None:
    calls: list[int] = []

    def assets(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                429, json={"error": "Rate limit of 3 request per second reached. Retry later."}
            )
        return httpx.Response(200, json={"assets": [_asset_row(1)]}, headers={"total": "1"})

    async with fake_connector(_routes(assets)) as conn:
        assets_seen = [a.source_id async for a in conn.iter_assets()]
    assert assets_seen == ["1"]
    assert len(calls) == 2


async def test_body_that_is_not_json_is_malformed() -> None:
    def assets(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>maintenance</html>")

    async with fake_connector(_routes(assets)) as conn:
        with pytest.raises(MalformedResponseError, match="not JSON"):
            _ = [a async for a in conn.iter_assets()]


async def test_page_beyond_the_total_is_malformed() -> None:
    def assets(request: httpx.Request) -> httpx.Response:
        rows = [_asset_row(1), _asset_row(2)]
        return httpx.Response(200, json={"assets": rows}, headers={"total": "1"})

    async with fake_connector(_routes(assets)) as conn:
        with pytest.raises(MalformedResponseError, match="beyond the announced total"):
            _ = [a async for a in conn.iter_assets()]


async def test_paging_follows_the_total_header() -> None:
    pages: list[str] = []

    def assets(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        pages.append(request.url.params["page"])
        rows = [_asset_row(page * 1000 + i) for i in range(100 if page == 1 else 5)]
        return httpx.Response(200, json={"assets": rows}, headers={"total": "105"})

    async with fake_connector(_routes(assets)) as conn:
        seen = [a async for a in conn.iter_assets()]
    assert len(seen) == 105
    assert pages == ["1", "2"]


async def test_folder_with_unknown_parent_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"asset_folders": [
            {"id": 5, "name": "Lost", "parent_id": 77},
        ]})

    async with fake_connector(handler) as conn:
        with pytest.raises(MalformedResponseError, match="77"):
            _ = [f async for f in conn.iter_folders()]


async def test_private_asset_without_asset_token_is_an_item_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - not reached
        raise AssertionError("no request expected")

    asset = Asset("1", "a.png", (), None, "image/png", 1, url="https://a.test/f/1/a.png",
                  extra={"is_private": "true"})
    async with fake_connector(handler) as conn:
        with pytest.raises(ItemError) as info:
            async with conn.open_asset(asset):
                pass
    assert str(info.value) == "private asset: set [source].asset_token to download it"


# -- fakes: the resumable upload ---------------------------------------------------------


class FakeStoryblok:
    """Just enough of MAPI + S3 for the three-step upload, with counters."""

    def __init__(self) -> None:
        self.next_id = 7_000_000_000_001
        self.pending: dict[int, str] = {}
        self.stored: dict[str, bytes] = {}
        self.finished: dict[int, dict[str, Any]] = {}
        self.meta: dict[int, dict[str, Any]] = {}
        self.signs: list[dict[str, Any]] = []
        self.finishes = 0
        self.refuse_stores = 0
        self.replace_only_finished = False
        self.leaks: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "s3.test":
            if "authorization" in request.headers:
                self.leaks.append(str(request.url))
            if self.refuse_stores:
                self.refuse_stores -= 1
                return httpx.Response(
                    403, text="<Error><Code>AccessDenied</Code>"
                    "<Message>Request has expired</Message></Error>",
                )
            fields, file = _parse_multipart(request)
            self.stored[fields["key"]] = file
            return httpx.Response(204)
        assert path.startswith(FAKE_API), path
        rest = path[len(FAKE_API):]
        if request.method == "POST" and rest == "assets/":
            body = json.loads(request.content)
            self.signs.append(body)
            if "id" in body:
                asset_id = int(body["id"])
                known = set(self.finished)
                if not self.replace_only_finished:
                    known |= set(self.pending)
                if asset_id not in known:
                    return httpx.Response(404, json=["This record could not be found"])
            else:
                asset_id = self.next_id
                self.next_id += 1
            key = f"f/{SPACE}/{asset_id}/{body['filename']}"
            self.pending[asset_id] = key
            return httpx.Response(200, json={
                "id": asset_id, "post_url": "https://s3.test/bucket",
                "pretty_url": f"//a.test/{key}",
                "fields": {"key": key, "policy": "p", "x-amz-signature": "s"},
            })
        if request.method == "GET" and rest.endswith("/finish_upload"):
            self.finishes += 1
            asset_id = int(rest.split("/")[1])
            done = self.finished.get(asset_id, {})
            stored_key: str | None = self.pending.pop(asset_id, done.get("key"))
            if stored_key is None or stored_key not in self.stored:
                return httpx.Response(404, json={"error": "Not found"})
            self.finished[asset_id] = {"key": stored_key, "size": len(self.stored[stored_key])}
            return httpx.Response(
                200, json={"id": asset_id, "filename": f"https://a.test/{stored_key}"}
            )
        if request.method == "GET" and rest.startswith("internal_tags"):
            return httpx.Response(200, json={"internal_tags": []})
        if request.method == "PUT" and rest.startswith("assets/"):
            asset_id = int(rest.split("/")[1])
            if asset_id not in self.finished:
                return httpx.Response(404, json=["This record could not be found"])
            self.meta[asset_id] = json.loads(request.content)["asset"]
            return httpx.Response(204)
        raise AssertionError(f"unexpected {request.method} {path}")


def _parse_multipart(request: httpx.Request) -> tuple[dict[str, str], bytes]:
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields: dict[str, str] = {}
    file = b""
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, value = part.partition(b"\r\n\r\n")
        value = value[:-2]  # the CRLF before the next boundary
        name = re.search(rb'name="([^"]+)"', head)
        assert name is not None
        if name.group(1) == b"file":
            file = value
        else:
            fields[name.group(1).decode()] = value.decode()
    return fields, file


class Killed(Exception):
    """The process died right after a journal note was committed."""


class KillingJournal(MemoryJournal):
    def __init__(self, kill_after: str) -> None:
        super().__init__()
        self.kill_after = kill_after

    async def record(self, step: str, data: Mapping[str, str]) -> None:
        await super().record(step, data)
        if step == self.kill_after:
            raise Killed(step)


@pytest.fixture
def upload_request() -> UploadRequest:
    return UploadRequest("src-9", "photo.png", None, (), "image/png", AssetMeta(title="T"))


@pytest.fixture
def fake() -> Iterator[FakeStoryblok]:
    fake = FakeStoryblok()
    yield fake
    assert fake.leaks == []


@pytest.mark.parametrize("kill_after", ["signed", "stored", "finished"])
async def test_resume_after_a_kill_ends_with_exactly_one_asset(
    kill_after: str, tmp_path: Path, fake: FakeStoryblok, upload_request: UploadRequest
) -> None:
    data = png(4, 2)
    staged = stage_bytes(tmp_path, data, "image/png")
    async with fake_connector(fake) as conn:
        first = KillingJournal(kill_after)
        with pytest.raises(Killed):
            await conn.upload(upload_request, staged, first)
        second = MemoryJournal(first.records[-1][1])
        ref = await conn.upload(upload_request, staged, second)

    assert list(fake.finished) == [int(ref.target_id)]
    assert fake.stored[fake.finished[int(ref.target_id)]["key"]] == data
    assert fake.meta[int(ref.target_id)]["title"] == "T"
    signs = {"signed": 2, "stored": 1, "finished": 1}[kill_after]
    assert len(fake.signs) == signs
    if kill_after == "signed":  # the second sign reuses the first id: no second asset
        assert fake.signs[1]["id"] == int(ref.target_id)
    assert fake.finishes == 1  # a kill never comes between a finish and its note


async def test_pending_upload_gone_on_resume_signs_afresh(
    tmp_path: Path, fake: FakeStoryblok, upload_request: UploadRequest
) -> None:
    staged = stage_bytes(tmp_path, png(3, 3), "image/png")
    journal = MemoryJournal({"signed_id": "123", "signed_at": "2025-01-01T00:00:00+00:00"})
    async with fake_connector(fake) as conn:
        ref = await conn.upload(upload_request, staged, journal)
    assert [s.get("id") for s in fake.signs] == [123, None]
    assert list(fake.finished) == [int(ref.target_id)]


async def test_expired_signature_is_signed_again_once(
    tmp_path: Path, fake: FakeStoryblok, upload_request: UploadRequest
) -> None:
    staged = stage_bytes(tmp_path, png(3, 3), "image/png")
    fake.refuse_stores = 1
    async with fake_connector(fake) as conn:
        ref = await conn.upload(upload_request, staged, MemoryJournal())
    assert len(fake.signs) == 2
    assert fake.signs[1]["id"] == int(ref.target_id)
    assert list(fake.finished) == [int(ref.target_id)]

    # a server that can't re-sign an unfinished upload: a fresh sign, still one asset
    fake.replace_only_finished = True
    fake.refuse_stores = 1
    journal = MemoryJournal()
    async with fake_connector(fake) as conn:
        ref = await conn.upload(upload_request, staged, journal)
    first, second = (notes["signed_id"] for step, notes in journal.records if step == "signed")
    assert first != second == ref.target_id
    assert journal.records[-1][1]["signed_id"] == ref.target_id
    assert len(fake.finished) == 2  # the earlier upload and this one

    fake.refuse_stores = 2
    async with fake_connector(fake) as conn:
        with pytest.raises(ItemError, match="Request has expired"):
            await conn.upload(upload_request, staged, MemoryJournal())
    assert len(fake.finished) == 2


async def test_a_row_without_a_file_url_is_unreachable_in_the_listing() -> None:
    # the plan must know (unsupported, with the reason) rather than fail the item at migrate
    def assets(request: httpx.Request) -> httpx.Response:
        rows = [_asset_row(1), _asset_row(2, filename=None)]
        return httpx.Response(200, json={"assets": rows}, headers={"total": "2"})

    async with fake_connector(_routes(assets)) as conn:
        seen = {a.source_id: a async for a in conn.iter_assets()}
    assert seen["1"].unreachable is None
    assert seen["2"].filename == "a2.png"
    assert seen["2"].unreachable is not None
    assert "without a file URL" in seen["2"].unreachable


async def test_a_metadata_update_after_a_read_reads_the_asset_once() -> None:
    """The pipeline reads the asset right before it overwrites its metadata (the drift
    check): the update merges into that answer, no second ``GET assets/{id}``; a later
    update reads afresh, and one that changes nothing sends no PUT."""
    row = _asset_row(5, meta_data={"theirs": "kept", "title": "Old"}, title="Old")
    calls: list[str] = []

    def assets(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        assert request.url.path == f"{FAKE_API}assets/5", request.url.path
        if request.method == "GET":
            return httpx.Response(200, json={"asset": row})
        assert request.method == "PUT"
        row.update(json.loads(request.content)["asset"])
        return httpx.Response(204)

    async with fake_connector(_routes(assets)) as conn:
        assert (await conn.read_asset("5")) is not None
        await conn.update_metadata("5", AssetMeta(title="New"))
        assert calls == ["GET", "PUT"], "one read for the check and the merge"
        assert row["meta_data"]["theirs"] == "kept"
        await conn.update_metadata("5", AssetMeta(title="New"))
    assert calls == ["GET", "PUT", "GET"], "read afresh; nothing changed: no PUT"
