"""The Webflow emulator against Webflow's documentation (not against our connector).

Each test names the documented rule it checks; the spec's own examples are read from
shared/external/webflow when it is there (a user's clone has none: those tests skip).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import AssetMeta, UploadRequest
from connectors.emulation import Faults, in_process_transport
from connectors.webflow import WebflowConfig, WebflowConnector
from connectors.webflow.emulator import WebflowEmulator
from tests.connectors.staging import MemoryJournal, stage_bytes

SITE = "6390c49674a71f84b51a08d8"
TOKEN = "wf-emu-test-token"
LOCALE = "65427cf400e02b306eaa04a0"
EXTERNAL = Path(__file__).resolve().parents[3] / "shared" / "external" / "webflow"
needs_shared = pytest.mark.skipif(not EXTERNAL.is_dir(),
                                  reason="shared/external/webflow is not beside the repo")
ERROR_KEYS = {"code", "message", "externalReference", "details"}


@pytest.fixture
def emu() -> Iterator[WebflowEmulator]:
    e = WebflowEmulator(site_id=SITE, token=TOKEN, locales=(LOCALE,), rate_limit_per_minute=None)
    yield e
    e.close()


@pytest.fixture
async def client(emu: WebflowEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=in_process_transport(emu.app),
                                 base_url="http://wf.emulator/v2/",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


async def create(client: httpx.AsyncClient, name: str, data: bytes,
                 parent: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"fileName": name,
                            "fileHash": hashlib.md5(data).hexdigest()}  # noqa: S324
    if parent:
        body["parentFolder"] = parent
    r = await client.post(f"sites/{SITE}/assets", json=body)
    assert r.status_code == 200, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


async def store(client: httpx.AsyncClient, ticket: dict[str, Any], data: bytes,
                fields: dict[str, str] | None = None) -> httpx.Response:
    request = client.build_request(
        "POST", ticket["uploadUrl"], data=ticket["uploadDetails"] if fields is None else fields,
        files={"file": ("f", data, "application/octet-stream")})
    del request.headers["authorization"]  # storage takes no token
    return await client.send(request)


async def test_bearer_auth_and_the_documented_error_body(client: httpx.AsyncClient) -> None:
    """Error handling: {code, message, externalReference, details}; 401 not_authorized."""
    r = await client.get(f"sites/{SITE}/assets", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert set(r.json()) == ERROR_KEYS
    assert r.json()["code"] == "not_authorized"
    r = await client.get("sites/000000000000000000000000/assets")
    assert (r.status_code, r.json()["message"]) == (
        404, "Requested resource not found: The site cannot be found")
    r = await client.get("assets/ffffffffffffffffffffffff")
    assert (r.status_code, r.json()["code"]) == (404, "resource_not_found")


async def test_two_step_upload_and_what_storage_checks(client: httpx.AsyncClient,
                                                       emu: WebflowEmulator) -> None:
    """Create Asset -> uploadUrl + uploadDetails; the storage POST (its own path) needs every
    field verbatim and the file's MD5 = fileHash; an asset without bytes is not listed."""
    data = b"\x89PNG\r\n\x1a\nbytes"
    ticket = await create(client, "logo.png", data)
    assert set(ticket["uploadDetails"]) == {
        "acl", "bucket", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "key", "Policy",
        "X-Amz-Signature", "success_action_status", "content-type", "Cache-Control"}
    assert "/storage/" in ticket["uploadUrl"]
    listed = (await client.get(f"sites/{SITE}/assets")).json()
    assert listed["assets"] == [], "no bytes yet: not listed"
    assert (await client.get(f"assets/{ticket['id']}")).status_code == 404

    details = ticket["uploadDetails"]
    lowered = {k.lower() if k == "Policy" else k: v for k, v in details.items()}
    r = await store(client, ticket, data, lowered)
    assert (r.status_code, "AccessDenied" in r.text) == (403, True), "field names are signed"
    changed = {**details, "acl": "private"}
    assert (await store(client, ticket, data, changed)).status_code == 403
    r = await store(client, ticket, b"other bytes")
    assert (r.status_code, "BadDigest" in r.text) == (400, True)
    r = await store(client, ticket, data)
    assert r.status_code == 201, r.text
    got = (await client.get(f"assets/{ticket['id']}")).json()
    assert (got["originalFileName"], got["size"]) == ("logo.png", len(data))
    assert emu.credential_leaks == [], "the storage POST carried no token"


async def test_oversize_files_are_refused_by_storage(client: httpx.AsyncClient) -> None:
    """Working with Assets: images must not exceed 4MB, documents 10MB."""
    big = b"\xff" * (4 * 1024 * 1024 + 1)
    ticket = await create(client, "big.jpg", big)
    r = await store(client, ticket, big)
    assert (r.status_code, "EntityTooLarge" in r.text) == (400, True)
    ticket = await create(client, "fine.pdf", big)
    assert (await store(client, ticket, big)).status_code == 201, "a document may be 10 MB"


async def test_create_asset_validation(client: httpx.AsyncClient) -> None:
    """fileName must be less than 100 characters; fileHash required."""
    r = await client.post(f"sites/{SITE}/assets",
                          json={"fileName": "x" * 96 + ".png", "fileHash": "0" * 32})
    assert (r.status_code, r.json()["code"]) == (400, "validation_error")
    r = await client.post(f"sites/{SITE}/assets", json={"fileName": "a.png"})
    assert r.status_code == 400
    r = await client.post(f"sites/{SITE}/assets", json={"fileName": "clip.mp4",
                                                         "fileHash": "0" * 32})
    assert r.status_code == 400, "not a file type Webflow takes"


async def test_locale_id_in_the_query_and_in_the_body(client: httpx.AsyncClient,
                                                      emu: WebflowEmulator) -> None:
    """PATCH takes localeId as a query parameter (JS SDK) or a body field (Python SDK)."""
    asset_id = emu.add_asset("a.png", b"png", alt="hello")
    r = await client.patch(f"assets/{asset_id}", params={"localeId": LOCALE},
                           json={"altText": "hallo"})
    assert r.json()["altText"] == "hallo"
    r = await client.patch(f"assets/{asset_id}", json={"altText": "servus", "localeId": LOCALE})
    assert r.json()["altText"] == "servus"
    assert (await client.get(f"assets/{asset_id}")).json()["altText"] == "hello"
    page = (await client.get(f"sites/{SITE}/assets", params={"localeId": LOCALE})).json()
    assert page["assets"][0]["altText"] == "servus"
    r = await client.patch(f"assets/{asset_id}", params={"localeId": LOCALE},
                           json={"displayName": "x.png"})
    assert r.status_code == 400, "displayName is not localizable"
    r = await client.get(f"assets/{asset_id}", params={"localeId": "f" * 24})
    assert r.status_code == 400


async def test_paging_folders_and_delete(client: httpx.AsyncClient, emu: WebflowEmulator) -> None:
    """offset/limit (max 100) with a pagination object; folders only GET/POST, holding their
    assets' ids; DELETE answers 204."""
    folder = (await client.post(f"sites/{SITE}/asset_folders",
                                json={"displayName": "Brand"})).json()
    ids = [emu.add_asset(f"{i}.png", b"p", folder_id=folder["id"]) for i in range(5)]
    page = (await client.get(f"sites/{SITE}/assets", params={"offset": 3, "limit": 500})).json()
    assert page["pagination"] == {"limit": 100, "offset": 3, "total": 5}
    assert [a["id"] for a in page["assets"]] == ids[3:]
    listed = (await client.get(f"sites/{SITE}/asset_folders")).json()["assetFolders"]
    assert listed[0]["assets"] == ids
    assert (await client.patch(f"asset_folders/{folder['id']}", json={})).status_code == 405
    assert (await client.delete(f"asset_folders/{folder['id']}")).status_code == 405
    r = await client.delete(f"assets/{ids[0]}")
    assert (r.status_code, r.content) == (204, b"")


async def test_per_minute_rate_limit_with_its_headers(emu: WebflowEmulator) -> None:
    """Rate Limits: 429 with Retry-After (typically 60 s); X-RateLimit-Limit/-Remaining."""
    limited = WebflowEmulator(site_id=SITE, token=TOKEN, rate_limit_per_minute=3)
    try:
        async with httpx.AsyncClient(transport=in_process_transport(limited.app),
                                     base_url="http://wf.emulator/v2/",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            answers = [await c.get(f"sites/{SITE}/assets") for _ in range(4)]
    finally:
        limited.close()
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert answers[3].headers["Retry-After"] == "60"
    assert answers[3].json()["code"] == "too_many_requests"


async def test_injected_faults_use_the_documented_body(emu: WebflowEmulator,
                                                       client: httpx.AsyncClient) -> None:
    emu.faults = Faults(error_rate=1.0)
    r = await client.get(f"sites/{SITE}/assets")
    assert r.status_code == 503
    assert set(r.json()) == ERROR_KEYS


async def test_awkward_file_names_are_served_and_read_back(emu: WebflowEmulator,
                                                           tmp_path: Path) -> None:
    """Files served with spaces, #, ?, % and non-ASCII in their names."""
    names = ["a b.png", "hash#tag.png", "what?.png", "100% real.png", "größe ünïcödé.png"]
    for i, name in enumerate(names):
        emu.add_asset(name, f"bytes {i}".encode())
    cfg = WebflowConfig(connector="webflow", site_id=SITE, token=TOKEN,
                        base_url="http://wf.emulator", rate_limit_per_minute=60_000)
    conn = WebflowConnector(cfg, transport=in_process_transport(emu.app))
    try:
        got = {}
        async for asset in conn.iter_assets():
            async with conn.open_asset(asset) as chunks:
                got[asset.filename] = b"".join([c async for c in chunks])
        ref = await conn.upload(UploadRequest("s", "new #1?.png", None, (), "image/png",
                                              AssetMeta()),
                                stage_bytes(tmp_path, b"uploaded", "image/png"), MemoryJournal())
    finally:
        await conn.aclose()
    assert got == {name: f"bytes {i}".encode() for i, name in enumerate(names)}
    assert emu.blob(ref.target_id) == b"uploaded"
    assert emu.credential_leaks == []


@needs_shared
async def test_responses_carry_the_keys_of_the_spec_examples(client: httpx.AsyncClient,
                                                             emu: WebflowEmulator) -> None:
    examples = {(e["operationId"], e["status"]): e["example"] for e in json.loads(
        (EXTERNAL / "webflow-v2-assets-examples.json").read_text())["examples"]}
    folder = (await client.post(f"sites/{SITE}/asset_folders",
                                json={"displayName": "x"})).json()
    assert set(folder) == set(examples[("create-asset-folder", 200)])
    ticket = await create(client, "file.png", b"p", folder["id"])
    assert set(ticket) == set(examples[("create-asset", 200)])
    assert set(ticket["uploadDetails"]) == set(examples[("create-asset", 200)]["uploadDetails"])
    await store(client, ticket, b"p")
    listed = (await client.get(f"sites/{SITE}/assets")).json()
    assert set(listed) == set(examples[("list-assets", 200)])
    want = set(examples[("list-assets", 200)]["assets"][0])
    assert set(listed["assets"][0]) == want
    got = (await client.get(f"assets/{ticket['id']}")).json()
    assert set(got) >= set(examples[("get-asset", 200)])
    folders = (await client.get(f"sites/{SITE}/asset_folders")).json()
    assert set(folders) == set(examples[("list-asset-folders", 200)])
    missing = (await client.get("assets/ffffffffffffffffffffffff")).json()
    assert set(missing) == set(examples[("get-asset", 404)])


async def test_asset_exists_reads_the_one_asset(emu: WebflowEmulator) -> None:
    """Prune's proof: a direct GET /assets/{id}, 404 meaning gone."""
    kept = emu.add_asset("kept.png", b"k")
    gone = emu.add_asset("gone.png", b"g")
    del emu.assets[gone]
    cfg = WebflowConfig(connector="webflow", site_id=SITE, token=TOKEN,
                        base_url="http://wf.emulator", rate_limit_per_minute=60_000)
    conn = WebflowConnector(cfg, transport=in_process_transport(emu.app))
    try:
        assert await conn.asset_exists(kept) is True
        assert await conn.asset_exists(gone) is False
    finally:
        await conn.aclose()
