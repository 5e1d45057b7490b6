"""What the checkpoint holds, as the pipeline sees it, in the standard library alone: the
statuses, the records (never changed), the errors, the run lock's liveness test and the masked URL.

Split from `state.models` (the SQLAlchemy tables) and `state.store` so that a command that
only reads the ledger (``status``, through `state.reader`) imports no SQLAlchemy: about 0.45 s
of every such start-up (issue 12). `state.models` and `state.store` re-export every name here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

PRUNED_NOTE = "deleted from the target (pruned)"
"""``last_error`` of a ledger row whose target asset a prune deleted (status SKIPPED)."""

RETIRED_NOTE_END = "ledger row retired, nothing deleted"
"""End of ``last_error`` of a SKIPPED ledger row retired on purpose (its source asset is gone and
another source asset took over its target asset): skipped, not "not migrated"."""

EXCLUDED_NOTE_PREFIX = "excluded by "
"""Start of ``last_error`` of a DONE ledger row whose source asset the source or a filter rule
now leaves out (``excluded by mapping.filters.exclude: ...``): its target copy stays, and
prune never deletes it."""

NO_JOURNAL: Mapping[str, str] = {}
"""The journal of every ledger row read with none (nearly all of 100,000): one shared empty
dict, never written to (an `ItemRecord`'s journal is a read-only `Mapping`; a new journal is
a new dict). Both readers of the ledger (`state.store`, `state.reader`) hand out this one."""

STALE_AFTER = timedelta(seconds=60)
"""A RUNNING run whose heartbeat is older than this is taken as dead (resumable, not live)."""

BUSY_TIMEOUT_MS = 15_000
"""How long a SQLite connection waits for another process's lock (``busy_timeout``)."""


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ItemStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(slots=True, unsafe_hash=True)
class ItemRecord:
    """One folder or asset of a route; `(route, kind, source_id)` is the key.

    Never changed once made (a changed row is a copy: ``dataclasses.replace``), but not
    ``frozen``: a frozen dataclass sets each of its 17 fields through
    ``object.__setattr__``, most of the time ``plan`` spent building the 100,000 rows of
    its ledger read (issue 12); hashed by value as before."""

    route: str
    kind: str  # "asset" | "folder"
    source_id: str
    status: ItemStatus
    path: str = ""  # source path, "a/b/photo.jpg"
    source_url: str | None = None
    source_hash: str | None = None  # fingerprint of the source item when last done
    target_id: str | None = None
    target_url: str | None = None
    target_path: str | None = None
    attempts: int = 0
    last_error: str | None = None
    journal: Mapping[str, str] = field(default_factory=dict)  # multi-step upload notes
    intent: str | None = None  # "create" | "replace" | "update" | "delete" while IN_FLIGHT
    last_run_id: int | None = None
    updated_at: datetime | None = None  # tz-aware UTC, set by the store
    target_marker: str | None = None
    """What the target held right after our last write of it (JSON: ``size`` in bytes,
    ``version`` where the write's answer named one, ``at`` = our UTC clock after the write),
    so a later listing can tell an edit made in the target since (drift)."""


_KEEPS_TARGET = (ItemStatus.IN_FLIGHT, ItemStatus.FAILED)


def maps_target(rec: ItemRecord) -> bool:
    """Whether ledger row ``rec`` maps its source item to a target item (``target_id``,
    ``target_url``): every reader of the mapping asks this one question (export-map, the live
    map, ``verify``, the run report's map rows).

    A row that is ``done`` with a target id maps. So does one whose write to a target item we
    already mapped is open or was cut off: ``in_flight`` (its intent committed, the run killed
    or stopped before the result) or ``failed``, with a ``replace``, ``update`` or ``delete``
    intent (or none: a metadata update or a move writes no intent). The target item is still
    there and still ours (a replace keeps its id; a delete not yet confirmed may have gone,
    which ``verify`` reports as missing). A ``create`` intent maps nothing: its target id,
    if any, is an earlier copy already missing from the target."""
    if not rec.target_id:
        return False
    if rec.status is ItemStatus.DONE:
        return True
    return rec.status in _KEEPS_TARGET and rec.intent != "create"


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    route: str
    mode: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    summary: Mapping[str, Any]
    owner: str | None = None  # "host:pid" of the process that runs (ran) it


class RunLockedError(Exception):
    """Another process is running this route (or took over the run we were writing for).

    ``owner``: the running run's owner in the ledger (``host:pid``, or what a caller that
    passed its own ``owner`` to :meth:`StateStore.start_run` wrote), when known, so the
    caller can say who runs it and how to follow it."""

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner


class StateError(Exception):
    """The state database can't be opened, read or written; the message says what to do.

    Raised instead of the driver's or the file system's error, so a bad ``[run] state`` (a
    path under a file, an unknown URL scheme, a driver that is not installed, a damaged file)
    is a message for the user, never a traceback.
    """


class StateSchemaError(StateError):
    """The state database has a schema this version of assetferry can't read."""


def utcnow() -> datetime:
    """Now, tz-aware UTC."""
    return datetime.now(UTC)


def this_owner() -> str:
    """``host:pid`` of this process: the owner a run records by default."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool | None:
    """Whether the run's process still exists: known on its own host, ``None`` elsewhere.

    On the same host the answer is exact (a killed run is resumable at once; a live one with
    a slow upload is never taken over). From another host only the heartbeat can tell.
    """
    if not owner:
        return None
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_is_live(owner: str | None, heartbeat: datetime, now: datetime | None = None) -> bool:
    """Whether a RUNNING run's process still runs: the run lock's test, and ``status``'s.

    Its process exists (same host), or, from another host, its heartbeat is younger than
    `STALE_AFTER`. A run that is not live is interrupted: the next run takes over and resumes.
    """
    alive = _owner_alive(owner)
    return alive is True or (alive is None and (now or utcnow()) - heartbeat < STALE_AFTER)


def display_url(url: str) -> str:
    """``url`` as it may be shown (status, reports, logs): a server URL with its password
    replaced by ``***``; a path, or a string that is not a URL, unchanged."""
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    if "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")  # a password may hold '@' ':' '/' unencoded
    user, has_password, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
