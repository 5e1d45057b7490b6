"""The diff: source listing x target listing x state -> one action per folder and asset.

``plan``, ``migrate`` and ``sync`` all compute their work here, so what ``plan`` reports is
exactly what ``migrate`` does. Nothing in this module performs I/O.

Invariants, checked by :func:`check_plan` before anything runs (design: "Plan invariants"):
each target asset and each target folder is touched by at most one action. Prune never deletes
on the word of a listing alone: a deletion needs a direct read of the source item
(``PlanInput.direct_reads``), and a source asset that reappears under a new id with the same
path takes over the target asset of the gone one (adopted only with equal bytes, else
replaced), whose ledger row is retired.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any

from connectors.base import (
    Asset,
    AssetMeta,
    Capabilities,
    Folder,
    FolderPath,
    Limits,
    Publication,
    PublishRule,
    PublishTargets,
)
from connectors.errors import FatalError
from mappings.fields import (
    EffectiveRules,
    FieldRules,
    MappedMeta,
    filename_changes,
    filename_rules,
    map_meta,
    resolve_filename_collisions,
    size_problem,
    template_values,
    type_problem,
)
from mappings.filters import Exclusion, FilterRules, check
from mappings.folders import (
    CollapsedPath,
    FolderOverflow,
    FolderRules,
    NameRules,
    TreeMap,
    carry_path,
    distinct_folder_paths,
    path_bytes,
    plan_tree,
)
from mappings.locales import DEFAULT_RULES, FittedLocales, LocaleRules, fit_locales
from state.records import (
    EXCLUDED_NOTE_PREFIX,
    RETIRED_NOTE_END,
    ItemRecord,
    ItemStatus,
    maps_target,
)


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    SKIP = "skip"
    CONFLICT = "conflict"
    UNSUPPORTED = "unsupported"
    DELETE = "delete"


WRITE_OPS = frozenset({Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE})


@dataclass(frozen=True, slots=True)
class FolderAction:
    op: Op
    target_path: FolderPath
    source_ids: tuple[str, ...]
    reason: str
    warnings: tuple[str, ...] = ()
    target_id: str | None = None

    @property
    def path(self) -> str:
        return "/".join(self.target_path)


@dataclass(slots=True, unsafe_hash=True)
class AssetAction:
    """One asset's action. Never changed once made (make a changed copy with
    ``dataclasses.replace``), but not ``frozen``: a frozen dataclass sets each of these 24
    fields through ``object.__setattr__``, which made building the actions of a plan of
    100,000 assets take about five times as long (issue 12); hashed by value as before."""

    op: Op
    source_id: str
    path: str
    """The source path, ``folder/sub/name.ext``."""
    reason: str
    warnings: tuple[str, ...] = ()
    asset: Asset | None = None
    target_folder: FolderPath | None = None
    filename: str = ""
    meta: AssetMeta = field(default_factory=AssetMeta)
    target_id: str | None = None
    target_url: str | None = None
    reconcile: bool = False
    """An earlier attempt may have created the asset: look for it before uploading."""
    record: ItemRecord | None = None
    source_hash: str = ""
    dropped: tuple[str, ...] = ()
    """Canonical metadata fields with a value the target has no place for."""
    adopted: bool = False
    """An asset an interrupted run had created, found in the target and taken as ours (its
    metadata set again, an UPDATE): the run counts it as adopted, never as updated (it was
    not an edit)."""
    retire: bool = False
    """A gone source asset whose target asset another source asset took over: the ledger row
    is retired (no target id any more), nothing is deleted."""
    adopt_from: Asset | None = None
    """The target asset (as the target lists it) to adopt only once its bytes compare equal to
    the source's: execution reads both and hashes them. Equal: adopted, nothing sent. Else a
    SKIP fails with a conflict and a REPLACE replaces it."""
    drift: bool = False
    """The target asset was edited in the target since we wrote it (a CONFLICT under
    ``on_conflict = "skip"`` or ``"fail"``): its ledger row is left as it is."""
    move_from: FolderPath | None = None
    """Where the target asset is now, when it is to be moved to ``target_folder`` first (the
    source asset moved to another folder and the target can move assets)."""
    meta_changed: bool = True
    """An UPDATE sends the metadata (False: the source asset only moved to another folder)."""
    target_size: int | None = None
    target_version: str | None = None
    """Size and version the target lists for the asset this action updates or adopts (the
    ledger's drift marker when no file is sent)."""
    excluded_by: str | None = None
    """An excluded entry (a SKIP): the rule that left it out, ``"source"`` when the source
    did (:attr:`Asset.skipped`), else the job-file key (``mapping.filters.exclude``)."""
    publish: Publication | None = None
    """Where the target publishes the asset once it is uploaded, replaced, updated or
    adopted (``None``: nowhere)."""
    publish_only: bool = False
    """An UPDATE that only publishes (a publish owed by an earlier run, or new places to
    publish): nothing is uploaded and the metadata is left as it is."""

    @property
    def publish_requests(self) -> int:
        """Paced publish requests this action makes (one per :meth:`Publication.batches`)."""
        if self.publish is None or self.op not in (Op.CREATE, Op.REPLACE, Op.UPDATE):
            return 0
        return len(self.publish.batches())

    @property
    def excluded_note(self) -> str:
        """What the ledger row of an excluded asset migrated earlier remembers (so prune
        keeps its copy); ``""`` for an action that excludes nothing."""
        if self.excluded_by is None or self.asset is None:
            return ""
        why = self.asset.skipped or ""
        return why if why.startswith(EXCLUDED_NOTE_PREFIX) else (
            f"{EXCLUDED_NOTE_PREFIX}the source: {why}")


class PlanInvariantError(FatalError):
    """The plan broke one of its invariants: a bug in assetferry; nothing has run."""


@dataclass(frozen=True, slots=True)
class Plan:
    route: str
    folders: tuple[FolderAction, ...]
    assets: tuple[AssetAction, ...]
    requests_per_second: float | None
    requests_per_upload: int = 1
    held_deletes: int = 0
    """Deletions prune held back (bound exceeded, or not confirmed by a direct read)."""
    prune_note: str | None = None
    """Why deletions were held back, with the numbers, e.g. "3 deletions held back: ..."."""
    to_confirm: tuple[str, ...] = ()
    """Source ids prune would delete once a direct read confirms each is gone."""
    source_requests_per_second: float | None = None
    """The source's documented rate limit (``None``: not paced, e.g. a local folder)."""
    source_listing_requests: int = 0
    """Paced listing requests of the source (pages of folders and of assets, and the reads
    of asset references for ``only_referenced``)."""
    target_listing_requests: int = 0
    """Paced listing requests of the target."""
    source_requests_per_download: int = 0
    """Paced source calls reading one asset's file takes (see ``Limits``)."""
    listing: str = "full"
    """How the source was listed: ``"full"``, or ``"changed since <UTC time>"`` (an
    incremental listing: it says nothing about deletions, so nothing is pruned)."""
    stop: str | None = None
    """Why a run of this plan stops before any write (``None``: it does not): assets edited
    in the target since we wrote them under ``[run] on_conflict = "fail"``
    (:func:`conflict_stop`). ``plan`` says so and exits 2, as the run does."""

    def request_counts(self) -> tuple[int, int]:
        """``(target writes, source reads)``: :attr:`estimated_requests` and
        :attr:`source_read_requests`, told in one pass over the actions (a plan of 100,000
        assets: each figure's own pass was a tenth of a second)."""
        writes = sum(1 for f in self.folders if f.op is Op.CREATE)
        per_upload, transfers = self.requests_per_upload, 0
        create, replace_, update, delete = Op.CREATE, Op.REPLACE, Op.UPDATE, Op.DELETE
        for a in self.assets:
            op = a.op
            if op is create or op is replace_:
                transfers += 1
                if not a.publish_only:
                    writes += per_upload
            elif (op is update or op is delete) and not a.publish_only:
                writes += 1
            if a.publish is not None:
                writes += a.publish_requests
        return writes, self.source_requests_per_download * transfers

    @property
    def estimated_requests(self) -> int:
        """Paced writes to the target (folders, uploads with all their calls, edits, deletes)."""
        return self.request_counts()[0]

    @property
    def source_read_requests(self) -> int:
        """Paced source calls reading the files to send (0 when they come from a CDN)."""
        return self.request_counts()[1]

    @property
    def estimated_source_requests(self) -> int:
        """Paced source requests: its listing pages and the per-asset reads."""
        return self.source_listing_requests + self.source_read_requests

    @property
    def estimated_seconds(self) -> float:
        """Seconds the run's paced requests take at the rate limits, as the run does them:
        both sides listed at once (the slower listing counts), then reads from the source
        and writes to the target at once (the slower side counts). Transfer time is not
        included. 0 when neither side is paced."""
        return self.seconds_at(*self.request_counts())

    def seconds_at(self, writes: int, reads: int) -> float:
        """:attr:`estimated_seconds` for ``writes`` to the target and ``reads`` from the
        source (:meth:`request_counts`), so a caller that has them makes no pass again."""

        def at(requests: int, rate: float | None) -> float:
            return requests / rate if rate else 0.0

        src, dst = self.source_requests_per_second, self.requests_per_second
        listing = max(at(self.source_listing_requests, src),
                      at(self.target_listing_requests, dst))
        work = max(at(reads, src), at(writes, dst))
        return round(listing + work, 1)


def content_hash(asset: Asset) -> str:
    """What changes when the file itself changes (not its metadata).

    A source that tells no exact size (Contento's sizes are rounded display values) cannot
    tell a file change from a metadata edit: its size estimate and ``updated_at`` count as
    the file's marker, so any edit sends the file again rather than missing a new file.
    """
    marker = asset.checksums.get("sha256") or asset.checksums.get("md5") or ""
    raw = f"{asset.size}|{marker}|{asset.url or asset.version or ''}"
    if asset.size is None and asset.size_estimate is not None:
        changed = asset.updated_at.isoformat() if asset.updated_at else ""
        raw += f"|~{asset.size_estimate}|{changed}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def meta_hash(asset: Asset, rules: str = "") -> str:
    """What changes when the asset's metadata, name or folder changes, or the job's field
    rules (``rules``: :attr:`mappings.fields.EffectiveRules.key`, ``""`` for the defaults)."""
    raw = f"{asset.filename}|{'/'.join(asset.folder_path)}|{asset.meta.fingerprint()}"
    if rules:
        raw += f"|rules:{rules}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def source_hash(asset: Asset, rules: str = "") -> str:
    return f"{content_hash(asset)}:{meta_hash(asset, rules)}"


def asset_path(asset: Asset) -> str:
    return "/".join((*asset.folder_path, asset.filename))


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector (if on) while a plan is listed, built and rendered.

    Those steps make several objects per asset, nearly none in a reference cycle, and keep
    them: with 100,000 assets every full collection walks millions of live objects for
    nothing (a sixth of ``plan``'s CPU time at 100,000 assets). Reference counting still
    frees everything dropped; the collector resumes on leaving. Drop the plan inside the
    block: what is made in it and still alive on leaving is in the collector's youngest
    generation, which the first collection after walks whole.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


DRIFT_TOLERANCE = timedelta(minutes=2)
"""How much later than our own write a target's ``updated_at`` may be and still be our write
(clock skew between us and the CMS, and a CMS that stamps the end of its processing): only
used where neither a version nor a size tells drift."""


@dataclass(frozen=True, slots=True)
class PlanInput:
    source_folders: Sequence[Folder]
    source_assets: Sequence[Asset]
    target_folders: Sequence[Folder]
    target_assets: Sequence[Asset]
    records: Mapping[tuple[str, str], ItemRecord]
    limits: Limits
    """The target's."""
    capabilities: Capabilities
    policy: FolderOverflow
    prune: bool = False
    max_deletes: int = 100
    retry_failed_only: bool = False
    direct_reads: Mapping[str, bool | str] | None = None
    locale_rules: LocaleRules = DEFAULT_RULES
    """``[mapping.locales]`` (:mod:`mappings.locales`)."""
    source_limits: Limits | None = None
    """The source's, where it declares them (its rate limit and listing page size feed the
    time estimate); ``None``: not paced."""
    filters: FilterRules = field(default_factory=FilterRules)
    """The job's ``[mapping.filters]``; an asset they exclude is a ``skip`` naming the rule."""
    references: Mapping[str, int | str] | None = None
    """For ``only_referenced``: source id -> entries referencing it, or why unreadable."""
    reference_requests: int = 0
    """Paced source requests the reading of references took (for the estimate)."""
    publish_rule: PublishRule | None = None
    """The target's publishing rule; ``None``: the target does not publish."""
    publish_targets: PublishTargets | None = None
    """The environments and locales the target has (read only when something is to be
    published); a pair naming another is dropped with a warning."""
    source_environments: Mapping[str, str] = field(default_factory=dict)
    """Environment id -> name of the source, for :attr:`Asset.published` (ids not in it
    are taken as names)."""
    field_rules: EffectiveRules | None = None
    """``[mapping.fields]`` / ``[mapping.tags]`` resolved against the target's declared
    fields; ``None``: the default rules."""
    """Source ids missing from the listing, read directly: True still there, False gone, a
    string when the read failed (why). ``None``: not read yet (prune then deletes nothing)."""
    folder_rules: FolderRules = field(default_factory=FolderRules)
    """The job's ``[mapping]`` folder rules (new root, renames, where collapsed paths go)."""
    on_conflict: str = "skip"
    """``[run] on_conflict``: what an asset edited in the target since we wrote it gets."""
    changed_since: datetime | None = None
    """Set when ``source_assets`` is an incremental listing (what changed since then): a
    ledger row whose asset is not listed is unchanged, not gone, and nothing is pruned."""
    drift_tolerance: timedelta = field(default_factory=lambda: DRIFT_TOLERANCE)
    """See :data:`DRIFT_TOLERANCE`."""


def write_marker(size: int | None, version: str | None, at: datetime,
                 meta: str | None = None) -> str:
    """The ledger's record of what the target held right after our write (JSON); ``meta``:
    :func:`written_meta` of the metadata it holds from us, for a target that lists what it
    wrote (:attr:`Limits.lists_written_meta`), else ``None`` (not recorded)."""
    data: dict[str, object] = {"size": size, "version": version, "at": at.isoformat()}
    if meta is not None:
        data["meta"] = meta
    return json.dumps(data, sort_keys=True)


def written_meta(meta: AssetMeta) -> str:
    """The fingerprint of ``meta`` as a target that lists what it wrote keeps it: its
    canonical fields (target-native ``extra`` fields are not listed back)."""
    return (replace(meta, extra={}) if meta.extra else meta).fingerprint()


def marker_meta(marker: str | None) -> str | None:
    """The metadata fingerprint a marker of :func:`write_marker` holds, if any."""
    if not marker or '"meta"' not in marker:
        return None
    try:
        value = json.loads(marker).get("meta")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


META_EDITED = "its metadata was edited there"
"""The drift of a target that lists what it wrote (a local folder's manifest) whose file is
as we wrote it but whose metadata is not: ``source-wins`` sends the metadata, not the file."""


_META_KEY = '"meta": "'


def _meta_drift(marker: str, current: Asset) -> str | None:
    """:data:`META_EDITED` when ``marker`` (whose version is the listed one) holds a
    metadata fingerprint other than the listed metadata's, else ``None``; read from the
    marker's text (a 16-hex string) without parsing it."""
    at = marker.find(_META_KEY)
    if at < 0:
        return None
    start = at + len(_META_KEY)
    recorded = marker[start:marker.find('"', start)]
    return None if written_meta(current.meta) == recorded else META_EDITED


def target_drift(marker: str | None, current: Asset,
                 tolerance: timedelta = DRIFT_TOLERANCE) -> str | None:
    """How the target asset ``current`` (as the target lists it now) differs from what we
    wrote (``marker``, from :func:`write_marker`), or ``None`` when it is what we wrote.

    Exact where the write's answer named a version and the listing names one (a listed
    version that extends the recorded one, ``a:b`` then ``a:b:c:d``, is the recorded one
    told in more detail); else a size
    differing from the one we wrote; else an ``updated_at`` later than our write by more
    than ``tolerance``. A row written before markers existed (``None``) shows no drift.
    """
    if not marker:
        return None
    if current.version is not None:
        # the marker's last member is the version the target lists (write_marker sorts its
        # keys): what we wrote, told without parsing it (plan reads 100,000 markers); any
        # other marker is parsed below
        tail = f"\"version\": {encode_basestring_ascii(current.version)}}}"
        if marker.endswith(tail) and marker[-len(tail) - 1:-len(tail)] in (" ", "{", ","):
            return _meta_drift(marker, current)
    try:
        data = json.loads(marker)
        at = datetime.fromisoformat(data["at"]) if data.get("at") else None
    except (ValueError, TypeError, KeyError):
        return None
    version, size = data.get("version"), data.get("size")
    if version is not None and current.version is not None:
        # a marker written before the connector's version told more (a local target's
        # "size:mtime" before ":inode:ctime" was added) is compared on the parts it has
        if str(version) != current.version \
                and not current.version.startswith(f"{version}:"):
            return _version_drift(str(version), current, size)
    elif size is not None and current.size is not None and size != current.size:
        return f"its file is {current.size:,} bytes, we wrote {size:,}"
    elif (at is not None and current.updated_at is not None
          and current.updated_at > at + tolerance):
        return (f"updated there at {current.updated_at.isoformat(timespec='seconds')}, after "
                f"our write at {at.isoformat(timespec='seconds')}")
    meta = data.get("meta")
    if meta is not None and written_meta(current.meta) != meta:
        return META_EDITED
    return None


def _version_drift(wrote: str, current: Asset, size: object) -> str:
    """A changed version in a user's terms: the versions themselves only when they are
    numbers (Contentstack's ``_version``); else what the listing says of the asset now (its
    size, when it was updated), never a connector's version text (a local file's
    ``size:mtime:inode:ctime``, a JSON list)."""
    if wrote.isdigit() and current.version is not None and current.version.isdigit():
        return f"its version is {current.version}, we wrote version {wrote}"
    now = []
    if current.size is not None:
        now.append(f"{current.size:,} bytes" + (f", we wrote {size:,}" if isinstance(size, int)
                                                 and size != current.size else ""))
    if current.updated_at is not None:
        now.append(f"updated there at {current.updated_at.isoformat(timespec='seconds')}")
    return f"it is now {'; '.join(now)}" if now else "its version is not the one we wrote"


def conflict_hint(on_conflict: str, *, delete: bool = False) -> str:
    """The key and what to do, for an asset edited in the target and held back: one wording
    for the plan and the run (``([run] on_conflict = "skip"; set [run] on_conflict =
    "source-wins" for a run to write the source's version over it)``; ``delete``: a prune's
    deletion held back)."""
    do = ("delete it in the target by hand, or set [run] on_conflict = \"source-wins\" for a "
          "run to delete it") if delete else (
        "set [run] on_conflict = \"source-wins\" for a run to write the source's version "
        "over it")
    return f"([run] on_conflict = \"{on_conflict}\"; {do})"


FAIL_HINT = ("look at it in the target, then set [run] on_conflict = \"skip\" or "
             "\"source-wins\" for a run")
"""What to do when ``[run] on_conflict = "fail"`` stopped a run (the plan's and the run's)."""


def _listing_requests(limits: Limits, folders: int, assets: int) -> int:
    """Pages a paced listing of ``folders`` and ``assets`` takes (at least one of each)."""
    size = limits.listing_page_size
    if not size or not limits.requests_per_second:
        return 0
    return max(1, -(-folders // size)) + max(1, -(-assets // size))


def make_plan(route: str, inp: PlanInput) -> Plan:
    # two source folders with one path (equal sibling names) are kept apart, never merged
    source_paths, twin_notes = distinct_folder_paths(inp.source_folders)

    def folder_of(asset: Asset) -> FolderPath:
        return source_paths.get(asset.folder_id or "", asset.folder_path)

    verdicts = ({a.source_id: check(a, inp.filters, inp.references)
                 for a in inp.source_assets if not a.skipped} if inp.filters.active else {})
    filtered = {sid: v.excluded for sid, v in verdicts.items() if v.excluded is not None}
    listed = [a for a in inp.source_assets if not a.skipped and a.source_id not in filtered]
    # a folder the source cannot confirm (no asset under it) is not created for itself
    unconfirmed = {source_paths[f.source_id]: f for f in inp.source_folders if f.unconfirmed}
    # the folder budget goes to the folders that hold assets
    holding: dict[FolderPath, int] = defaultdict(int)
    for a in listed:
        holding[folder_of(a)] += 1
    folder_paths = {p for p in holding if p}
    if not inp.filters.active:  # with filters, only folders that hold an included asset
        folder_paths |= {p for p in source_paths.values() if p not in unconfirmed}
    existing_paths = {f.path: f for f in inp.target_folders}
    files_there: dict[FolderPath, set[str]] = defaultdict(set)
    if inp.limits.folders_and_files_share_names:  # a folder can't take a file's name
        for t in inp.target_assets:
            files_there[t.folder_path].add(t.filename)
    tree = plan_tree(sorted(folder_paths), inp.limits, inp.policy, existing=existing_paths,
                     occupied=files_there, assets=holding, rules=inp.folder_rules)

    kept = _kept_folders(inp, tree, source_paths)

    def place(path: FolderPath) -> FolderPath | None:
        """Where a source folder's assets go: the tree's answer, unless an earlier run put
        the folder (or an ancestor) somewhere the target cannot move it away from."""
        placed = tree.target_path(path)
        if placed is None or not kept:
            return placed
        for depth in range(len(path), 0, -1):
            hit = kept.get(path[:depth])
            if hit is not None and placed[:len(hit[1])] == hit[1]:
                return hit[0] + placed[len(hit[1]):]
        return placed

    def tree_notes(path: FolderPath) -> tuple[str, ...]:
        """The tree's notes on where ``path`` goes (``moved to 'Pics' by the folder rule
        'Photos'``, a collapse...), or, where an earlier run's folder keeps the assets
        instead, that they stay there: the folder line and its assets' lines agree."""
        placed, planned = place(path), tree.target_path(path)
        if placed == planned or placed is None or planned is None:
            return tree.warnings_for(path)
        return (f"stays in {'/'.join(placed)!r}, not {'/'.join(planned)!r}: the folder an "
                "earlier run made is kept ([mapping] folder_root / folder_rules changed, or "
                "the folder moved in the source; assetferry never renames or moves a folder "
                "it made)",)

    by_target: dict[FolderPath, list[str]] = defaultdict(list)
    warnings_by_target: dict[FolderPath, list[str]] = defaultdict(list)
    stays: dict[FolderPath, str] = {}
    """Target folders an earlier run made that keep their place against the tree: the
    reason goes on the folder's line (a skip line's warnings are not shown)."""
    for f in inp.source_folders:
        path = source_paths[f.source_id]
        if path not in tree.placements:  # unconfirmed, and nothing placed in or below it
            continue
        placed = place(path)
        if placed is not None:
            by_target[placed].append(f.source_id)
            seen = warnings_by_target[placed]
            top_kept = path in kept and path[:-1] not in kept  # its own "stays" note below
            notes = (*(tree_notes(path) if not top_kept else ()),
                     *filter(None, [twin_notes.get(f.source_id)]),
                     *filter(None, [f.unconfirmed]))
            seen.extend(w for w in notes if w not in seen)
            if top_kept:
                stays[placed] = (
                    f"stays {'/'.join(placed)!r}: renamed or moved in the source, or "
                    "[mapping] folder_root / folder_rules changed since the last run (it "
                    f"would now be {'/'.join(kept[path][1])!r}); assetferry never renames or "
                    "moves a folder it made, so its assets stay in it (move them by hand, or "
                    "delete the folder there and run again)")
                seen.append(stays[placed])
    needed = tree.target_folders()
    if kept:
        at_root = {()} if any(not folder_of(a) for a in listed) else set()
        wanted = {p[:depth] for p in map(place, folder_paths | at_root) if p
                  for depth in range(1, len(p) + 1)}
        needed = sorted(wanted, key=lambda p: (len(p), p))
    folder_actions = []
    for path in needed:
        have = existing_paths.get(path)
        warnings = warnings_by_target.get(path, [])
        if have is not None:
            folder_actions.append(FolderAction(
                Op.SKIP, path, tuple(by_target[path]),
                f"{PRESENT}; {stays[path]}" if path in stays
                else PRESENT, tuple(warnings), have.source_id))
        else:
            folder_actions.append(FolderAction(Op.CREATE, path, tuple(by_target[path]),
                                               "not in the target", tuple(warnings)))
    folder_actions.extend(
        FolderAction(Op.UNSUPPORTED, source_paths[f.source_id], (f.source_id,),
                     tree.error_for(source_paths[f.source_id]) or "cannot be placed")
        for f in inp.source_folders if source_paths[f.source_id] in tree.placements
        and tree.target_path(source_paths[f.source_id]) is None
    )
    folder_actions.extend(
        FolderAction(Op.UNSUPPORTED, path, (f.source_id,), f"not created: {f.unconfirmed}",
                     (f"{f.unconfirmed}",))
        for path, f in sorted(unconfirmed.items()) if path not in tree.placements
    )

    rules = NameRules.of(inp.limits)
    target_index = _NameIndex(inp.target_assets, rules)
    target_by_id = {t.source_id: t for t in inp.target_assets}

    # filenames per target folder, compared as the target compares them; where files and
    # folders share names (a file system), a file never takes a folder's name there
    folder_names: dict[FolderPath, set[str]] = defaultdict(set)
    if inp.limits.folders_and_files_share_names:
        for path in {*tree.target_folders(), *existing_paths}:
            folder_names[path[:-1]].add(path[-1])
    names_by_folder: dict[FolderPath, list[tuple[str, str]]] = defaultdict(list)
    placement: dict[FolderPath, FolderPath | None] = {}  # per source folder, not per asset

    def place_once(asset: Asset) -> FolderPath | None:
        path = folder_of(asset)
        if path not in placement:
            placement[path] = place(path)
        return placement[path]

    to_name = filename_rules(inp.limits)  # target_filename's rules, compiled once
    for asset in listed:
        folder = place_once(asset)
        if folder is not None:
            names_by_folder[folder].append((asset.source_id, to_name(asset.filename)))
    final_names: dict[str, str | None] = {}
    for folder, names in names_by_folder.items():
        final_names.update(resolve_filename_collisions(
            names, rules=rules, taken=folder_names.get(folder, ()), limits=inp.limits))
    # what is only needed on the way is dropped before the actions are made, and what is
    # only needed after them made after (the plan's peak memory at 100,000 assets)
    del names_by_folder

    def listed_ids() -> set[str]:
        """The source ids whose target assets belong to a source asset still listed (a
        ledger row of ours); an incremental listing leaves out what did not change: every
        ledger row is still there."""
        present = {a.source_id for a in inp.source_assets}
        if inp.changed_since is not None:
            present.update(sid for kind, sid in inp.records if kind == "asset")
        return present

    present: set[str] | None = None
    # who owns which target asset: only an asset that is not unchanged asks (a re-run of
    # 100,000 unchanged assets builds neither from the 100,000 ledger rows)
    owners: tuple[Mapping[str, str], frozenset[str]] | None = None
    keys = _RuleKeys(inp.field_rules.key if inp.field_rules is not None else "",
                     inp.locale_rules.key())  # once per plan, not per asset
    mapper = _MetaMapper(inp)
    # the tree's answers per source folder, asked once per folder, not per asset
    per_folder: dict[FolderPath, _FolderFacts] = {}
    # an asset unchanged since the last run is told by its hashes, its ledger row and its
    # drift marker alone (_unchanged), before any mapping or warning; publishing and
    # --retry-failed decide more than that, so they take the full rules
    quick = inp.publish_rule is None and not inp.retry_failed_only
    records = inp.records
    actions = []
    for asset in listed:
        path = folder_of(asset)
        told = per_folder.get(path)
        if told is None:
            told = per_folder[path] = _FolderFacts.of(path, place_once(asset), tree_notes,
                                                      tree, inp, keys)
        action = _unchanged(asset, told, final_names, inp, records.get(
            ("asset", asset.source_id)), target_by_id) if quick else None
        if action is None:
            if owners is None:
                present = listed_ids()
                owners = _owners(inp, present, target_by_id)
            action = _asset_action(
                asset, told.placed, final_names, told.notes, told.error, inp, target_index,
                target_by_id, owners[0], owners[1], told.collapsed, keys, mapper)
        actions.append(action)
    del final_names
    if present is None:
        present = listed_ids()
    if any(v.notes for v in verdicts.values()):
        actions = [replace(a, warnings=(*a.warnings, *verdicts[a.source_id].notes))
                   if a.source_id in verdicts and verdicts[a.source_id].notes else a
                   for a in actions]
    actions.extend(
        _excluded_action(a, filtered.get(a.source_id), inp, target_by_id)
        for a in inp.source_assets if a.skipped or a.source_id in filtered
    )
    actions = _warn_over_asset_count(actions, inp)
    # a folder is made for the assets it will hold: none only on the way to an asset or a
    # folder that cannot be placed (its 20 ancestors, empty); an empty source folder is
    blocked: set[FolderPath] = set()  # made as before
    for action in actions:
        if action.op is Op.UNSUPPORTED and action.asset is not None \
                and not action.asset.skipped:
            blocked.add(place_once(action.asset) or ())
    for path in tree.placements:
        if tree.target_path(path) is None:
            blocked.add(next((up for depth in range(len(path) - 1, 0, -1)
                              if (up := place(path[:depth])) is not None), ()))
    if blocked - {()}:
        folder_actions = _placed_folders(folder_actions, actions, blocked)
    prune = _prune_actions(inp, target_by_id, present, actions)
    del target_by_id, target_index, present  # before the invariants' own indexes are made
    actions.extend(prune.actions)
    source_limits = inp.source_limits or Limits()
    plan = Plan(route, tuple(folder_actions), tuple(actions), inp.limits.requests_per_second,
                inp.limits.requests_per_upload, held_deletes=prune.held, prune_note=prune.note,
                to_confirm=prune.to_confirm,
                source_requests_per_second=source_limits.requests_per_second,
                source_listing_requests=_listing_requests(
                    source_limits, len(inp.source_folders), len(inp.source_assets))
                + (inp.reference_requests if source_limits.requests_per_second else 0),
                target_listing_requests=_listing_requests(
                    inp.limits, len(inp.target_folders), len(inp.target_assets)),
                source_requests_per_download=source_limits.requests_per_download,
                listing="full" if inp.changed_since is None else
                f"changed since {inp.changed_since.isoformat(timespec='seconds')}",
                stop=conflict_stop(actions, inp.on_conflict))
    if inp.changed_since is not None and inp.prune:
        plan = replace(plan, prune_note=(
            "nothing pruned: this run listed only what changed in the source, which says "
            "nothing about deletions; the next full listing ([run] full_listing_every) prunes"))
    check_plan(plan)
    return plan


def _owners(inp: PlanInput, present: set[str], target_by_id: Mapping[str, Asset]
            ) -> tuple[dict[str, str], frozenset[str]]:
    """``(live_owner, owned)``: target id -> the listed source asset whose ledger row maps
    it (done, or a replace of it open or failed: :func:`state.records.maps_target`); and the
    target ids any such ledger row of ours names (a gone source asset's copy included), less
    a gone asset's copy edited in the target since we wrote it (drift), which is not ours
    to replace unless ``on_conflict = "source-wins"``: a new source asset may only adopt it
    (equal bytes)."""
    live_owner = {
        r.target_id: sid for (kind, sid), r in inp.records.items()
        if kind == "asset" and sid in present and r.target_id and maps_target(r)
    }
    owned = frozenset(r.target_id for (kind, sid), r in inp.records.items()
                      if kind == "asset" and r.target_id and maps_target(r)
                      and (sid in present or inp.on_conflict == "source-wins"
                           or r.target_id not in target_by_id
                           or target_drift(r.target_marker, target_by_id[r.target_id],
                                           inp.drift_tolerance) is None))
    return live_owner, owned


def _placed_folders(folders: list[FolderAction], actions: Sequence[AssetAction],
                    blocked: set[FolderPath]) -> list[FolderAction]:
    """``folders`` without the folders to create that would stay empty: those that lead
    only to what cannot be placed (``blocked``: where unsupported assets and unplaceable
    folders would have gone). Kept: every folder an asset goes in or under, and the
    folders on the way to any other folder made (an empty source folder, as before)."""
    def prefixes(path: FolderPath) -> Iterator[FolderPath]:
        return (path[:depth] for depth in range(1, len(path) + 1))

    keep: set[FolderPath] = set()
    for a in actions:
        if a.target_folder and a.op is not Op.UNSUPPORTED:
            keep.update(prefixes(a.target_folder))
    on_the_way = {p for b in blocked for p in prefixes(b)}
    for f in folders:
        if f.op is Op.CREATE and f.target_path not in on_the_way:
            keep.update(prefixes(f.target_path))
    return [f for f in folders if f.op is not Op.CREATE or f.target_path in keep]


def check_plan(plan: Plan) -> None:
    """Each target asset and target folder is touched by at most one action.

    Raises PlanInvariantError (a bug report: nothing has run yet) naming the actions.
    """
    problems: list[str] = []
    # the first action per target asset and per target name; a list only for a second one
    # (a plan of 100,000 actions makes no list per action)
    first_asset: dict[str, AssetAction] = {}
    first_name: dict[FolderPath, dict[str, AssetAction]] = {}  # no key tuple per action
    by_asset: dict[str, list[AssetAction]] = {}
    by_name: dict[tuple[FolderPath, str], list[AssetAction]] = {}
    placing = (Op.CREATE, Op.UPDATE, Op.REPLACE)
    for a in plan.assets:
        if a.target_id:
            seen = first_asset.setdefault(a.target_id, a)
            if seen is not a:
                by_asset.setdefault(a.target_id, [seen]).append(a)
        placed = a.op in placing or (a.op is Op.SKIP and a.target_id)
        if placed and a.target_folder is not None and a.filename:
            names = first_name.get(a.target_folder)
            if names is None:
                names = first_name[a.target_folder] = {}
            seen = names.setdefault(a.filename, a)
            if seen is not a:
                by_name.setdefault((a.target_folder, a.filename), [seen]).append(a)
    for target_id, touching in by_asset.items():
        if len(touching) > 1:
            problems.append(f"target asset {target_id}: " + _touching(touching))
    for (folder, name), touching in by_name.items():
        if len(touching) > 1:
            problems.append(f"target name {'/'.join((*folder, name))!r}: " + _touching(touching))
    by_folder: dict[FolderPath, int] = defaultdict(int)
    by_folder_id: dict[str, int] = defaultdict(int)
    for f in plan.folders:
        if f.op is Op.UNSUPPORTED:
            continue
        by_folder[f.target_path] += 1
        if f.target_id:
            by_folder_id[f.target_id] += 1
    problems.extend(f"target folder {'/'.join(path)!r}: {n} actions"
                    for path, n in by_folder.items() if n > 1)
    problems.extend(f"target folder {fid}: {n} actions"
                    for fid, n in by_folder_id.items() if n > 1)
    if problems:
        raise PlanInvariantError(
            "internal error: the plan touches a target item more than once ("
            + "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5
                                         else "")
            + "). Nothing was changed. This is a bug in assetferry: please report it with "
            "this message."
        )


def _touching(actions: Sequence[AssetAction]) -> str:
    return ", ".join(f"{a.op.value} {a.path} (source {a.source_id})" for a in actions)


def _warn_over_asset_count(actions: list[AssetAction], inp: PlanInput) -> list[AssetAction]:
    """Warn on each create past the target's default asset count (a limit support can raise,
    so the plan warns rather than refuses)."""
    most = inp.limits.default_max_assets
    if most is None:
        return actions
    room = most - sum(1 for t in inp.target_assets if not t.skipped)
    out = []
    for action in actions:
        if action.op is Op.CREATE:
            room -= 1
            if room < 0:
                action = replace(action, warnings=(*action.warnings, (
                    f"the target would hold more than {most:,} assets, its default limit "
                    "(raised on request by the vendor's support): this upload may be refused")))
        out.append(action)
    return out


def _excluded_action(asset: Asset, exclusion: Exclusion | None, inp: PlanInput,
                     target_by_id: Mapping[str, Asset]) -> AssetAction:
    """The ``skip`` line of an asset the source or a filter rule leaves out.

    An asset migrated earlier keeps its copy in the target: the line names it (its target id,
    so no other action touches it) and the ledger row remembers the exclusion, so a later
    prune keeps the copy even once the source asset is gone.
    """
    if exclusion is not None:
        asset = replace(asset, skipped=exclusion.reason)
    reason = asset.skipped or ""
    record = inp.records.get(("asset", asset.source_id))
    target_id = target_url = None
    if record is not None and record.status is ItemStatus.DONE and record.target_id:
        current = target_by_id.get(record.target_id)
        if current is not None:
            target_id, target_url = current.source_id, current.url
            reason += (f"; migrated earlier: its copy stays in the target ({target_id}), "
                       "never pruned while excluded")
        else:
            reason += "; migrated earlier, its copy is no longer in the target"
    return AssetAction(Op.SKIP, asset.source_id, asset_path(asset), reason, asset=asset,
                       source_hash=source_hash(asset), record=record, target_id=target_id,
                       target_url=target_url,
                       excluded_by=exclusion.rule if exclusion is not None else "source")


def _kept_folders(inp: PlanInput, tree: TreeMap, source_paths: Mapping[str, FolderPath]
                  ) -> dict[FolderPath, tuple[FolderPath, FolderPath]]:
    """Source folders an earlier run placed elsewhere than the tree would now.

    ``source path -> (where it is in the target, where the tree would put it)``, for folders
    whose recorded target folder is still there at its recorded path. No target can rename or
    move a folder (Webflow: folders are create-only), so the folder stays where it is instead
    of a second tree being made under the new name.
    """
    current = {f.source_id: f.path for f in inp.target_folders}
    out: dict[FolderPath, tuple[FolderPath, FolderPath]] = {}
    for f in inp.source_folders:
        rec = inp.records.get(("folder", f.source_id))
        if rec is None or rec.status is not ItemStatus.DONE or not rec.target_id:
            continue
        if not rec.target_path:
            continue
        old = tuple(rec.target_path.split("/"))
        path = source_paths.get(f.source_id, f.path)
        if path not in tree.placements:  # a folder the source cannot confirm
            continue
        now = tree.target_path(path)
        if now is not None and now != old and current.get(rec.target_id) == old:
            out[path] = (old, now)
    return out


class _NameIndex:
    """The target's assets by folder and name (compared as the target compares names),
    built at the first look-up: a re-run whose every asset is unchanged looks up none, and
    holds no index of 100,000 names."""

    __slots__ = ("_assets", "_by_name", "_rules")

    def __init__(self, assets: Sequence[Asset], rules: NameRules) -> None:
        self._assets = assets
        self._rules = rules
        self._by_name: dict[tuple[FolderPath, str], list[Asset]] | None = None

    def get(self, folder: FolderPath, filename: str) -> list[Asset]:
        """The target assets named ``filename`` in ``folder`` (listing order)."""
        if self._by_name is None:
            key = self._rules.key
            index: dict[tuple[FolderPath, str], list[Asset]] = defaultdict(list)
            for t in self._assets:
                index[(t.folder_path, key(t.filename))].append(t)
            self._by_name = dict(index)
        return self._by_name.get((folder, self._rules.key(filename)), [])


class _MetaMapper:
    """The locale and field rules of one plan applied to an asset's metadata
    (:func:`mappings.locales.fit_locales`, then :func:`mappings.fields.map_meta`).

    Both depend only on the metadata and on the placeholders the field templates read
    (:func:`mappings.fields.template_values`), so an asset whose metadata and those values
    equal an earlier one's gets the earlier result (a library without per-asset text maps
    its metadata once, not 100,000 times). Metadata with per-locale overrides or extra
    fields is mapped each time; at most `KEEP` results are remembered.
    """

    KEEP = 4096

    def __init__(self, inp: PlanInput) -> None:
        self._inp = inp
        self._rules = inp.field_rules or FieldRules().resolve(inp.limits)
        read = {"source"}  # map_meta reads the source placeholder for its dropped check
        for rule in self._rules.rules:
            if rule.template is not None:
                read |= rule.template.fields
        self._read = tuple(sorted(read))
        self._seen: dict[tuple[object, ...], tuple[FittedLocales, MappedMeta]] = {}

    def __call__(self, asset: Asset) -> tuple[FittedLocales, MappedMeta]:
        meta = asset.meta
        if meta.locales or meta.extra:
            return self._map(meta, template_values(asset))
        if self._read == ("source",):  # the default rules: no template reads the asset
            key: tuple[object, ...] = (meta.title, meta.description, meta.alt_text, meta.tags,
                                       meta.copyright, meta.focus, asset.extra.get("source"))
            values = None
        else:
            values = template_values(asset)
            key = (meta.title, meta.description, meta.alt_text, meta.tags, meta.copyright,
                   meta.focus, *[values.get(name) for name in self._read])
        hit = self._seen.get(key)
        if hit is None:
            hit = self._map(meta, template_values(asset) if values is None else values)
            if len(self._seen) < self.KEEP:
                self._seen[key] = hit
        return hit

    def _map(self, meta: AssetMeta, values: Mapping[str, str | None]
             ) -> tuple[FittedLocales, MappedMeta]:
        localized = fit_locales(meta, self._inp.limits, self._inp.locale_rules)
        return localized, map_meta(localized.meta, self._inp.limits, self._rules,
                                   values=values)


@dataclass(frozen=True, slots=True)
class _FolderFacts:
    """What the plan knows of one source folder, asked once per folder, not per asset:
    where its assets go (``None``: nowhere), the tree's notes and error, the collapsed path,
    and the rule keys its assets' metadata hashes fold in (``rules``: without the locale
    rules, which only count for an asset with per-locale text)."""

    placed: FolderPath | None
    notes: tuple[str, ...]
    error: str | None
    collapsed: str | None
    rules: str
    locales: str
    """:meth:`LocaleRules.key` (``""``: the defaults)."""

    @classmethod
    def of(cls, path: FolderPath, placed: FolderPath | None,
           notes: Callable[[FolderPath], tuple[str, ...]], tree: TreeMap, inp: PlanInput,
           keys: _RuleKeys) -> _FolderFacts:
        collapsed = tree.collapsed.get(path)
        return cls(placed, notes(path), tree.error_for(path), collapsed,
                   _rules_key(keys, collapsed, inp), keys.locales)


def _rules_key(keys: _RuleKeys, collapsed: str | None, inp: PlanInput) -> str:
    """The rule keys an asset's metadata hash folds in (before the locale rules): the field
    rules, and where collapsed folder levels go when they go into a field (a changed
    ``collapsed_path`` then updates the asset)."""
    rules = keys.fields
    if collapsed is not None and inp.folder_rules.collapsed_path is not CollapsedPath.NAME:
        rules += f"|path:{inp.folder_rules.collapsed_path.value}"
    return rules


NO_META = AssetMeta()
"""The metadata of an unchanged asset's SKIP (nothing is sent: its mapping is not made)."""


def _unchanged(asset: Asset, told: _FolderFacts, final_names: Mapping[str, str | None],
               inp: PlanInput, record: ItemRecord | None, target_by_id: Mapping[str, Asset]
               ) -> AssetAction | None:
    """The SKIP of an asset unchanged since the last run, decided with the least work, or
    ``None`` when it is not (or may not be) one: :func:`_asset_action` decides then.

    Unchanged: a DONE ledger row names a target asset that is listed in the folder the asset
    goes to now, the asset's content hash and metadata hash (:func:`source_hash`) equal the
    row's, the target's limits still take it, and the target asset is as we wrote it
    (:func:`target_drift`). The answer :func:`_asset_action` gives, without mapping the
    metadata or building warnings: the action carries no mapped metadata (``meta`` is
    empty, ``dropped`` and ``warnings`` are ``()``: they were reported when the asset was
    migrated, and a SKIP sends nothing). The caller leaves publishing and
    ``--retry-failed`` to :func:`_asset_action`.
    """
    folder = told.placed
    if (record is None or folder is None or record.status is not ItemStatus.DONE
            or not record.target_id or asset.unreachable):
        return None
    current = target_by_id.get(record.target_id)
    if current is None or current.folder_path != folder:
        return None
    filename = final_names.get(asset.source_id)
    if filename is None:
        return None
    rules = told.rules
    if asset.meta.locales and told.locales:  # changed locale rules: update it
        rules += f"|locales:{told.locales}"
    hashed = source_hash(asset, rules)
    old = record.source_hash or ""
    # "content:meta", or "content:meta:publication" (none published now: any will do)
    if old != hashed and not (old.startswith(hashed) and old[len(hashed)] == ":"):
        return None
    limits = inp.limits
    size = asset.size
    if (limits.accepted_content_types is not None or limits.max_file_size
            or limits.max_file_size_by_kind or (size is not None and size < max(
                limits.min_file_size, 0))) and (  # else neither can find a problem
            type_problem(size, asset.content_type, limits)
            or size_problem(size, asset.content_type, limits)):
        return None
    longest = limits.max_path_bytes
    if longest is not None and 4 * (sum(map(len, folder)) + len(folder) + len(filename)) \
            > longest and path_bytes((*folder, filename)) > longest:  # 4: UTF-8's most
        return None
    if target_drift(record.target_marker, current, inp.drift_tolerance) is not None:
        return None
    path = asset_path(asset)
    sid = asset.source_id
    return AssetAction(Op.SKIP, sid, sid if path == sid else path, UNCHANGED, (), asset,
                       folder, filename, NO_META, current.source_id, current.url,
                       record=record, source_hash=hashed, target_size=current.size,
                       target_version=current.version)


@dataclass(frozen=True, slots=True)
class _RuleKeys:
    """The job's rule keys folded into each asset's metadata hash, computed once per plan:
    ``[mapping.fields]``/``[mapping.tags]`` (:attr:`EffectiveRules.key`) and
    ``[mapping.locales]`` (:meth:`LocaleRules.key`); ``""`` for the defaults."""

    fields: str
    locales: str


def _asset_action(
    asset: Asset,
    folder: FolderPath | None,
    final_names: Mapping[str, str | None],
    tree_warnings: tuple[str, ...],
    tree_error: str | None,
    inp: PlanInput,
    target_index: _NameIndex,
    target_by_id: Mapping[str, Asset],
    live_owner: Mapping[str, str],
    owned: frozenset[str] = frozenset(),
    collapsed: str | None = None,
    keys: _RuleKeys | None = None,
    mapper: _MetaMapper | None = None,
) -> AssetAction:
    path = asset_path(asset)
    if path == asset.source_id:  # a local folder's ids are its paths: one string, not two
        path = asset.source_id
    if keys is None:
        keys = _RuleKeys(inp.field_rules.key if inp.field_rules is not None else "",
                         inp.locale_rules.key())
    rules = _rules_key(keys, collapsed, inp)
    if asset.meta.locales and keys.locales:  # changed locale rules: update it
        rules += f"|locales:{keys.locales}"
    hashed = source_hash(asset, rules)

    def unsupported(reason: str) -> AssetAction:
        return AssetAction(Op.UNSUPPORTED, asset.source_id, path, reason, asset=asset,
                           source_hash=hashed)

    if folder is None:
        return unsupported(tree_error or "its folder cannot be placed in the target")
    if asset.unreachable:
        return unsupported(asset.unreachable)
    problem = (type_problem(asset.size, asset.content_type, inp.limits)
               or size_problem(asset.size, asset.content_type, inp.limits))
    if problem:
        return unsupported(problem)
    filename = final_names[asset.source_id]
    if filename is None:
        return unsupported(f"no unique name for {asset.filename!r} in its target folder fits "
                           f"the target's limit of {NameRules.of(inp.limits).limit_text()}; "
                           "rename it in the source")
    longest = inp.limits.max_path_bytes
    if longest is not None and 4 * (sum(map(len, folder)) + len(folder) + len(filename)) > longest \
            and path_bytes((*folder, filename)) > longest:  # 4: most UTF-8 bytes a character takes
        return unsupported(f"its path in the target is {path_bytes((*folder, filename))} "
                           f"bytes; the target allows {longest}: move the target to a shorter "
                           "path, or shorten the source's folder or file names")
    localized, mapped = (mapper or _MetaMapper(inp))(asset)
    meta, carried = carry_path(mapped.meta, collapsed, inp.folder_rules.collapsed_path,
                               inp.limits)
    warnings = [*tree_warnings, *localized.warnings, *mapped.warnings, *carried]
    dropped = mapped.dropped
    if localized.dropped and "locales" not in dropped:
        dropped = (*dropped, "locales")
    warnings.extend(filename_changes(asset.filename, filename, inp.limits))
    publication, publish_warnings = publication_for(asset, inp)
    warnings.extend(publish_warnings)
    record = inp.records.get(("asset", asset.source_id))
    if publication:
        hashed += f":{publication.key()}"
    not_failed = inp.retry_failed_only and (
        record is None or record.status is not ItemStatus.FAILED)
    owed = (record.journal.get(PUBLISH_OWED) if record is not None and publication else None)
    publish_owed = bool(not not_failed and owed and owed in target_by_id and record is not None
                        and record.journal.get(PUBLISH_HASH) == hashed)
    # the target asset of a row we completed goes into the action as it is built (one
    # action made, not a copy with the target's fields for each of 100,000 assets)
    current = (target_by_id.get(record.target_id) if record is not None and record.target_id
               and record.status is ItemStatus.DONE and not not_failed and not publish_owed
               else None)
    if current is not None and record is not None and current.folder_path == folder:
        # the common case of a re-run, decided before any other action is made: the same
        # file and metadata as we wrote, where we put it, nothing owed, not edited there
        # (the same answer as the full rules below, which handle every other case)
        old_content, old_meta, old_publish = _hash_parts(record.source_hash)
        new_content, new_meta, new_publish = _hash_parts(hashed)
        if (old_content == new_content and old_meta == new_meta
                and (not new_publish or new_publish == old_publish)
                and target_drift(record.target_marker, current, inp.drift_tolerance) is None):
            return AssetAction(
                Op.SKIP, asset.source_id, path, UNCHANGED, tuple(warnings), asset, folder,
                filename, meta, current.source_id, current.url, record=record,
                source_hash=hashed, dropped=dropped, publish=publication,
                target_size=current.size, target_version=current.version)
    base = AssetAction(
        Op.CREATE, asset.source_id, path, "", tuple(warnings), asset, folder, filename,
        meta, record=record, source_hash=hashed, dropped=dropped,
        publish=publication,
        target_id=None if current is None else current.source_id,
        target_url=None if current is None else current.url,
        target_size=None if current is None else current.size,
        target_version=None if current is None else current.version,
    )
    if not_failed:
        return _with(base, Op.SKIP, "not a failed item (--retry-failed)")
    if publish_owed and owed is not None and record is not None:
        why = f" ({record.last_error})" if record.last_error else ""
        return replace(_with(_target(base, target_by_id[owed]), Op.UPDATE,
                             f"uploaded by an earlier run but not published{why}: publish "
                             "again (nothing is uploaded)"), publish_only=True, meta_changed=False)
    if record is not None and record.status is ItemStatus.DONE and record.target_id:
        if current is None:
            return _with(base, Op.CREATE, "was migrated but is missing from the target")
        old_content, old_meta, old_publish = _hash_parts(record.source_hash)
        new_content, new_meta, new_publish = _hash_parts(base.source_hash)
        drifted = target_drift(record.target_marker, current, inp.drift_tolerance)
        if drifted is not None:
            return _drift_action(base, drifted, current, inp,
                                 source_changed=(old_content, old_meta) != (new_content,
                                                                            new_meta),
                                 file_changed=old_content != new_content)
        # a move changes the source path, which the metadata fingerprint holds: was that all?
        old_folder = tuple(record.path.split("/")[:-1]) if record.path else None
        moved_only = (old_meta != new_meta and old_folder is not None
                      and old_folder != asset.folder_path
                      and meta_hash(replace(asset, folder_path=old_folder)) == old_meta)
        if moved_only:
            base = replace(base, meta_changed=False)
        # the source folder is the same: the [mapping] folder rules place it elsewhere now
        by_rules = old_folder is not None and old_folder == asset.folder_path
        why_moved = ("[mapping] folder rules (folder_root, folder_rules, folder_overflow) "
                     "changed since the last run" if by_rules else "moved in the source")
        kept_in = ""
        if current.folder_path != folder:
            was, now = "/".join(current.folder_path) or "(root)", "/".join(folder) or "(root)"
            if inp.capabilities.move:
                base = replace(base, move_from=current.folder_path, warnings=(
                    *base.warnings, f"{why_moved}: from {was!r} to {now!r} in the target"))
            else:
                kept_in = (f"; stays in {was!r}, not {now!r} ({why_moved}): the target "
                           "cannot move assets between folders (move it there by hand, or "
                           "delete it there and run again)")
                base = replace(base, target_folder=current.folder_path, warnings=(
                    *base.warnings, kept_in.removeprefix("; ")))
        if old_content == new_content and (old_meta == new_meta or moved_only):
            if base.move_from is not None:
                return _with(base, Op.UPDATE, f"moved to another folder: {why_moved}")
            if moved_only and current.folder_path != folder:
                return _with(base, Op.UPDATE, "moved to another folder in the source; the "
                             "target cannot move assets (nothing is sent, the ledger notes it)")
            if moved_only:
                return _with(base, Op.UPDATE, "its source folder path changed, its place in "
                             "the target did not (nothing is sent, the ledger notes it)")
            if new_publish and new_publish != old_publish:
                return replace(_with(base, Op.UPDATE, "unchanged, but not yet published "
                                     f"there: publish to {base.publish and base.publish.text()}"),
                               publish_only=True, meta_changed=False)
            return _with(base, Op.SKIP, f"{UNCHANGED}{kept_in}" if kept_in else UNCHANGED)
        if old_content != new_content:
            if (inp.capabilities.replace and old_meta == new_meta and not kept_in
                    and base.move_from is None and newly_summed(asset, old_content)):
                return replace(_with(base, Op.REPLACE, NEWLY_SUMMED), adopt_from=current)
            if inp.capabilities.replace:
                return _with(base, Op.REPLACE, "the file changed in the source")
            return _with(base, Op.UNSUPPORTED,
                         "the file changed in the source and the target cannot replace files")
        if inp.capabilities.update_metadata:
            return _with(base, Op.UPDATE, "metadata changed in the source")
        return _with(base, Op.UNSUPPORTED,
                     "metadata changed and the target cannot update metadata")
    if (record is not None and record.status in (ItemStatus.IN_FLIGHT, ItemStatus.FAILED)
            and record.intent == Op.REPLACE.value and record.target_id in target_by_id
            and inp.capabilities.replace):
        # a replace that was cut off (or failed: its target asset is still ours, never a
        # "different file" in the way) may not have sent the new file: a same-sized copy in the
        # target can be the old one, so the file is sent again, never adopted by its size;
        # an edit made there since is drift as on a first try (our new file that landed
        # before the kill is not: it is the source's file)
        current = target_by_id[record.target_id or ""]
        drifted = target_drift(record.target_marker, current, inp.drift_tolerance)
        if drifted is not None and not replace_landed(asset, current):
            return _drift_action(_target(base, current), drifted, current, inp,
                                 source_changed=True, file_changed=True)
        why = ("an earlier run was interrupted while replacing this file: replace again"
               if record.status is ItemStatus.IN_FLIGHT
               else f"retrying the replace: {record.last_error or 'failed before'}")
        return _with(_target(base, current), Op.REPLACE, why, reconcile=True)
    candidates = target_index.get(folder, filename)
    in_flight = record is not None and record.status is ItemStatus.IN_FLIGHT
    # a target asset that another listed source asset owns is never adopted a second time,
    # and an entry the target's own listing leaves out (assetferry's state database in a local
    # target, operating-system clutter) is never taken for a migrated copy
    same = [t for t in candidates if same_size(asset, t.size) and not t.skipped
            and live_owner.get(t.source_id, asset.source_id) == asset.source_id]
    if same and in_flight and inp.capabilities.update_metadata:
        # a multi-step upload shows the asset before its metadata is set: set it again
        return replace(_with(_target(base, same[0]), Op.UPDATE,
                             "an interrupted run had created it: adopted, its metadata set "
                             "again"), adopted=True)
    if same and in_flight:
        return _with(_target(base, same[0]), Op.SKIP, "an interrupted run had created it: adopted")
    if in_flight:
        return _with(base, Op.CREATE,
                     "an earlier run was interrupted during this upload: reconcile, then finish",
                     reconcile=True)
    # not our own interrupted upload: a target asset is adopted only with the same bytes
    # (issue 6 §1(a)); a listed checksum decides here, otherwise execution compares them
    verdicts = [(t, same_bytes(asset, t)) for t in same]
    equal = next((t for t, v in verdicts if v is True), None)
    if equal is not None:
        return _with(_target(base, equal), Op.SKIP,
                     "already in the target (same folder, name, size and checksum): adopted")
    unknown = next((t for t, v in verdicts if v is None), None)
    ours = next((t for t in same if t.source_id in owned), None)
    if ours is not None and inp.capabilities.replace:
        # the target asset of a gone source asset: ours to replace with the new file
        if unknown is ours:
            return replace(_with(_target(base, ours), Op.REPLACE,
                                 "takes over the target asset of a gone source asset with the "
                                 "same folder, name and size: adopted if the bytes compare "
                                 "equal, else replaced with the new file"), adopt_from=ours)
        return _with(_target(base, ours), Op.REPLACE,
                     "takes over the target asset of a gone source asset with the same folder, "
                     "name and size but a different checksum: replaced with the new file")
    if unknown is not None:
        return replace(_with(_target(base, unknown), Op.SKIP,
                             "same folder, name and size: adopted once the bytes compare "
                             "equal"), adopt_from=unknown)
    if same:
        return _with(base, Op.CONFLICT,
                     f"a different file with the same name and size is in the target "
                     f"({filename!r}, different checksum); rename or remove one of them, then "
                     "run again")
    owners = [live_owner.get(t.source_id, asset.source_id) for t in candidates]
    if candidates and asset.source_id not in owners:
        return _with(base, Op.CONFLICT,
                     f"{filename!r} in the target folder is the migrated copy of another source "
                     f"asset ({', '.join(sorted(set(owners)))}); rename one of them, then run "
                     "again")
    excluded = next((t.skipped for t in candidates if t.skipped), None)
    if excluded:
        return _with(base, Op.CONFLICT,
                     f"{filename!r} in the target folder is not an asset ({excluded}); rename "
                     "the source file or move that file away, then run again")
    if candidates:
        return _with(base, Op.CONFLICT,
                     f"a different file named {filename!r} is already in the target folder; "
                     "rename or remove one of them, then run again")
    if record is not None and record.status is ItemStatus.FAILED:
        return _with(base, Op.CREATE, f"retrying: {record.last_error or 'failed before'}",
                     reconcile=True)
    return _with(base, Op.CREATE, "not in the target")


FAIL_STOPS = "the run stops before any write, nothing is written"
"""What a drifted asset's reason says under ``[run] on_conflict = "fail"``."""


def conflict_stop(actions: Sequence[AssetAction], on_conflict: str) -> str | None:
    """Why a run of ``actions`` stops before any write: under ``on_conflict = "fail"``, the
    assets edited in the target since assetferry wrote them (counted, the first named);
    ``None`` when there are none or ``on_conflict`` is another value. The run raises it as
    its fatal message (exit 2), and ``plan`` prints it and exits 2 too."""
    if on_conflict != "fail":
        return None
    drifted = [a for a in actions if a.drift]
    if not drifted:
        return None
    first = drifted[0]
    return (f"{len(drifted)} asset{'s' if len(drifted) != 1 else ''} changed in the target "
            f"since assetferry wrote them (first: {first.path}, "
            f"{first.reason.split(': ' + FAIL_STOPS)[0]}); nothing was written ([run] "
            f"on_conflict = \"fail\"): {FAIL_HINT.replace(' it ', ' them ')}")


def _drift_action(base: AssetAction, drifted: str, current: Asset, inp: PlanInput, *,
                  source_changed: bool, file_changed: bool) -> AssetAction:
    """The action for an asset edited in the target since we wrote it, by
    ``inp.on_conflict``: ``skip`` and ``fail`` leave it (a CONFLICT; ``fail`` stops the run
    before any write), ``source-wins`` writes the source's file (the file changed on either
    side) or metadata over it."""
    what = f"changed in the target since assetferry wrote it ({drifted})"
    if inp.on_conflict != "source-wins":
        also = "; the source changed too" if source_changed else ""
        held = FAIL_STOPS if inp.on_conflict == "fail" else "left as it is"
        return replace(_with(base, Op.CONFLICT,
                             f"{what}{also}: {held} {conflict_hint(inp.on_conflict)}"),
                       drift=True)
    why = f"{what}: the source's version is written over it ([run] on_conflict = \"source-wins\")"
    base = replace(base, target_folder=current.folder_path
                   if not inp.capabilities.move else base.target_folder,
                   move_from=current.folder_path
                   if inp.capabilities.move and current.folder_path != base.target_folder
                   else None)
    bytes_differ = file_changed or (inp.limits.version_is_file and drifted != META_EDITED) or (
        current.size is not None and base.asset is not None and base.asset.size is not None
        and current.size != base.asset.size)
    if (bytes_differ or not inp.capabilities.update_metadata) and inp.capabilities.replace:
        return _with(base, Op.REPLACE, why)
    if not bytes_differ and inp.capabilities.update_metadata:
        return _with(base, Op.UPDATE, why)
    return replace(_with(base, Op.CONFLICT,
                         f"{what}: the target cannot replace files, so the source's version "
                         "cannot be written over it; left as it is"), drift=True)


UNCHANGED = "unchanged since the last run"
"""The reason of an asset that is the same as when we last wrote it (one string shared by
every such action)."""

PRESENT = "already in the target"
"""The reason of a folder that is in the target already (a SKIP)."""

PUBLISH_OWED = "publish_target_id"
"""Journal key of a ledger row whose asset was uploaded but not yet published: its target id."""
PUBLISH_HASH = "publish_hash"
"""Journal key: the source hash the owed publish belongs to (a changed asset is sent again)."""


NEWLY_SUMMED = ("the source lists the file's checksum now (a local source's checksum = true), "
                "its size and modification time as when it was sent: adopted if the "
                "target's copy has the same bytes (compared, nothing sent), else replaced")
"""The reason of a file whose only change is the checksum its source lists now."""


def newly_summed(asset: Asset, old_content: str) -> bool:
    """Whether the only change to ``asset``'s file since the ledger's ``old_content``
    (:func:`content_hash`) is a checksum its source did not list then (a local source's
    ``checksum = true`` turned on): the size and version (a local file's size and mtime) are
    those of the file sent. That is no proof the bytes are the same (a copy keeping the
    mtime is what the checksum is there to see), so the plan does not settle it: execution
    compares the target's copy with the source's file (``adopt_from``) and adopts it only
    when equal, else replaces it."""
    return bool(asset.checksums) and content_hash(
        replace(asset, checksums={})) == old_content


def _hash_parts(value: str | None) -> tuple[str, str, str]:
    """``(file, metadata, publication)`` parts of a ledger source hash (the last may be
    empty: nothing published, or a row written before publishing was planned)."""
    parts = (value or ":").split(":")
    return parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""


def publication_for(asset: Asset, inp: PlanInput) -> tuple[Publication | None, list[str]]:
    """Where the target publishes ``asset``, and warnings for places it cannot.

    The job file's fixed publication (``[target] publish``) wins; else the source's own
    publish details are carried (:attr:`Asset.published`, Contentstack -> Contentstack),
    except for an environment or locale the target lacks: dropped with a warning naming it.
    """
    rule = inp.publish_rule
    if rule is None:
        return None, []
    names = inp.source_environments
    pairs = rule.fixed.pairs if rule.fixed is not None else frozenset(
        (names.get(env, env), locale) for env, locale in asset.published) if rule.carry else (
        frozenset())
    if not pairs:
        return None, []
    known = inp.publish_targets
    warnings: list[str] = []
    kept = set(pairs)
    if known is not None:
        for env, locale in sorted(pairs):
            missing = ([f"environment {env!r}"] if env not in known.environments else []) + (
                [f"locale {locale!r}"] if locale not in known.locales else [])
            if missing:
                kept.discard((env, locale))
                warnings.append(f"not published to {env} ({locale}) as in the source: the "
                                f"target has no {' and no '.join(missing)}")
    return (Publication(frozenset(kept)) if kept else None), warnings


def same_bytes(asset: Asset, other: Asset) -> bool | None:
    """Whether two listings name the same bytes: their checksums of a kind both list
    (``sha256``, else ``md5``; hex, case ignored) are equal. ``None`` when no kind is listed
    by both: only reading the files can tell."""
    for kind in ("sha256", "md5"):
        mine, theirs = asset.checksums.get(kind), other.checksums.get(kind)
        if mine and theirs:
            return mine.lower() == theirs.lower()
    return None


def replace_landed(new: Asset, current: Asset) -> bool:
    """Whether the target asset ``current``, changed since our last recorded write, may be
    the new file ``new`` that an interrupted replace sent (its size, and its checksum where
    both list one): then the change is ours, not an edit (known limit: an edit leaving the
    file at exactly the new size, with no checksum listed, is taken for ours)."""
    return same_size(new, current.size) and same_bytes(new, current) is not False


def same_size(asset: Asset, size: int | None) -> bool:
    """Whether a target file of ``size`` bytes can be ``asset``'s: equal to its exact size, or
    within 1% + 1 KiB of a size the source only estimates (a display value rounded to two
    digits, such as Contento's ``"1.86 MB"``); any size when the source tells none."""
    if asset.size is not None:
        return size == asset.size
    if asset.size_estimate is not None and size is not None:
        return abs(size - asset.size_estimate) <= asset.size_estimate * 0.01 + 1024
    return True


_ACTION_FIELDS = tuple(f.name for f in fields(AssetAction))
_ACTION_AT = {name: i for i, name in enumerate(_ACTION_FIELDS)}
_action_values = attrgetter(*_ACTION_FIELDS)


def _evolve(action: AssetAction, **changes: Any) -> AssetAction:
    """``dataclasses.replace`` for an :class:`AssetAction` (no ``__post_init__`` or
    ``InitVar`` to honour), several times faster: the plan copies its action two or three
    times for each of 100,000 assets."""
    values = list(_action_values(action))
    for name, value in changes.items():
        values[_ACTION_AT[name]] = value
    return AssetAction(*values)


def _with(action: AssetAction, op: Op, reason: str, *, reconcile: bool = False) -> AssetAction:
    return _evolve(action, op=op, reason=reason, reconcile=reconcile or action.reconcile)


def _target(action: AssetAction, current: Asset) -> AssetAction:
    return _evolve(action, target_id=current.source_id, target_url=current.url,
                   target_size=current.size, target_version=current.version)


@dataclass(frozen=True, slots=True)
class _Prune:
    actions: list[AssetAction]
    held: int = 0
    note: str | None = None
    to_confirm: tuple[str, ...] = ()


def _prune_actions(inp: PlanInput, target_by_id: Mapping[str, Asset], present: set[str],
                   actions: Sequence[AssetAction]) -> _Prune:
    """Assets we migrated whose source is gone: retire, delete, hold back or report.

    A gone asset whose target asset a listed source asset took over (same path: adopted
    with equal bytes, or replaced) is retired, not pruned. A deletion needs
    ``inp.direct_reads`` to say the source item is gone; over ``inp.max_deletes`` deletions,
    none is made (held back, with a note).
    """
    gone = [r for _, r in sorted(  # the few gone rows sorted, not the whole ledger
        (key, r) for key, r in inp.records.items()
        if key[0] == "asset" and key[1] not in present and r.status is ItemStatus.DONE
        and r.target_id and r.target_id in target_by_id)]
    # the listed asset (the last, if several) whose action names a gone row's target asset
    wanted = {r.target_id for r in gone}
    claimed = {a.target_id: a for a in actions if a.target_id in wanted} if wanted else {}
    out: list[AssetAction] = []
    doomed: list[ItemRecord] = []
    for r in gone:
        heir = claimed.get(r.target_id or "")
        if heir is not None:
            out.append(AssetAction(
                Op.SKIP, r.source_id, r.path,
                f"gone from the source; its target asset {r.target_id} now belongs to "
                f"{heir.path} (source {heir.source_id}), which took it over (same path): "
                f"{RETIRED_NOTE_END}", record=r, retire=True))
        elif (r.last_error or "").startswith(EXCLUDED_NOTE_PREFIX):
            out.append(AssetAction(
                Op.SKIP, r.source_id, r.path,
                "gone from the source; kept: it was excluded when last listed (prune never "
                "deletes an excluded asset's copy)", (f"{r.last_error}",),
                target_id=r.target_id, target_url=r.target_url, record=r))
        else:
            doomed.append(r)
    if inp.prune and inp.capabilities.delete:
        # a copy edited in the target since we wrote it (drift) is deleted only under
        # on_conflict = "source-wins"; else it is held back as a conflict, like any drift
        drifted = {r.source_id: why for r in doomed if (why := target_drift(
            r.target_marker, target_by_id[r.target_id or ""], inp.drift_tolerance)) is not None}
    else:
        drifted = {}
    if inp.on_conflict != "source-wins" and drifted:
        out.extend(AssetAction(
            Op.CONFLICT, r.source_id, r.path,
            "gone from the source, but changed in the target since assetferry wrote "
            f"it ({drifted[r.source_id]}): not deleted "
            f"{conflict_hint(inp.on_conflict, delete=True)}",
            target_id=r.target_id, target_url=r.target_url, record=r, drift=True)
            for r in doomed if r.source_id in drifted)
        doomed = [r for r in doomed if r.source_id not in drifted]
    held = 0
    note: str | None = None
    to_confirm: list[str] = []
    unconfirmed: list[str] = []
    for r in doomed:
        read = None if inp.direct_reads is None else inp.direct_reads.get(r.source_id)
        warnings: tuple[str, ...] = ()
        if not inp.prune:
            op, reason = Op.SKIP, "gone from the source; kept (prune is off)"
        elif not inp.capabilities.delete:
            op, reason = Op.UNSUPPORTED, "gone from the source; the target cannot delete"
        elif len(doomed) > inp.max_deletes:
            op, reason = Op.SKIP, (f"gone from the source; not deleted: {len(doomed)} deletions "
                                   f"exceed run.max_deletes = {inp.max_deletes}")
            held += 1
        elif read is True:
            op, reason = Op.SKIP, ("missing from the source listing, but a direct read found it "
                                   "in the source: kept")
            warnings = ("the source listing missed this asset (the library changed while it "
                        "was listed?)",)
        elif read is False:
            op, reason = Op.DELETE, "gone from the source, confirmed by a direct read (prune)"
            if r.source_id in drifted:
                reason += (f"; it changed in the target since assetferry wrote it "
                           f"({drifted[r.source_id]}), deleted anyway ([run] on_conflict = "
                           "\"source-wins\")")
        else:
            why = read if isinstance(read, str) else "not read yet"
            op, reason = Op.SKIP, ("gone from the source listing; not deleted: a direct read "
                                   f"could not confirm it is gone ({why})")
            held += 1
            to_confirm.append(r.source_id)
            unconfirmed.append(r.source_id)
        out.append(AssetAction(op, r.source_id, r.path, reason, warnings,
                               target_id=r.target_id, target_url=r.target_url, record=r))
    if held and len(doomed) > inp.max_deletes:
        note = (f"{held} deletion{'s' if held != 1 else ''} held back: "
                f"run.max_deletes = {inp.max_deletes}; nothing was pruned (raise "
                "run.max_deletes if these deletions are meant, or check the source)")
    elif held:
        note = (f"{held} deletion{'s' if held != 1 else ''} held back: a direct read of the "
                "source could not confirm the asset is gone")
    return _Prune(out, held, note, tuple(to_confirm))
