"""Execution: folders parent-first, then assets through bounded streams to N loaders.

Every item ends done, skipped (with a reason) or failed (with a reason); any exception an
item raises fails that item and the run goes on; only a FatalError cancels the run. Intent
before side effect: an upload's IN_FLIGHT record is durable before any byte is sent; its DONE
record is posted, not awaited, and so shares the next group commit.

Group commit (issue 12): the feeder of :func:`run_assets` writes the intents of the next
uploads in one commit before handing them to the loaders (a look-ahead of
:data:`INTENTS_AHEAD` per loader, topped up when half is taken), so the loaders never wait for
the state DB and a run makes about one synced commit per ``4 x concurrency`` assets, the DONE
records riding along. A kill after that commit leaves intents of uploads that never
started: the next run reconciles them like any other (the plan looks for each in the target
listing, the loader with ``find_asset``) and uploads what it does not find.
"""

from __future__ import annotations

import gc
import hashlib
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import anyio
import structlog

from connectors.base import (
    DIGESTS,
    Asset,
    AssetMeta,
    Folder,
    FolderPath,
    Source,
    StagedFile,
    SupportsDelete,
    SupportsFindAsset,
    SupportsLocalPath,
    SupportsMove,
    SupportsProvenance,
    SupportsPublish,
    SupportsReadAsset,
    SupportsReplace,
    SupportsUpdateMetadata,
    Target,
    TargetRef,
    UploadRequest,
    staged_digests,
)
from connectors.errors import AmbiguousError, FatalError, ItemError, RetryableError, SyncError
from connectors.media import INLINE_FILE_BYTES, file_work, not_a_file, open_regular
from mappings.fields import as_created
from pipeline.checkpoint import Checkpointer, RecordJournal
from pipeline.crashpoints import crash_point
from pipeline.plan import (
    FAIL_HINT,
    PUBLISH_HASH,
    PUBLISH_OWED,
    AssetAction,
    FolderAction,
    Op,
    conflict_hint,
    marker_meta,
    target_drift,
    write_marker,
    written_meta,
)
from pipeline.search_gate import SearchGate
from state.records import EXCLUDED_NOTE_PREFIX, PRUNED_NOTE, ItemRecord, ItemStatus

log = structlog.get_logger(__name__)

UPLOAD_TRIES = 3

#: A local source's file listed at this size or less (bytes) is staged on the event loop
#: itself: its stat and read cost less than the worker-thread hop would (two loop wake-ups
#: and the GIL handed back and forth; measured: ``benchmarks/run.py --only overhead``).
INLINE_STAGE_BYTES = INLINE_FILE_BYTES


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    source_id: str
    path: str
    op: Op
    status: ItemStatus
    reason: str
    target_id: str | None = None
    target_url: str | None = None
    bytes: int = 0
    excluded: bool = False
    """The source or a filter rule left this entry out (:attr:`AssetAction.excluded_by`)."""
    excluded_by: str | None = None
    """Which: ``"source"`` or the rule's job-file key (``mapping.filters.exclude``)."""
    gone: bool = False
    """A ledger row whose source asset is gone from the source (prune's business), not an
    entry of this run's source listing."""
    adopted: bool = False
    """Found in the target and taken as ours (:attr:`AssetAction.adopted`): counted as
    adopted whatever its op."""


Progress = Callable[[Outcome], None]


class DriftError(FatalError):
    """``[run] on_conflict = "fail"`` met a target asset edited there since assetferry wrote
    it, seen right before a destructive write (after the plan): the run stops there."""


def item_reason(exc: Exception) -> str:
    """Why one item failed, for the summary and the state DB: one line, no traceback.

    Our own errors speak for themselves; an OS error is a local file error; anything else is
    unexpected (a bug or an unforeseen answer) and is named by its type (the traceback goes
    to the debug log).
    """
    if isinstance(exc, SyncError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"local file error: {exc}"
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"unexpected error {type(exc).__name__}" + (f": {text}" if text else "")


def _record(ckpt: Checkpointer, kind: str, source_id: str, path: str) -> ItemRecord:
    return ckpt.records.get((kind, source_id)) or ItemRecord(
        route="", kind=kind, source_id=source_id, status=ItemStatus.PENDING, path=path
    )


async def create_folders(
    target: Target, actions: Sequence[FolderAction], ckpt: Checkpointer, route: str
) -> tuple[dict[FolderPath, str], list[Outcome]]:
    """Create missing folders parent-first. Returns target ids by target path."""
    ids: dict[FolderPath, str] = {(): ""}
    failed: set[FolderPath] = set()
    outcomes = []
    for action in sorted(actions, key=lambda a: (len(a.target_path), a.target_path)):
        if action.op is Op.UNSUPPORTED:  # not created: the run report says why
            outcomes.append(Outcome("folder", ",".join(action.source_ids) or action.path,
                                    action.path, action.op, ItemStatus.SKIPPED, action.reason))
            continue
        path = action.target_path
        parent = path[:-1]
        if action.op is Op.SKIP and action.target_id:
            ids[path] = action.target_id
            status, reason, target_id = ItemStatus.DONE, action.reason, action.target_id
        elif parent in failed or parent not in ids:
            failed.add(path)
            status, reason, target_id = ItemStatus.FAILED, "its parent folder failed", None
        else:
            try:
                folder = await _create_folder(target, ids[parent] or None, path)
            except FatalError:
                raise
            except Exception as exc:
                failed.add(path)
                status, reason, target_id = ItemStatus.FAILED, item_reason(exc), None
                log.error("folders.failed", path="/".join(path), error=reason)
                if not isinstance(exc, SyncError | OSError):
                    log.debug("folders.unexpected", path="/".join(path), exc_info=exc)
            else:
                crash_point("folder.created")
                ids[path] = folder.source_id
                status, reason, target_id = ItemStatus.DONE, "created", folder.source_id
                log.info("folders.created", path="/".join(path), target_id=folder.source_id)
        keys = action.source_ids or ("path:" + "/".join(path),)
        for sid in keys:
            rec = _record(ckpt, "folder", sid, "/".join(path))
            await ckpt.post(replace(rec, route=route, status=status, target_id=target_id,
                                    target_path="/".join(path),
                                    last_error=None if status is ItemStatus.DONE else reason))
        outcomes.append(Outcome("folder", keys[0], "/".join(path), action.op, status, reason,
                                target_id))
    return ids, outcomes


async def _create_folder(target: Target, parent_id: str | None, path: FolderPath) -> Folder:
    """Create one folder; after an ambiguous failure, look for it before trying again."""
    for attempt in range(1, UPLOAD_TRIES + 1):
        try:
            return await target.create_folder(parent_id, path[-1])
        except AmbiguousError as exc:
            log.warning("folders.ambiguous", path="/".join(path), error=str(exc))
            async for existing in target.iter_folders():
                if existing.path == path:
                    return existing
            if attempt == UPLOAD_TRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def stage(source: Source, asset: Asset, tmpdir: Path,
                digests: frozenset[str] = DIGESTS, *, in_place: bool | None = None
                ) -> StagedFile:
    """The asset's bytes as a file to upload, its size checked against the listing's.

    A source that has the file locally (:class:`SupportsLocalPath`) hands it over to be read
    in place: no copy, and only the ``digests`` the target reads are computed (one pass, in
    the same worker-thread hop as finding the file and checking its size, or on the event
    loop for a file listed at :data:`INLINE_STAGE_BYTES` or less; no digest at all for most
    targets). Otherwise the bytes stream to a temp
    file in ``tmpdir`` while both digests are computed. Raises ItemError when the size
    differs from the listing's. ``in_place``: whether ``source`` is a
    :class:`SupportsLocalPath` (``None``: look; a protocol check costs more than the rest).
    """
    if in_place is None:
        in_place = isinstance(source, SupportsLocalPath)
    if in_place:
        local = cast(SupportsLocalPath, source)
        # the path, its size check and the digests together: on the event loop for a small
        # file, else in one worker-thread hop
        staged = await file_work(asset.size, _stage_local, local, asset, digests)
        if staged is not None:
            return staged
    path = tmpdir / f"{uuid.uuid4().hex}.part"
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    size = 0
    try:
        async with source.open_asset(asset) as chunks:
            # the temp copy of a small file is opened, written and closed on the event loop
            # (connectors.media.file_work: no worker-thread hop per chunk, issue 12); once
            # more than that has come (a large file, or more than was listed), in a thread
            out = await file_work(asset.size, path.open, "wb")
            try:
                async for chunk in chunks:
                    md5.update(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    await file_work(size, out.write, chunk)
            finally:
                await file_work(size, out.close)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if asset.size is not None and size != asset.size:
        path.unlink(missing_ok=True)
        raise _size_changed(size, asset.size)
    return StagedFile(path, size, md5.hexdigest(), sha.hexdigest(), asset.content_type)


async def stream_sha256(connector: Source, asset: Asset) -> tuple[str, int]:
    """SHA-256 (hex) and byte count of ``asset``'s bytes as ``connector`` serves them.

    Streamed through the connector's ``open_asset`` chunk by chunk (memory bounded by one
    chunk, nothing written to disk); a :class:`RetryableError` (a reset, a truncated body) is
    tried again, up to ``UPLOAD_TRIES`` times in all. Raises the connector's errors
    (ItemError when the bytes cannot be had).
    """
    for attempt in range(1, UPLOAD_TRIES + 1):
        sha = hashlib.sha256()
        size = 0
        try:
            async with connector.open_asset(asset) as chunks:
                async for chunk in chunks:
                    sha.update(chunk)
                    size += len(chunk)
        except RetryableError:
            if attempt == UPLOAD_TRIES:
                raise
            continue
        return sha.hexdigest(), size
    raise AssertionError("unreachable")  # pragma: no cover


def ledger_note(action: AssetAction, rec: ItemRecord) -> str | None:
    """The ``last_error`` a SKIP must write to a DONE ledger row naming the same target
    asset: the exclusion note of an excluded asset (``""``: clear a stale one of an asset
    included again); ``None`` when the row is as it should be."""
    if (action.asset is None or rec.status is not ItemStatus.DONE or not rec.target_id
            or rec.target_id != action.target_id):
        return None
    note = action.excluded_note
    if note == (rec.last_error or ""):
        return None
    if not note and not (rec.last_error or "").startswith(EXCLUDED_NOTE_PREFIX):
        return None
    return note


def settled(action: AssetAction, rec: ItemRecord | None) -> bool:
    """Whether carrying out ``action`` is nothing at all (no request, no ledger write): the
    plan alone decided it, so its outcome is known before the run starts — an asset
    unchanged since the last run, a plain skip, a conflict with an edit in the target (its
    ledger row keeps our write's marker). ``rec``: its ledger row (None: it has none).
    The one test of :meth:`AssetLoader._dispatch` and of the run's planned work."""
    if action.drift:  # always a CONFLICT
        return True
    if action.op is not Op.SKIP or action.retire or action.adopt_from is not None:
        return False
    if rec is None:
        return not action.target_id
    if ledger_note(action, rec) is not None:
        return False
    return not (action.target_id and (rec.target_id != action.target_id
                                      or rec.status is not ItemStatus.DONE))


def _size_changed(size: int, listed: int) -> ItemError:
    return ItemError(f"the source sent {size} bytes but listed {listed}; "
                     "the file may have changed during the run: run again")


def _stage_local(source: SupportsLocalPath, asset: Asset,
                 digests: frozenset[str]) -> StagedFile | None:
    """Blocking: ``source``'s local file of ``asset`` read in place (:func:`_stage_in_place`),
    or ``None`` when the source has no local file for it."""
    local = source.local_path(asset)
    return None if local is None else _stage_in_place(local, asset, digests)


def _stage_in_place(path: Path, asset: Asset, digests: frozenset[str]) -> StagedFile:
    """A source's local file as a StagedFile read in place (``temporary=False``), hashed
    only for ``digests``. Raises ItemError when it is gone, unreadable, resized, or no longer
    a regular file (a folder, FIFO or device in its place: :func:`connectors.media.not_a_file`;
    a FIFO is never opened)."""
    try:
        md5 = hashlib.md5(usedforsecurity=False) if "md5" in digests else None
        sha = hashlib.sha256() if "sha256" in digests else None
        if md5 is None and sha is None:
            st = path.stat()
            if (error := not_a_file(asset.source_id, st.st_mode)) is not None:
                raise error
            size = st.st_size
        else:
            size = 0
            src, _ = open_regular(path, asset.source_id)
            with src:
                while chunk := src.read(1024 * 1024):
                    size += len(chunk)
                    if asset.size is not None and size > asset.size:
                        break  # grown since the listing: read no further than needed
                    for digest in (md5, sha):
                        if digest is not None:
                            digest.update(chunk)
    except FileNotFoundError:
        raise ItemError(f"{asset.source_id} no longer exists; re-run to pick up the current "
                        "folder") from None
    except OSError as exc:
        raise ItemError(f"local file error: reading {asset.source_id}: "
                        f"{exc.strerror or exc}") from None
    if asset.size is not None and size != asset.size:
        raise _size_changed(size, asset.size)
    return StagedFile(path, size, md5.hexdigest() if md5 else "",
                      sha.hexdigest() if sha else "", asset.content_type, temporary=False)


def discard(staged: StagedFile) -> None:
    """Remove a staged temp copy; a source's own file read in place is left alone."""
    if staged.temporary:
        staged.path.unlink(missing_ok=True)


def _sha256_of(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class Prepared:
    """An upload whose intent the feeder has committed (group commit): the ledger row as it
    was before (``before``: it decides whether the upload resumes) and the intent written."""

    before: ItemRecord
    intent: ItemRecord


class AssetLoader:
    """Carries out asset actions; one instance shared by all loader tasks."""

    def __init__(self, source: Source, target: Target, ckpt: Checkpointer, route: str,
                 folder_ids: dict[FolderPath, str], tmpdir: Path, *,
                 on_conflict: str = "skip", gate: SearchGate | None = None) -> None:
        """``on_conflict``: ``[run] on_conflict``, for a target asset edited there since
        the plan (:meth:`_edited_in_target`). ``gate``: the :class:`SearchGate` shared with
        other loaders of the same target in this process (a Temporal worker's activities);
        ``None``: this loader's own."""
        self.source = source
        self.target = target
        self.ckpt = ckpt
        self.route = route
        self.folder_ids = folder_ids
        self.tmpdir = tmpdir
        self.digests = staged_digests(target)
        self.on_conflict = on_conflict
        self._owners: dict[str, ItemRecord] | None = None
        self._in_place = isinstance(source, SupportsLocalPath)
        limits = target.limits
        self._version_is_file = limits.version_is_file
        self._lists_written_meta = limits.lists_written_meta
        # the loaders' writes and searches of the target (find_asset) do not overlap
        self._gate = gate if gate is not None else SearchGate()

    def prepare(self, action: AssetAction) -> Prepared | None:
        """The intent to commit before ``action`` is handed to a loader, for an action that
        goes straight to an upload (a CREATE or REPLACE with nothing to compare or move
        first, into a folder that exists); ``None`` for the others, which write their own
        records as they go."""
        if (action.op not in (Op.CREATE, Op.REPLACE) or action.adopt_from is not None
                or action.move_from is not None or action.asset is None
                or action.target_folder is None
                or self.folder_ids.get(action.target_folder) is None):
            return None
        rec = replace(_record(self.ckpt, "asset", action.source_id, action.path), route=self.route)
        return Prepared(rec, self._intent(action, rec))

    async def run(self, action: AssetAction, prepared: Prepared | None = None) -> Outcome:
        """Carry out ``action``; ``prepared``: its intent, already committed by the feeder."""
        key = ("asset", action.source_id)
        rec = prepared.before if prepared is not None else replace(
            _record(self.ckpt, "asset", action.source_id, action.path), route=self.route)
        try:
            return await self._dispatch(action, rec, prepared)
        except FatalError:
            raise
        except Exception as exc:
            reason = item_reason(exc)
            if not isinstance(exc, SyncError | OSError):
                log.debug("load.unexpected", source_id=action.source_id, exc_info=exc)
        current = self.ckpt.records.get(key, rec)
        await self.ckpt.commit(replace(current, status=ItemStatus.FAILED, last_error=reason))
        log.error("load.failed", source_id=action.source_id, path=action.path, error=reason)
        return Outcome("asset", action.source_id, action.path, action.op, ItemStatus.FAILED, reason,
                       gone=action.asset is None)

    async def _dispatch(self, action: AssetAction, rec: ItemRecord,
                        prepared: Prepared | None = None) -> Outcome:
        op = action.op
        if action.adopt_from is not None:
            return await self._adopt_if_equal(action, rec)
        if op is Op.SKIP and action.retire:
            # its target asset passed to another source asset: the row names it no more
            await self.ckpt.commit(replace(rec, status=ItemStatus.SKIPPED, intent=None,
                                           target_id=None, target_url=None,
                                           last_error=action.reason))
            return self._outcome(action, ItemStatus.SKIPPED, action.reason, rec)
        if op is Op.SKIP and (note := ledger_note(action, rec)) is not None:
            # an excluded asset's copy stays; its row remembers why (prune keeps it), and
            # the note goes once the asset is included again
            await self.ckpt.commit(replace(rec, last_error=note or None))
            return self._outcome(action, ItemStatus.SKIPPED, action.reason, rec)
        if settled(action, rec):
            # nothing to do (a drift conflict: the ledger keeps what we wrote, so the drift
            # stays seen)
            return self.settled_outcome(action, rec)
        if op is Op.SKIP:
            assert action.target_id  # noqa: S101 - not settled: a row to bring up to date
            return await self._done(action, rec, TargetRef(action.target_id,
                                                           action.target_url), 0)
        if op in (Op.UNSUPPORTED, Op.CONFLICT):
            await self.ckpt.post(replace(rec, status=ItemStatus.SKIPPED, last_error=action.reason,
                                         source_hash=rec.source_hash, path=action.path))
            return self._outcome(action, ItemStatus.SKIPPED, action.reason, rec)
        if _overwrites(action) and (op is not Op.REPLACE or action.move_from is not None):
            # read the target asset right before the write (a replace of one that is not
            # moved first: once its file is staged, in _upload)
            conflict = await self._edited_in_target(action, rec)
            if conflict is not None:
                return conflict
        if op is Op.DELETE:
            assert isinstance(self.target, SupportsDelete)  # noqa: S101 - the plan checked
            assert action.target_id  # noqa: S101
            await self.ckpt.commit(replace(rec, status=ItemStatus.IN_FLIGHT, intent="delete"))
            async with self._gate.writing():
                await self.target.delete(action.target_id)
            await self.ckpt.commit(replace(rec, status=ItemStatus.SKIPPED, intent=None,
                                           target_id=None, target_url=None,
                                           last_error=PRUNED_NOTE))
            return self._outcome(action, ItemStatus.DONE, "deleted", rec)
        if action.move_from is not None and op in (Op.UPDATE, Op.REPLACE):
            await self._move(action)
        if op is Op.UPDATE:
            assert action.target_id  # noqa: S101
            if action.meta_changed and isinstance(self.target, SupportsProvenance):
                # the whole record: an asset adopted after a kill may have none yet
                await self.target.update_metadata_from(action.target_id, self._sent_meta(action),
                                                       action.source_id)
            elif action.meta_changed:
                assert isinstance(self.target, SupportsUpdateMetadata)  # noqa: S101
                await self.target.update_metadata(action.target_id, self._sent_meta(action))
            return await self._done(action, rec, TargetRef(action.target_id, action.target_url), 0)
        return await self._upload(action, rec, prepared=prepared)

    async def _edited_in_target(self, action: AssetAction, rec: ItemRecord, *,
                                landed: StagedFile | None = None) -> Outcome | None:
        """Whether the target asset ``action`` is about to delete, replace or overwrite the
        metadata of was edited there since assetferry wrote it: read now, one direct read
        (:class:`SupportsReadAsset`), compared with the ledger's marker of our write
        (:func:`pipeline.plan.target_drift`), as the plan compared the listing. The plan's
        check may be minutes old when a long run reaches the item.

        ``None``: write (no edit seen; or ``on_conflict = "source-wins"``, a target that
        cannot read one asset, a row with no marker, an asset gone since: no read needed or
        possible). An edit under ``"skip"``: a drift CONFLICT outcome, the ledger row left
        as it was before this item (so the drift stays seen). Raises :class:`DriftError`
        under ``"fail"``, and what the read raises (the item fails, nothing written).
        ``landed``: a resumed replace's staged new file (the interrupted try may have sent it:
        a target asset holding it is our write, not an edit); an action reconciling without
        it reads nothing.
        """
        if (self.on_conflict == "source-wins" or not action.target_id
                or (action.reconcile and landed is None)
                or not isinstance(self.target, SupportsReadAsset)):
            return None
        marker = self._marker_of(action, rec)
        if not marker:
            return None
        current = await self.target.read_asset(action.target_id)
        drifted = None if current is None else target_drift(marker, current)
        if drifted is None or (landed is not None and current is not None
                               and _holds(current, landed)):
            return None
        if self.ckpt.records.get(("asset", action.source_id), rec) != rec:
            # its intent (a replace's) must not outlive it; the row is as our last write
            # left it, so it keeps that run's id (this run wrote nothing of it)
            self.ckpt.restore([rec])
        what = (f"changed in the target since assetferry wrote it ({drifted}; seen right "
                f"before the {_WRITES[action.op]}, after the plan)")
        log.warning("load.drift", source_id=action.source_id, target_id=action.target_id,
                    op=action.op.value, drift=drifted)
        if self.on_conflict == "fail":
            raise DriftError(
                f"{action.path}: {what}; the run stopped ([run] on_conflict = \"fail\"): "
                f"{FAIL_HINT}")
        delete = action.op is Op.DELETE
        reason = (f"gone from the source, but {what}: not deleted " if delete
                  else f"{what}: left as it is ") + conflict_hint(self.on_conflict,
                                                                   delete=delete)
        return Outcome("asset", action.source_id, action.path, Op.CONFLICT, ItemStatus.SKIPPED,
                       reason, action.target_id, action.target_url, gone=action.asset is None)

    def _marker_of(self, action: AssetAction, rec: ItemRecord) -> str | None:
        """The ledger's marker of our last write of ``action``'s target asset: its own row's,
        or, for an asset taking over a gone source asset's copy, the gone one's row's."""
        if rec.status in (ItemStatus.DONE, ItemStatus.IN_FLIGHT) \
                and rec.target_id == action.target_id:  # in flight: our last write's marker
            return rec.target_marker
        if self._owners is None:  # once, and only for a takeover
            self._owners = {r.target_id: r for (kind, _), r in self.ckpt.records.items()
                            if kind == "asset" and r.target_id
                            and r.status is ItemStatus.DONE}
        owner = self._owners.get(action.target_id or "")
        return owner.target_marker if owner is not None else None

    async def _move(self, action: AssetAction) -> None:
        """Move the target asset into the action's target folder (the source asset moved)."""
        assert isinstance(self.target, SupportsMove)  # noqa: S101 - the plan checked
        assert action.target_id  # noqa: S101
        assert action.target_folder is not None  # noqa: S101
        folder_id = self.folder_ids.get(action.target_folder)
        if folder_id is None:
            raise ItemError(f"its target folder {'/'.join(action.target_folder)!r} was not "
                            "created, so it cannot be moved there")
        async with self._gate.writing():
            await self.target.move(action.target_id, folder_id or None)
        log.info("load.moved", source_id=action.source_id, target_id=action.target_id,
                 to="/".join(action.target_folder))

    async def _adopt_if_equal(self, action: AssetAction, rec: ItemRecord) -> Outcome:
        """Adopt ``action.adopt_from`` only when its bytes equal the source's (issue 6 §1(a)).

        Stages the source file (hashing it) and streams the target's copy through the
        target's own ``open_asset``, hashing it (SHA-256). Equal: adopted, 0 bytes sent.
        Different: a REPLACE goes on with the staged file; a SKIP fails with a conflict and
        the target file is left as it is. Raises ItemError for the conflict.
        """
        assert action.asset is not None  # noqa: S101
        assert action.adopt_from is not None  # noqa: S101
        assert action.target_id  # noqa: S101
        staged = await self._stage(action.asset)
        try:
            mine = staged.sha256 or await file_work(staged.size, _sha256_of, staged.path)
            if await self._target_sha256(action.adopt_from) == mine:
                log.info("load.adopted", source_id=action.source_id, target_id=action.target_id)
                adopted = replace(action, op=Op.SKIP,
                                  reason="already in the target (same folder, name and bytes): "
                                         "adopted")
                return await self._done(adopted, rec,
                                        TargetRef(action.target_id, action.target_url), 0)
            if action.op is Op.REPLACE:
                return await self._upload(action, rec, staged)
        finally:
            discard(staged)
        raise ItemError(
            f"a different file with the same name and size is in the target "
            f"({action.filename!r}, other bytes): not adopted, left as it is; rename or remove "
            "one of them, then run again")

    async def _target_sha256(self, asset: Asset) -> str:
        """SHA-256 (hex) of the target's copy of an asset, streamed, never stored."""
        return (await stream_sha256(self.target, asset))[0]

    def _intent(self, action: AssetAction, rec: ItemRecord) -> ItemRecord:
        """The IN_FLIGHT record written before the upload of ``action`` (``rec``: its ledger
        row before it); a resumed upload keeps its journal."""
        assert action.asset is not None  # noqa: S101
        resuming = rec.status is ItemStatus.IN_FLIGHT or action.reconcile
        return replace(rec, status=ItemStatus.IN_FLIGHT, intent=action.op.value,
                       attempts=rec.attempts + 1, path=action.path,
                       source_url=action.asset.url, last_error=None,
                       journal=rec.journal if resuming else {})

    async def _upload(self, action: AssetAction, rec: ItemRecord,
                      staged: StagedFile | None = None, *,
                      prepared: Prepared | None = None) -> Outcome:
        assert action.asset is not None  # noqa: S101
        assert action.target_folder is not None  # noqa: S101
        folder_id = self.folder_ids.get(action.target_folder)
        if folder_id is None:
            raise ItemError(f"its target folder {'/'.join(action.target_folder)!r} was not created")
        resuming = rec.status is ItemStatus.IN_FLIGHT or action.reconcile
        if prepared is not None:
            intent = prepared.intent  # committed by the feeder with the next uploads' intents
        else:
            intent = self._intent(action, rec)
            await self.ckpt.commit(intent)
        request = UploadRequest(action.source_id, action.filename, folder_id or None,
                                action.target_folder, action.asset.content_type,
                                self._sent_meta(action))
        staged = staged or await self._stage(action.asset)
        try:
            if resuming and action.op is Op.CREATE and not intent.journal:
                found = await self._find(request, staged)
                if found is not None:
                    log.info("load.reconciled", source_id=action.source_id,
                             target_id=found.target_id)
                    return await self._done(action, rec, found, 0, written=staged.size)
            if action.op is Op.REPLACE and action.move_from is None:
                # resumed: checked too (our new file may have landed before the kill)
                conflict = await self._edited_in_target(
                    action, rec, landed=staged if resuming else None)
                if conflict is not None:
                    return conflict
            crash_point("upload.before")
            ref = await self._send(action, request, staged)
            crash_point("upload.after")
            return await self._done(action, rec, ref, staged.size, written=staged.size)
        finally:
            discard(staged)

    async def _stage(self, asset: Asset) -> StagedFile:
        for attempt in range(1, UPLOAD_TRIES + 1):
            try:
                return await stage(self.source, asset, self.tmpdir, self.digests,
                                   in_place=self._in_place)
            except RetryableError:
                if attempt == UPLOAD_TRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, action: AssetAction, request: UploadRequest,
                    staged: StagedFile) -> TargetRef:
        key = ("asset", action.source_id)
        for attempt in range(1, UPLOAD_TRIES + 1):
            journal = RecordJournal(self.ckpt, key)
            try:
                async with self._gate.writing():
                    if action.op is Op.REPLACE:
                        assert isinstance(self.target, SupportsReplace)  # noqa: S101
                        assert action.target_id  # noqa: S101
                        return await self.target.replace(action.target_id, request, staged,
                                                         journal)
                    return await self.target.upload(request, staged, journal)
            except AmbiguousError as exc:
                log.warning("load.ambiguous", source_id=action.source_id, error=str(exc))
                # a multi-step upload that journaled its steps resumes from them (finding the
                # asset could skip a step still owed, such as its metadata); a one-step
                # upload is looked for before it is sent again
                if action.op is Op.CREATE and not self.ckpt.records[key].journal:
                    found = await self._find(request, staged)
                    if found is not None:
                        return found
                if attempt == UPLOAD_TRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find(self, request: UploadRequest, staged: StagedFile) -> TargetRef | None:
        if not isinstance(self.target, SupportsFindAsset):
            return None
        # not raced by our own uploads: a search that lists the whole library would see
        # its total change and could not be trusted (pipeline.search_gate)
        async with self._gate.searching():
            return await self.target.find_asset(request.folder_id, request.filename,
                                                staged.size)

    async def _publish(self, action: AssetAction, rec: ItemRecord, ref: TargetRef) -> None:
        """Publish the asset where the plan says, after noting in its ledger row that the
        publish is owed (a failed or interrupted publish is retried by the next run without
        uploading again: :data:`pipeline.plan.PUBLISH_OWED`). Raises what the target's
        ``publish`` raises (an ItemError fails the item)."""
        assert action.publish is not None  # noqa: S101
        assert isinstance(self.target, SupportsPublish)  # noqa: S101
        current = replace(self.ckpt.records.get(("asset", action.source_id), rec),
                          route=self.route)
        await self.ckpt.commit(replace(current, journal={
            **current.journal, PUBLISH_OWED: ref.target_id, PUBLISH_HASH: action.source_hash}))
        crash_point("publish.before")
        await self.target.publish(ref.target_id, action.publish)

    async def _done(self, action: AssetAction, rec: ItemRecord, ref: TargetRef,
                    size: int, *, written: int | None = None) -> Outcome:
        """Record the item done; ``size``: bytes sent, ``written``: the size of the file the
        target now holds from us (``None``: no file was written, the listed size stands)."""
        # a metadata update leaves a file whose version is the file's (a local target) as
        # it was: its listed version still stands
        untouched = action.op is Op.SKIP or (
            action.op is Op.UPDATE and action.move_from is None
            and (not action.meta_changed or self._version_is_file))
        marker = write_marker(written if written is not None else action.target_size,
                              ref.version or (action.target_version if untouched else None),
                              datetime.now(UTC), self._meta_mark(action, rec, ref))
        if action.publish is not None and isinstance(self.target, SupportsPublish):
            await self._publish(action, rec, ref)
        done = replace(self.ckpt.records.get(("asset", action.source_id), rec),
                       route=self.route, status=ItemStatus.DONE, intent=None, journal={},
                       target_id=ref.target_id, target_url=ref.url, last_error=None,
                       source_hash=action.source_hash, path=action.path,
                       source_url=action.asset.url if action.asset else rec.source_url,
                       target_path="/".join((*(action.target_folder or ()), action.filename)),
                       target_marker=marker)
        # not awaited: the loader goes on while the writer batches this with the next intents
        # (group commit). Lost in a crash, the intent left IN_FLIGHT is reconciled on resume
        # (the journal, or find_asset), as after a kill between upload and this record.
        await self.ckpt.post(done)
        crash_point("asset.done")
        log.info("load.done", source_id=action.source_id, op=action.op.value,
                 target_id=ref.target_id, bytes=size)
        return Outcome("asset", action.source_id, action.path, action.op, ItemStatus.DONE,
                       action.reason, ref.target_id, ref.url, size, gone=action.asset is None,
                       adopted=action.adopted)

    def _meta_mark(self, action: AssetAction, rec: ItemRecord, ref: TargetRef) -> str | None:
        """:func:`pipeline.plan.written_meta` of what the target holds from us once
        ``action`` is done, for a target that lists what it wrote (else ``None``): the
        metadata just written, or, when none was, the last write's (same target asset)."""
        if not self._lists_written_meta:
            return None
        if action.op in (Op.CREATE, Op.REPLACE) or (
                action.op is Op.UPDATE and action.meta_changed and not action.publish_only):
            return written_meta(self._sent_meta(action))
        return marker_meta(rec.target_marker) if rec.target_id == ref.target_id else None

    def _sent_meta(self, action: AssetAction) -> AssetMeta:
        """The metadata ``action`` writes: a create sends the mapped metadata (the target
        gives the rest its defaults); an update or a replace, which restores the source's
        state over the target asset, sends every field the target has, those the source
        leaves empty with the value a create gives them (:func:`mappings.fields.as_created`),
        so no edit made in the target survives it."""
        if action.op is Op.CREATE:
            return action.meta
        return as_created(action.meta, self.target.limits, action.filename)

    def settled_outcome(self, action: AssetAction, rec: ItemRecord | None) -> Outcome:
        """The outcome of an action :func:`settled` by the plan: skipped, for its reason."""
        return Outcome("asset", action.source_id, action.path, action.op, ItemStatus.SKIPPED,
                       action.reason, rec.target_id if rec is not None else None,
                       rec.target_url if rec is not None else None,
                       excluded=action.excluded_by is not None,
                       excluded_by=action.excluded_by, gone=action.asset is None)

    def _outcome(self, action: AssetAction, status: ItemStatus, reason: str,
                 rec: ItemRecord) -> Outcome:
        return Outcome("asset", action.source_id, action.path, action.op, status, reason,
                       rec.target_id, rec.target_url,
                       excluded=action.excluded_by is not None,
                       excluded_by=action.excluded_by,
                       gone=action.asset is None)


def _holds(current: Asset, staged: StagedFile) -> bool:
    """Whether the target asset ``current`` may hold the ``staged`` file (a resumed
    replace's new file, sent before the kill): its size, and its checksum where the target
    lists one we computed (:func:`pipeline.plan.replace_landed`, for the staged bytes)."""
    if current.size != staged.size:
        return False
    for kind, mine in (("sha256", staged.sha256), ("md5", staged.md5)):
        theirs = current.checksums.get(kind)
        if mine and theirs:
            return mine.lower() == theirs.lower()
    return True


_WRITES = {Op.DELETE: "deletion", Op.REPLACE: "replacement of its file",
           Op.UPDATE: "update of its metadata"}


def _overwrites(action: AssetAction) -> bool:
    """Whether ``action`` deletes or writes over a target asset that is already there (a
    delete, a replace, a metadata update; not a create, a move alone or a publish)."""
    return action.op in (Op.DELETE, Op.REPLACE) or (
        action.op is Op.UPDATE and action.meta_changed and not action.publish_only)


_Work = tuple[AssetAction, Prepared | None]

INTENTS_AHEAD = 8
"""Per loader, at most this many uploads wait with their intent committed (the look-ahead of
the group commit). The feeder tops the queue up when half of it is taken, in one commit, so
a commit is written every ``4 x concurrency`` uploads or so and its latency (an fsync) is
hidden behind the uploads still queued; a kill leaves at most ``8 x concurrency`` intents of
uploads that never started, each looked up once by the next run."""


class _Handover:
    """The work handed from the feeder to the loaders: at most ``cap`` items waiting (a
    non-upload item may exceed it by one). A plain queue and two events: taking work that
    is there, or handing work over, costs no task switch (issue 12: a condition variable
    woke the feeder at every take)."""

    def __init__(self, cap: int) -> None:
        self._items: deque[_Work] = deque()
        self._cap = cap
        self._closed = False
        self._low = -1
        """The feeder waits until at most this many items wait (-1: it is not waiting)."""
        self._arrived = anyio.Event()
        """Set when work is put or the handover closes; renewed once seen set."""
        self._taken = anyio.Event()
        """Set when a take brings the queue down to ``_low``."""
        self.committing: list[_Work] = []
        """The feeder's next uploads while their intents are committed (not yet put)."""

    async def room(self, low: int) -> int:
        """Wait until at most ``low`` items wait; the free slots then."""
        while len(self._items) > low:
            self._low = low
            self._taken = anyio.Event()
            await self._taken.wait()
        self._low = -1
        return self._cap - len(self._items)

    def put(self, work: Sequence[_Work]) -> None:
        self._items.extend(work)
        self._arrived.set()

    def close(self) -> None:
        self._closed = True
        self._arrived.set()

    def drain(self) -> list[_Work]:
        """The work never taken (waiting, or its intents being committed), removed."""
        work = [*self._items, *self.committing]
        self._items.clear()
        self.committing = []
        return work

    async def take(self) -> _Work | None:
        """The next item, waiting for one; ``None`` once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            if self._arrived.is_set():
                self._arrived = anyio.Event()
            await self._arrived.wait()
        work = self._items.popleft()
        if len(self._items) <= self._low:
            self._taken.set()
        return work


_frozen = 0
"""How many :func:`steady_heap` blocks are open in this process (runs of one worker may
overlap)."""


@contextmanager
def steady_heap() -> Iterator[None]:
    """Keep the cyclic garbage collector off the objects that exist when the block starts
    (``gc.freeze``) until the last such block of the process ends (``gc.unfreeze``).

    A run's transfer starts with the imported modules, the listings, the plan and the
    ledger rows in memory (hundreds of thousands of objects at a few thousand assets), none
    of which becomes garbage during it; every full collection the transfer triggers walked
    them all for nothing: 0.14-0.33 s per collection, one about every 500 uploads, on a 500
    file run whose own CPU is about 2 s (issue 12: per-asset CPU). Objects made during the
    block are collected as usual; an object frozen that becomes cyclic garbage meanwhile
    waits for the block's end (reference counting frees the rest at once). A block opened
    while another is open freezes nothing more, so overlapping runs (a Temporal worker's
    activities) never hold back the garbage made between them.
    """
    global _frozen
    if _frozen == 0:
        gc.freeze()
    _frozen += 1
    try:
        yield
    finally:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()


async def run_assets(loader: AssetLoader, actions: Sequence[AssetAction], *, concurrency: int,
                     progress: Progress | None = None) -> list[Outcome]:
    """Carry out ``actions`` on ``concurrency`` loaders, in the plan's order.

    The feeder commits the intents of the uploads about to start in one group commit
    (:meth:`AssetLoader.prepare`) before any of them is handed over, so every upload starts
    with its intent durable and the loaders do not wait for the state DB: it keeps up to
    :data:`INTENTS_AHEAD` uploads per loader queued, topping up when half are taken."""
    cap = max(2, INTENTS_AHEAD * concurrency)
    handover = _Handover(cap)
    outcomes: list[Outcome] = []
    # what the plan alone settled is reported first: a run stopped (Ctrl-C) at any item
    # still counts every unchanged asset (their outcomes cannot depend on how far it got)
    records = loader.ckpt.records
    work: list[AssetAction] = []
    for action in actions:
        rec = records.get(("asset", action.source_id))
        if settled(action, rec):
            outcome = loader.settled_outcome(action, rec)
            if progress is not None:
                progress(outcome)
            outcomes.append(outcome)
        else:
            work.append(action)

    async def feed() -> None:
        todo = iter(work)
        try:
            while True:
                free = await handover.room(cap // 2)
                chunk: list[_Work] = []
                other: _Work | None = None
                for action in todo:
                    prepared = loader.prepare(action)
                    if prepared is None:
                        other = (action, None)  # after the uploads before it: the plan's order
                        break
                    chunk.append((action, prepared))
                    if len(chunk) >= free:
                        break
                if chunk:
                    handover.committing = chunk
                    await loader.ckpt.commit_many(
                        [p.intent for _, p in chunk if p is not None])
                    crash_point("intents.committed")
                    handover.put(chunk)
                    handover.committing = []
                if other is not None:
                    handover.put([other])
                elif not chunk:
                    return
        finally:
            handover.close()

    async def load() -> None:
        while (work := await handover.take()) is not None:
            action, prepared = work
            outcome = await loader.run(action, prepared)
            # reported at once, with no await since its ledger record was posted: an
            # interruption cannot fall between the two (the summary and the ledger agree)
            if progress is not None:
                progress(outcome)
            outcomes.append(outcome)

    try:
        with steady_heap():
            async with anyio.create_task_group() as tg:
                tg.start_soon(feed)
                for _ in range(concurrency):
                    tg.start_soon(load)
    except BaseException:
        # stopped (a fatal error, Ctrl-C): the uploads queued and never started had their
        # intents committed ahead; their rows go back as they were (not "in flight")
        loader.ckpt.restore([p.before for _, p in handover.drain() if p is not None])
        raise
    return outcomes
