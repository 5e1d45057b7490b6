"""The Storyblok MAPI emulator, driven with raw httpx (never through our connector)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.emulation import Faults, LoopbackServer, in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator, parameterize
from tests.shared_material import shared_file

SPACE = 288868932106293
BASE = f"/v1/spaces/{SPACE}"
AUTH = {"Authorization": "sb-emulator-token"}
SPEC = "storyblok-mapi-assets.bundled.openapi.json"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

LIST_ROW_KEYS = {
    # list-assets.json (a recorded response) plus short_filename, which the spec requires
    "id", "filename", "ext_id", "asset_folder_id", "is_private", "content_type",
    "content_length", "created_at", "updated_at", "deleted_at", "alt", "title", "copyright",
    "focus", "expire_at", "source", "space_id", "internal_tag_ids", "locked", "publish_at",
    "meta_data", "internal_tags_list", "short_filename",
}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[StoryblokEmulator]:
    emulator = StoryblokEmulator(space_id=SPACE, rate_limit=None, blob_root=tmp_path / "blobs")
    yield emulator
    emulator.close()


def make_client(emulator: StoryblokEmulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=in_process_transport(emulator.app), base_url="http://emu")


@pytest.fixture
async def client(emu: StoryblokEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(emu) as http:
        yield http


async def sign(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.post(f"{BASE}/assets/", json=params, headers=AUTH)
    assert response.status_code == 200, response.text
    signed: dict[str, Any] = response.json()
    return signed


async def post_s3(client: httpx.AsyncClient, signed: dict[str, Any], data: bytes,
                  **overrides: str) -> httpx.Response:
    fields = {**signed["fields"], **overrides}
    return await client.post(signed["post_url"], data=fields,
                             files={"file": ("upload.bin", data)})


async def upload(client: httpx.AsyncClient, filename: str, data: bytes,
                 **params: Any) -> dict[str, Any]:
    signed = await sign(client, filename=filename, **params)
    assert (await post_s3(client, signed, data)).status_code == 204
    finished = await client.get(f"{BASE}/assets/{signed['id']}/finish_upload", headers=AUTH)
    assert finished.status_code == 200, finished.text
    body: dict[str, Any] = finished.json()
    return body


def external(name: str) -> Path:
    """Storyblok's own material in ../shared (skips the test when absent)."""
    return shared_file(f"external/storyblok/{name}")


def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(external(SPEC).read_text())
    return loaded


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec()["components"]["schemas"][name]
    return found


# ---------------------------------------------------------------------- auth, space, faults


async def test_auth_raw_token_bearer_oauth_and_missing(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(
        space_id=SPACE, rate_limit=None, oauth_token="oauth-1", blob_root=tmp_path)
    try:
        async with make_client(emulator) as http:
            ok = await http.get(f"{BASE}/assets/", headers=AUTH)
            bearer = await http.get(f"{BASE}/assets/",
                                    headers={"Authorization": "Bearer oauth-1"})
            pat_as_bearer = await http.get(f"{BASE}/assets/",
                                           headers={"Authorization": "Bearer sb-emulator-token"})
            oauth_raw = await http.get(f"{BASE}/assets/", headers={"Authorization": "oauth-1"})
            missing = await http.get(f"{BASE}/assets/")
            wrong_space = await http.get("/v1/spaces/12345/assets/", headers=AUTH)
    finally:
        emulator.close()
    assert (ok.status_code, bearer.status_code) == (200, 200)
    for refused in (pat_as_bearer, oauth_raw, missing):
        assert refused.status_code == 401
        assert refused.json() == {"error": "Unauthorized"}
    assert wrong_space.status_code == 404
    assert set(wrong_space.json()) == {"error"}
    assert emulator.requests == 6


async def test_injected_server_error_has_the_storyblok_error_body(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(space_id=SPACE, rate_limit=None, faults=Faults(error_rate=1.0),
                                 blob_root=tmp_path)
    try:
        async with make_client(emulator) as http:
            response = await http.get(f"{BASE}/assets/", headers=AUTH)
    finally:
        emulator.close()
    assert response.status_code >= 500
    assert response.json() == {"error": "Internal Server Error"}


async def test_rate_limit_answers_429_with_documented_body(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(space_id=SPACE, rate_limit=3, blob_root=tmp_path)
    emulator.add_asset("a.txt", b"a")
    try:
        async with make_client(emulator) as http:
            answers = [await http.get(f"{BASE}/assets/", headers=AUTH) for _ in range(4)]
            # S3 and the file host are not rate limited
            url = (await http.get(f"{BASE}/assets/{next(iter(emulator.assets))}",
                                  headers={"Authorization": "other"})).status_code
            files = [await http.get(f"/f/{SPACE}/none") for _ in range(3)]
    finally:
        emulator.close()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json() == {
        "error": "Rate limit of 3 request per second reached. Retry later."
    }
    assert "retry-after" not in answers[3].headers
    assert url == 401
    assert {f.status_code for f in files} == {404}


# ---------------------------------------------------------------------- listing


async def test_paging_headers_and_page_beyond_the_last(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(
        space_id=SPACE, rate_limit=None, max_per_page=20, blob_root=tmp_path)
    ids = {emulator.add_asset(f"file-{n:02}.txt", b"x") for n in range(30)}
    try:
        async with make_client(emulator) as http:
            pages = [await http.get(f"{BASE}/assets/", params={"page": p, "per_page": 10},
                                    headers=AUTH) for p in (1, 2, 3, 4)]
            default = await http.get(f"{BASE}/assets", headers=AUTH)
            clamped = await http.get(f"{BASE}/assets/", params={"per_page": 500}, headers=AUTH)
            bad = await http.get(f"{BASE}/assets/", params={"page": "x"}, headers=AUTH)
    finally:
        emulator.close()
    assert [len(p.json()["assets"]) for p in pages] == [10, 10, 10, 0]
    assert {(p.headers["total"], p.headers["per-page"]) for p in pages} == {("30", "10")}
    seen = [row["id"] for p in pages for row in p.json()["assets"]]
    assert set(seen) == ids
    assert len(seen) == 30
    assert all(i > 2**40 for i in seen)
    assert len(default.json()["assets"]) == 20  # default 25, clamped to max_per_page 20
    assert clamped.headers["per-page"] == "20"
    assert len(clamped.json()["assets"]) == 20
    assert bad.status_code == 400
    assert "error" in bad.json()


async def test_list_row_shape_follows_the_recorded_response(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    recorded = json.loads((external("php-client-fixtures/list-assets.json")).read_text())
    emu.add_asset("photo.final.txt", b"hello", alt="A", meta_data={"alt__i18n__de": "A de"})
    response = await client.get(f"{BASE}/assets/", headers=AUTH)
    (row,) = response.json()["assets"]
    assert set(row) == LIST_ROW_KEYS
    assert set(recorded["assets"][0]) | {"short_filename"} == set(row)
    assert re.fullmatch(rf"http://emu/f/{SPACE}/0x0/[0-9a-f]{{10}}/photo_final\.txt",
                        row["filename"])
    assert row["short_filename"] == "photo_final.txt"
    assert row["content_length"] == 5
    assert row["content_type"] == "text/plain"
    assert STAMP.match(row["created_at"])
    assert STAMP.match(row["updated_at"])
    assert row["meta_data"] == {"alt__i18n__de": "A de"}
    assert (row["alt"], row["title"], row["deleted_at"]) == ("A", None, None)
    assert row["space_id"] == SPACE


async def test_image_dimensions_are_in_the_url(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (7, 3)).save(out, format="PNG")
    asset_id = emu.add_asset("dot.png", out.getvalue())
    row = (await client.get(f"{BASE}/assets/{asset_id}", headers=AUTH)).json()
    assert f"/f/{SPACE}/7x3/" in row["filename"]
    assert row["content_type"] == "image/png"


async def test_list_filters_and_sorting(emu: StoryblokEmulator, client: httpx.AsyncClient) -> None:
    folder = emu.add_folder("Pics")
    a = emu.add_asset("banana.jpg", b"1", folder_id=folder, alt="Yellow fruit", tags=["food"])
    b = emu.add_asset("apple.jpg", b"2", title="Red Apple", copyright="ACME", tags=["red"])
    c = emu.add_asset("cherry.pdf", b"3", is_private=True, tags=["red", "food"])

    async def ids(**params: Any) -> list[int]:
        response = await client.get(f"{BASE}/assets/", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["assets"]]

    assert sorted(await ids()) == sorted([a, b, c])
    assert await ids(in_folder=folder) == [a]
    assert sorted(await ids(in_folder=0)) == sorted([b, c])
    assert await ids(search="APP") == [b]
    assert await ids(by_alt="yellow") == [a]
    assert await ids(by_title="red") == [b]
    assert await ids(by_copyright="acme") == [b]
    assert await ids(is_private=1) == [c]
    assert sorted(await ids(with_tag="food")) == sorted([a, c])
    assert sorted(await ids(with_tags="red,food")) == sorted([a, b, c])
    assert await ids(with_tags="nope") == []
    assert await ids(sort_by="short_filename:asc") == [b, a, c]
    assert await ids(sort_by="short_filename:desc") == [c, a, b]
    bad = await client.get(f"{BASE}/assets/", params={"sort_by": "size:asc"}, headers=AUTH)
    assert bad.status_code == 400


async def test_get_one_asset_and_not_found_array(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    one = json.loads((external("php-client-fixtures/one-asset.json")).read_text())
    asset_id = emu.add_asset("a.txt", b"abc")
    got = await client.get(f"{BASE}/assets/{asset_id}", headers=AUTH)
    missing = await client.get(f"{BASE}/assets/{asset_id + 999}", headers=AUTH)
    assert set(got.json()) == set(one)
    assert got.json()["file"] is None
    assert got.json()["id"] == asset_id
    assert missing.status_code == 404
    assert missing.json() == ["This record could not be found"]


# ---------------------------------------------------------------------- folders


async def test_folder_create_update_delete_status_codes(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    created = await client.post(f"{BASE}/asset_folders/",
                                json={"asset_folder": {"name": "Header Images"}}, headers=AUTH)
    assert created.status_code == 201
    top = created.json()["asset_folder"]
    assert set(top) == {"id", "name", "parent_id", "uuid", "parent_uuid"}
    assert (top["name"], top["parent_id"], top["parent_uuid"]) == ("Header Images", None, None)

    child = (await client.post(f"{BASE}/asset_folders/", headers=AUTH, json={
        "asset_folder": {"name": "Thumbs", "parent_id": top["id"]}})).json()["asset_folder"]
    assert child["parent_uuid"] == top["uuid"]

    blank = await client.post(f"{BASE}/asset_folders/", headers=AUTH,
                              json={"asset_folder": {"name": ""}})
    assert blank.status_code == 422
    assert blank.json() == {"name": ["can't be blank"]}
    orphan = await client.post(f"{BASE}/asset_folders/", headers=AUTH,
                               json={"asset_folder": {"name": "x", "parent_id": 1}})
    assert orphan.status_code == 422

    roots = await client.get(f"{BASE}/asset_folders/", params={"with_parent": 0}, headers=AUTH)
    assert [f["id"] for f in roots.json()["asset_folders"]] == [top["id"]]
    by_ids = await client.get(f"{BASE}/asset_folders/", params={"by_ids": str(child["id"])},
                              headers=AUTH)
    assert [f["name"] for f in by_ids.json()["asset_folders"]] == ["Thumbs"]

    renamed = await client.put(f"{BASE}/asset_folders/{top['id']}", headers=AUTH,
                               json={"asset_folder": {"name": "Headers"}})
    assert renamed.status_code == 204
    assert renamed.content == b""
    cycle = await client.put(f"{BASE}/asset_folders/{top['id']}", headers=AUTH,
                             json={"asset_folder": {"parent_id": child["id"]}})
    assert cycle.status_code == 422
    one = await client.get(f"{BASE}/asset_folders/{top['id']}", headers=AUTH)
    assert one.json()["asset_folder"]["name"] == "Headers"

    asset = emu.add_asset("in-top.txt", b"x", folder_id=top["id"])
    deleted = await client.delete(f"{BASE}/asset_folders/{top['id']}", headers=AUTH)
    assert deleted.status_code == 204
    assert emu.folders[child["id"]]["parent_id"] is None  # moved up
    assert emu.assets[asset]["asset_folder_id"] is None  # orphaned to the root
    gone = await client.get(f"{BASE}/asset_folders/{top['id']}", headers=AUTH)
    assert gone.status_code == 404


async def test_recursive_folder_delete_removes_children(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    top = emu.add_folder("top")
    mid = emu.add_folder("mid", top)
    leaf = emu.add_folder("leaf", mid)
    other = emu.add_folder("other")
    asset = emu.add_asset("deep.txt", b"x", folder_id=leaf)
    response = await client.delete(f"{BASE}/asset_folders/{top}", params={"recursive": "true"},
                                   headers=AUTH)
    assert response.status_code == 204
    assert set(emu.folders) == {other}
    assert emu.assets[asset]["asset_folder_id"] is None


# ---------------------------------------------------------------------- upload


async def test_three_step_upload_then_download(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    folder = emu.add_folder("Docs")
    signed = await sign(client, filename="my.report.final.pdf", asset_folder_id=folder,
                        size="400x500")
    assert set(signed) == {"pretty_url", "public_url", "fields", "post_url", "id", "locked",
                           "meta_data"}
    assert signed["post_url"] == "http://emu/s3/a.storyblok.com"
    fields = signed["fields"]
    assert set(fields) == {"key", "acl", "Expires", "Cache-Control", "Content-Type", "policy",
                           "x-amz-credential", "x-amz-algorithm", "x-amz-date",
                           "x-amz-signature"}
    assert fields["key"].startswith(f"f/{SPACE}/400x500/")
    assert fields["key"].endswith("/my_report_final.pdf")
    assert fields["acl"] == "public-read"
    assert fields["Content-Type"] == "application/pdf"
    assert signed["pretty_url"] == f"//emu/{fields['key']}"
    policy = json.loads(base64.b64decode(fields["policy"]))
    signed_at = datetime.strptime(fields["x-amz-date"] + "+0000", "%Y%m%dT%H%M%SZ%z")
    expires = datetime.strptime(policy["expiration"] + "+0000", "%Y-%m-%dT%H:%M:%S.%fZ%z")
    assert (expires - signed_at).total_seconds() == 600
    assert ["content-length-range", 1, 5242879999] in policy["conditions"]
    assert {"key": fields["key"]} in policy["conditions"]

    s3 = await post_s3(client, signed, b"%PDF-1.4 body")
    assert s3.status_code == 204
    assert s3.content == b""

    finished = await client.get(f"{BASE}/assets/{signed['id']}/finish_upload", headers=AUTH)
    assert finished.status_code == 200
    body = finished.json()
    assert set(body) == {"id", "filename", "alt", "copyright", "title", "focus", "is_private"}
    assert body["id"] == signed["id"]
    assert body["filename"] == f"http://emu/{fields['key']}"

    row = (await client.get(f"{BASE}/assets/{signed['id']}", headers=AUTH)).json()
    assert (row["asset_folder_id"], row["content_length"], row["content_type"]) == (
        folder, 13, "application/pdf")
    download = await client.get(body["filename"])
    assert download.status_code == 200
    assert download.content == b"%PDF-1.4 body"
    assert emu.blob(signed["id"]) == b"%PDF-1.4 body"
    assert emu.credential_leaks == []
    assert emu.pending_uploads == {}
    again = await client.get(f"{BASE}/assets/{signed['id']}/finish_upload", headers=AUTH)
    assert again.json() == body  # a lost answer can be retried


async def test_sign_accepts_query_parameters(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/assets/", params={"filename": "q.png"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["fields"]["key"].endswith("/q.png")
    blank = await client.post(f"{BASE}/assets/", json={}, headers=AUTH)
    assert blank.status_code == 422
    assert blank.json() == {"filename": ["can't be blank"]}


async def test_asset_is_invisible_until_finished(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    signed = await sign(client, filename="late.txt")
    too_early = await client.get(f"{BASE}/assets/{signed['id']}/finish_upload", headers=AUTH)
    assert too_early.status_code == 422
    assert set(too_early.json()) == {"error"}
    assert (await post_s3(client, signed, b"late")).status_code == 204
    listed = await client.get(f"{BASE}/assets/", headers=AUTH)
    one = await client.get(f"{BASE}/assets/{signed['id']}", headers=AUTH)
    assert listed.json()["assets"] == []
    assert one.status_code == 404
    assert signed["id"] in emu.pending_uploads
    assert emu.assets == {}
    await client.get(f"{BASE}/assets/{signed['id']}/finish_upload", headers=AUTH)
    listed = await client.get(f"{BASE}/assets/", headers=AUTH)
    assert [row["id"] for row in listed.json()["assets"]] == [signed["id"]]


async def test_expired_policy_is_refused(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(
        space_id=SPACE, rate_limit=None, signature_ttl=0, blob_root=tmp_path)
    try:
        async with make_client(emulator) as http:
            signed = await sign(http, filename="x.txt")
            response = await post_s3(http, signed, b"data")
    finally:
        emulator.close()
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert "<Message>Invalid according to Policy: Policy expired.</Message>" in response.text


async def test_tampered_or_incomplete_uploads_are_refused(client: httpx.AsyncClient) -> None:
    signed = await sign(client, filename="x.txt")
    doc = json.loads(base64.b64decode(signed["fields"]["policy"]))
    doc["conditions"][-1] = ["content-length-range", 1, 10**12]
    forged = base64.b64encode(json.dumps(doc).encode()).decode()

    bad_policy = await post_s3(client, signed, b"data", policy=forged)
    assert bad_policy.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in bad_policy.text

    other_key = await post_s3(client, signed, b"data", key=f"f/{SPACE}/0x0/abc/evil.txt")
    assert other_key.status_code == 403
    assert "Policy Condition failed" in other_key.text

    fields = {k: v for k, v in signed["fields"].items() if k != "acl"}
    missing = await client.post(signed["post_url"], data=fields,
                                files={"file": ("x.txt", b"data")})
    assert missing.status_code == 403

    empty = await post_s3(client, signed, b"")
    assert empty.status_code == 400
    assert "<Code>EntityTooSmall</Code>" in empty.text

    # file first, fields after: built by hand because httpx puts files last
    boundary = "sbboundary"
    parts = [("file", b"data", 'filename="x.txt"'),
             *((k, v.encode(), "") for k, v in signed["fields"].items())]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        f'{"; " + extra if extra else ""}\r\n\r\n'.encode() + value + b"\r\n"
        for name, value, extra in parts
    ) + f"--{boundary}--\r\n".encode()
    file_first = await client.post(signed["post_url"], content=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert file_first.status_code == 400
    assert "<Code>InvalidArgument</Code>" in file_first.text

    finished = await client.get(f"{BASE}/assets/{signed['id']}/finish_upload", headers=AUTH)
    assert finished.status_code == 422  # nothing was stored


async def test_replace_keeps_the_id_and_changes_the_url(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    first = await upload(client, "logo.txt", b"old")
    signed = await sign(client, filename="logo-v2.txt", id=str(first["id"]), validate_upload="1")
    assert signed["id"] == first["id"]
    before = await client.get(first["filename"])
    assert before.content == b"old"  # still the old file until finish
    assert (await post_s3(client, signed, b"new bytes")).status_code == 204
    second = (await client.get(f"{BASE}/assets/{first['id']}/finish_upload",
                               headers=AUTH)).json()
    assert second["id"] == first["id"]
    assert second["filename"] != first["filename"]
    assert (await client.get(second["filename"])).content == b"new bytes"
    assert (await client.get(first["filename"])).status_code == 404
    assert list(emu.assets) == [first["id"]]
    assert emu.assets[first["id"]]["content_length"] == 9
    unknown = await client.post(f"{BASE}/assets/", json={"filename": "a.txt", "id": 1},
                                headers=AUTH)
    assert unknown.status_code == 404


def test_parameterize_keeps_only_the_last_dot() -> None:
    assert parameterize("a.b.c.jpg") == "a_b_c.jpg"
    assert parameterize("plain") == "plain"
    assert parameterize("dir/x.y.png") == "dir_x_y.png"


# ---------------------------------------------------------------------- metadata and tags


async def test_metadata_put_and_i18n_round_trip(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    folder = emu.add_folder("Moved")
    asset_id = emu.add_asset("hero.jpg", b"img")
    wrapped = await client.put(f"{BASE}/assets/{asset_id}", headers=AUTH, json={"asset": {
        "alt": "Alt EN", "title": "Title", "copyright": "(c) me", "source": "cam",
        "focus": "10x20:30x40", "asset_folder_id": folder, "is_private": False,
        "meta_data": {"alt": "Alt EN", "alt__i18n__de": "Alt DE", "title__i18n__fr": "Titre"},
    }})
    assert wrapped.status_code == 204
    assert wrapped.content == b""
    unwrapped = await client.put(f"{BASE}/assets/{asset_id}", headers=AUTH,
                                 json={"copyright": "(c) you", "unknown_field": 1})
    assert unwrapped.status_code == 204
    row = (await client.get(f"{BASE}/assets/{asset_id}", headers=AUTH)).json()
    assert row["meta_data"] == {"alt": "Alt EN", "alt__i18n__de": "Alt DE",
                                "title__i18n__fr": "Titre"}
    assert (row["alt"], row["title"], row["copyright"], row["source"], row["focus"]) == (
        "Alt EN", "Title", "(c) you", "cam", "10x20:30x40")
    assert row["asset_folder_id"] == folder
    bad = await client.put(f"{BASE}/assets/{asset_id}", headers=AUTH,
                           json={"asset": {"asset_folder_id": 42, "alt": "ignored"}})
    assert bad.status_code == 422
    assert "asset_folder_id" in bad.json()
    assert emu.assets[asset_id]["alt"] == "Alt EN"  # nothing changed
    missing = await client.put(f"{BASE}/assets/{asset_id + 1000}", headers=AUTH,
                               json={"asset": {"alt": "x"}})
    assert missing.status_code == 404


async def test_internal_tags(emu: StoryblokEmulator, client: httpx.AsyncClient) -> None:
    created = await client.post(f"{BASE}/internal_tags", headers=AUTH,
                                json={"internal_tag": {"name": "hero", "object_type": "asset"}})
    assert created.status_code == 201
    tag = created.json()["internal_tag"]
    assert set(tag) == {"id", "name", "object_type"}
    duplicate = await client.post(f"{BASE}/internal_tags", headers=AUTH,
                                  json={"internal_tag": {"name": "hero", "object_type": "asset"}})
    assert duplicate.status_code == 422
    listed = await client.get(f"{BASE}/internal_tags", params={"by_object_type": "asset"},
                              headers=AUTH)
    assert listed.json() == {"internal_tags": [tag]}

    asset_id = emu.add_asset("x.jpg", b"x")
    put = await client.put(f"{BASE}/assets/{asset_id}", headers=AUTH,
                           json={"asset": {"internal_tag_ids": [str(tag["id"])]}})
    assert put.status_code == 204
    row = (await client.get(f"{BASE}/assets/", params={"with_tag": "hero"},
                            headers=AUTH)).json()["assets"][0]
    assert row["internal_tag_ids"] == [str(tag["id"])]
    assert row["internal_tags_list"] == [{"id": tag["id"], "name": "hero"}]
    unknown = await client.put(f"{BASE}/assets/{asset_id}", headers=AUTH,
                               json={"asset": {"internal_tag_ids": [tag["id"] + 1]}})
    assert unknown.status_code == 422


# ---------------------------------------------------------------------- delete and restore


async def test_soft_delete_bulk_destroy_and_restore(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    a, b, c = (emu.add_asset(f"{n}.txt", b"x") for n in "abc")
    deleted = await client.delete(f"{BASE}/assets/{a}", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json()["asset"]["id"] == a
    assert STAMP.match(deleted.json()["asset"]["deleted_at"])

    async def listed(**params: Any) -> set[int]:
        response = await client.get(f"{BASE}/assets/", params=params, headers=AUTH)
        return {row["id"] for row in response.json()["assets"]}

    assert await listed() == {b, c}
    assert await listed(in_folder=-1) == {a}
    bulk = await client.post(f"{BASE}/assets/bulk_destroy", json={"ids": [b, c]}, headers=AUTH)
    assert bulk.json() == {"message": f"Asset(s) {b}, {c} deleted successfully"}
    assert await listed() == set()
    assert a in emu.assets  # soft: still held
    restored = await client.post(f"{BASE}/assets/bulk_restore", json={"ids": [a, c]},
                                 headers=AUTH)
    assert restored.status_code == 200
    assert await listed() == {a, c}
    assert await listed(in_folder=-1) == {b}


async def test_bulk_update_moves_assets(emu: StoryblokEmulator, client: httpx.AsyncClient) -> None:
    folder = emu.add_folder("dest")
    a = emu.add_asset("a.txt", b"x")
    moved = await client.post(f"{BASE}/assets/bulk_update", headers=AUTH,
                              json={"ids": [a], "asset_folder_id": folder})
    assert moved.status_code == 200
    assert emu.assets[a]["asset_folder_id"] == folder


# ---------------------------------------------------------------------- files


async def test_private_asset_needs_a_signed_url(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(
        space_id=SPACE, rate_limit=None, asset_token="cda-token", blob_root=tmp_path)
    try:
        async with make_client(emulator) as http:
            body = await upload(http, "secret.txt", b"classified", is_private=True)
            assert body["is_private"] is True
            assert (await http.get(body["filename"])).status_code == 403
            wrong = await http.get("/v2/cdn/assets/me",
                                   params={"filename": body["filename"], "token": "nope"})
            assert wrong.status_code == 401
            me = await http.get("/v2/cdn/assets/me",
                                params={"filename": body["filename"], "token": "cda-token"})
            assert me.status_code == 200
            signed_url = me.json()["asset"]["signed_url"]
            assert signed_url.startswith(body["filename"] + "?")
            assert "X-Amz-Signature=" in signed_url
            served = await http.get(signed_url)
            tampered = await http.get(signed_url[:-1] + ("0" if signed_url[-1] != "0" else "1"))
    finally:
        emulator.close()
    assert served.status_code == 200
    assert served.content == b"classified"
    assert tampered.status_code == 403


async def test_credentials_sent_to_file_hosts_are_recorded(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    asset_id = emu.add_asset("a.txt", b"x")
    row = (await client.get(f"{BASE}/assets/{asset_id}", headers=AUTH)).json()
    assert emu.credential_leaks == []
    download = await client.get(row["filename"], headers=AUTH)
    assert download.status_code == 200
    assert len(emu.credential_leaks) == 1
    assert emu.credential_leaks[0].startswith("authorization GET /f/")
    assert "sb-emulator-token" not in emu.credential_leaks[0]


# ---------------------------------------------------------------------- against the OpenAPI spec


async def test_requests_and_responses_match_the_spec_key_sets(
    emu: StoryblokEmulator, client: httpx.AsyncClient
) -> None:
    asset_schema = schema("Asset")
    sign_request = {"filename": "spec.txt", "size": "0x0", "validate_upload": 0}
    assert set(schema("AssetSignRequest")["required"]) <= set(sign_request)
    assert set(sign_request) <= set(schema("AssetSignRequest")["properties"])
    body = await upload(client, "spec.txt", b"spec", size="0x0", validate_upload=0)

    full = (await client.get(f"{BASE}/assets/{body['id']}", headers=AUTH)).json()
    row = (await client.get(f"{BASE}/assets/", headers=AUTH)).json()["assets"][0]
    for asset in (full, row):
        assert set(asset_schema["required"]) <= set(asset)
    # every documented property is served; the extras are those of the recorded fixtures
    assert set(asset_schema["properties"]) <= set(full)
    assert set(full) - set(asset_schema["properties"]) == {
        "ext_id", "permanently_deleted"}
    assert isinstance(full["meta_data"], dict)

    update = {"asset": {"alt": "x", "meta_data": {"alt__i18n__de": "y"}}}
    assert set(update) <= set(schema("AssetUpdateRequest")["properties"])
    assert set(update["asset"]) <= set(schema("AssetUpdate")["properties"])
    assert (await client.put(f"{BASE}/assets/{body['id']}", json=update,
                             headers=AUTH)).status_code == 204

    signed = await sign(client, filename="again.txt")
    assert set(schema("SignedResponseObject")["properties"]) <= set(signed)

    folder_request = {"name": "Spec", "parent_id": None}
    assert set(schema("AssetFolderCreate")["required"]) <= set(folder_request)
    created = await client.post(f"{BASE}/asset_folders", json={"asset_folder": folder_request},
                                headers=AUTH)
    folder = created.json()["asset_folder"]
    assert set(schema("AssetFolder")["required"]) <= set(folder)
    assert set(folder) == set(schema("AssetFolder")["properties"])

    paths = spec()["paths"]
    assert "201" in paths["/v1/spaces/{space_id}/asset_folders"]["post"]["responses"]
    assert "204" in paths["/v1/spaces/{space_id}/assets/{asset_id}"]["put"]["responses"]
    deleted = await client.delete(f"{BASE}/assets/{body['id']}", headers=AUTH)
    delete_props = paths["/v1/spaces/{space_id}/assets/{asset_id}"]["delete"]["responses"][
        "200"]["content"]["application/json"]["schema"]["properties"]
    assert set(deleted.json()) == set(delete_props)


# ---------------------------------------------------------------------- over a real socket


@pytest.mark.slow
def test_upload_and_download_over_a_loopback_socket(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(space_id=SPACE, rate_limit=None, blob_root=tmp_path)
    try:
        with LoopbackServer(emulator.app) as server, httpx.Client(base_url=server.url) as http:
            signed = http.post(f"{BASE}/assets/", json={"filename": "net.txt"}, headers=AUTH)
            assert signed.status_code == 200
            sig = signed.json()
            assert sig["post_url"] == f"{server.url}/s3/a.storyblok.com"
            s3 = http.post(sig["post_url"], data=sig["fields"],
                           files={"file": ("net.txt", b"over the wire")})
            assert s3.status_code == 204
            done = http.get(f"{BASE}/assets/{sig['id']}/finish_upload", headers=AUTH).json()
            assert done["filename"].startswith(f"{server.url}/f/{SPACE}/")
            download = http.get(done["filename"])
    finally:
        emulator.close()
    assert download.status_code == 200
    assert download.content == b"over the wire"
    assert download.headers["content-type"].startswith("text/plain")


async def test_truncation_fault_cuts_only_file_downloads(tmp_path: Path) -> None:
    emulator = StoryblokEmulator(space_id=SPACE, rate_limit=None, faults=Faults(truncate_rate=1.0),
                                 blob_root=tmp_path)
    asset_id = emulator.add_asset("a.bin", b"0123456789" * 100)
    try:
        async with make_client(emulator) as http:
            row = await http.get(f"{BASE}/assets/{asset_id}", headers=AUTH)
            assert row.status_code == 200  # API answers are whole
            with pytest.raises(httpx.ReadError):
                await http.get(row.json()["filename"])
    finally:
        emulator.close()
    assert emulator.fault_middleware.injected["truncate"] == 1
