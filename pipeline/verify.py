"""``assetferry verify``: is every migrated asset really in the target, and the same?

Read-only on both sides and on the state DB. Both sides are listed (the same trusted listings
a plan uses) and compared through the job's ledger, the record of which source asset became
which target asset:

- **mapped** assets (ledger rows ``done`` with a target id, and rows whose replace, update
  or delete of an asset we already mapped was cut off: :func:`state.records.maps_target`):
  present in the target; size, checksum (when both sides give a digest of one algorithm),
  content type and image dimensions equal where both sides state them. With ``deep``, both
  files are downloaded through each connector's ``open_asset`` (streamed, hashed with
  SHA-256 chunk by chunk, never stored) and their bytes compared.
- **missing**: a source asset (not excluded by the source) that has no target asset: never
  migrated, failed, interrupted, or its target asset was deleted in the target.
- **extra**: a target asset this job did not write, in a folder the ledger maps (a folder this
  job created or adopted), and a target asset whose source asset is gone (``sync --prune``
  removes those). The target's root and folders the job does not map are not searched for
  extras: other content may live there legitimately, and nothing tells us it should not.
- **different**: both present and a compared property differs (each difference named).
- **error**: an item that could not be checked (a download that failed after its retries);
  the others are still checked.
- **not migrated**: source assets the plan declared ``unsupported`` or ``conflict`` (the
  ledger keeps their reason). Listed, not counted as differences: the plan and the run report
  said so before anything was written.

Exit code (see :meth:`VerifyReport.exit_code`): 0 clean, 1 any missing / extra / different /
error item; a listing or credential failure raises FatalError (exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from connectors.base import Asset, Source
from connectors.errors import FatalError
from pipeline.config import JobConfig
from pipeline.run import Listing, Transports, list_sides, open_pair, unwrap_groups
from pipeline.stages import item_reason, stream_sha256
from pipeline.text import one_line
from state.records import maps_target
from state.store import PRUNED_NOTE, ItemRecord, ItemStatus, StateStore

log = structlog.get_logger(__name__)

MISSING, EXTRA, DIFFERENT, ERROR, NOT_MIGRATED = (
    "missing", "extra", "different", "error", "not_migrated")
PROBLEMS = (MISSING, EXTRA, DIFFERENT, ERROR)
"""Statuses that make ``verify`` exit 1."""

GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Content types that say nothing (a store that does not know): never a difference."""

TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
"""Spellings of one media type (RFC 2046 names on the right)."""


@dataclass(frozen=True, slots=True)
class VerifyItem:
    """One item that is not clean (clean items are only counted)."""

    status: str
    path: str
    problems: tuple[str, ...]
    source_id: str | None = None
    target_id: str | None = None
    target_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "path": self.path, "problems": list(self.problems),
                "source_id": self.source_id, "target_id": self.target_id,
                "target_url": self.target_url}


@dataclass
class VerifyReport:
    route: str
    deep: bool
    checked: int = 0
    """Mapped assets compared (present on both sides)."""
    ok: int = 0
    checksummed: int = 0
    """Of the ``checked``, those whose listings both give a checksum of one algorithm (the
    rest were compared by size, type and dimensions only, unless ``deep``)."""
    items: list[VerifyItem] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    def exit_code(self) -> int:
        """0 when nothing is missing, extra, different or unchecked; else 1."""
        return 1 if any(i.status in PROBLEMS for i in self.items) else 0

    def summary(self) -> dict[str, Any]:
        return {"route": self.route, "deep": self.deep, "checked": self.checked, "ok": self.ok,
                "checksums_compared": self.checksummed,
                **{s: self.count(s) for s in (*PROBLEMS, NOT_MIGRATED)},
                "clean": self.exit_code() == 0}

    def to_json(self) -> str:
        order = {s: i for i, s in enumerate((*PROBLEMS, NOT_MIGRATED))}
        items = sorted(self.items, key=lambda i: (order[i.status], i.path))
        return json.dumps({"summary": self.summary(), "items": [i.to_dict() for i in items]},
                          indent=2, ensure_ascii=False)

    def checks(self) -> str:
        """What was compared, in words: checksums are named only for the assets whose
        listings both gave one (a listing without any cannot tell a change that keeps the
        size; ``--deep`` compares the bytes)."""
        if self.checksummed == self.checked:
            sums = "checksums, " if self.checked else ""
        elif self.checksummed == 0:
            sums = ("no checksums (neither side lists one of the same kind: a change that keeps "
                    "the size goes unseen), ")
        else:
            sums = (f"checksums for {self.checksummed} of {self.checked} assets (the others: "
                    "sizes only, neither side lists one of the same kind), ")
        if self.deep:
            return f"sizes, {sums}types, dimensions and bytes"
        return f"sizes, {sums}types and dimensions (--deep also compares bytes)"

    def text(self) -> str:
        s = self.summary()
        lines = [f"verify {self.route}", f"compared {self.checks()}",
                 f"{s['checked']} mapped assets checked: {s['ok']} ok, {s[DIFFERENT]} different; "
                 f"{s[MISSING]} missing, {s[EXTRA]} extra, {s[ERROR]} not checked (errors); "
                 f"{s[NOT_MIGRATED]} not migrated by the plan's decision"]
        labels = {MISSING: "MISSING", EXTRA: "EXTRA", DIFFERENT: "DIFFERENT", ERROR: "ERROR",
                  NOT_MIGRATED: "NOT MIGRATED"}
        for status in (*PROBLEMS, NOT_MIGRATED):
            for item in sorted((i for i in self.items if i.status == status),
                               key=lambda i: i.path):
                where = f" -> {item.target_id}" if item.target_id else ""
                lines.append(f"  {labels[status]:<12} {one_line(item.path)}{one_line(where)}: "
                             + "; ".join(one_line(p) for p in item.problems))
        lines.append("clean: source and target agree" if self.exit_code() == 0 else
                     "NOT clean: fix the items above (migrate/sync again, or check the target) "
                     "and run verify again")
        return "\n".join(lines)


def _media_type(value: str | None) -> str:
    base = (value or "").split(";")[0].strip().lower()
    return TYPE_ALIASES.get(base, base)


def common_checksum(source: Asset, target: Asset) -> bool:
    """Whether both listings give a checksum of one algorithm (what :func:`compare_listed`
    can compare beyond the size)."""
    return any(source.checksums.get(algo) and target.checksums.get(algo)
               for algo in source.checksums)


def compare_listed(source: Asset, target: Asset) -> list[str]:
    """The differences a listing shows between a source asset and its target asset.

    Compared only where both sides state a value: size in bytes, each checksum algorithm both
    give (``md5``, ``sha256``...), content type (parameters and case ignored, a generic
    ``application/octet-stream`` never differs), width and height in pixels.
    """
    problems = []
    if source.size is not None and target.size is not None and source.size != target.size:
        problems.append(f"size: source {source.size} bytes, target {target.size} bytes")
    problems.extend(f"{algo}: source {source.checksums[algo]}, target {target.checksums[algo]}"
                    for algo in sorted(set(source.checksums) & set(target.checksums))
                    if source.checksums[algo].lower() != target.checksums[algo].lower())
    src_type, tgt_type = _media_type(source.content_type), _media_type(target.content_type)
    if src_type not in GENERIC_TYPES and tgt_type not in GENERIC_TYPES and src_type != tgt_type:
        problems.append(f"content type: source {src_type}, target {tgt_type}")
    for name in ("width", "height"):
        a, b = getattr(source, name), getattr(target, name)
        if a is not None and b is not None and a != b:
            problems.append(f"{name}: source {a} px, target {b} px")
    return problems


@dataclass(frozen=True, slots=True)
class _Pair:
    record: ItemRecord
    source: Asset
    target: Asset


def _path(rec: ItemRecord | None, asset: Asset | None) -> str:
    if rec is not None and rec.path:
        return rec.path
    if asset is not None:
        return "/".join((*asset.folder_path, asset.filename))
    return ""


def _mapped_folders(records: Mapping[tuple[str, str], ItemRecord]) -> set[str]:
    return {r.target_id for (kind, _), r in records.items()
            if kind == "folder" and r.target_id and maps_target(r)}


def classify(records: Mapping[tuple[str, str], ItemRecord], source: Listing,
             target: Listing) -> tuple[list[_Pair], list[VerifyItem]]:
    """Pair the ledger's mapped assets with both listings; everything that can't be paired is
    a missing, extra or not-migrated item (rules in the module docstring)."""
    sources = {a.source_id: a for a in source.assets}
    targets = {a.source_id: a for a in target.assets if a.skipped is None}
    assets = {sid: r for (kind, sid), r in records.items() if kind == "asset"}
    pairs: list[_Pair] = []
    items: list[VerifyItem] = []
    claimed: set[str] = set()
    for sid, rec in assets.items():
        src = sources.get(sid)
        mapped = maps_target(rec)  # an open replace's row too: its target asset is ours
        tgt = targets.get(rec.target_id or "") if mapped else None
        if tgt is not None:
            claimed.add(tgt.source_id)
        if src is None:
            if tgt is not None:
                items.append(VerifyItem(EXTRA, _path(rec, None), (
                    "gone from the source, still in the target (sync --prune deletes it)",),
                    sid, tgt.source_id, tgt.url or rec.target_url))
            continue
        if src.skipped is not None and not mapped:
            continue
        if tgt is not None:
            pairs.append(_Pair(rec, src, tgt))
        elif mapped:
            items.append(VerifyItem(MISSING, _path(rec, src), (
                f"its target asset {rec.target_id} is not in the target (deleted there?); "
                "run migrate/sync again to send it",), sid, rec.target_id, rec.target_url))
        elif rec.status is ItemStatus.SKIPPED and rec.last_error and rec.last_error != PRUNED_NOTE:
            items.append(VerifyItem(NOT_MIGRATED, _path(rec, src), (rec.last_error,), sid))
        else:
            why = {ItemStatus.FAILED: f"failed: {rec.last_error or 'no reason recorded'}",
                   ItemStatus.IN_FLIGHT: "its upload was interrupted; run migrate again",
                   ItemStatus.PENDING: "not sent yet; run migrate again"}.get(
                       rec.status, "not in the target; run migrate/sync again")
            items.append(VerifyItem(MISSING, _path(rec, src), (why,), sid))
    items.extend(VerifyItem(MISSING, _path(None, src), (
        "not in the ledger: never migrated (new in the source?); run migrate/sync",), sid)
        for sid, src in sources.items() if sid not in assets and src.skipped is None)
    folders = _mapped_folders(records)
    for tid, tgt in targets.items():
        if tid not in claimed and tgt.folder_id is not None and tgt.folder_id in folders:
            items.append(VerifyItem(EXTRA, _path(None, tgt), (
                "in a folder this job writes, but not written by it (no ledger row maps "
                "to it)",), None, tid, tgt.url))
    return pairs, items


async def _compare(pair: _Pair, source: Source, target: Source, deep: bool) -> VerifyItem | None:
    problems = compare_listed(pair.source, pair.target)
    if deep:
        try:
            if pair.source.unreachable:
                raise Undownloadable(pair.source.unreachable)
            src_sha, src_size = await stream_sha256(source, pair.source)
            tgt_sha, tgt_size = await stream_sha256(target, pair.target)
        except FatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - one item's download: reported, the rest go on
            reason = exc.reason if isinstance(exc, Undownloadable) else item_reason(exc)
            log.warning("verify.item_error", source_id=pair.record.source_id, error=reason)
            return VerifyItem(ERROR, _path(pair.record, pair.source),
                              (f"bytes not compared: {reason}", *problems),
                              pair.record.source_id, pair.target.source_id,
                              pair.target.url or pair.record.target_url)
        if src_size != tgt_size:
            problems.append(f"downloaded size: source {src_size} bytes, target {tgt_size} bytes")
        if src_sha != tgt_sha:
            problems.append(f"bytes differ (sha256 source {src_sha[:16]}..., "
                            f"target {tgt_sha[:16]}...)")
    if not problems:
        return None
    return VerifyItem(DIFFERENT, _path(pair.record, pair.source), tuple(problems),
                      pair.record.source_id, pair.target.source_id,
                      pair.target.url or pair.record.target_url)


class Undownloadable(Exception):
    """An item that cannot be downloaded for a known reason (the source says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def compare_pairs(pairs: Sequence[_Pair], source: Source, target: Source, *,
                        deep: bool, concurrency: int) -> list[VerifyItem | None]:
    """Compare every pair, ``concurrency`` at a time (the connectors' ApiClient paces the
    requests); one result per pair, ``None`` for a clean one."""
    results: list[VerifyItem | None] = [None] * len(pairs)
    todo: Iterator[int] = iter(range(len(pairs)))

    async def worker() -> None:
        for i in todo:  # one shared iterator: each index is taken by one worker
            results[i] = await _compare(pairs[i], source, target, deep)

    with unwrap_groups():
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, min(concurrency, len(pairs)))):
                tg.start_soon(worker)
    return results


async def verify_job(job: JobConfig, store: StateStore, *, deep: bool = False,
                     transports: Transports | None = None) -> VerifyReport:
    """List both sides, compare them through the ledger of ``store``; writes nothing.

    Raises FatalError when a side cannot be listed (bad credentials, a listing that fails).
    """
    async with AsyncExitStack() as stack:
        source, target = await open_pair(job, stack, transports)
        route = job.route(source.scope, target.scope)
        records = store.items(route)
        listed_source, listed_target = await list_sides(source, target)
        pairs, items = classify(records, listed_source, listed_target)
        report = VerifyReport(route, deep, checked=len(pairs), checksummed=sum(
            1 for p in pairs if common_checksum(p.source, p.target)))
        results = await compare_pairs(pairs, source, target, deep=deep,
                                      concurrency=job.run.concurrency)
        report.items = items + [r for r in results if r is not None]
        report.ok = sum(1 for r in results if r is None)
    log.info("verify.done", **{k: v for k, v in report.summary().items() if k != "route"})
    return report
