"""The Contentstack emulator driven by the vendor's own Python SDK, ``contentstack-management``.

An emulator is done when a client nobody here wrote can use it: every call below is the SDK's
public API as its documentation shows it, against the emulator on a loopback port. Where the
SDK and the emulator disagreed, the emulator was changed (the SDK is run against the live API
by its maintainers' integration tests).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import LoopbackServer

contentstack_management = pytest.importorskip(
    "contentstack_management",
    reason="the vendor SDK is a dev dependency: pip install -c constraints.txt -e '.[dev]'",
)

pytestmark = pytest.mark.slow

API_KEY = "blt5d4sample2633b"
TOKEN = "cs-sdk-token-7f2a"


@pytest.fixture
def served() -> Iterator[tuple[ContentstackEmulator, Any]]:
    emu = ContentstackEmulator(api_key=API_KEY, management_token=TOKEN, rate_limit=None,
                               branches=("main", "develop"), environments=("development",),
                               delivery_tokens={"cs-delivery-7e": "production"},
                               fallback_locales={"de-de": "en-us", "de-at": "de-de"})
    with LoopbackServer(emu.app) as server:
        client = contentstack_management.Client(
            host=server.url.removeprefix("http://"), scheme="http://",
            management_token=TOKEN, timeout=10, max_retries=0)
        yield emu, client.stack(API_KEY)
    emu.close()


def body(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text)
    data: dict[str, Any] = response.json()
    return data


def test_stack_settings_the_sdk_and_cli_read_first(
    served: tuple[ContentstackEmulator, Any],
) -> None:
    _, stack = served
    environments = body(stack.environments().find(), 200)["environments"]
    assert [e["name"] for e in environments] == ["development", "production"]
    assert {"uid", "name", "urls", "servers", "deploy_content"} <= set(environments[0])
    assert body(stack.environments("development").fetch(), 200)["environment"]["name"] \
        == "development"
    locales = body(stack.locale().find(), 200)["locales"]
    assert [(loc["code"], loc["fallback_locale"]) for loc in locales] \
        == [("en-us", None), ("de-de", "en-us"), ("de-at", "de-de")]
    assert body(stack.locale("de-at").fetch(), 200)["locale"]["code"] == "de-at"
    assert stack.locale("fr-fr").fetch().status_code == 404
    branches = body(stack.branch().find(), 200)["branches"]
    assert {b["uid"]: b["source"] for b in branches} == {"develop": "main", "main": ""}
    assert body(stack.branch("develop").fetch(), 200)["branch"]["uid"] == "develop"
    assert stack.branch("nope").fetch().status_code == 404


def test_assets_and_folders_through_the_sdk(
    served: tuple[ContentstackEmulator, Any], tmp_path: Path,
) -> None:
    emu, stack = served
    created = body(stack.assets().create_folder(json.dumps({"asset": {"name": "Brand"}})), 201)
    folder = created["asset"]["uid"]
    assert body(stack.assets().folder(folder), 200)["asset"]["name"] == "Brand"
    body(stack.assets().update_or_move(folder, {"asset": {"name": "Brand 2"}}), 200)
    assert emu.folders[folder]["name"] == "Brand 2"

    first = tmp_path / "ü logo.png"
    first.write_bytes(b"first bytes")
    uploaded = body(stack.assets().upload(str(first)), 201)["asset"]
    uid = uploaded["uid"]
    assert emu.blob(uid) == b"first bytes"
    listed = body(stack.assets().find(), 200)["assets"]
    assert [a["uid"] for a in listed] == [uid]
    with httpx.Client() as http:
        assert http.get(listed[0]["url"]).content == b"first bytes"

    body(stack.assets(uid).update({"asset": {"title": "Logo", "description": "the logo",
                                             "parent_uid": folder}}), 200)
    fetched = body(stack.assets(uid).fetch(), 200)["asset"]
    assert (fetched["title"], fetched["description"], fetched["parent_uid"]) \
        == ("Logo", "the logo", folder)
    in_folder = body(stack.assets().specific_folder(folder), 200)["assets"]
    assert [a["uid"] for a in in_folder] == [uid]

    second = tmp_path / "logo-2.png"
    second.write_bytes(b"second bytes")
    body(stack.assets(uid).replace(str(second)), 200)
    assert emu.blob(uid) == b"second bytes"
    replaced = body(stack.assets(uid).fetch(), 200)["asset"]
    assert replaced["title"] == "Logo"
    with httpx.Client() as http:
        assert http.get(replaced["url"]).content == b"second bytes"

    body(stack.assets(uid).delete(), 200)
    assert stack.assets(uid).fetch().status_code == 404
    body(stack.assets().delete_folder(folder), 200)
    assert emu.folders == {}
    assert emu.credential_leaks == []


def test_publish_and_references_through_the_sdk(
    served: tuple[ContentstackEmulator, Any], tmp_path: Path,
) -> None:
    """The SDK's ``Assets.publish`` and ``Assets.references`` (its docstring's body shape):
    environments by name, checked against the stack's; references as seeded."""
    emu, stack = served
    path = tmp_path / "hero.png"
    path.write_bytes(b"hero bytes")
    uid = body(stack.assets().upload(str(path)), 201)["asset"]["uid"]
    data = {"asset": {"locales": ["en-us", "de-de"], "environments": ["development"]},
            "version": 1}
    assert body(stack.assets(uid).publish(data), 200) == {"notice": "Asset sent for publishing."}
    details = body(stack.assets(uid).fetch(), 200)["asset"]["publish_details"]
    assert {(d["environment"], d["locale"], d["version"]) for d in details} == {
        (emu.environment_uid("development"), "en-us", 1),
        (emu.environment_uid("development"), "de-de", 1)}
    refused = stack.assets(uid).publish({"asset": {"locales": ["xx-yy"],
                                                   "environments": ["nowhere"]}})
    assert refused.status_code == 422
    assert set(refused.json()["errors"]) == {"environments", "locales"}

    assert body(stack.assets(uid).references(), 200) == {"references": []}
    emu.add_reference(uid, "blt_home", content_type_uid="page", locale="de-de")
    [ref] = body(stack.assets(uid).references(), 200)["references"]
    assert (ref["entry_uid"], ref["content_type_uid"], ref["locale"]) == (
        "blt_home", "page", "de-de")
