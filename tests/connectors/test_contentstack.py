"""Contentstack connector: contract tests on hand-built cassettes, then fakes for misbehaviour.

Cassettes (tests/cassettes/contentstack/) replay the CMA doc's sample responses with
``record_mode="none"``: a request that is not in the cassette fails the test, every
interaction must be played exactly once, and a body matcher compares JSON bodies and
multipart forms (field names, filenames, values) with the ones written in the cassette.
Fakes use ``httpx.MockTransport`` and never run inside a cassette (vcrpy patches it too).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from pydantic import ValidationError

from connectors.base import (
    Asset,
    AssetMeta,
    Capabilities,
    Folder,
    StagedFile,
    TargetRef,
    UploadRequest,
)
from connectors.contentstack import ContentstackConfig, ContentstackConnector
from connectors.contentstack.connector import stored_filename
from connectors.contentstack.wire import FOLDER_CONTENT_TYPE
from connectors.errors import (
    AmbiguousError,
    AuthError,
    ItemError,
    MalformedResponseError,
    RetryableError,
)

CASSETTES = Path(__file__).parent.parent / "cassettes" / "contentstack"
API_KEY = "blt20962a819b57e233"
TOKEN = "cs-test-management-token-3f9a1c"
AUTHTOKEN = "cs-test-authtoken-b71e20"
API = "https://api.contentstack.io/v3"


# -- helpers ------------------------------------------------------------------------------


def make_config(**overrides: Any) -> ContentstackConfig:
    values: dict[str, Any] = {
        "connector": "contentstack",
        "api_key": API_KEY,
        "management_token": TOKEN,
        "requests_per_second": 1000.0,
    }
    values.update(overrides)
    return ContentstackConfig.model_validate(values)


def _content_type(request: Any) -> str:
    for name, value in request.headers.items():
        if name.lower() == "content-type":
            return str(value[0] if isinstance(value, list) else value)
    return ""


def _body(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    return body if isinstance(body, bytes) else str(body).encode()


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields by name: (filename, value) of each part."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        fields[str(name)] = (part.get_filename(), payload)
    return fields


def semantic_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: same JSON document, same multipart form, or both empty."""
    ct1, ct2 = _content_type(r1), _content_type(r2)
    b1, b2 = _body(r1), _body(r2)
    # vcrpy tries every stored request: only AssertionError may say "no match"
    multipart = (ct1.startswith("multipart/"), ct2.startswith("multipart/"))
    assert multipart[0] == multipart[1], "one body is multipart, the other not"
    if multipart[0]:
        assert parse_multipart(ct1, b1) == parse_multipart(ct2, b2)
        return
    assert bool(b1) == bool(b2), "one body is empty, the other not"
    if b1:
        try:
            assert json.loads(b1) == json.loads(b2)
        except ValueError:
            assert b1 == b2


cs_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization", "authtoken", "api_key"],
    match_on=["method", "scheme", "host", "port", "path", "query", "semantic_body"],
)
cs_vcr.register_matcher("semantic_body", semantic_body)


def staged_file(tmp_path: Path, data: bytes = b"not really a png") -> StagedFile:
    path = tmp_path / "staged.bin"
    path.write_bytes(data)
    return StagedFile(
        path=path,
        size=len(data),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="image/png",
    )


class NoJournal:
    def __init__(self, previous: dict[str, str] | None = None) -> None:
        self._previous = previous or {}
        self.records: list[tuple[str, dict[str, str]]] = []

    @property
    def previous(self) -> dict[str, str]:
        return self._previous

    async def record(self, step: str, data: Any) -> None:
        self.records.append((step, dict(data)))


def upload_request(**overrides: Any) -> UploadRequest:
    values: dict[str, Any] = {
        "source_id": "src-1",
        "filename": "file-name.png",
        "folder_id": None,
        "folder_path": (),
        "content_type": "image/png",
        "meta": AssetMeta(),
    }
    values.update(overrides)
    return UploadRequest(**values)


# -- cassettes ----------------------------------------------------------------------------


async def test_lists_folders_with_paths_and_assets_parsed() -> None:
    with cs_vcr.use_cassette("list_folders_and_assets.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            folders = [f async for f in conn.iter_folders()]
            assets = [a async for a in conn.iter_assets()]
        assert cassette.all_played
        assert cassette.play_count == 2  # the folder listing is fetched once, then cached

    # "Demo Folder" arrived before its parent; parents are yielded first
    assert folders == [
        Folder("blt558a9890b838abcd", "Asset Folder", None, ("Asset Folder",)),
        Folder("bltd11bd1a1c11111ee", "Marketing", None, ("Marketing",)),
        Folder(
            "blt1223b11e22ae333f", "Images", "blt558a9890b838abcd", ("Asset Folder", "Images")
        ),
        Folder(
            "blt1111b11e11ae111f",
            "Demo Folder",
            "bltd11bd1a1c11111ee",
            ("Marketing", "Demo Folder"),
        ),
    ]

    # the folder record mixed into the asset list (sic MIME type) is not an asset
    assert FOLDER_CONTENT_TYPE == "application/vnd.contenstack.folder"
    assert [a.source_id for a in assets] == [
        "bltabc123e1a1231b23d",
        "bltabc555e5a5b55b5d",
        "bltd44a4444444444e7",
    ]
    png, sample, pdf = assets
    assert png == Asset(
        source_id="bltabc123e1a1231b23d",
        filename="Asset file.png",
        folder_path=("Asset Folder", "Images"),
        folder_id="blt1223b11e22ae333f",
        content_type="image/png",
        size=42670,
        meta=AssetMeta(title="Asset file.png"),
        created_at=datetime(2018, 12, 27, 4, 58, 58, 14000, tzinfo=UTC),
        updated_at=datetime(2019, 7, 10, 12, 2, 14, 299000, tzinfo=UTC),
        version="1",
        url="https://images.contentstack.io/v3/assets/blt23423c2acaae34b3/"
        "bltabc123e1a2b34b5d/5c555c555d5c5e5cc5b55d555/download",
        published=frozenset({("bltc15045c3098babcd", "en-us")}),  # the doc sample's
    )
    # float dimensions, ACL.roles [] and a single publish_details object are tolerated
    assert sample.folder_path == ("Marketing", "Demo Folder")
    assert sample.size == 53825
    assert sample.meta == AssetMeta(
        title="Sample File", description="This is a test image.", tags=("workflows", "stages")
    )
    assert (sample.width, sample.height) == (640, 30)
    assert sample.version == "3"
    # no parent_uid key at all: the root
    assert (pdf.folder_path, pdf.folder_id, pdf.size) == ((), None, 12227244)
    assert pdf.content_type == "application/pdf"
    assert pdf.meta.description == "This is testing"


async def test_create_folder_posts_documented_body_and_computes_path() -> None:
    with cs_vcr.use_cassette("create_folder.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            folder = await conn.create_folder("bltf0000d00f00c0e00", "Demo")
            # (iter_folders always lists afresh, so a folder whose create answer was lost is
            # found: tests/pipeline/test_migrate_e2e.py, every create answer lost)
        assert cassette.all_played
    assert folder == Folder(
        "blt1bf1231a7fd1231b", "Demo", "bltf0000d00f00c0e00", ("Campaigns", "Demo")
    )


async def test_upload_and_replace_send_documented_multipart_forms(tmp_path: Path) -> None:
    staged = staged_file(tmp_path)
    create = upload_request(
        folder_id="blt1223b11e22ae333f",
        folder_path=("Asset Folder", "Images"),
        meta=AssetMeta(
            title="Test", description="This is a test image.", tags=("workflows", "stages")
        ),
    )
    replace = upload_request(meta=AssetMeta(title="Test", description="This is testing"))
    journal = NoJournal(previous={"note": "from an earlier attempt"})
    with cs_vcr.use_cassette("upload_and_replace.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            created = await conn.upload(create, staged, journal)
            replaced = await conn.replace("blt91af1e5af9c3639f", replace, staged, journal)
        assert cassette.all_played
    # the doc sample's placeholders ("file_size": "file_size") don't matter for a TargetRef
    assert created == TargetRef(
        "asset_uid", "https://assets.contentstack.io/v3/assets/{api_key}/{asset-id}/{upload_uid}/asset_name",
        version="1",  # the answer's _version: the ledger's drift marker
    )
    assert replaced.target_id == "blt91af1e5af9c3639f"
    assert journal.records == []  # one step: nothing to journal


async def test_update_metadata_and_delete() -> None:
    meta = AssetMeta(
        title="new title", description="updated description", tags=("spring", "hero"),
        alt_text="dropped: Contentstack has no alt text field",
    )
    with cs_vcr.use_cassette("update_and_delete.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            await conn.update_metadata("blt558a9890b838abcd", meta)
            await conn.delete("blt558a9890b838abcd")
        assert cassette.all_played


async def test_find_asset_matches_stored_name_and_size() -> None:
    with cs_vcr.use_cassette("find_asset.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            found = await conn.find_asset("blt0011b00e11ae001f", "Sample File 2", 53825)
        assert cassette.all_played
    assert found is not None
    assert found.target_id == "bltdd55a5555555b5f5"

    with cs_vcr.use_cassette("find_asset.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            assert await conn.find_asset("blt0011b00e11ae001f", "Sample File 2", 1) is None
        assert cassette.all_played


async def test_refused_token_is_an_auth_error_naming_the_setting() -> None:
    with cs_vcr.use_cassette("unauthorized.yaml") as cassette:
        async with ContentstackConnector(make_config()) as conn:
            with pytest.raises(AuthError) as info:
                [f async for f in conn.iter_folders()]
        assert cassette.play_count == 1  # not retried
    message = str(info.value)
    assert info.value.status == 401
    assert "management_token" in message
    assert "not allowed in here" in message
    assert TOKEN not in message


def test_no_cassette_contains_credentials() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        for secret in (TOKEN, AUTHTOKEN):
            assert secret not in text, path.name
        header_keys = re.findall(r"^\s+([A-Za-z_-]+):", text, flags=re.MULTILINE)
        assert not {k.lower() for k in header_keys} & {"authorization", "authtoken", "api_key"}


# -- config ---------------------------------------------------------------------------------


def test_config_requires_exactly_one_token() -> None:
    with pytest.raises(ValidationError, match="exactly one of management_token or authtoken"):
        ContentstackConfig.model_validate({"connector": "contentstack", "api_key": API_KEY})
    with pytest.raises(ValidationError, match="both are set"):
        make_config(authtoken=AUTHTOKEN)
    with pytest.raises(ValidationError, match="environment variable"):
        make_config(management_token="  ")
    with pytest.raises(ValidationError, match="Extra inputs"):
        make_config(token=TOKEN)


def test_config_api_base_by_region_and_override() -> None:
    assert make_config().api_base() == "https://api.contentstack.io/v3/"
    assert make_config(region="eu").api_base() == "https://eu-api.contentstack.com/v3/"
    assert make_config(region="gcp-eu").api_base() == "https://gcp-eu-api.contentstack.com/v3/"
    emulator = make_config(region="eu", base_url="http://cs.emulator/")
    assert emulator.api_base() == "http://cs.emulator/v3/"
    assert make_config(base_url="http://proxy:8080/v3").api_base() == "http://proxy:8080/v3/"
    with pytest.raises(ValidationError, match="http"):
        make_config(base_url="ftp://cs.emulator")
    with pytest.raises(ValidationError):
        make_config(region="mars")


def test_config_never_shows_the_token() -> None:
    config = make_config()
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config.model_dump())


async def test_connector_declares_capabilities_scope_and_limits() -> None:
    async with ContentstackConnector(make_config(branch="develop")) as conn:
        assert Capabilities.of(conn) == Capabilities(
            target=True, replace=True, update_metadata=True, delete=True, find_asset=True,
            asset_exists=True, move=True, changed_since=True, references=True,
            publish=True, read_asset=True,
        )
        assert conn.scope == f"{API_KEY}@develop"
        assert conn.limits.max_folder_depth == 5
        assert conn.limits.max_folders == 300
        assert conn.limits.max_file_size == 100 * 1024 * 1024
        assert conn.limits.metadata_fields == frozenset({"title", "description", "tags"})
        assert conn.limits.requests_per_second == 1000  # the job's; unset: 10 (test below)
        # whitespace: rewritten in filenames only, folder names keep their spaces
        assert " " not in conn.limits.forbidden_name_chars
        assert conn.limits.filename_rewrites_whitespace is True


def test_stored_filename_rewrites_restricted_characters_and_whitespace() -> None:
    assert stored_filename("a b#c%d^e+f\\g/h?i*j:k|l\"m'n<o>p{q}r=s,t.png") == (
        "a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q_r_s_t.png"
    )
    assert stored_filename("plain-name_1.jpg") == "plain-name_1.jpg"


# -- fakes ----------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def folder(uid: str, name: str, parent: str | None) -> dict[str, Any]:
    return {
        "uid": uid, "name": name, "parent_uid": parent, "is_dir": True,
        "content_type": FOLDER_CONTENT_TYPE, "tags": [], "ACL": {}, "_version": 1,
    }


def asset(uid: str, *, parent: str | None = None, size: str = "10", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uid": uid, "filename": f"{uid}.png", "content_type": "image/png", "file_size": size,
        "parent_uid": parent, "is_dir": False, "tags": [], "_version": 1,
        "url": f"https://images.contentstack.io/v3/assets/{API_KEY}/{uid}/u1/{uid}.png",
        "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
    }
    record.update(extra)
    return record


class Fake:
    """A MockTransport handler that records requests and serves the asset listing."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def listing(
    folders: list[dict[str, Any]], assets: list[dict[str, Any]]
) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        records = folders if "is_dir" in request.url.params.get("query", "") else assets
        skip = int(request.url.params["skip"])
        limit = int(request.url.params["limit"])
        return httpx.Response(
            200, json={"assets": records[skip: skip + limit], "count": len(records)}
        )

    return handle


@pytest.fixture
def fake_conn() -> Callable[[Handler], tuple[Fake, ContentstackConnector]]:
    """Builds a connector on a fake; tests close it with ``async with``."""

    def build(handler: Handler) -> tuple[Fake, ContentstackConnector]:
        fake = Fake(handler)
        return fake, ContentstackConnector(make_config(), transport=fake.transport())

    return build


async def _drain(conn: ContentstackConnector) -> list[Asset]:
    return [a async for a in conn.iter_assets()]


async def test_412_is_an_auth_error_about_the_api_key(fake_conn: Any) -> None:
    body = {"error_message": "Stack API key is not valid.", "error_code": 412}
    fake, conn = fake_conn(lambda r: httpx.Response(412, json=body))
    async with conn:
        with pytest.raises(AuthError, match="api_key is not valid") as info:
            await _drain(conn)
    assert "Stack API key is not valid." in str(info.value)
    assert TOKEN not in str(info.value)
    assert len(fake.requests) == 1


async def test_401_is_an_auth_error_with_authtoken_named(fake_conn: Any) -> None:
    body = {
        "error_message": "You're not allowed in here unless you're logged in.",
        "error_code": 105, "errors": {"authtoken": ["is not valid."]},
    }
    fake = Fake(lambda r: httpx.Response(401, json=body))
    config = make_config(management_token=None, authtoken=AUTHTOKEN)
    async with ContentstackConnector(config, transport=fake.transport()) as conn:
        with pytest.raises(AuthError) as info:
            await _drain(conn)
    message = str(info.value)
    assert "refused the authtoken" in message
    assert "authtoken: is not valid." in message
    assert AUTHTOKEN not in message
    assert fake.requests[0].headers["authtoken"] == AUTHTOKEN
    assert "authorization" not in fake.requests[0].headers


async def test_body_that_is_not_json_is_malformed(fake_conn: Any) -> None:
    _, conn = fake_conn(lambda r: httpx.Response(200, text="<html>maintenance</html>"))
    async with conn:
        with pytest.raises(MalformedResponseError, match="not JSON"):
            await _drain(conn)


async def test_429_then_200_is_retried(fake_conn: Any) -> None:
    calls = {"n": 0}
    ok = listing([], [asset("blt1")])

    def handle(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 2:  # the asset page, first try
            return httpx.Response(
                429, json={"error_message": "Too many requests"},
                headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0"},
            )
        return ok(request)

    fake, conn = fake_conn(handle)
    async with conn:
        assets = await _drain(conn)
    assert [a.source_id for a in assets] == ["blt1"]
    assert len(fake.requests) == 3
    assert fake.requests[1].url == fake.requests[2].url


async def test_pages_until_the_announced_count(fake_conn: Any) -> None:
    records = [asset(f"blt{i:04d}") for i in range(230)]
    fake, conn = fake_conn(listing([], records))
    async with conn:
        assets = await _drain(conn)
    assert [a.source_id for a in assets] == [r["uid"] for r in records]
    skips = [r.url.params["skip"] for r in fake.requests if "query" not in r.url.params]
    assert skips == ["0", "100", "200"]
    assert all(r.url.params["limit"] == "100" for r in fake.requests)
    assert all(r.url.params["include_count"] == "true" for r in fake.requests)


async def test_server_ignoring_skip_is_malformed(fake_conn: Any) -> None:
    page = [asset(f"blt{i:04d}") for i in range(100)]

    def handle(request: httpx.Request) -> httpx.Response:
        if "query" in request.url.params:
            return httpx.Response(200, json={"assets": [], "count": 0})
        return httpx.Response(200, json={"assets": page, "count": 150})  # same page again

    _, conn = fake_conn(handle)
    async with conn:
        with pytest.raises(MalformedResponseError, match="twice"):
            await _drain(conn)


async def test_page_beyond_announced_total_is_malformed(fake_conn: Any) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if "query" in request.url.params:
            return httpx.Response(200, json={"assets": [], "count": 0})
        skip = int(request.url.params["skip"])
        page = [asset(f"blt{skip + i:04d}") for i in range(100)]
        return httpx.Response(200, json={"assets": page, "count": 150})

    _, conn = fake_conn(handle)
    async with conn:
        with pytest.raises(MalformedResponseError, match="announced 150"):
            await _drain(conn)


async def test_empty_page_before_the_count_is_malformed(fake_conn: Any) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if "query" in request.url.params:
            return httpx.Response(200, json={"assets": [], "count": 0})
        skip = int(request.url.params["skip"])
        page = [asset(f"blt{i:04d}") for i in range(100)] if skip == 0 else []
        return httpx.Response(200, json={"assets": page, "count": 150})

    _, conn = fake_conn(handle)
    async with conn:
        with pytest.raises(MalformedResponseError, match="empty page"):
            await _drain(conn)


async def test_folder_with_missing_parent_is_malformed(fake_conn: Any) -> None:
    _, conn = fake_conn(listing([folder("bltchild", "Child", "bltgone")], []))
    async with conn:
        with pytest.raises(MalformedResponseError, match="bltgone"):
            [f async for f in conn.iter_folders()]


async def test_non_numeric_file_size_is_malformed(fake_conn: Any) -> None:
    _, conn = fake_conn(listing([], [asset("blt1", size="1.86 MB")]))
    async with conn:
        with pytest.raises(MalformedResponseError, match="file_size"):
            await _drain(conn)


async def test_an_asset_listed_without_a_url_is_unreachable_not_a_migrate_failure(
    fake_conn: Any,
) -> None:
    _, conn = fake_conn(listing([], [asset("blt1"), asset("blt2", url=None)]))
    async with conn:
        first, second = await _drain(conn)
    assert first.unreachable is None
    assert second.unreachable is not None
    assert "without a download URL" in second.unreachable


async def test_asset_in_a_folder_created_after_listing_triggers_one_refresh(
    fake_conn: Any,
) -> None:
    folders: list[dict[str, Any]] = []
    assets = [asset("blt1", parent="bltnew")]
    fake, conn = fake_conn(listing(folders, assets))
    async with conn:
        assert [f async for f in conn.iter_folders()] == []
        folders.append(folder("bltnew", "New", None))
        [found] = await _drain(conn)
    assert found.folder_path == ("New",)
    assert sum("query" in r.url.params for r in fake.requests) == 2


async def test_credentials_go_to_the_api_host_only(fake_conn: Any) -> None:
    base = listing([], [asset("blt1")])

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "images.contentstack.io":
            return httpx.Response(200, content=b"png bytes")
        return base(request)

    fake, conn = fake_conn(handle)
    async with conn:
        [found] = await _drain(conn)
        async with conn.open_asset(found) as chunks:
            data = b"".join([c async for c in chunks])
    assert data == b"png bytes"
    api = [r for r in fake.requests if r.url.host == "api.contentstack.io"]
    files = [r for r in fake.requests if r.url.host != "api.contentstack.io"]
    assert len(api) == 2
    assert len(files) == 1
    for request in api:
        assert request.headers["authorization"] == TOKEN
        assert request.headers["api_key"] == API_KEY
        assert request.headers["branch"] == "main"
    for header in ("authorization", "authtoken", "api_key", "branch"):
        assert header not in files[0].headers


async def test_folder_limit_422_is_an_item_error_with_the_api_message(fake_conn: Any) -> None:
    body = {
        "error_message": "Folder creation failed. Maximum nesting depth reached.",
        "error_code": 422, "errors": {"parent_uid": ["exceeds the maximum depth of 5."]},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(422, json=body)
        return listing([], [])(request)

    fake, conn = fake_conn(handle)
    async with conn:
        with pytest.raises(ItemError, match="Maximum nesting depth") as info:
            await conn.create_folder(None, "Deep")
    assert not isinstance(info.value, AuthError)
    assert "300 folders" in str(info.value)
    assert [r.method for r in fake.requests].count("POST") == 1


async def test_upload_server_error_is_ambiguous_and_not_resent(
    fake_conn: Any, tmp_path: Path
) -> None:
    fake, conn = fake_conn(lambda r: httpx.Response(502, text="bad gateway"))
    async with conn:
        with pytest.raises(AmbiguousError):
            await conn.upload(upload_request(), staged_file(tmp_path), NoJournal())
    assert len(fake.requests) == 1


async def test_replace_retry_resends_the_whole_file(fake_conn: Any, tmp_path: Path) -> None:
    calls = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"asset": asset("bltx")})

    fake, conn = fake_conn(handle)
    data = b"x" * 200_000
    async with conn:
        ref = await conn.replace("bltx", upload_request(), staged_file(tmp_path, data), NoJournal())
    assert ref.target_id == "bltx"
    assert len(fake.requests) == 2
    for request in fake.requests:
        assert request.method == "PUT"
        form = parse_multipart(request.headers["content-type"], request.content)
        assert form["asset[upload]"] == ("file-name.png", data)


async def test_upload_refuses_files_over_100_mb_without_a_request(
    fake_conn: Any, tmp_path: Path
) -> None:
    staged = staged_file(tmp_path)
    huge = StagedFile(staged.path, 100 * 1024 * 1024 + 1, staged.md5, staged.sha256, "image/png")
    fake, conn = fake_conn(lambda r: httpx.Response(500))
    async with conn:
        with pytest.raises(ItemError, match="at most"):
            await conn.upload(upload_request(), huge, NoJournal())
    assert fake.requests == []


async def test_delete_of_a_missing_asset_is_done(fake_conn: Any) -> None:
    body = {"error_message": "Asset was not found.", "error_code": 145,
            "errors": {"uid": ["is not valid."]}}
    fake, conn = fake_conn(lambda r: httpx.Response(404, json=body))
    async with conn:
        await conn.delete("bltgone")
    assert [(r.method, r.url.path) for r in fake.requests] == [("DELETE", "/v3/assets/bltgone")]


async def test_5xx_on_listing_exhausts_retries_as_retryable(fake_conn: Any) -> None:
    fake, conn = fake_conn(lambda r: httpx.Response(500, json={"error_message": "boom"}))
    async with conn:
        with pytest.raises(RetryableError):
            await _drain(conn)
    assert len(fake.requests) == 6


def test_limits_carry_the_jobs_rate_when_it_sets_one() -> None:
    """``[target] requests_per_second`` below the documented 10/s is what the plan's estimate
    and a Temporal domain's share read (they read 10/s, so two workers went over a 2/s job
    rate: found by the README-only tester); unset, the documented limit."""
    unset = ContentstackConnector(make_config(requests_per_second=None))
    assert unset.limits.requests_per_second == 10
    slow = ContentstackConnector(make_config(requests_per_second=2))
    assert slow.limits.requests_per_second == 2
