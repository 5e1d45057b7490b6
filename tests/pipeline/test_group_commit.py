"""Group commit of the ledger (issue 12): one synced transaction serves many records.

The writer makes a commit when someone waits for one (an intent before its upload), not for
every record posted: a DONE record rides with the next intents. A migrate with concurrency
N writes the intents of N uploads in one commit before any of them starts.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskGroup

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from pipeline import checkpoint
from pipeline.checkpoint import Checkpointer
from pipeline.run import execute_job
from state.store import ItemRecord, ItemStatus, StateStore
from tests.pipeline.helpers import cs_inventory, library, local_to_cs_job

ROUTE = "a->b"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(str(tmp_path / "state.db"))
    yield store
    store.close()


def rec(n: int, status: ItemStatus = ItemStatus.DONE) -> ItemRecord:
    return ItemRecord(route=ROUTE, kind="asset", source_id=f"s{n}", status=status,
                      path=f"p{n}", target_id=f"t{n}" if status is ItemStatus.DONE else None)


@asynccontextmanager
async def writer(store: StateStore, *, batch: int = 64
                 ) -> AsyncIterator[tuple[Checkpointer, TaskGroup]]:
    """A :class:`Checkpointer` of a new migrate run in ``store``, its writer started in the
    task group yielded with it."""
    ckpt = Checkpointer(store, store.start_run(ROUTE, "migrate"), {}, batch=batch)
    async with anyio.create_task_group() as tg:
        await tg.start(ckpt.run)
        yield ckpt, tg


class CountingStore(StateStore):
    """A StateStore that remembers each transaction :meth:`write` made."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches: list[list[str]] = []

    def write(self, records: Sequence[ItemRecord], *, run_id: int | None = None) -> None:
        super().write(records, run_id=run_id)
        self.batches.append([r.source_id for r in records])


async def test_posted_records_ride_with_the_next_commit(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three posted results and an awaited intent: one transaction, not four (before: the
    idle writer wrote the first posted record alone at once)."""
    # only the commit may trigger the write
    monkeypatch.setattr(checkpoint, "LINGER", 60.0, raising=False)
    store = CountingStore(str(tmp_path / "state.db"))
    async with writer(store) as (ckpt, _):
        for n in range(3):
            await ckpt.post(rec(n))
            await anyio.sleep(0)  # the writer gets its turn
        await ckpt.commit(rec(3, ItemStatus.IN_FLIGHT))
        assert store.batches == [["s0", "s1", "s2", "s3"]]
        await ckpt.close()
    assert ckpt.commits == 1
    assert set(store.items(ROUTE)) == {("asset", f"s{n}") for n in range(4)}
    store.close()


async def test_commit_many_is_one_durable_group_commit(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "state.db"))
    async with writer(store) as (ckpt, _):
        await ckpt.commit_many([rec(n, ItemStatus.IN_FLIGHT) for n in range(5)])
        # durable on return: another connection reads all five
        reader = StateStore(str(tmp_path / "state.db"))
        assert {k[1]: r.status for k, r in reader.items(ROUTE).items()} == {
            f"s{n}": ItemStatus.IN_FLIGHT for n in range(5)}
        reader.close()
        await ckpt.close()
    assert store.batches == [[f"s{n}" for n in range(5)]]
    store.close()


async def test_posted_records_alone_are_written_after_the_linger_and_at_close(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Results with no commit after them still reach the ledger while the run goes on (at
    most LINGER seconds later), and everything posted is written by close."""
    monkeypatch.setattr(checkpoint, "LINGER", 0.01, raising=False)
    async with writer(store) as (ckpt, _):
        await ckpt.post(rec(0))
        with anyio.fail_after(30):
            while ("asset", "s0") not in store.items(ROUTE):
                await anyio.sleep(0.02)
        monkeypatch.setattr(checkpoint, "LINGER", 60.0, raising=False)
        await ckpt.post(rec(1))
        await ckpt.close()
    assert set(store.items(ROUTE)) == {("asset", "s0"), ("asset", "s1")}


async def test_migrate_commits_once_per_group_of_uploads(
        tmp_path: Path, emu: ContentstackEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrency 4: about one ledger transaction per 4 uploads, every asset once (before:
    one for every intent and nearly one for every result, ~2 per asset)."""
    monkeypatch.setattr(checkpoint, "LINGER", 60.0, raising=False)
    batches: list[list[ItemRecord]] = []
    write = StateStore.write

    def counting(self: StateStore, records: Sequence[ItemRecord], *,
                 run_id: int | None = None) -> None:
        write(self, records, run_id=run_id)
        batches.append(list(records))

    monkeypatch.setattr(StateStore, "write", counting)
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, "http://cs.emulator", source=root, concurrency=4)
    summary = await execute_job(job, "migrate",
                                transports={"target": in_process_transport(emu.app)})
    assert summary.exit_code() == 0, summary.text()
    assert len(cs_inventory(emu)) == len(files)
    assets = [r for batch in batches for r in batch if r.kind == "asset"]
    assert sum(r.status is ItemStatus.IN_FLIGHT for r in assets) == len(files)
    assert sum(r.status is ItemStatus.DONE for r in assets) == len(files)
    # one commit per group of 4 intents, the results riding along, plus the last results
    assert len(batches) <= math.ceil(len(files) / 4) + 2, [len(b) for b in batches]
    # every intent was durable before its upload: each intent's commit came before the
    # commit of its result
    first: dict[str, tuple[int, ItemStatus]] = {}
    for i, batch in enumerate(batches):
        for r in batch:
            if r.kind == "asset":
                first.setdefault(r.source_id, (i, r.status))
    assert {status for _, status in first.values()} == {ItemStatus.IN_FLIGHT}


async def test_handing_a_record_over_is_no_task_switch(store: StateStore) -> None:
    """Posting a record neither blocks nor yields to another task (issue 12: a memory stream
    made every posted result a task switch and a wake-up of the writer)."""
    others_ran = anyio.Event()

    async def other() -> None:
        others_ran.set()

    async with writer(store, batch=8) as (ckpt, tg):
        tg.start_soon(other)
        for n in range(20):  # more than a batch: a full batch wakes the writer, no wait
            await ckpt.post(rec(n))
        assert not others_ran.is_set()
        await ckpt.close()
    assert set(store.items(ROUTE)) == {("asset", f"s{n}") for n in range(20)}


async def test_a_record_posted_in_a_cancelled_scope_is_not_handed_over(
        store: StateStore) -> None:
    """A loader cancelled (Ctrl-C) right after its upload's worker thread returned must not
    hand its result over: the cancelled writer may have made its last write already, and
    the item would be reported done with no ledger row to say so."""
    async with writer(store) as (ckpt, _):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ckpt.post(rec(0))
            raise AssertionError("the post must raise the cancellation")
        assert scope.cancelled_caught
        await ckpt.post(rec(1))
        await ckpt.close()
    assert set(store.items(ROUTE)) == {("asset", "s1")}


async def test_a_cancelled_writer_still_writes_every_record_handed_over(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while results wait for a commit to ride with: they are written before the
    writer stops (the interrupted run's summary reported them done)."""
    monkeypatch.setattr(checkpoint, "LINGER", 60.0, raising=False)
    async with writer(store) as (ckpt, tg):
        for n in range(3):
            await ckpt.post(rec(n))
        await anyio.sleep(0.05)  # the writer lingers, waiting for a commit
        assert store.items(ROUTE) == {}
        tg.cancel_scope.cancel()
    assert set(store.items(ROUTE)) == {("asset", f"s{n}") for n in range(3)}
