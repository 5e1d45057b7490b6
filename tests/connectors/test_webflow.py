"""Webflow connector: cassettes of documented responses, then fakes for misbehaviour.

Cassettes (``tests/cassettes/webflow``) are built from the response examples of Webflow's v2
OpenAPI spec and the seed's "Get Asset" page, replayed with ``record_mode="none"``; a
recording transport in front of vcrpy's shows the exact requests the connector sent. Fakes
(``httpx.MockTransport``) live in separate tests: vcrpy also intercepts MockTransport.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
import vcr
from pydantic import ValidationError
from structlog.testing import capture_logs

from connectors import http as http_module
from connectors.base import AssetMeta, Capabilities, LocalizedText, UploadRequest
from connectors.errors import AmbiguousError, AuthError, ConfigError
from connectors.webflow import WebflowConfig, WebflowConnector
from connectors.webflow.client import webflow_error_text
from tests.connectors.staging import MemoryJournal, stage_bytes

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes" / "webflow"
SITE = "6390c49674a71f84b51a08d8"
TOKEN = "wf-cassette-token-8e1f"
LOCALE = "65427cf400e02b306eaa04a0"

VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization"],
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


F = TypeVar("F", bound=Callable[..., Any])


def cassette(name: str) -> Callable[[F], F]:
    """``VCR.use_cassette`` as a typed decorator."""
    return cast(Callable[[F], F], VCR.use_cassette(name))


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


def config(**changes: Any) -> WebflowConfig:
    values: dict[str, Any] = {"connector": "webflow", "site_id": SITE, "token": TOKEN,
                              "locales": {"de": LOCALE}}
    values.update(changes)
    return WebflowConfig.model_validate(values)


def fast(**changes: Any) -> WebflowConfig:
    """The real API host, paced fast enough for a test (base_url lifts the plan cap)."""
    return config(base_url="https://api.webflow.com", rate_limit_per_minute=60_000, **changes)


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    http_module.set_testing(True)
    yield
    http_module.set_testing(False)


# -- cassettes -----------------------------------------------------------------------------


@cassette("list.yaml")
async def test_listing_maps_the_documented_examples() -> None:
    rec = Recorder()
    conn = WebflowConnector(fast(locales={}), transport=rec)
    try:
        folders = [f async for f in conn.iter_folders()]
        assets = {a.source_id: a async for a in conn.iter_assets()}
    finally:
        await conn.aclose()
    assert [(f.source_id, f.path, f.parent_id) for f in folders] == [
        ("6390c49774a71f0e3c1a08ee", ("emoji icons",), None)]
    candy = assets["63e5889e7fe4eafa7384cea4"]
    assert candy.filename == "Candy-Wrapper.svg", "originalFileName, not displayName"
    assert candy.folder_path == ("emoji icons",)
    assert (candy.content_type, candy.size) == ("image/png", 2212772)
    assert candy.meta.alt_text == "A single candy wrapper"
    assert candy.url is not None
    assert candy.url.endswith("_Vectors-Wrapper.svg"), "hostedUrl"
    assert candy.extra["display_name"] == "63e5889e7fe4eafa7384cea4_Candy-Wrapper.png"
    gum = assets["63e5889e7fe4eafa7384cea5"]
    assert (gum.folder_path, gum.folder_id) == ((), None), "folderId null: the root"
    for request in rec.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.url.params["offset"] == "0"
        assert request.url.params["limit"] == "100"


@cassette("upload.yaml")
async def test_upload_is_two_steps_with_every_signed_field_verbatim_and_the_file_last(
        tmp_path: Path) -> None:
    rec = Recorder()
    conn = WebflowConnector(fast(), transport=rec)
    data = b"\x89PNG\r\n\x1a\n-a-file-"
    staged = stage_bytes(tmp_path, data, "image/png")
    journal = MemoryJournal()
    meta = AssetMeta(alt_text="A hero", title="dropped",
                     locales={"de": LocalizedText(alt_text="Ein Held")})
    request = UploadRequest("src", "file.png", "6436b1ce5281cace05b65aea", ("Brand",),
                            "image/png", meta)
    with pytest.raises(vcr.errors.CannotOverwriteExistingCassetteException):
        # the cassette has one PATCH: the per-locale PATCH is the request it does not hold
        await conn.upload(request, staged, journal)
    await conn.aclose()
    create, store, patch, patch_de = rec.requests
    assert json.loads(create.content) == {"fileName": "file.png",
                                          "fileHash": hashlib.md5(data).hexdigest(),  # noqa: S324
                                          "parentFolder": "6436b1ce5281cace05b65aea"}
    assert "authorization" not in store.headers, "no token to the storage host"
    body = store.content
    names = [part.split(b'"')[0].decode() for part in body.split(b'; name="')[1:]]
    assert names == ["acl", "bucket", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                     "key", "Policy", "X-Amz-Signature", "success_action_status",
                     "content-type", "Cache-Control", "file"], "verbatim casing, file last"
    assert b"<a-very-long-alphanumeric-token-with-equal-sign-at-the-end>" in body
    assert body.rstrip().endswith(b"--")
    assert data in body
    assert json.loads(patch.content) == {"displayName": "file.png", "altText": "A hero"}
    assert "localeId" not in patch.url.params
    assert patch_de.url.params["localeId"] == LOCALE
    assert json.loads(patch_de.content) == {"altText": "Ein Held"}
    assert [step for step, _ in journal.records] == ["created", "stored"]
    assert journal.records[0][1]["asset_id"] == "64358b9544249dc43d37d2b7"


@cassette("resume.yaml")
async def test_resume_after_step_one_finishes_the_asset_whose_bytes_arrived(
        tmp_path: Path) -> None:
    rec = Recorder()
    conn = WebflowConnector(fast(locales={}), transport=rec)
    staged = stage_bytes(tmp_path, b"svg", "image/svg+xml")
    journal = MemoryJournal({"asset_id": "63e5889e7fe4eafa7384cea4", "stored": "0",
                             "step": "created"})
    request = UploadRequest("src", "Candy-Wrapper.svg", None, (), "image/svg+xml",
                            AssetMeta(alt_text="candy"))
    ref = await conn.upload(request, staged, journal)
    await conn.aclose()
    assert ref.target_id == "63e5889e7fe4eafa7384cea4"
    assert [r.method for r in rec.requests] == ["GET", "PATCH"], "no second create"
    assert journal.records == []


@cassette("errors.yaml")
async def test_missing_site_and_refused_token_stop_the_run_with_what_to_do() -> None:
    conn = WebflowConnector(fast(), transport=Recorder())
    with pytest.raises(ConfigError, match="site 6390c49674a71f84b51a08d8 was not found"):
        [f async for f in conn.iter_folders()]
    with pytest.raises(AuthError, match="not_authorized: Request not authorized"):
        [a async for a in conn._pages()]
    await conn.aclose()


# -- config and capabilities ------------------------------------------------------------------


def test_config_rules() -> None:
    assert config().api_base() == "https://api.webflow.com/v2/"
    assert config(base_url="http://127.0.0.1:8125/").api_base() == "http://127.0.0.1:8125/v2/"
    assert config(base_url="http://127.0.0.1:8125/v2").api_base() == "http://127.0.0.1:8125/v2/"
    assert config().requests_per_second == 1.0
    assert config(locales=[LOCALE]).locales == {LOCALE: LOCALE}
    with pytest.raises(ValidationError, match="24-character hex id"):
        config(site_id="my-site")
    with pytest.raises(ValidationError, match="above Webflow's documented limits"):
        config(rate_limit_per_minute=600)
    assert config(rate_limit_per_minute=600, base_url="http://x").rate_limit_per_minute == 600


def test_capabilities_and_limits_say_what_webflow_cannot_do() -> None:
    conn = WebflowConnector(config())
    caps = Capabilities.of(conn)
    assert (caps.target, caps.update_metadata, caps.delete, caps.find_asset) == (
        True, True, True, True)
    assert not caps.replace, "Webflow v2 cannot replace an asset's file"
    limits = conn.limits
    assert limits.max_size_for("image/png") == 4 * 1024 * 1024
    assert limits.max_size_for("application/pdf") == 10 * 1024 * 1024
    assert limits.max_name_length == 99
    assert limits.requests_per_upload == 3, "create, PATCH, and a PATCH for the one locale"
    assert limits.requests_per_second == 1.0, "60 a minute"
    assert limits.metadata_fields == {"alt_text", "locales"}
    assert limits.accepted_content_types is not None
    assert "video/mp4" not in limits.accepted_content_types


def test_error_text_reads_the_documented_body() -> None:
    body = {"code": "validation_error", "message": "Validation Error",
            "externalReference": None, "details": [{"param": "fileName"}]}
    response = httpx.Response(400, json=body)
    assert webflow_error_text(response) == (
        "validation_error: Validation Error ({'param': 'fileName'})")
    xml = httpx.Response(400, text="<Error><Code>BadDigest</Code><Message>md5</Message></Error>")
    assert webflow_error_text(xml) == "BadDigest: md5"


# -- fakes ----------------------------------------------------------------------------------


def _assets_page(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"assets": [], "pagination": {"limit": 100, "offset": 0,
                                                                  "total": 0}})


async def test_a_429_with_retry_after_60_is_honoured_and_logged_with_its_end() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"Retry-After": "60", "X-RateLimit-Limit": "60",
                              "X-RateLimit-Remaining": "0"},
                json={"code": "too_many_requests", "message": "Too many requests",
                      "externalReference": None, "details": []})
        return _assets_page(request)

    conn = WebflowConnector(config(), transport=httpx.MockTransport(handler))
    with capture_logs() as logs:
        pages = [page async for page in conn._pages()]
    await conn.aclose()
    assert pages == [], "an empty site lists no page"
    assert len(calls) == 2
    [waiting] = [e for e in logs if e["event"] == "http.rate_limited"]
    assert waiting["retry_after"] == 60
    assert "waiting for the Webflow rate limit until" in waiting["message"]
    assert waiting["until"] in waiting["message"]


async def test_a_lost_create_answer_is_ambiguous_not_retried(tmp_path: Path) -> None:
    creates: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        creates.append(request)
        return httpx.Response(502, json={"code": "internal_error", "message": "bad gateway",
                                         "externalReference": None, "details": []})

    conn = WebflowConnector(config(), transport=httpx.MockTransport(handler))
    request = UploadRequest("s", "a.png", None, (), "image/png", AssetMeta())
    with pytest.raises(AmbiguousError):
        await conn.upload(request, stage_bytes(tmp_path, b"x", "image/png"), MemoryJournal())
    await conn.aclose()
    assert len(creates) == 1, "a create is never sent twice blindly"
