"""Reading the ledger without writing it: what ``status`` opens.

`open_ledger` gives a read-only view of a job's state database. A SQLite file (a path, the
default) is read with the standard library's ``sqlite3``, opened read-only (``mode=ro``), in
plain deferred read transactions (and ``immutable=1`` where the file's folder is read-only:
`state.paths.sqlite_read_uri`): no write lock is ever taken, so a run writing the ledger at
the same moment never makes this wait (in WAL mode, which the store sets, readers and the one
writer do not block each other: SQLite docs, "Write-Ahead Logging", "Concurrency"), and no
SQLAlchemy is imported (about 0.45 s of every ``status``: issue 12). Any other URL (a server
database) is a :class:`state.store.StateStore` opened ``read_only``, which likewise only
reads.

A file written by an older assetferry is read as it is: a table it lacks reads as empty, a
column it lacks (``ADDED_COLUMNS``) as NULL; the next ``migrate`` or ``sync`` adds them. A
file written by a newer one (another schema version) is refused with what to do, as the store
does.

Standard library only (and `state.records`, `state.paths`): keep it so.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from sys import intern
from types import TracebackType
from typing import Any, Protocol

from state.paths import not_a_folder, sqlite_read_uri
from state.records import (
    BUSY_TIMEOUT_MS,
    NO_JOURNAL,
    PRUNED_NOTE,
    RETIRED_NOTE_END,
    ItemRecord,
    ItemStatus,
    RunRecord,
    RunStatus,
    StateError,
    StateSchemaError,
)

SCHEMA_VERSION = 1
"""The schema version this reader reads: `state.models.SCHEMA_VERSION` (a test keeps the two
equal; this module cannot import that one, which imports SQLAlchemy)."""


class LedgerView(Protocol):
    """What ``status`` reads: the `state.store.StateStore` methods of the same names."""

    def ledger_counts(self, route: str) -> dict[str, int]: ...

    def runs(self, route: str, limit: int = 10) -> list[RunRecord]: ...

    def run_counts(self, route: str, run_id: int) -> dict[str, int]: ...

    def failed_items(self, route: str, limit: int = 50) -> list[ItemRecord]: ...

    def close(self) -> None: ...


def open_ledger(url: str) -> LedgerView:
    """A read-only view of the state database ``url`` (`[run] state`: a SQLite file path, or
    a SQLAlchemy URL). Raises StateError (what to do) when it cannot be read."""
    if "://" in url or not url.strip():
        from state.store import StateStore

        return StateStore(url, read_only=True)
    return SqliteLedger(Path(url).expanduser().resolve())


_ITEM_COLUMNS = ("kind", "source_id", "status", "path", "source_url", "source_hash",
                 "target_id", "target_url", "target_path", "attempts", "last_error", "journal",
                 "intent", "last_run_id", "updated_at", "target_marker")
"""The ``items`` columns in `ItemRecord`'s field order (``route`` aside: the caller's)."""


_HELD_ARGS = (ItemStatus.SKIPPED.value, PRUNED_NOTE, f"%{RETIRED_NOTE_END}")
"""The arguments of the test of an asset not migrated (unsupported, a conflict held back), as
`state.store._held_back`: SKIPPED with a reason, neither pruned nor retired."""


def _when(value: str | None) -> datetime | None:
    """A SQLite DATETIME column as the store writes it (naive UTC text, SQLAlchemy's
    ``YYYY-MM-DD HH:MM:SS.ffffff``) as an aware UTC datetime."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class SqliteLedger:
    """A SQLite state file, read-only, with ``sqlite3``: `LedgerView`.

    Each method is one deferred read transaction (one snapshot). Raises StateError when the
    file cannot be read, StateSchemaError when a newer assetferry wrote it.
    """

    def __init__(self, path: Path) -> None:
        self._where = str(path)
        not_a_folder(path)
        try:
            self._db = sqlite3.connect(sqlite_read_uri(path), uri=True,
                                       isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._columns = self._read_schema()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from None
        except BaseException:
            self._db.close()
            raise

    def _error(self, exc: sqlite3.Error) -> StateError:
        reason = str(exc)
        if "locked" in reason:
            return StateError(
                f"state database {self._where} stayed locked by another process for "
                f"{BUSY_TIMEOUT_MS // 1000} s ({reason}); try again when it has finished.")
        return StateError(
            f"state database {self._where} cannot be used ({reason}): it is damaged, not an "
            "assetferry state file, or not readable. Restore it from a backup, or move it "
            "aside to start over: the next plan then adopts the assets already in the target "
            "(same folder, name and bytes) instead of uploading them again.")

    def _read_schema(self) -> dict[str, set[str]]:
        """The columns of each of our tables the file has; checks the schema version."""
        with self._read() as db:
            tables = {name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = {table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                       for table in ("runs", "items", "schema_version") if table in tables}
            if "schema_version" in columns:
                found = db.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
                if found is not None and found[0] != SCHEMA_VERSION:
                    newer = "a newer" if found[0] > SCHEMA_VERSION else "an older, unsupported"
                    raise StateSchemaError(
                        f"state database {self._where} has schema version {found[0]}, written "
                        f"by {newer} assetferry; this one reads version {SCHEMA_VERSION}. "
                        "Upgrade assetferry or point [run] state at another file.")
        return columns

    def _read(self) -> _Snapshot:
        return _Snapshot(self._db, self._error)

    def ledger_counts(self, route: str) -> dict[str, int]:
        """As `state.store.StateStore.ledger_counts` (the same three index reads)."""
        result = {status.value: 0 for status in ItemStatus} | {"deleted": 0, "not_migrated": 0,
                                                               "folders": 0}
        if "items" not in self._columns:
            return result
        with self._read() as db:
            for name, n in db.execute(
                    "SELECT status, count(*) FROM items WHERE route = ? GROUP BY status",
                    (route,)):
                result[name] = result.get(name, 0) + n
            for (name,) in db.execute(
                    "SELECT status FROM items WHERE route = ? AND kind = 'folder'", (route,)):
                result[name] -= 1
                result["folders"] += 1
            (pruned,) = db.execute(
                "SELECT count(*) FROM items WHERE route = ? AND status = ? AND kind != 'folder'"
                " AND last_error = ?", (route, ItemStatus.SKIPPED.value, PRUNED_NOTE)).fetchone()
            (held,) = db.execute(
                "SELECT count(*) FROM items WHERE route = ? AND kind != 'folder' AND "
                "(status = ? AND last_error IS NOT NULL AND last_error != ? "
                "AND last_error NOT LIKE ?)",
                (route, *_HELD_ARGS)).fetchone()
        result[ItemStatus.SKIPPED.value] -= pruned + held
        result["deleted"] = pruned
        result["not_migrated"] = held
        return result

    def run_counts(self, route: str, run_id: int) -> dict[str, int]:
        """As `state.store.StateStore.run_counts`."""
        result = {status.value: 0 for status in ItemStatus} | {"deleted": 0, "not_migrated": 0,
                                                               "folders": 0}
        if "last_run_id" not in self._columns.get("items", ()):
            return result
        with self._read() as db:
            for name, n in db.execute(
                    "SELECT CASE WHEN kind = 'folder' THEN 'folders' WHEN status = ? AND "
                    "last_error = ? THEN 'deleted' WHEN (status = ? AND last_error IS NOT NULL "
                    "AND last_error != ? AND last_error NOT LIKE ?) THEN 'not_migrated' "
                    "ELSE status END AS key, count(*) FROM items "
                    "WHERE route = ? AND last_run_id = ? GROUP BY key",
                    (ItemStatus.SKIPPED.value, PRUNED_NOTE, *_HELD_ARGS, route, run_id)):
                result[name] = n
        return result

    def runs(self, route: str, limit: int = 10) -> list[RunRecord]:
        """As `state.store.StateStore.runs`: the route's runs, newest first."""
        if "runs" not in self._columns:
            return []
        with self._read() as db:
            rows = db.execute(
                "SELECT id, mode, status, started_at, finished_at, heartbeat_at, summary, "  # noqa: S608 - our column names
                f"{self._column('runs', 'owner')} FROM runs WHERE route = ? "
                "ORDER BY started_at DESC, id DESC LIMIT ?", (route, limit)).fetchall()
        return [RunRecord(id=id_, route=route, mode=mode, status=RunStatus(status),
                          started_at=_when(started) or datetime.min.replace(tzinfo=UTC),
                          finished_at=_when(finished), heartbeat_at=_when(beat),
                          summary=dict(json.loads(summary or "null") or {}), owner=owner)
                for id_, mode, status, started, finished, beat, summary, owner in rows]

    def failed_items(self, route: str, limit: int = 50) -> list[ItemRecord]:
        """As `state.store.StateStore.failed_items`: up to ``limit`` failed assets, by path."""
        if "items" not in self._columns:
            return []
        columns = ", ".join(self._column("items", c) for c in _ITEM_COLUMNS)
        with self._read() as db:
            rows = db.execute(
                f"SELECT {columns} FROM items WHERE route = ? AND kind = 'asset' AND "  # noqa: S608
                "status = ? ORDER BY path LIMIT ?",
                (route, ItemStatus.FAILED.value, limit)).fetchall()
        out = []
        for row in rows:
            values = dict(zip(_ITEM_COLUMNS, row, strict=True))
            values["status"] = ItemStatus(values["status"])
            values["journal"] = dict(json.loads(values["journal"] or "null") or {})
            values["updated_at"] = _when(values["updated_at"])
            out.append(ItemRecord(route=route, **values))
        return out

    def plan_records(self, route: str, kind: str | None = None) -> Iterator[ItemRecord]:
        """The route's ledger rows (of one kind, if given) as `state.store.StateStore.items`
        reads them with ``times=False`` (``updated_at`` left ``None``), one at a time as they
        are read (none is held here: ``plan`` reads 100,000), in one snapshot.

        Compact: one string per kind, intent and ``last_error`` text however many rows share
        it; the source id interned (``sys.intern``: a local folder's listing interns its
        paths, so a local source's, a local target's and the ledger's ids are one string)
        and reused by a path or target id of the same text, the target id's string by an
        equal target path; one shared empty journal (`NO_JOURNAL`). Raises StateError when
        the file cannot be read.
        """
        if "items" not in self._columns:
            return
        columns = ", ".join("NULL" if c == "updated_at" else self._column("items", c)
                            for c in _ITEM_COLUMNS)
        sql = f"SELECT {columns} FROM items WHERE route = ?"  # noqa: S608 - our column names
        args: tuple[str, ...] = (route,)
        if kind is not None:
            sql, args = sql + " AND kind = ?", (route, kind)
        statuses: dict[str, ItemStatus] = {s.value: s for s in ItemStatus}
        shared: dict[Any, Any] = {None: None}
        empty = NO_JOURNAL
        with self._read() as db:
            rows = db.execute(sql, args)
            try:
                for (kind_, sid, status, path, source_url, source_hash, target_id, target_url,
                     target_path, attempts, last_error, journal, intent, last_run_id, _,
                     marker) in rows:
                    sid = intern(sid)
                    if target_path is not None and target_path == target_id:
                        target_path = target_id
                    yield ItemRecord(
                        route, shared.setdefault(kind_, kind_), sid,
                        statuses[status], sid if path == sid else path, source_url,
                        source_hash, sid if target_id == sid else target_id, target_url,
                        sid if target_path == sid else target_path, attempts,
                        shared.setdefault(last_error, last_error),
                        empty if journal is None or journal == "{}"
                        else json.loads(journal) or empty,
                        shared.setdefault(intent, intent), last_run_id, None, marker)
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def _column(self, table: str, name: str) -> str:
        """``name``, or ``NULL`` where a file written before that column lacks it."""
        return name if name in self._columns.get(table, ()) else "NULL"

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _Snapshot:
    """One deferred read transaction (``BEGIN`` .. ``COMMIT``): the statements inside read
    one snapshot of the file. A driver error becomes the ledger's StateError."""

    def __init__(self, db: sqlite3.Connection, error: Any) -> None:
        self._db, self._to_error = db, error

    def __enter__(self) -> _Snapshot:
        try:
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise self._to_error(exc) from None
        return self

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._to_error(exc) from None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
