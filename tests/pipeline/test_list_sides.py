"""Both sides' listings: one after the other when both are CPU work in this process (two
local folders contend for the interpreter lock), at the same time when a side waits on a
network (an HTTP listing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from connectors.base import Asset, Folder, lists_in_process
from connectors.contentstack.connector import ContentstackConnector
from connectors.errors import FatalError, ItemError
from connectors.localfs.config import LocalConfig
from connectors.localfs.connector import LocalFolderConnector
from pipeline.run import list_sides


class _Lister:
    """A source whose listing yields a few assets, with a checkpoint between each, and
    notes in ``events`` when it starts and ends."""

    name = "fake"
    scope = "fake"

    def __init__(self, side: str, events: list[str], *, fail: bool = False) -> None:
        self.side, self.events, self.fail = side, events, fail

    async def iter_folders(self) -> AsyncIterator[Folder]:
        self.events.append(f"{self.side} start")
        await anyio.sleep(0)
        for _ in ():
            yield Folder(source_id="", name="", parent_id=None, path=())

    async def iter_assets(self) -> AsyncIterator[Asset]:
        for i in range(3):
            await anyio.sleep(0)
            if self.fail:
                raise ItemError("listing page 2 failed")
            yield Asset(source_id=f"{self.side}-{i}", filename=f"{i}.txt", folder_path=(),
                        folder_id=None, content_type="text/plain", size=1)
        self.events.append(f"{self.side} end")

    def open_asset(self, asset: Asset) -> object:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class _InProcessLister(_Lister):
    lists_in_process = True


async def test_two_in_process_listings_run_one_after_the_other() -> None:
    events: list[str] = []
    source, target = await list_sides(_InProcessLister("source", events),  # type: ignore[arg-type]
                                      _InProcessLister("target", events))  # type: ignore[arg-type]
    assert events == ["source start", "source end", "target start", "target end"]
    assert [a.source_id for a in source.assets] == ["source-0", "source-1", "source-2"]
    assert [a.source_id for a in target.assets] == ["target-0", "target-1", "target-2"]


@pytest.mark.parametrize("local_side", ["source", "target", None])
async def test_a_listing_that_waits_on_a_network_runs_beside_the_other(
        local_side: str | None) -> None:
    events: list[str] = []
    sides = [_InProcessLister(side, events) if side == local_side else _Lister(side, events)
             for side in ("source", "target")]
    source, target = await list_sides(*sides)  # type: ignore[arg-type]
    assert events[:2] == ["source start", "target start"]  # both under way at once
    assert len(source.assets) == len(target.assets) == 3


async def test_a_failing_listing_stops_both_either_way() -> None:
    for kind in (_Lister, _InProcessLister):
        with pytest.raises(FatalError, match=r"listing the target .*page 2 failed"):
            await list_sides(kind("source", []), kind("target", [], fail=True))  # type: ignore[arg-type]


def test_which_connectors_list_in_process(tmp_path: Path) -> None:
    local = LocalFolderConnector(LocalConfig(connector="local", path=tmp_path))
    assert lists_in_process(local)
    assert not lists_in_process(ContentstackConnector)  # HTTP: waits on the network
    assert not lists_in_process(object())  # a connector that does not say: concurrent
