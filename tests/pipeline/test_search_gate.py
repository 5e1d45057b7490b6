"""A resumed run's searches of the target are not raced by its own uploads.

The fault campaign (``benchmarks/campaign.py``, 30 kills into Webflow) ended with 8-9 assets
missing: the last run's searches for uploads a kill had left unknown listed the whole
Webflow asset list (the API filters by nothing) while the same run's other uploads went on,
saw its ``total`` change on every pass and failed the items ("the Webflow asset list changed
while being listed, 3 times in a row"), though nobody else was editing the library.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from connectors.emulation import LoopbackServer
from connectors.plugin import EmulatorSettings
from connectors.webflow.demo import SITE_ID, WebflowDemo
from pipeline.config import load_job
from pipeline.run import execute_job
from pipeline.search_gate import SearchGate
from state.store import ItemStatus, StateStore


async def test_a_search_waits_for_the_writes_in_flight_and_holds_new_ones_back() -> None:
    gate = SearchGate()
    events: list[str] = []

    async def write(name: str, delay: float) -> None:
        async with gate.writing():
            events.append(f"{name} start")
            await anyio.sleep(delay)
            events.append(f"{name} end")

    async def search(name: str) -> None:
        async with gate.searching():
            events.append(f"{name} start")
            assert gate.writes == 0
            await anyio.sleep(0.05)
            events.append(f"{name} end")

    async with anyio.create_task_group() as tg:
        tg.start_soon(write, "w1", 0.05)
        await anyio.sleep(0.01)
        tg.start_soon(search, "s1")
        tg.start_soon(search, "s2")
        await anyio.sleep(0.01)
        tg.start_soon(write, "w2", 0)  # arrives while the searches wait: goes after them
    assert events.index("w1 end") < events.index("s1 start")
    assert events.index("w1 end") < events.index("s2 start")
    # the two searches ran together, and the later write waited for both
    assert events.index("s2 start") < events.index("s1 end")
    assert events.index("w2 start") > max(events.index("s1 end"), events.index("s2 end"))


class Overlaps:
    """ASGI middleware on the Webflow emulator: an asset create (``POST
    /v2/sites/{id}/assets``) reaches it only after 0.2 s, and each list request (``GET`` of
    the same path) notes how many creates were under way when it arrived."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.creating = 0
        self.lists_during_creates = 0
        self.lists = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assets = scope["type"] == "http" and scope["path"] == f"/v2/sites/{SITE_ID}/assets"
        if assets and scope["method"] == "GET":
            self.lists += 1
            self.lists_during_creates += self.creating > 0
        if assets and scope["method"] == "POST":
            self.creating += 1
            try:
                await asyncio.sleep(0.2)
                await self.app(scope, receive, send)
            finally:
                self.creating -= 1
            return
        await self.app(scope, receive, send)


@pytest.mark.slow
async def test_a_resumed_runs_searches_are_not_raced_by_its_own_uploads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = WebflowDemo(EmulatorSettings(unlimited=True))
    for i in range(150):  # more than one page of 100: a search pages the whole list
        demo.emulator.add_asset(f"other-{i:03}.txt", b"other %d" % i, folder_id=None)
    for name, value in demo.env.items():
        monkeypatch.setenv(name, value)
    library = tmp_path / "library"
    library.mkdir()
    for i in range(0, 12, 2):
        (library / f"f{i:02}.txt").write_bytes(b"file %d" % i)
    middleware = Overlaps(demo.app)
    with LoopbackServer(middleware) as server:
        job_path = tmp_path / "job.toml"
        job_path.write_text(
            f'[source]\nconnector = "local"\npath = "{library}"\n\n'
            f"[target]\n{demo.job_section(server.url)}\n"
            f'[run]\nstate = "{tmp_path / "state.db"}"\nconcurrency = 4\n', encoding="utf-8")
        job = load_job(job_path)
        first = await execute_job(job, "migrate")
        assert first.exit_code() == 0, first.text()
        # a kill right after each even file's intent, before its create reached Webflow:
        # the next run's plan finds none of them, and its loaders must look for each again
        # before sending it (the create may have landed since the listing); the odd files
        # are new and upload beside those searches
        with StateStore(job.run.state) as store, httpx.Client(
                base_url=f"{server.url}/v2/", timeout=10,
                headers={"authorization": f"Bearer {demo.env['WEBFLOW_TOKEN']}"}) as api:
            for i in range(0, 12, 2):
                rec = store.item(first.route, "asset", f"f{i:02}.txt")
                assert rec is not None
                assert rec.target_id
                api.delete(f"assets/{rec.target_id}").raise_for_status()
                store.write([replace(rec, status=ItemStatus.IN_FLIGHT, intent="create",
                                     journal={}, target_id=None, target_url=None,
                                     target_marker=None)])
        for i in range(1, 12, 2):
            (library / f"f{i:02}.txt").write_bytes(b"file %d" % i)
        lists_before = middleware.lists
        again = await execute_job(job, "migrate")
    assert again.exit_code() == 0, again.text()
    assert middleware.lists > lists_before + 6  # the searches listed (2 pages each)
    assert middleware.lists_during_creates == 0
    counts = again.counts()
    assert counts["created"] == 12, again.text()
    names = sorted(str(a["originalFileName"]) for a in demo.emulator.assets.values())
    assert [n for n in names if n.startswith("f")] == [f"f{i:02}.txt" for i in range(12)]
    demo.close()
