"""The Storyblok emulator driven by an independent Management API client.

Storyblok publishes no Python management client (PyPI's ``storyblok`` 0.1.2 is a 2018 Content
Delivery client without assets), so :class:`MapiClient` below is written here, for this test
only, from the MAPI docs and the methods and paths of Storyblok's official ``@storyblok/
mapi-client`` (monoblok, ``packages/mapi-client``): ``PATCH`` to update an asset, the sign
request's parameters in the query, the S3 form with ``file`` last, ``finish_upload``, then a
``GET`` of the asset; ``GET /v1/users/me`` and ``shared_asset_folders`` as its CLI calls them
first. It shares nothing with ``connectors/storyblok``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.emulation import LoopbackServer
from connectors.storyblok.emulator import StoryblokEmulator

pytestmark = pytest.mark.slow

TOKEN = "sb-mapi-client-token-19e"


class MapiClient:
    """The asset calls of Storyblok's Management API v1, as the official clients make them.

    Every call raises :class:`httpx.HTTPStatusError` on a non-2xx answer, as the official
    client does with ``throwOnError``.
    """

    def __init__(self, base_url: str, token: str, space_id: int) -> None:
        self._http = httpx.Client(base_url=base_url, headers={"Authorization": token},
                                  timeout=10)
        self._space = f"/v1/spaces/{space_id}"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response

    def me(self) -> dict[str, Any]:
        user: dict[str, Any] = self._call("GET", "/v1/users/me").json()["user"]
        return user

    def shared_asset_folders(self) -> list[dict[str, Any]]:
        folders: list[dict[str, Any]] = self._call(
            "GET", f"{self._space}/shared_asset_folders").json()["shared_asset_folders"]
        return folders

    def list_assets(self, **query: Any) -> tuple[list[dict[str, Any]], int]:
        response = self._call("GET", f"{self._space}/assets", params=query)
        return response.json()["assets"], int(response.headers["total"])

    def get_asset(self, asset_id: int) -> dict[str, Any]:
        asset: dict[str, Any] = self._call("GET", f"{self._space}/assets/{asset_id}").json()
        return asset

    def update_asset(self, asset_id: int, fields: dict[str, Any]) -> None:
        response = self._call("PATCH", f"{self._space}/assets/{asset_id}",
                              json={"asset": fields})
        assert response.status_code == 204

    def delete_asset(self, asset_id: int) -> None:
        self._call("DELETE", f"{self._space}/assets/{asset_id}")

    def upload(self, filename: str, data: bytes, **sign: Any) -> dict[str, Any]:
        """Sign (``POST assets`` with a query), POST to S3, ``finish_upload``, ``GET``.

        ``sign`` may hold ``id`` (replace the file of that asset), ``asset_folder_id``,
        ``validate_upload``...
        """
        signed = self._call("POST", f"{self._space}/assets",
                            params={"filename": filename, **sign}).json()
        s3 = httpx.post(signed["post_url"], data=signed["fields"],
                        files={"file": (filename, data, signed["fields"]["Content-Type"])},
                        timeout=10)
        s3.raise_for_status()
        self._call("GET", f"{self._space}/assets/{signed['id']}/finish_upload")
        return self.get_asset(int(signed["id"]))

    def list_folders(self) -> list[dict[str, Any]]:
        folders: list[dict[str, Any]] = self._call(
            "GET", f"{self._space}/asset_folders").json()["asset_folders"]
        return folders

    def create_folder(self, name: str, parent_id: int | None = None) -> dict[str, Any]:
        body = {"asset_folder": {"name": name, "parent_id": parent_id}}
        folder: dict[str, Any] = self._call(
            "POST", f"{self._space}/asset_folders", json=body).json()["asset_folder"]
        return folder

    def update_folder(self, folder_id: int, fields: dict[str, Any]) -> None:
        self._call("PUT", f"{self._space}/asset_folders/{folder_id}",
                   json={"asset_folder": fields})

    def delete_folder(self, folder_id: int) -> None:
        self._call("DELETE", f"{self._space}/asset_folders/{folder_id}")


@pytest.fixture
def served() -> Iterator[tuple[StoryblokEmulator, MapiClient, str]]:
    emu = StoryblokEmulator(token=TOKEN, rate_limit=None)
    with LoopbackServer(emu.app) as server:
        client = MapiClient(server.url, TOKEN, emu.space_id)
        yield emu, client, server.url
        client.close()
    emu.close()


def test_what_the_official_clients_call_first(
    served: tuple[StoryblokEmulator, MapiClient, str],
) -> None:
    emu, client, _ = served
    user = client.me()
    assert {"id", "email", "userid", "friendly_name", "org", "favourite_spaces"} <= set(user)
    assert client.shared_asset_folders() == []
    assert client.list_folders() == []
    assert client.list_assets() == ([], 0)
    with httpx.Client() as http:
        assert http.get(f"{served[2]}/v1/users/me").status_code == 401, "credentials required"
    assert emu.requests == 5


def test_assets_and_folders_through_an_independent_client(
    served: tuple[StoryblokEmulator, MapiClient, str],
) -> None:
    emu, client, _ = served
    brand = client.create_folder("Brand")
    logos = client.create_folder("Logos", brand["id"])
    client.update_folder(logos["id"], {"name": "Marks"})
    assert {f["name"]: f["parent_id"] for f in client.list_folders()} \
        == {"Brand": None, "Marks": brand["id"]}

    asset = client.upload("logo.png", b"first bytes", asset_folder_id=logos["id"])
    assert asset["asset_folder_id"] == logos["id"]
    with httpx.Client() as http:
        assert http.get(asset["filename"]).content == b"first bytes"

    client.update_asset(asset["id"], {"alt": "the logo", "title": "Logo",
                                      "meta_data": {"alt__i18n__de": "das Logo"}})
    updated = client.get_asset(asset["id"])
    assert (updated["alt"], updated["title"], updated["meta_data"]["alt__i18n__de"]) \
        == ("the logo", "Logo", "das Logo")
    client.update_asset(asset["id"], {"asset_folder_id": brand["id"]})  # a partial update
    moved = client.get_asset(asset["id"])
    assert (moved["asset_folder_id"], moved["alt"]) == (brand["id"], "the logo")

    replaced = client.upload("logo.png", b"second bytes", id=str(asset["id"]),
                             validate_upload="1")
    assert replaced["id"] == asset["id"]
    assert emu.blob(asset["id"]) == b"second bytes"
    with httpx.Client() as http:
        assert http.get(replaced["filename"]).content == b"second bytes"
    assert replaced["alt"] == "the logo", "a replace keeps the metadata"

    rows, total = client.list_assets(in_folder=brand["id"])
    assert ([r["id"] for r in rows], total) == ([asset["id"]], 1)
    client.delete_asset(asset["id"])
    assert client.list_assets() == ([], 0)
    client.delete_folder(brand["id"])
    assert client.list_folders() == [{**logos, "name": "Marks", "parent_id": None,
                                      "parent_uuid": None}]
    assert emu.credential_leaks == []


def test_patch_on_a_missing_asset_is_the_documented_404(
    served: tuple[StoryblokEmulator, MapiClient, str],
) -> None:
    _, client, _ = served
    with pytest.raises(httpx.HTTPStatusError) as caught:
        client.update_asset(1, {"alt": "x"})
    assert caught.value.response.status_code == 404
    assert caught.value.response.json() == ["This record could not be found"]


def test_each_emulator_is_its_own_space_with_its_own_ids() -> None:
    """A Storyblok -> Storyblok rehearsal never finds a source id in the target."""
    source, target = (StoryblokEmulator(rate_limit=None) for _ in range(2))
    chosen = StoryblokEmulator(space_id=321388, rate_limit=None)
    try:
        assert len({source.space_id, target.space_id, chosen.space_id}) == 3
        assert chosen.space_id == 321388
        ids: list[set[int]] = []
        for emu in (source, target, chosen):
            folder = emu.add_folder("Logos")
            asset = emu.add_asset("logo.png", b"bytes", folder_id=folder, tags=["brand"])
            tags = set(emu.internal_tags)
            ids.append({folder, asset, *tags})
            assert all(i < 2**53 for i in ids[-1]), "ids stay JavaScript-safe"
            assert emu.assets[asset]["key"].startswith(f"f/{emu.space_id}/")
        assert ids[0].isdisjoint(ids[1])
        assert ids[0].isdisjoint(ids[2])
        assert ids[1].isdisjoint(ids[2])
    finally:
        for emu in (source, target, chosen):
            emu.close()
