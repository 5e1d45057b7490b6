"""The Contentstack CMA emulator against the vendor's documentation, raw HTTP only.

Oracles: the CMA doc samples (seed 001), the recorded CDA 404 body, the official Postman
collection's requests and the python SDK's mock bodies under ``shared/external/contentstack``.
Our connector is not used here: the emulator and the connector check each other.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from connectors.contentstack.emulator import FOLDER_CONTENT_TYPE, ContentstackEmulator
from connectors.emulation import Faults, LoopbackServer, in_process_transport
from tests.shared_material import shared_file

BASE = "http://cs.test"
TOKEN = "cs-emulator-token"

ASSET_KEYS = {
    "uid", "created_at", "updated_at", "created_by", "updated_by", "content_type", "file_size",
    "tags", "filename", "url", "ACL", "is_dir", "parent_uid", "_version", "title",
    "description", "publish_details",
}
FOLDER_KEYS = {
    "uid", "created_at", "updated_at", "created_by", "updated_by", "content_type", "tags",
    "name", "ACL", "is_dir", "parent_uid", "_version",
}
OPTIONAL_KEYS = {"description", "dimension", "permanent_url", "_branch", "path"}
"""Keys the CMA docs show on some samples and not on others."""
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def png(width: int = 3, height: int = 2) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def emu() -> Iterator[ContentstackEmulator]:
    emulator = ContentstackEmulator(rate_limit=None)
    yield emulator
    emulator.close()


def headers(emu: ContentstackEmulator, **extra: str) -> dict[str, str]:
    return {"api_key": emu.api_key, "authorization": TOKEN, **extra}


@pytest.fixture
async def client(emu: ContentstackEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=in_process_transport(emu.app), base_url=BASE, headers=headers(emu)
    ) as c:
        yield c


async def upload(
    client: httpx.AsyncClient, name: str, data: bytes, ctype: str = "application/octet-stream",
    **fields: str,
) -> httpx.Response:
    form = {f"asset[{k}]": v for k, v in fields.items()}
    return await client.post("/v3/assets", files={"asset[upload]": (name, data, ctype)},
                             data=form)


async def bare_get(client: httpx.AsyncClient, url: str, **kw: Any) -> httpx.Response:
    """GET without the client's default credential headers (as a CDN fetch would be)."""
    request = client.build_request("GET", url, **kw)
    for name in ("api_key", "authorization"):
        del request.headers[name]
    return await client.send(request)


# -- authentication --------------------------------------------------------------------


async def test_missing_or_wrong_api_key_is_412(
    emu: ContentstackEmulator, client: httpx.AsyncClient
) -> None:
    for value in (None, "blt-not-the-stack"):
        request = client.build_request("GET", "/v3/assets")
        del request.headers["api_key"]
        if value:
            request.headers["api_key"] = value
        r = await client.send(request)
        assert r.status_code == 412
        body = r.json()
        assert set(body) == {"error_message", "error_code", "errors"}
        assert "Stack" in body["error_message"]
        assert body["error_code"] == 109
        assert body["errors"] == {"api_key": ["is not valid."]}


async def test_bad_or_missing_token_is_401_with_code_105(emu: ContentstackEmulator) -> None:
    expected = {
        "error_message": "You're not allowed in here unless you're logged in.",
        "error_code": 105,
        "errors": {"authtoken": ["is not valid."]},
    }
    async with httpx.AsyncClient(transport=in_process_transport(emu.app), base_url=BASE) as c:
        for extra in ({}, {"authorization": "wrong"}, {"authtoken": TOKEN},
                      {"authorization": "Bearer wrong"}):
            r = await c.get("/v3/assets", headers={"api_key": emu.api_key, **extra})
            assert r.status_code == 401, extra
            assert r.json() == expected


async def test_management_token_raw_or_bearer_and_authtoken_are_accepted() -> None:
    emu = ContentstackEmulator(rate_limit=None, authtoken="user-authtoken")
    try:
        async with httpx.AsyncClient(transport=in_process_transport(emu.app),
                                     base_url=BASE) as c:
            for extra in ({"authorization": TOKEN}, {"authorization": f"Bearer {TOKEN}"},
                          {"authtoken": "user-authtoken"}):
                r = await c.get("/v3/assets", headers={"api_key": emu.api_key, **extra})
                assert r.status_code == 200, extra
                assert r.json() == {"assets": []}
    finally:
        emu.close()


async def test_branch_header_and_include_branch() -> None:
    emu = ContentstackEmulator(rate_limit=None, branches=("main", "develop"))
    emu.add_asset("a.txt", b"a")
    try:
        async with httpx.AsyncClient(transport=in_process_transport(emu.app), base_url=BASE,
                                     headers=headers(emu)) as c:
            r = await c.get("/v3/assets", headers={"branch": "nope"})
            assert r.status_code == 422
            assert r.json()["errors"] == {"branch": ["is not valid."]}
            plain = (await c.get("/v3/assets", headers={"branch": "develop"})).json()
            assert "_branch" not in plain["assets"][0]
            r = await c.get("/v3/assets", params={"include_branch": "true"},
                            headers={"branch": "develop"})
            assert r.json()["assets"][0]["_branch"] == "develop"
    finally:
        emu.close()


# -- listing ---------------------------------------------------------------------------


async def test_paging_with_skip_limit_include_count_and_count(client: httpx.AsyncClient,
                                                              emu: ContentstackEmulator) -> None:
    uids = [emu.add_asset(f"f{i}.txt", b"x" * i) for i in range(7)]
    emu.add_folder("not an asset")
    seen: list[str] = []
    skip = 0
    while True:
        r = await client.get("/v3/assets", params={"skip": skip, "limit": 3,
                                                   "include_count": "true"})
        body = r.json()
        assert body["count"] == 7
        seen += [a["uid"] for a in body["assets"]]
        if len(body["assets"]) < 3:
            break
        skip += 3
    assert seen == uids  # default order: created_at ascending, stable across pages
    plain = (await client.get("/v3/assets")).json()
    assert "count" not in plain
    assert (await client.get("/v3/assets", params={"count": "true"})).json() == {"assets": 7}
    r = await client.get("/v3/assets", params={"skip": "-1"})
    assert r.status_code == 422


async def test_limit_above_max_is_clamped() -> None:
    emu = ContentstackEmulator(rate_limit=None, max_limit=4)
    for i in range(6):
        emu.add_asset(f"f{i}.txt", b"x")
    try:
        async with httpx.AsyncClient(transport=in_process_transport(emu.app), base_url=BASE,
                                     headers=headers(emu)) as c:
            assert len((await c.get("/v3/assets", params={"limit": 50})).json()["assets"]) == 4
            assert len((await c.get("/v3/assets")).json()["assets"]) == 4
    finally:
        emu.close()


async def test_sorting_by_asc_and_desc(client: httpx.AsyncClient,
                                       emu: ContentstackEmulator) -> None:
    for name in ("b.txt", "c.txt", "a.txt"):
        emu.add_asset(name, b"x")
    asc = (await client.get("/v3/assets", params={"asc": "filename"})).json()["assets"]
    desc = (await client.get("/v3/assets", params={"desc": "filename"})).json()["assets"]
    assert [a["filename"] for a in asc] == ["a.txt", "b.txt", "c.txt"]
    assert [a["filename"] for a in desc] == ["c.txt", "b.txt", "a.txt"]


async def test_folders_listing_via_is_dir_query_and_include_folders(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    top = emu.add_folder("Top")
    sub = emu.add_folder("Sub", top)
    emu.add_folder("Other")
    in_top = emu.add_asset("in-top.txt", b"1", parent_uid=top)
    at_root = emu.add_asset("root.txt", b"2")
    deep = emu.add_asset("deep.txt", b"3", parent_uid=sub)

    def uids(r: httpx.Response) -> set[str]:
        return {a["uid"] for a in r.json()["assets"]}

    everything = await client.get("/v3/assets")
    assert uids(everything) == {in_top, at_root, deep}  # no folders without asking
    only_dirs = await client.get("/v3/assets", params={"query": json.dumps({"is_dir": True})})
    assert {a["name"] for a in only_dirs.json()["assets"]} == {"Top", "Sub", "Other"}
    assert all(a["content_type"] == FOLDER_CONTENT_TYPE for a in only_dirs.json()["assets"])
    children = await client.get("/v3/assets", params={"include_folders": "true", "folder": top})
    assert uids(children) == {sub, in_top}  # direct children only
    subfolders = await client.get("/v3/assets", params={
        "include_folders": "true", "query": '{"is_dir": true}', "folder": top})
    assert uids(subfolders) == {sub}
    root = await client.get("/v3/assets", params={"folder": "cs_root", "include_folders": "true"})
    assert {a.get("name") or a["filename"] for a in root.json()["assets"]} == {
        "Top", "Other", "root.txt"}
    by_name = await client.get("/v3/assets", params={
        "query": json.dumps({"is_dir": True, "name": "Sub"})})
    assert uids(by_name) == {sub}
    by_parent = await client.get("/v3/assets", params={"query": json.dumps({"parent_uid": sub})})
    assert uids(by_parent) == {deep}
    by_filename = await client.get("/v3/assets", params={
        "query": json.dumps({"filename": "root.txt"})})
    assert uids(by_filename) == {at_root}
    bad = await client.get("/v3/assets", params={"query": "{not json"})
    assert bad.status_code == 422
    unknown = await client.get("/v3/assets", params={"folder": "bltmissing"})
    assert unknown.status_code == 404


async def test_single_folder_with_path(client: httpx.AsyncClient,
                                       emu: ContentstackEmulator) -> None:
    a = emu.add_folder("a")
    b = emu.add_folder("b", a)
    c = emu.add_folder("c", b)
    r = await client.get(f"/v3/assets/folders/{c}", params={"include_path": "true"})
    folder = r.json()["asset"]
    assert set(folder) == FOLDER_KEYS | {"path"}
    assert folder["path"] == [{"uid": a, "name": "a"}, {"uid": b, "name": "b"}]
    assert folder["is_dir"] is True
    plain = (await client.get(f"/v3/assets/folders/{c}")).json()["asset"]
    assert set(plain) == FOLDER_KEYS
    missing = await client.get("/v3/assets/folders/bltmissing")
    assert missing.status_code == 404


# -- folders: limits, moves, cascade delete ------------------------------------------


async def test_folder_depth_limit_is_five(client: httpx.AsyncClient) -> None:
    parent = None
    for level in range(1, 6):
        body: dict[str, Any] = {"asset": {"name": f"level{level}", "parent_uid": parent}}
        r = await client.post("/v3/assets/folders", json=body)
        assert r.status_code == 201
        assert r.json()["notice"] == "Folder created successfully."
        assert set(r.json()["asset"]) == FOLDER_KEYS
        parent = r.json()["asset"]["uid"]
    r = await client.post("/v3/assets/folders",
                          json={"asset": {"name": "level6", "parent_uid": parent}})
    assert r.status_code == 422
    assert "5 levels" in r.json()["error_message"]
    assert set(r.json()) == {"error_message", "error_code", "errors"}


async def test_folder_count_limit_and_validation() -> None:
    emu = ContentstackEmulator(rate_limit=None, max_folders=2)
    try:
        async with httpx.AsyncClient(transport=in_process_transport(emu.app), base_url=BASE,
                                     headers=headers(emu)) as c:
            for name in ("one", "two"):
                assert (await c.post("/v3/assets/folders",
                                     json={"asset": {"name": name}})).status_code == 201
            r = await c.post("/v3/assets/folders", json={"asset": {"name": "three"}})
            assert r.status_code == 422
            assert "maximum of 2 folders" in r.json()["error_message"]
            assert len(emu.folders) == 2
            no_name = await c.post("/v3/assets/folders", json={"asset": {}})
            assert no_name.status_code == 422
            assert no_name.json()["errors"] == {"name": ["is required."]}
    finally:
        emu.close()


async def test_folder_unknown_parent_is_rejected(client: httpx.AsyncClient) -> None:
    r = await client.post("/v3/assets/folders",
                          json={"asset": {"name": "x", "parent_uid": "bltnothere"}})
    assert r.status_code == 422
    assert r.json()["errors"] == {"parent_uid": ["is not valid."]}


async def test_folder_rename_move_and_no_cycles(client: httpx.AsyncClient,
                                                emu: ContentstackEmulator) -> None:
    a = emu.add_folder("a")
    b = emu.add_folder("b", a)
    other = emu.add_folder("other")
    r = await client.put(f"/v3/assets/folders/{b}",
                         json={"asset": {"name": "renamed", "parent_uid": other}})
    assert r.status_code == 200
    assert r.json()["notice"] == "Folder updated successfully."
    assert r.json()["asset"]["name"] == "renamed"
    assert r.json()["asset"]["parent_uid"] == other
    assert r.json()["asset"]["_version"] == 2
    cycle = await client.put(f"/v3/assets/folders/{other}", json={"asset": {"parent_uid": b}})
    assert cycle.status_code == 422
    itself = await client.put(f"/v3/assets/folders/{a}", json={"asset": {"parent_uid": a}})
    assert itself.status_code == 422
    assert emu.folders[other]["parent_uid"] is None


async def test_folder_move_that_would_exceed_depth_is_rejected(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    chain = [emu.add_folder("d1")]
    for level in range(2, 5):
        chain.append(emu.add_folder(f"d{level}", chain[-1]))
    tree = emu.add_folder("t1")
    emu.add_folder("t2", tree)  # a subtree of height 2 cannot go under level 4
    r = await client.put(f"/v3/assets/folders/{tree}", json={"asset": {"parent_uid": chain[-1]}})
    assert r.status_code == 422
    ok = await client.put(f"/v3/assets/folders/{tree}", json={"asset": {"parent_uid": chain[-2]}})
    assert ok.status_code == 200


async def test_folder_delete_cascades_to_subfolders_and_assets(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    top = emu.add_folder("top")
    sub = emu.add_folder("sub", top)
    keep = emu.add_folder("keep")
    a1 = emu.add_asset("a1.txt", b"1", parent_uid=top)
    a2 = emu.add_asset("a2.txt", b"2", parent_uid=sub)
    kept = emu.add_asset("kept.txt", b"3", parent_uid=keep)
    url = (await client.get(f"/v3/assets/{a2}")).json()["asset"]["url"]
    r = await client.delete(f"/v3/assets/folders/{top}")
    assert r.status_code == 200
    assert r.json() == {"notice": "Folder deleted successfully."}
    assert set(emu.folders) == {keep}
    assert set(emu.assets) == {kept}
    assert (await client.get(f"/v3/assets/{a1}")).status_code == 404
    assert (await bare_get(client, url)).status_code == 404


# -- uploads, downloads, replace, metadata -------------------------------------------


async def test_upload_then_download_same_bytes(client: httpx.AsyncClient,
                                               emu: ContentstackEmulator) -> None:
    folder = emu.add_folder("photos")
    data = png(5, 4)
    r = await upload(client, "my photo#1.png", data, "image/png", parent_uid=folder,
                     description="d", tags="one, two")
    assert r.status_code == 201
    body = r.json()
    assert body["notice"] == "Asset created successfully."
    asset = body["asset"]
    assert set(asset) == ASSET_KEYS
    assert re.fullmatch(r"blt[0-9a-f]{16}", asset["uid"])
    assert TIMESTAMP.match(asset["created_at"])
    assert TIMESTAMP.match(asset["updated_at"])
    assert asset["file_size"] == str(len(data))
    assert asset["filename"] == "my_photo_1.png"  # restricted characters become "_"
    assert asset["title"] == "my photo#1.png"
    assert asset["tags"] == ["one", "two"]
    assert asset["parent_uid"] == folder
    assert asset["is_dir"] is False
    assert asset["_version"] == 1
    assert asset["publish_details"] == []
    assert asset["ACL"] == {}
    assert asset["content_type"] == "image/png"
    assert re.fullmatch(
        rf"{BASE}/files/v3/assets/{emu.api_key}/{asset['uid']}/[0-9a-f]{{24}}/my_photo_1\.png",
        asset["url"],
    )
    got = await bare_get(client, asset["url"])
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["content-type"].startswith("image/png")
    assert emu.blob(asset["uid"]) == data
    assert emu.credential_leaks == []


async def test_upload_repeated_tag_fields_and_dimension(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v3/assets", params={"include_dimension": "true"},
        files=[("asset[upload]", ("p.png", png(7, 3), "image/png")),
               ("asset[tags]", (None, "a")), ("asset[tags]", (None, "b,c"))],
    )
    assert r.status_code == 201
    asset = r.json()["asset"]
    assert asset["tags"] == ["a", "b", "c"]
    assert asset["dimension"] == {"height": 3, "width": 7}
    again = await client.get(f"/v3/assets/{asset['uid']}")
    assert "dimension" not in again.json()["asset"]


async def test_upload_without_file_or_to_unknown_folder_is_422(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    r = await client.post("/v3/assets", files={"asset[title]": (None, "t")})
    assert r.status_code == 422
    assert r.json()["errors"] == {"upload": ["is required."]}
    r = await upload(client, "a.txt", b"a", parent_uid="bltnothere")
    assert r.status_code == 422
    assert r.json()["errors"] == {"parent_uid": ["is not valid."]}
    assert emu.assets == {}


async def test_upload_above_max_file_size_is_refused() -> None:
    emu = ContentstackEmulator(rate_limit=None, max_file_size=10)
    try:
        async with httpx.AsyncClient(transport=in_process_transport(emu.app), base_url=BASE,
                                     headers=headers(emu)) as c:
            r = await upload(c, "big.bin", b"x" * 11)
            assert r.status_code == 413
            assert set(r.json()) == {"error_message", "error_code", "errors"}
            assert emu.assets == {}
            assert (await upload(c, "ok.bin", b"x" * 10)).status_code == 201
    finally:
        emu.close()


async def test_replace_file_changes_upload_uid_and_version(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    first = (await upload(client, "doc.txt", b"version one", title="Doc")).json()["asset"]
    r = await client.put(f"/v3/assets/{first['uid']}",
                         files={"asset[upload]": ("doc v2.txt", b"second", "text/plain")})
    assert r.status_code == 200
    assert r.json()["notice"] == "Asset updated successfully."
    second = r.json()["asset"]
    assert second["_version"] == 2
    assert second["url"] != first["url"]
    assert second["file_size"] == "6"
    assert second["filename"] == "doc_v2.txt"
    assert second["title"] == "Doc"
    assert (await bare_get(client, first["url"])).status_code == 404
    assert (await bare_get(client, second["url"])).content == b"second"
    assert emu.blob(first["uid"]) == b"second"


async def test_metadata_update_json_and_multipart(client: httpx.AsyncClient,
                                                  emu: ContentstackEmulator) -> None:
    folder = emu.add_folder("f")
    uid = emu.add_asset("a.txt", b"abc")
    r = await client.put(f"/v3/assets/{uid}", json={"asset": {
        "title": "New", "description": "Desc", "tags": ["x", "y"], "parent_uid": folder}})
    assert r.status_code == 200
    asset = r.json()["asset"]
    assert (asset["title"], asset["description"], asset["tags"], asset["parent_uid"]) == (
        "New", "Desc", ["x", "y"], folder)
    assert asset["_version"] == 2
    r = await client.put(f"/v3/assets/{uid}", files={"asset[title]": (None, "Form title"),
                                                     "asset[parent_uid]": (None, "")})
    assert r.status_code == 200
    assert r.json()["asset"]["title"] == "Form title"
    assert r.json()["asset"]["parent_uid"] is None
    assert emu.blob(uid) == b"abc"
    bad = await client.put(f"/v3/assets/{uid}", json={"asset": {"parent_uid": "bltnope"}})
    assert bad.status_code == 422
    assert emu.assets[uid]["_version"] == 3
    missing = await client.put("/v3/assets/bltmissing", json={"asset": {"title": "t"}})
    assert missing.status_code == 404


async def test_delete_asset(client: httpx.AsyncClient, emu: ContentstackEmulator) -> None:
    uid = emu.add_asset("a.txt", b"abc")
    r = await client.delete(f"/v3/assets/{uid}")
    assert r.json() == {"notice": "Asset deleted successfully."}
    assert uid not in emu.assets
    assert (await client.delete(f"/v3/assets/{uid}")).status_code == 404


async def test_missing_asset_404_matches_recorded_body(client: httpx.AsyncClient) -> None:
    recorded = json.loads((external("cda-recorded-swift-dvr/Asset.json")).read_text())
    body_404 = next(i["response"]["body"] for i in recorded["interactions"]
                    if i["response"]["status"] == 404)
    r = await client.get("/v3/assets/bltdoesnotexist")
    assert r.status_code == 404
    assert r.json() == body_404


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    r = await client.get("/v3/nothing/here")
    assert r.status_code == 404
    assert set(r.json()) == {"error_message", "error_code", "errors"}
    r = await client.patch("/v3/assets")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) >= {"GET", "POST"}


# -- versions, publish -----------------------------------------------------------------


async def test_versions_names_and_publish(client: httpx.AsyncClient,
                                          emu: ContentstackEmulator) -> None:
    uid = emu.add_asset("a.txt", b"one", title="first")
    await client.put(f"/v3/assets/{uid}", json={"asset": {"title": "second"}})
    r = await client.post(f"/v3/assets/{uid}/versions/1/name",
                          json={"upload": {"_version_name": "Original"}})
    assert r.json() == {"notice": "Version name assigned successfully."}
    versions = (await client.get(f"/v3/assets/{uid}/versions",
                                 params={"include_count": "true"})).json()
    assert versions["count"] == 2
    assert [v["_version"] for v in versions["versions"]] == [2, 1]
    assert versions["versions"][1]["_version_name"]["title"] == "Original"
    old = (await client.get(f"/v3/assets/{uid}", params={"version": 1})).json()["asset"]
    assert old["title"] == "first"
    restored = await client.put(f"/v3/assets/{uid}", json={"asset": {}, "version": 1})
    assert restored.json()["asset"]["title"] == "first"
    assert restored.json()["asset"]["_version"] == 3
    r = await client.post(f"/v3/assets/{uid}/publish", json={
        "asset": {"locales": ["en-us"], "environments": ["production"]}, "version": 3})
    assert r.json() == {"notice": "Asset sent for publishing."}
    details = emu.assets[uid]["publish_details"]
    assert [(d["environment"], d["locale"], d["version"]) for d in details] == [
        (emu.environment_uid("production"), "en-us", 3)]  # the docs: the environment's uid
    published = await client.get("/v3/assets", params={"environment": "production"})
    assert [a["uid"] for a in published.json()["assets"]] == [uid]
    r = await client.post(f"/v3/assets/{uid}/unpublish", json={
        "asset": {"locales": ["en-us"], "environments": ["production"]}})
    assert r.json() == {"notice": "Asset sent for unpublishing."}
    assert emu.assets[uid]["publish_details"] == []


async def test_publish_checks_environments_and_locales_the_stack_has(
        client: httpx.AsyncClient, emu: ContentstackEmulator) -> None:
    uid = emu.add_asset("a.txt", b"one")
    r = await client.post(f"/v3/assets/{uid}/publish", json={
        "asset": {"locales": ["en-us", "fr-fr"], "environments": ["production", "moon"]}})
    assert r.status_code == 422
    assert r.json()["errors"] == {"environments": ["'moon' is not valid."],
                                  "locales": ["'fr-fr' is not valid."]}
    assert emu.assets[uid]["publish_details"] == []
    # an environment may be named by its uid too; the listing filter takes either
    prod = emu.environment_uid("production")
    r = await client.post(f"/v3/assets/{uid}/publish", json={
        "asset": {"locales": ["en-us"], "environments": [prod]}})
    assert r.status_code == 200
    for env in ("production", prod):
        listed = await client.get("/v3/assets", params={"environment": env})
        assert [a["uid"] for a in listed.json()["assets"]] == [uid]


async def test_references_list_the_seeded_entries(client: httpx.AsyncClient,
                                                  emu: ContentstackEmulator) -> None:
    uid = emu.add_asset("a.png", png())
    emu.add_reference(uid, "blt_entry", content_type_uid="page", locale="en-us")
    r = await client.get(f"/v3/assets/{uid}/references",
                         params={"include_count": "true", "include_publish_details": "true"})
    body = r.json()
    assert body["count"] == 1
    [ref] = body["references"]
    assert (ref["entry_uid"], ref["content_type_uid"], ref["locale"]) == (
        "blt_entry", "page", "en-us")
    assert ref["publish_details"] == []
    missing = await client.get("/v3/assets/blt_nope/references")
    assert missing.status_code == 404


# -- rate limit, faults, credential leaks ---------------------------------------------


async def test_burst_beyond_rate_limit_gets_429_without_retry_after() -> None:
    emu = ContentstackEmulator(rate_limit=3)
    uid = emu.add_asset("a.txt", b"abc")
    try:
        async with httpx.AsyncClient(transport=in_process_transport(emu.app), base_url=BASE,
                                     headers=headers(emu)) as c:
            url = (await c.get(f"/v3/assets/{uid}")).json()["asset"]["url"]
            remaining = []
            for _ in range(2):
                r = await c.get("/v3/assets")
                assert r.status_code == 200
                assert r.headers["x-ratelimit-limit"] == "3"
                remaining.append(r.headers["x-ratelimit-remaining"])
            assert remaining == ["1", "0"]
            r = await c.get("/v3/assets")
            assert r.status_code == 429
            assert "rate limit" in r.json()["error_message"]
            assert set(r.json()) == {"error_message", "error_code", "errors"}
            assert r.headers["x-ratelimit-remaining"] == "0"
            assert r.headers["x-ratelimit-limit"] == "3"
            assert "retry-after" not in r.headers
            assert (await bare_get(c, url)).status_code == 200  # files are not limited
            assert emu.requests == 4
    finally:
        emu.close()


async def test_injected_error_is_503_with_error_body(client: httpx.AsyncClient,
                                                     emu: ContentstackEmulator) -> None:
    emu.faults.error_rate = 1.0
    r = await client.get("/v3/assets")
    assert r.status_code == 503
    assert set(r.json()) == {"error_message", "error_code", "errors"}
    assert emu.fault_middleware.injected["error"] == 1
    emu.faults = Faults()
    assert (await client.get("/v3/assets")).status_code == 200


async def test_error_after_commit_keeps_the_asset(client: httpx.AsyncClient,
                                                  emu: ContentstackEmulator) -> None:
    emu.faults.error_after_commit_rate = 1.0
    r = await upload(client, "a.txt", b"committed")
    assert r.status_code == 502
    assert emu.fault_middleware.injected["after_commit"] == 1
    [uid] = emu.assets
    assert emu.blob(uid) == b"committed"
    emu.faults.error_after_commit_rate = 0.0
    listed = (await client.get("/v3/assets")).json()["assets"]
    assert [a["uid"] for a in listed] == [uid]


async def test_truncated_download_and_reset_surface_as_read_errors(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    uid = emu.add_asset("big.bin", b"x" * 200_000)
    url = (await client.get(f"/v3/assets/{uid}")).json()["asset"]["url"]
    emu.faults = Faults(truncate_rate=1.0)
    with pytest.raises(httpx.ReadError):
        await bare_get(client, url)
    assert emu.fault_middleware.injected["truncate"] == 1
    emu.faults = Faults(reset_rate=1.0)
    with pytest.raises(httpx.ReadError):
        await client.get("/v3/assets")
    assert emu.fault_middleware.injected["reset"] == 1


async def test_download_with_credentials_is_recorded_as_a_leak(
    client: httpx.AsyncClient, emu: ContentstackEmulator
) -> None:
    uid = emu.add_asset("a.txt", b"abc")
    url = (await client.get(f"/v3/assets/{uid}")).json()["asset"]["url"]
    before = emu.requests
    assert (await bare_get(client, url)).status_code == 200
    assert emu.credential_leaks == []
    r = await client.get(url)  # the client's default headers carry api_key + authorization
    assert r.status_code == 200
    assert emu.credential_leaks == [httpx.URL(url).path]
    assert emu.requests == before  # downloads are not API requests


# -- the official Postman collection, replayed ----------------------------------------


def external(name: str) -> Path:
    """Contentstack's own material in ../shared (skips the test when absent)."""
    return shared_file(f"external/contentstack/{name}")


def _postman_items() -> list[dict[str, Any]]:
    collection = json.loads((external("postman/cma-collection.assets-only.json")).read_text())
    items: list[dict[str, Any]] = []

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            if "item" in node:
                walk(node["item"])
            else:
                items.append(node)

    walk(collection["item"])
    return items


def _mock(name: str) -> Any:
    return json.loads((external(f"cma-mocks-python-sdk/{name}")).read_text())


def _assert_keys_like(
    ours: dict[str, Any], mock: dict[str, Any], *, asked_for: frozenset[str] = frozenset()
) -> None:
    """Every key the mock shows is ours too (bar one the docs show only now and then, and
    those a query parameter the replayed request left off asks for), and every key we add
    is one the docs show on some other sample."""
    allowed_missing = {"app_user_object_uid"} | asked_for
    assert set(mock) - set(ours) <= allowed_missing, set(mock) - set(ours)
    assert set(ours) - set(mock) <= ASSET_KEYS | FOLDER_KEYS | OPTIONAL_KEYS


async def test_postman_collection_replays(client: httpx.AsyncClient,
                                          emu: ContentstackEmulator) -> None:
    items = _postman_items()
    assert len(items) == 25
    replayed: dict[str, httpx.Response] = {}
    for item in items:
        folder = emu.add_folder("folder_name")
        uid = emu.add_asset("pic.png", png(), parent_uid=folder, title="first")
        emu.add_folder("child", folder)
        slug = "sample-slug"
        permanent = f"https://images.contentstack.io/v3/assets/{emu.api_key}/{uid}/{slug}"
        if item["name"] == "Download an asset with permanent URL":
            await client.put(f"/v3/assets/{uid}", json={"asset": {"permanent_url": permanent}})
        variables = {
            "{{base_url}}": "", "{{api_key}}": emu.api_key, "{stack_api_key}": emu.api_key,
            "{{management_token}}": TOKEN, "{{authtoken}}": "unused", "{{asset_uid}}": uid,
            "{{folder_uid}}": folder, "{{version_number}}": "1", "{{asset_type}}": "images",
            "{{slug}}": slug, "enter_your_folder_uid": folder, "enter_version_number": "1",
            "{{environment_name}}": "production",
        }

        def sub(text: str, variables: dict[str, str] = variables) -> str:
            for key, value in variables.items():
                text = text.replace(key, value)
            assert "{{" not in text, text
            return text

        request = item["request"]
        url = request["url"]
        params: list[tuple[str, str | int | float | bool | None]] = [
            (str(q["key"]), sub(q["value"])) for q in url.get("query", [])
            if not q.get("disabled")
        ]
        body = request.get("body") or {}
        req_headers = {h["key"]: sub(h["value"]) for h in request["header"]
                       if not h.get("disabled")}
        kwargs: dict[str, Any] = {}
        if body.get("mode") == "formdata":
            # Postman replaces the bare "multipart/form-data" with one carrying the boundary
            req_headers.pop("Content-Type", None)
            files: list[tuple[str, Any]] = []
            for field in body["formdata"]:
                if field.get("disabled"):
                    continue
                if field["type"] == "file":
                    files.append((field["key"], ("replay.png", png(4, 4), "image/png")))
                else:
                    value = {"asset[permanent_url]": permanent}.get(field["key"], "Replayed")
                    files.append((field["key"], (None, value)))
            kwargs["files"] = files
        elif body.get("raw"):
            kwargs["content"] = sub(body["raw"]).encode()
        r = await client.request(request["method"], sub(url["path"]), params=params,
                                 headers=req_headers, **kwargs)
        assert r.is_success, (item["name"], r.status_code, r.text)
        replayed[item["name"]] = r

    def asset_of(name: str) -> dict[str, Any]:
        body: dict[str, Any] = replayed[name].json()["asset"]
        return body

    # response shapes against the SDK's mocks, where one corresponds
    assert set(replayed["Get assets of a specific folder"].json()) == {"assets"}
    _assert_keys_like(replayed["Get assets of a specific folder"].json()["assets"][0],
                      _mock("specific_folder.json")["assets"][0])
    _assert_keys_like(replayed["Get either only images or videos"].json()["assets"][0],
                      _mock("asset_type.json")["assets"][0])
    # the replayed requests leave include_path off; test_single_folder_with_path turns it on
    path_param = frozenset({"path"})
    _assert_keys_like(asset_of("Get a single folder"), _mock("folder.json")["asset"],
                      asked_for=path_param)
    _assert_keys_like(asset_of("Create a folder"), _mock("folder.json")["asset"],
                      asked_for=path_param)
    assert replayed["Get a single folder by name"].json()["assets"][0]["name"] == "folder_name"
    subfolders = replayed["Get subfolders of a parent folder"].json()["assets"]
    assert [f["name"] for f in subfolders] == ["child"]
    rte = replayed["Get information on RTE assets"].json()
    assert isinstance(rte, list)
    assert set(rte[0]) == set(_mock("rte_array.json")[0]) == set(_mock("rte.json"))
    assert set(replayed["Get asset references"].json()) == set(_mock("references.json"))
    versions = replayed["Get Details of All Versions of an Asset"].json()
    assert set(versions) == set(_mock("version.json"))
    assert {"_version"} <= set(versions["versions"][0]) <= {"_version", "_version_name"}
    assert replayed["Upload asset"].status_code == 201
    assert asset_of("Upload asset")["title"] == "replay.png"
    assert asset_of("Replace asset")["_version"] == 2
    assert asset_of("Generate permanent asset URL")["permanent_url"].endswith("/sample-slug")
    assert replayed["Download an asset with permanent URL"].content == png()
    assert asset_of("Update asset revision")["title"] == "Title"
    assert asset_of("Update asset")["title"] == "Replayed"
    for name, notice in (
        ("Delete asset", "Asset deleted successfully."),
        ("Delete a folder", "Folder deleted successfully."),
        ("Publish an asset", "Asset sent for publishing."),
        ("Unpublish an asset", "Asset sent for unpublishing."),
        ("Update or move folder", "Folder updated successfully."),
        ("Set Version Name for Asset", "Version name assigned successfully."),
        ("Delete Version Name of Asset", "Version name deleted successfully"),
    ):
        assert replayed[name].json()["notice"] == notice, name
    _assert_keys_like(replayed["Get all assets"].json()["assets"][0],
                      _mock("specific_folder.json")["assets"][0])


# -- a real socket -----------------------------------------------------------------------


@pytest.mark.slow
async def test_served_over_loopback_socket() -> None:
    emu = ContentstackEmulator(rate_limit=None)
    try:
        with LoopbackServer(emu.app) as server:
            async with httpx.AsyncClient(base_url=server.url, headers=headers(emu)) as c:
                r = await upload(c, "net.bin", b"\x00\x01" * 50_000)
                assert r.status_code == 201
                url = r.json()["asset"]["url"]
                assert url.startswith(f"{server.url}/files/v3/assets/")
            async with httpx.AsyncClient() as plain:
                got = await plain.get(url)
            assert got.content == b"\x00\x01" * 50_000
            assert emu.credential_leaks == []
    finally:
        emu.close()


async def test_injected_throttle_is_429_with_retry_after(client: httpx.AsyncClient,
                                                        emu: ContentstackEmulator) -> None:
    emu.faults = Faults(throttle_rate=1.0, throttle_retry_after=7)
    before = emu.fault_middleware.requests
    r = await client.get("/v3/assets")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert emu.fault_middleware.injected["throttle"] == 1
    assert emu.fault_middleware.requests == before + 1
