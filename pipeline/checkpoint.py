"""The single state writer: batches item records into the state DB, one transaction a batch.

Every stage sends its records here. ``commit`` / ``commit_many`` wait until the records are
durable (an upload's intent must be on disk before the upload starts); ``post`` does not wait
(a result that is lost in a crash is recovered by reconciling the intent).

Group commit: a transaction is written when someone waits for it (a ``commit``), when a batch
is full, when the block ends, or at the latest :data:`LINGER` seconds after the oldest posted
record; posted records alone never force a synced transaction of their own, so an asset's
DONE record rides with the next intents' commit instead of costing one (issue 12: with
concurrency 4 the writer had made a commit for every intent and nearly every result).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import anyio
import structlog
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from pipeline.crashpoints import crash_point
from state.store import ItemRecord, ItemStatus, StateStore

log = structlog.get_logger(__name__)

Key = tuple[str, str]
_Entry = tuple[ItemRecord, anyio.Event | None]

LINGER = 0.5
"""Seconds a posted record may wait for a commit to ride with before it is written alone
(bounds what a crash can cost: the reconciling of the results of the last half second)."""


class Checkpointer:
    def __init__(self, store: StateStore, run_id: int, records: Mapping[Key, ItemRecord],
                 *, batch: int = 64,
                 on_written: Callable[[Sequence[ItemRecord]], None] | None = None) -> None:
        self.store = store
        self.on_written = on_written
        """Called (in the writer's thread) with each batch once it is committed: the live
        id map (pipeline.idmap.MapWriter) appends its lines there."""
        self.run_id = run_id
        self.records: dict[Key, ItemRecord] = dict(records)
        self._batch = batch
        self._send: MemoryObjectSendStream[_Entry]
        self._recv: MemoryObjectReceiveStream[_Entry]
        self._send, self._recv = anyio.create_memory_object_stream[_Entry](batch)
        self.commits = 0
        self._owed: dict[Key, ItemRecord] = {}
        """Records sent and not yet written, the newest per key: what a cancelled writer
        still writes (a record handed to the writer's waiting ``receive`` is lost when the
        writer is cancelled at that moment, so the stream cannot tell)."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The writer task: runs until :meth:`close` and everything sent is written.

        Cancelled (Ctrl-C, SIGTERM), it still writes every record sent before it stops: an
        item whose result was posted has been reported done, so the ledger must say so too
        (the interrupted run's summary and the ledger agree)."""
        task_status.started()
        try:
            await self._write_until_closed()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                owed = list(self._owed.values())  # (a batch cancelled mid-write: again)
                if owed:
                    await anyio.to_thread.run_sync(self._write, owed)
                    self._owed.clear()
            raise

    async def _write_until_closed(self) -> None:
        async with self._recv:
            ended = False
            while not ended:
                try:
                    first = await self._recv.receive()
                except anyio.EndOfStream:
                    return
                entries = [first]
                ended = self._drain(entries)
                if not ended and not _awaited(entries):
                    # posted records only: wait for a commit to ride with (group commit)
                    with anyio.move_on_after(LINGER):
                        while len(entries) < self._batch and not _awaited(entries):
                            try:
                                entries.append(await self._recv.receive())
                            except anyio.EndOfStream:
                                ended = True
                                break
                            ended = self._drain(entries)
                            if ended:
                                break
                batch = [rec for rec, _ in entries]
                await anyio.to_thread.run_sync(self._write, batch)
                for rec in batch:
                    key = (rec.kind, rec.source_id)
                    if self._owed.get(key) is rec:  # not sent again meanwhile
                        del self._owed[key]
                self.commits += 1
                for _, done in entries:
                    if done is not None:
                        done.set()

    def _drain(self, entries: list[_Entry]) -> bool:
        """Add what is already sent (up to a batch) to ``entries``; True when the stream
        has ended."""
        while len(entries) < self._batch:
            try:
                entries.append(self._recv.receive_nowait())
            except anyio.WouldBlock:
                return False
            except anyio.EndOfStream:
                return True
        return False

    def _write(self, batch: list[ItemRecord]) -> None:
        self.store.write(batch, run_id=self.run_id)
        if any(r.kind == "asset" and r.status is ItemStatus.DONE for r in batch):
            # committed, the id map not yet appended: the kill the map's repair is for
            crash_point("asset.done.committed")
        if self.on_written is not None:
            self.on_written(batch)

    def _remember(self, record: ItemRecord) -> ItemRecord:
        record = replace(record, last_run_id=self.run_id)
        self.records[(record.kind, record.source_id)] = record
        return record

    async def _send_owed(self, record: ItemRecord, done: anyio.Event | None) -> None:
        """Send ``record`` to the writer and count it owed once sent (no await between: a
        record whose send was cancelled is not owed, its item not reported)."""
        await self._send.send((record, done))
        self._owed[(record.kind, record.source_id)] = record

    async def commit(self, record: ItemRecord) -> None:
        """Write ``record`` and return once it is durable."""
        done = anyio.Event()
        await self._send_owed(self._remember(record), done)
        await done.wait()

    async def commit_many(self, records: Sequence[ItemRecord]) -> None:
        """Write ``records`` in order and return once all are durable: one group commit for
        all when they fit a batch (the intents of the uploads about to start)."""
        if not records:
            return
        *ahead, last = records
        for record in ahead:
            await self._send_owed(self._remember(record), None)
        await self.commit(last)

    async def post(self, record: ItemRecord) -> None:
        """Write ``record`` with the next commit (at most :data:`LINGER` s from now); does
        not wait."""
        await self._send_owed(self._remember(record), None)

    async def close(self) -> None:
        await self._send.aclose()


def _awaited(entries: list[_Entry]) -> bool:
    return any(done is not None for _, done in entries)


class RecordJournal:
    """:class:`connectors.base.UploadJournal` backed by an item's state record."""

    def __init__(self, ckpt: Checkpointer, key: Key) -> None:
        self._ckpt = ckpt
        self._key = key
        self._previous = dict(ckpt.records[key].journal)

    @property
    def previous(self) -> Mapping[str, str]:
        return self._previous

    async def record(self, step: str, data: Mapping[str, str]) -> None:
        current = self._ckpt.records[self._key]
        journal = {**current.journal, **data, "step": step}
        await self._ckpt.commit(replace(current, journal=journal))
        log.debug("state.journal", source_id=self._key[1], step=step)
        crash_point(f"journal.{step}")
