"""The single state writer: batches item records into the state DB, one transaction a batch.

Every stage sends its records here. ``commit`` / ``commit_many`` wait until the records are
durable (an upload's intent must be on disk before the upload starts); ``post`` does not wait
(a result that is lost in a crash is recovered by reconciling the intent).

Group commit: a transaction is written when someone waits for it (a ``commit``), when a batch
is full, when the block ends, or at the latest :data:`LINGER` seconds after the oldest posted
record; posted records alone never force a synced transaction of their own, so an asset's
DONE record rides with the next intents' commit instead of costing one (issue 12: with
concurrency 4 the writer had made a commit for every intent and nearly every result). The
records wait in a plain queue: handing one over never blocks, and a posted record wakes the
writer task only when it was idle (a wake-up per record was a task switch per asset).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskStatus

from pipeline.crashpoints import crash_point
from state.records import ItemRecord, ItemStatus

if TYPE_CHECKING:  # the store (SQLAlchemy) is the caller's: plan imports none
    from state.store import StateStore

log = structlog.get_logger(__name__)

Key = tuple[str, str]
_Entry = tuple[ItemRecord, anyio.Event | None]

LINGER = 0.5
"""Seconds a posted record may wait for a commit to ride with before it is written alone
(bounds what a crash can cost: the reconciling of the results of the last half second)."""


class Checkpointer:
    def __init__(self, store: StateStore, run_id: int, records: Mapping[Key, ItemRecord],
                 *, batch: int = 64,
                 on_written: Callable[[Sequence[ItemRecord]], None] | None = None,
                 before_write: Callable[[Sequence[ItemRecord]], None] | None = None) -> None:
        self.store = store
        self.before_write = before_write
        """Called (in the writer's thread) with each batch before it is written; what it
        raises stops the writer with the batch unwritten: a Temporal asset activity checks
        there that it still holds the asset's claim (another worker may have taken it
        over), so no attempt writes for an asset after a take-over."""
        self.on_written = on_written
        """Called (in the writer's thread) with each batch once it is committed: the live
        id map (pipeline.idmap.MapWriter) appends its lines there."""
        self.run_id = run_id
        self.records: dict[Key, ItemRecord] = dict(records)
        self._batch = batch
        self._pending: deque[_Entry] = deque()
        """Records handed to the writer and not yet taken into a transaction, in order."""
        self._waiters = 0
        """How many of the pending records someone waits for (``commit``)."""
        self._wake = anyio.Event()
        """Set when the writer must not linger: a record is waited for, a batch is full,
        or the block ends, or the writer is idle. A record posted while the writer lingers
        does not set it (no wake-up of the writer per posted record: issue 12, per-asset
        CPU)."""
        self._closed = False
        self._idle = False
        """The writer waits with nothing pending: the first record handed over wakes it."""
        self.commits = 0
        self._owed: dict[Key, ItemRecord] = {}
        """Records handed over and not yet written, the newest per key: what a cancelled
        writer still writes (those pending and those of a transaction cut short)."""
        self._stopped = False
        """The writer task has ended (closed or cancelled): :meth:`restore` writes itself."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The writer task: runs until :meth:`close` and everything handed over is written.

        Cancelled (Ctrl-C, SIGTERM), it still writes every record handed over before it
        stops: an item whose result was posted has been reported done, so the ledger must
        say so too (the interrupted run's summary and the ledger agree)."""
        task_status.started()
        try:
            await self._write_until_closed()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                while self._owed:  # (a batch cancelled mid-write: again; and any restored)
                    owed = list(self._owed.values())
                    self._owed.clear()
                    self._pending.clear()
                    await anyio.to_thread.run_sync(self._write, owed)
            raise
        finally:
            self._stopped = True

    def _urgent(self) -> bool:
        return self._closed or self._waiters > 0 or len(self._pending) >= self._batch

    async def _write_until_closed(self) -> None:
        while True:
            if self._wake.is_set():
                self._wake = anyio.Event()  # before looking: a later hand-over sets it
            if not self._pending:
                if self._closed:
                    return
                self._idle = True  # the next hand-over wakes it, to start the linger
                try:
                    await self._wake.wait()
                finally:
                    self._idle = False
                continue
            if not self._urgent():
                # posted records only: wait for a commit to ride with (group commit)
                with anyio.move_on_after(LINGER):
                    await self._wake.wait()
            entries = [self._pending.popleft()
                       for _ in range(min(self._batch, len(self._pending)))]
            batch = [rec for rec, _ in entries]
            await anyio.to_thread.run_sync(self._write, batch)
            for rec in batch:
                key = (rec.kind, rec.source_id)
                if self._owed.get(key) is rec:  # not handed over again meanwhile
                    del self._owed[key]
            self.commits += 1
            for _, done in entries:
                if done is not None:
                    self._waiters -= 1
                    done.set()

    def _write(self, batch: list[ItemRecord]) -> None:
        if self.before_write is not None:
            self.before_write(batch)
        self.store.write(batch, run_id=self.run_id)
        if any(r.kind == "asset" and r.status is ItemStatus.DONE for r in batch):
            # committed, the id map not yet appended: the kill the map's repair is for
            crash_point("asset.done.committed")
        if self.on_written is not None:
            self.on_written(batch)

    def _remember(self, record: ItemRecord, *, restored: bool = False) -> ItemRecord:
        if record.last_run_id != self.run_id and not restored:
            record = replace(record, last_run_id=self.run_id)
        self.records[(record.kind, record.source_id)] = record
        return record

    def _hand_over(self, record: ItemRecord, done: anyio.Event | None, *,
                   restored: bool = False) -> None:
        """Queue ``record`` for the writer and count it owed. Callers first raise the
        cancellation of a cancelled scope (:func:`anyio.lowlevel.checkpoint_if_cancelled`,
        which switches no task otherwise): a record handed over in a cancelled scope could
        come after the cancelled writer's last write, and its item would be reported done
        with no ledger row to say so."""
        if self._closed and not restored:
            raise RuntimeError("the ledger writer is closed")
        record = self._remember(record, restored=restored)
        self._pending.append((record, done))
        self._owed[(record.kind, record.source_id)] = record
        if done is not None:
            self._waiters += 1
        if self._idle or done is not None or len(self._pending) >= self._batch:
            self._wake.set()

    async def commit(self, record: ItemRecord) -> None:
        """Write ``record`` and return once it is durable."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        done = anyio.Event()
        self._hand_over(record, done)
        await done.wait()

    async def commit_many(self, records: Sequence[ItemRecord]) -> None:
        """Write ``records`` in order and return once all are durable: one group commit for
        all when they fit a batch (the intents of the uploads about to start)."""
        if not records:
            return
        await anyio.lowlevel.checkpoint_if_cancelled()
        *ahead, last = records
        for record in ahead:
            self._hand_over(record, None)
        done = anyio.Event()
        self._hand_over(last, done)
        await done.wait()

    async def post(self, record: ItemRecord) -> None:
        """Write ``record`` with the next commit (at most :data:`LINGER` s from now); does
        not wait (and does not wake a lingering writer). Raises the cancellation of a
        cancelled scope instead of handing it over (then its item is not reported)."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._hand_over(record, None)

    def restore(self, records: Sequence[ItemRecord]) -> None:
        """Put ledger rows back as they were before this run changed them (an upload's
        intent committed ahead for an upload that never started; a row left as it was at
        an edit seen in the target), keeping the run that last wrote each: this run did
        not carry them out, so ``status`` counts them neither in flight nor done by it.

        Does not wait and never raises a cancellation: a run that stops (an error, Ctrl-C)
        calls it on its way out. The rows ride with the writer's next or last transaction;
        once the writer has ended, they are written here at once."""
        if not records:
            return
        if self._stopped:
            kept = [self._remember(r, restored=True) for r in records]
            self._write(kept)
            return
        for record in records:
            self._hand_over(record, None, restored=True)
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()


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
