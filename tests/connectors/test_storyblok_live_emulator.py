"""Storyblok connector against the Storyblok emulator (in-process, no sockets).

The emulator is written from Storyblok's documentation, not from the connector, so these
tests check the connector's reading of the docs against a second, independent reading.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from connectors.base import Asset, AssetMeta, LocalizedText, UploadRequest
from connectors.emulation import Faults, in_process_transport
from connectors.errors import AuthError, ItemError
from connectors.storyblok import StoryblokConfig, StoryblokConnector
from connectors.storyblok.emulator import StoryblokEmulator
from tests.connectors.staging import MemoryJournal, stage_bytes

SPACE = 288868932106293
TOKEN = "sb-emulator-token"
ASSET_TOKEN = "sb-live-asset-token"
BASE = "http://sb.emulator"


@pytest.fixture
def emu() -> Iterator[StoryblokEmulator]:
    emulator = StoryblokEmulator(
        space_id=SPACE, token=TOKEN, rate_limit=None, faults=None, signature_ttl=600.0,
        asset_token=ASSET_TOKEN,
    )
    yield emulator
    leaks = list(emulator.credential_leaks)
    emulator.close()
    assert leaks == []  # no credential ever reached the file host, S3 or the CDA


def connect(emu: StoryblokEmulator, **changes: Any) -> StoryblokConnector:
    values: dict[str, Any] = {"connector": "storyblok", "space_id": SPACE, "token": TOKEN,
                              "base_url": BASE, "requests_per_second": 1000}
    values.update(changes)
    return StoryblokConnector(
        StoryblokConfig.model_validate(values), transport=in_process_transport(emu.app)
    )


def png(width: int, height: int, colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


async def read(conn: StoryblokConnector, asset: Asset) -> bytes:
    async with conn.open_asset(asset) as body:
        return b"".join([chunk async for chunk in body])


async def listing(conn: StoryblokConnector) -> dict[str, Asset]:
    return {a.source_id: a async for a in conn.iter_assets()}


def request_for(name: str, folder_id: str | None = None, meta: AssetMeta | None = None,
                content_type: str = "image/png") -> UploadRequest:
    return UploadRequest("src", name, folder_id, (), content_type, meta or AssetMeta())


async def test_listing_pages_through_more_than_100_assets(emu: StoryblokEmulator) -> None:
    folder = emu.add_folder("Bulk")
    ids = {emu.add_asset(f"file-{i}.txt", f"body {i}".encode(), folder_id=folder if i % 2 else None)
           for i in range(205)}
    gone = emu.add_asset("gone.txt", b"x")
    async with connect(emu) as conn:
        await conn.delete(str(gone))
        before = emu.requests
        assets = await listing(conn)
    assert set(assets) == {str(i) for i in ids}
    assert emu.requests - before == 1 + 3  # the folders, then pages of 100, 100 and 5
    odd = assets[str(min(ids) + 1)]
    assert odd.folder_path == ("Bulk",)
    assert odd.folder_id == str(folder)
    assert odd.size == len(b"body 1")


async def test_folders_tree_and_create(emu: StoryblokEmulator) -> None:
    images = emu.add_folder("Images")
    thumbs = emu.add_folder("Thumbs", images)
    async with connect(emu) as conn:
        folders = [f async for f in conn.iter_folders()]
        made = await conn.create_folder(str(thumbs), "Small")
    assert [(f.source_id, f.parent_id, f.path) for f in folders] == [
        (str(images), None, ("Images",)),
        (str(thumbs), str(images), ("Images", "Thumbs")),
    ]
    assert made.path == ("Images", "Thumbs", "Small")
    assert emu.folders[int(made.source_id)]["parent_id"] == thumbs


async def test_upload_three_steps_then_bytes_and_dimensions(
    emu: StoryblokEmulator, tmp_path: Path
) -> None:
    data = png(64, 48)
    folder = emu.add_folder("Images")
    journal = MemoryJournal()
    async with connect(emu) as conn:
        ref = await conn.upload(
            request_for("hero.v2.png", str(folder)), stage_bytes(tmp_path, data, "image/png"),
            journal,
        )
        assets = await listing(conn)
        asset = assets[ref.target_id]
        body = await read(conn, asset)
    assert emu.blob(int(ref.target_id)) == data
    assert body == data
    assert emu.pending_uploads == {}
    assert [step for step, _ in journal.records] == ["signed", "stored", "finished"]
    assert asset.filename == "hero_v2.png"  # Storyblok's parameterized name
    assert (asset.width, asset.height, asset.size) == (64, 48, len(data))
    assert asset.folder_path == ("Images",)
    assert asset.content_type == "image/png"
    assert ref.url == asset.url


async def test_metadata_round_trips_with_locales_tags_and_focus(
    emu: StoryblokEmulator, tmp_path: Path
) -> None:
    meta = AssetMeta(
        title="Hero", alt_text="A hero", copyright="© 2025", tags=("hero", "summer"),
        focus="0.5,0.25",
        locales={
            "de": LocalizedText(title="Held", alt_text="Ein Held"),
            "fr": LocalizedText(copyright="© FR"),
        },
    )
    async with connect(emu) as conn:
        ref = await conn.upload(request_for("hero.png", meta=meta),
                                stage_bytes(tmp_path, png(64, 48), "image/png"), MemoryJournal())
        uploaded = (await listing(conn))[ref.target_id]
        changed = AssetMeta(title="Held", tags=("summer", "new"),
                            locales={"it": LocalizedText(alt_text="Un eroe")})
        await conn.update_metadata(ref.target_id, changed)
        updated = (await listing(conn))[ref.target_id]
    assert uploaded.meta == meta
    assert uploaded.extra["focus"] == "32x12:33x13"
    assert updated.meta == changed
    assert {t["name"] for t in emu.internal_tags.values()} == {"hero", "summer", "new"}


async def test_no_metadata_request_when_there_is_nothing_to_set(
    emu: StoryblokEmulator, tmp_path: Path
) -> None:
    meta = AssetMeta(title="Hero", alt_text="A hero", tags=("hero",),
                     locales={"de": LocalizedText(title="Held")})
    async with connect(emu) as conn:
        bare = await conn.upload(request_for("bare.png"),
                                 stage_bytes(tmp_path, png(8, 8), "image/png"), MemoryJournal())
        assert emu.calls["PUT assets"] == 0  # a new asset with no metadata: sign+store+finish
        rich = await conn.upload(request_for("rich.png", meta=meta),
                                 stage_bytes(tmp_path, png(8, 8), "image/png"), MemoryJournal())
        assert emu.calls["PUT assets"] == 1
        await conn.update_metadata(rich.target_id, meta)  # what it holds already
        await conn.update_metadata(bare.target_id, AssetMeta())
        assert emu.calls["PUT assets"] == 1
        await conn.replace(rich.target_id, request_for("rich.png", meta=meta),
                           stage_bytes(tmp_path, png(9, 9), "image/png"), MemoryJournal())
        assert emu.calls["PUT assets"] == 1  # the file changed, its metadata did not
        await conn.update_metadata(rich.target_id, AssetMeta(title="Hero"))
        assert emu.calls["PUT assets"] == 2  # a real change is still sent
        assets = await listing(conn)
    assert assets[bare.target_id].meta == AssetMeta()
    assert assets[rich.target_id].meta == AssetMeta(title="Hero")


async def test_update_metadata_keeps_foreign_meta_data(emu: StoryblokEmulator) -> None:
    asset_id = emu.add_asset("doc.pdf", b"%PDF-1.4", title="Old", source="scanner",
                             meta_data={"asset_category": "manual", "alt__i18n__de": "alt"})
    async with connect(emu) as conn:
        await conn.update_metadata(str(asset_id), AssetMeta(title="New"))
        asset = (await listing(conn))[str(asset_id)]
    stored = emu.assets[asset_id]
    assert stored["meta_data"]["asset_category"] == "manual"
    assert "alt__i18n__de" not in stored["meta_data"]
    assert asset.meta == AssetMeta(title="New")
    assert asset.extra == {"source": "scanner"}


async def test_replace_keeps_the_id(emu: StoryblokEmulator, tmp_path: Path) -> None:
    old, new = png(8, 8, (1, 2, 3)), png(16, 8, (4, 5, 6))
    asset_id = emu.add_asset("pic.png", old, title="Kept?")
    async with connect(emu) as conn:
        ref = await conn.replace(str(asset_id), request_for("pic.png", meta=AssetMeta(title="T")),
                                 stage_bytes(tmp_path, new, "image/png"), MemoryJournal())
        assets = await listing(conn)
    assert ref.target_id == str(asset_id)
    assert list(assets) == [str(asset_id)]
    assert emu.blob(asset_id) == new
    assert (assets[str(asset_id)].width, assets[str(asset_id)].height) == (16, 8)
    assert assets[str(asset_id)].meta.title == "T"


async def test_delete_is_soft_and_hides_the_asset(emu: StoryblokEmulator) -> None:
    keep = emu.add_asset("keep.txt", b"k")
    drop = emu.add_asset("drop.txt", b"d")
    async with connect(emu) as conn:
        await conn.delete(str(drop))
        await conn.delete(str(drop))  # again: no error
        assets = await listing(conn)
    assert list(assets) == [str(keep)]
    assert emu.assets[drop]["deleted_at"] is not None


async def test_find_asset_reconciles_an_upload(emu: StoryblokEmulator, tmp_path: Path) -> None:
    folder = emu.add_folder("F")
    other = emu.add_folder("G")
    data = png(5, 5)
    async with connect(emu) as conn:
        ref = await conn.upload(request_for("my.pic.png", str(folder)),
                                stage_bytes(tmp_path, data, "image/png"), MemoryJournal())
        found = await conn.find_asset(str(folder), "my.pic.png", len(data))
        wrong_size = await conn.find_asset(str(folder), "my.pic.png", len(data) + 1)
        wrong_folder = await conn.find_asset(str(other), "my.pic.png", len(data))
        at_root = await conn.find_asset(None, "my.pic.png", len(data))
    assert found == ref
    assert (wrong_size, wrong_folder, at_root) == (None, None, None)


async def test_private_asset_through_the_asset_token(emu: StoryblokEmulator) -> None:
    asset_id = emu.add_asset("secret.png", png(4, 4), is_private=True)
    async with connect(emu) as conn:
        asset = (await listing(conn))[str(asset_id)]
    assert asset.extra["is_private"] == "true"

    async with connect(emu, asset_token=ASSET_TOKEN) as conn:
        assert await read(conn, asset) == emu.blob(asset_id)
    async with connect(emu) as conn:
        with pytest.raises(ItemError, match="asset_token"):
            await read(conn, asset)
    async with connect(emu, asset_token="wrong") as conn:
        with pytest.raises(ItemError, match="asset_token"):
            await read(conn, asset)
    public = Asset(asset.source_id, asset.filename, (), None, "image/png", 1, url=asset.url)
    async with connect(emu) as conn:  # the plain URL of a private file is refused
        with pytest.raises(ItemError):
            await read(conn, public)


class Killed(Exception):
    pass


class KillingJournal(MemoryJournal):
    def __init__(self, kill_after: str) -> None:
        super().__init__()
        self.kill_after = kill_after

    async def record(self, step: str, data: Mapping[str, str]) -> None:
        await super().record(step, data)
        if step == self.kill_after:
            raise Killed(step)


@pytest.mark.parametrize("kill_after", ["signed", "stored", "finished"])
async def test_killed_upload_resumes_to_one_asset(
    emu: StoryblokEmulator, tmp_path: Path, kill_after: str
) -> None:
    data = png(6, 6)
    staged = stage_bytes(tmp_path, data, "image/png")
    request = request_for("once.png", meta=AssetMeta(title="Once"))
    async with connect(emu) as conn:
        first = KillingJournal(kill_after)
        with pytest.raises(Killed):
            await conn.upload(request, staged, first)
        ref = await conn.upload(request, staged, MemoryJournal(first.records[-1][1]))
        assets = await listing(conn)
    assert list(assets) == [ref.target_id]
    assert emu.blob(int(ref.target_id)) == data
    assert assets[ref.target_id].meta.title == "Once"


async def test_wrong_token_is_an_auth_error(emu: StoryblokEmulator) -> None:
    async with connect(emu, token="not-the-token") as conn:
        with pytest.raises(AuthError) as info:
            _ = [f async for f in conn.iter_folders()]
    assert "not-the-token" not in str(info.value)


async def test_oauth_token_as_bearer() -> None:
    emulator = StoryblokEmulator(space_id=SPACE, token=TOKEN, oauth_token="oauth-1",
                                 rate_limit=None)
    try:
        emulator.add_folder("Only")
        async with connect(emulator, token="oauth-1", oauth=True) as conn:
            names = [f.name async for f in conn.iter_folders()]
        assert names == ["Only"]
    finally:
        emulator.close()


@pytest.mark.real_waits
async def test_default_pacing_stays_within_the_starter_limit() -> None:
    emulator = StoryblokEmulator(space_id=SPACE, token=TOKEN, rate_limit=3.0, max_per_page=2)
    try:
        for i in range(5):
            emulator.add_asset(f"a{i}.txt", b"x")
        conf = StoryblokConfig(connector="storyblok", space_id=SPACE, token=TOKEN,
                               base_url=BASE)  # no requests_per_second: Starter's 3/s
        async with StoryblokConnector(conf, transport=in_process_transport(emulator.app)) as conn:
            assets = [a async for a in conn.iter_assets()]
        assert len(assets) == 5
    finally:
        emulator.close()


async def test_uploads_and_listing_survive_injected_faults(tmp_path: Path) -> None:
    faults = Faults(error_rate=0.15, error_after_commit_rate=0.1, reset_rate=0.05, seed=7)
    emulator = StoryblokEmulator(space_id=SPACE, token=TOKEN, rate_limit=None, faults=faults)
    try:
        datas = [png(3 + i, 3) for i in range(6)]
        async with connect(emulator) as conn:
            refs = [
                await conn.upload(request_for(f"f{i}.png", meta=AssetMeta(title=f"t{i}")),
                                  stage_bytes(tmp_path, data, "image/png"), MemoryJournal())
                for i, data in enumerate(datas)
            ]
            assets = await listing(conn)
        assert sorted(assets) == sorted(r.target_id for r in refs)  # no duplicate, none lost
        for ref, data in zip(refs, datas, strict=True):
            assert emulator.blob(int(ref.target_id)) == data
            assert assets[ref.target_id].meta.title is not None
        injected = emulator.fault_middleware.injected
        assert injected["error"] + injected["after_commit"] + injected["reset"] > 0
        assert emulator.credential_leaks == []
    finally:
        emulator.close()


async def test_restart_after_a_lost_stored_file_with_a_merging_journal(
    emu: StoryblokEmulator, tmp_path: Path
) -> None:
    data = png(7, 7)
    staged = stage_bytes(tmp_path, data, "image/png")
    request = request_for("lost.png")
    # an earlier attempt says "stored", but the emulator never saw that upload
    stale = {"signed_id": "1234567", "signed_at": "2025-01-01T00:00:00+00:00", "stored": "1"}
    killing = KillingJournal("signed")
    killing._previous = dict(stale)
    async with connect(emu) as conn:
        with pytest.raises(Killed):
            await conn.upload(request, staged, killing)
        merged = {**stale, **killing.records[-1][1]}
        assert merged["stored"] == "0"  # the new sign reset the flag of the lost attempt
        ref = await conn.upload(request, staged, MemoryJournal(merged))
        assets = await listing(conn)
    assert list(assets) == [ref.target_id]
    assert emu.blob(int(ref.target_id)) == data
