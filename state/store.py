"""`StateStore`: the checkpoint's only door (runs, item ledger, run lock).

Synchronous on purpose: the pipeline's single writer task calls it through
`anyio.to_thread.run_sync`. Every public method is one short transaction on its own session,
so the store may be used from any thread, one call at a time per thread.

Durability. On SQLite the store sets `journal_mode=WAL` and `synchronous=FULL`: with WAL,
`NORMAL` survives a crash of the process but may lose the last commits on power loss or an OS
crash, and an intent (`IN_FLIGHT`) that is lost after its upload started is exactly the
duplicate we promise never to make. FULL costs one fsync per `write()`, which the pipeline
amortises by batching. `busy_timeout` lets a second writer (another worker's store) wait for
the lock instead of failing with "database is locked" (readers, ``read_only=True`` and
`state.reader`, take no lock a writer holds: WAL), and write transactions
start with `BEGIN IMMEDIATE` so that a read-then-write (the run lock in `start_run`) can't be
overtaken by another writer in between.

The run lock is a `RUNNING` row whose heartbeat is younger than `STALE_AFTER`. It assumes the
processes share a clock, which holds on one machine; with a shared server database across
machines, keep clocks in sync (NTP). Its check-then-insert in `start_run` is serialised: on
SQLite by `BEGIN IMMEDIATE` (one writer at a time), on PostgreSQL by a transaction-scoped
advisory lock per route (``pg_advisory_xact_lock``) plus ``SELECT .. FOR NO KEY UPDATE`` of
the route's RUNNING rows, so a heartbeat (which locks its run row the same way) and a
take-over never both win. On other backends it is not serialised.

Item claims (`claim` / `release`) let several workers share one route without two of them
ever holding the same item: one ``INSERT .. ON CONFLICT DO UPDATE .. WHERE (same owner or
lease expired) RETURNING`` per batch, on SQLite and PostgreSQL alike (see `claim`).

No secrets: no column holds credentials, and URLs are shown with the password masked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Text,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    inspect,
    make_url,
    null,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from state.models import (
    ADDED_COLUMNS,
    ADDED_INDEXES,
    SCHEMA_VERSION,
    Base,
    ItemClaim,
    ItemState,
    Run,
    SchemaVersion,
)
from state.paths import (
    SQLITE_SIDECARS,
    check_location,
    not_a_folder,
    read_only_state,
    sqlite_files,
    sqlite_read_uri,
)
from state.paths import STATE_FIX as _FIX
from state.records import (
    BUSY_TIMEOUT_MS,
    EXCLUDED_NOTE_PREFIX,
    NO_JOURNAL,
    PRUNED_NOTE,
    RETIRED_NOTE_END,
    STALE_AFTER,
    ItemRecord,
    ItemStatus,
    RunLockedError,
    RunRecord,
    RunStatus,
    StateError,
    StateSchemaError,
    display_url,
    run_is_live,
    this_owner,
    utcnow,
)

__all__ = [
    "EXCLUDED_NOTE_PREFIX",
    "PRUNED_NOTE",
    "RETIRED_NOTE_END",
    "SQLITE_SIDECARS",
    "STALE_AFTER",
    "ItemRecord",
    "ItemStatus",
    "RunLockedError",
    "RunRecord",
    "RunStatus",
    "StateError",
    "StateSchemaError",
    "StateStore",
    "check_location",
    "display_url",
    "run_is_live",
    "sqlite_files",
]

log = structlog.get_logger(__name__)

_utcnow, _this_owner = utcnow, this_owner
_WRITE = "assetferry_write"  # connection execution option: begin with BEGIN IMMEDIATE




def _to_url(url: str) -> URL:
    """A SQLAlchemy URL as is; a plain path becomes a SQLite file, parent dirs created.

    Raises StateError for a URL SQLAlchemy can't parse or a folder that can't be made.
    """
    if not url.strip():
        raise StateError(f"state database path is empty ([run] state = {url!r}). {_FIX}")
    try:
        if "://" in url:
            parsed = make_url(url)
        else:
            parsed = URL.create("sqlite", database=str(Path(url).expanduser().resolve()))
    except (ArgumentError, ValueError):
        raise StateError(
            f"state database {display_url(url)} is not a valid URL: percent-encode any "
            f"@ : / % in its user name and password (a password from ${{VAR}} is encoded "
            f"for you). {_FIX}") from None
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith(
        "file:"
    ):
        not_a_folder(Path(db))
        folder = Path(db).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocker = next((p for p in (folder, *folder.parents) if p.is_file()), folder)
            raise StateError(
                f"state database {db}: {blocker} is a file, not a folder. {_FIX}"
            ) from None
        except OSError as exc:
            raise StateError(
                f"state database {db}: its folder {folder} cannot be created "
                f"({exc.strerror or exc}). {_FIX}"
            ) from None
    return parsed


def _engine_error(where: str, exc: Exception) -> StateError:
    """A driver or dialect problem while creating the engine, in words that say what to do."""
    if isinstance(exc, NoSuchModuleError):
        return StateError(
            f"state database {where}: SQLAlchemy knows no database called "
            f"{where.split(':', 1)[0]!r}. {_FIX} (sqlite:///path.db, postgresql+psycopg://...)"
        )
    name = getattr(exc, "name", None) or str(exc)
    if name.split(".")[0] == "psycopg":
        return StateError(
            f"state database {where} needs the PostgreSQL driver psycopg, which is not "
            f"installed: {PG_INSTALL} (or pip install 'psycopg[binary]') into assetferry's "
            "environment, or use a SQLite file path."
        )
    package = DRIVER_PACKAGES.get(name.split(".")[0], name)
    return StateError(
        f"state database {where} needs the Python driver {name!r}, which is not installed: "
        f"install it into assetferry's environment (pip install {package}), or use a SQLite "
        "file path."
    )


DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "asyncmy": "asyncmy",
    "aiomysql": "aiomysql",
    "oracledb": "oracledb",
    "cx_Oracle": "cx-Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "aiosqlite": "aiosqlite",
}
"""The PyPI package of each DBAPI module SQLAlchemy's dialects import (SQLAlchemy 2.0 docs,
Dialects: each ``dialect+driver`` names its DBAPI); the module name is not always the
package's (``mysql://`` imports ``MySQLdb``, from the package ``mysqlclient``)."""


def _scrub(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` (a driver may quote its connection string back)."""
    return text.replace(secret, "***") if secret else text


PG_INSTALL = "pip install 'assetferry[postgres]'"
"""What installs the PostgreSQL driver (psycopg 3 with its bundled libpq, no compiler)."""

_PG_TRANSIENT = ("40P01", "40001")  # deadlock_detected, serialization_failure


def _server_error(where: str, exc: DBAPIError, secret: str | None) -> StateError:
    """A PostgreSQL (or other server) failure in words that say what to do; the password is
    never part of it (libpq does not echo it, and ``secret`` is scrubbed besides)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None)
    reason = _scrub(" ".join(str(orig or type(exc).__name__).split()), secret)
    low = reason.lower()
    if code in ("28P01", "28000") or "password authentication failed" in low \
            or "no password supplied" in low or "pg_hba.conf" in low:
        return StateError(
            f"state database {where}: the server refused the login ({reason}). Check the user "
            "in [run] state and the password: give it as ${VAR} in the URL, or in PGPASSWORD "
            "or ~/.pgpass; it is never shown here."
        )
    if code == "3D000" or ("database" in low and "does not exist" in low):
        return StateError(
            f"state database {where}: the database does not exist on the server ({reason}). "
            "Create it once (createdb NAME, or CREATE DATABASE NAME), or fix the name in "
            "[run] state; assetferry creates its tables, not the database."
        )
    if code is None and isinstance(exc, OperationalError) and (
            "connection" in low or "could not" in low or "timeout" in low):
        return StateError(
            f"state database {where}: the server cannot be reached ({reason}). Check that "
            "PostgreSQL runs there and accepts TCP connections on that host and port "
            "(listen_addresses, firewall), then run the same command again: a run resumes "
            "from its ledger."
        )
    if code in _PG_TRANSIENT:
        return StateError(
            f"state database {where}: the server aborted a transaction that conflicted with "
            f"another process ({reason}); run the same command again: it resumes."
        )
    return StateError(
        f"state database {where} cannot be used ({reason}). Check that [run] state names a "
        "database assetferry may create tables in and write to."
    )


def _damaged(where: str, exc: DBAPIError, file: Path | None = None) -> StateError:
    """A SQLite failure in words that say what to do: locked, read-only (``file``, the
    SQLite file, or its folder cannot be written: `state.paths.read_only_state`), or else
    damaged."""
    reason = str(exc.orig) if exc.orig is not None else type(exc).__name__
    if isinstance(exc, OperationalError) and "locked" in reason:
        return StateError(
            f"state database {where} stayed locked by another process for "
            f"{BUSY_TIMEOUT_MS // 1000} s ({reason}); try again when it has finished."
        )
    read_only = None if file is None else read_only_state(file.resolve(), reason)
    if read_only is not None:
        return StateError(read_only)
    return StateError(
        f"state database {where} cannot be used ({reason}): it is damaged, not an assetferry "
        "state file, or not writable. Restore it from a backup, or move it aside to start "
        "over: the next plan then adopts the assets already in the target (same folder, "
        "name and bytes) instead of uploading them again."
    )


_SQLITE_BUSY = 5
"""SQLite's primary result code SQLITE_BUSY (extended codes keep it in their low byte)."""


def _is_busy(exc: BaseException) -> bool:
    """Whether a stdlib ``sqlite3`` error is SQLITE_BUSY ("database is locked")."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_BUSY
    return "database is locked" in str(exc)


def _enable_wal(cursor: Any, *, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the database is busy, for up to ``timeout``
    seconds.

    SQLite does not apply the busy handler (``busy_timeout``) to this switch: it reads the
    file's header in a read transaction and then upgrades it to the write lock it needs to
    mark the file WAL, and a lock upgrade from inside a read transaction fails with
    SQLITE_BUSY at once instead of waiting, because two such upgraders would deadlock
    (SQLite docs: "sqlite3_busy_handler": "the busy handler is not invoked" when that could
    deadlock; "Write-Ahead Logging", "Activating And Configuring WAL Mode"). So processes or
    threads opening one fresh database file at once (workers started together) made all but
    one fail in milliseconds with "database is locked", although ``busy_timeout`` said 15 s.
    Each retry starts from no lock, so one of them wins, and the others then find the file
    already WAL (no write needed). A file already WAL needs no lock upgrade at all.
    """
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except Exception as exc:  # the DBAPI's OperationalError
            if not _is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))  # jitter, so retries spread
        pause = min(pause * 2, 0.1)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_connect_read_only(dbapi_conn: Any, _record: Any) -> None:
    """A read-only store's connection: no journal-mode switch (it may need a write lock),
    and ``query_only``: SQLite refuses any write on it."""
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _dialect_insert(dialect: str) -> Callable[[Any], Any] | None:
    """The INSERT with ON CONFLICT of SQLite or PostgreSQL (of an entity or a table); None for
    other backends.

    Each dialect's module is imported here, when its database is in use: the PostgreSQL
    dialect costs a SQLite user's every command start-up time (issue 12)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return None


@functools.cache
def _upsert_statement(dialect: str) -> Executable | None:
    """INSERT .. ON CONFLICT (key) DO UPDATE for SQLite and PostgreSQL; None elsewhere.

    On the table (Core), not the ORM entity: a ledger write is one executemany of plain
    rows, without the ORM's bulk-insert bookkeeping, and the statement is built once per
    dialect (the group commit writes one batch every few uploads: issue 12)."""
    insert = _dialect_insert(dialect)
    if insert is None:
        return None
    stmt = insert(ItemState.__table__)
    key = [c.name for c in ItemState.__table__.primary_key]
    others = [c.name for c in ItemState.__table__.columns if c.name not in key]
    update: Executable = stmt.on_conflict_do_update(
        index_elements=key, set_={name: stmt.excluded[name] for name in others}
    )
    return update


@functools.cache
def _beat_statement() -> Executable:
    """``UPDATE runs SET heartbeat_at = :now WHERE id = :run_id AND status = 'running'``,
    built once (see :meth:`StateStore._beat`)."""
    return (update(Run).where(Run.id == bindparam("run_id"), Run.status == RunStatus.RUNNING)
            .values(heartbeat_at=bindparam("now")))


def _beat_missed(run_id: int, found: tuple[RunStatus, str] | None) -> None:
    """After a heartbeat ``UPDATE`` of run ``run_id`` matched no row (the ORM path and the
    ``sqlite3`` path alike): raises LookupError when there is no such run (``found`` is
    ``None``), RunLockedError when another process marked it INTERRUPTED (``found``: its
    status and route); a run closed otherwise is left to its caller, as before."""
    if found is None:
        raise LookupError(f"no run {run_id} in the state database")
    status, route = found
    if status is RunStatus.INTERRUPTED:
        raise RunLockedError(
            f"run {run_id} of route {route!r} was marked interrupted by another "
            "process after its heartbeat went stale; stop writing for it"
        )


_ITEM_COLUMNS = ("route", "kind", "source_id", "status", "path", "source_url", "source_hash",
                 "target_id", "target_url", "target_path", "attempts", "last_error", "journal",
                 "intent", "last_run_id", "updated_at", "target_marker")
"""The ``items`` columns in the order :meth:`StateStore._write_sqlite` binds them."""

_SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 50
"""Rows per ``INSERT`` of :meth:`StateStore._write_sqlite`: 17 bound values each, under
SQLite's 32,766 values per statement (999 before SQLite 3.32)."""


@functools.cache
def _sqlite_upsert(rows: int) -> str:
    """``INSERT INTO items (..) VALUES (..), .. ON CONFLICT (key) DO UPDATE SET ..`` for
    ``rows`` rows (each size's text built once)."""
    key = ("route", "kind", "source_id")
    one = "(" + ", ".join("?" * len(_ITEM_COLUMNS)) + ")"
    return (f"INSERT INTO items ({', '.join(_ITEM_COLUMNS)}) VALUES "  # noqa: S608 - our names
            + ", ".join([one] * rows)
            + f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _ITEM_COLUMNS if c not in key))


CLAIM_BATCH = 1000
"""Claims per INSERT statement (5 bound values each: under SQLite's 32,766 and PostgreSQL's
65,535 parameters per statement)."""


def _lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit number) for ``name`` ("schema", or
    "run lock ROUTE"): stable across processes and versions (BLAKE2b, not Python's salted
    hash), prefixed so it does not collide with another application's keys by chance."""
    digest = hashlib.blake2b(f"assetferry {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _add_columns(conn: Connection) -> None:
    """Add the nullable columns of ``ADDED_COLUMNS`` a file written before them lacks
    (``ALTER TABLE .. ADD COLUMN``: additive, so the schema version stays)."""
    have: dict[str, set[str]] = {}
    inspector = inspect(conn)
    for table, column in ADDED_COLUMNS:
        if table not in have:
            have[table] = {c["name"] for c in inspector.get_columns(table)}
        if column in have[table]:
            continue
        col = Base.metadata.tables[table].columns[column]
        kind = col.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD COLUMN "{column}" {kind}')
        log.info("state.column_added", table=table, column=column)


def _add_indexes(conn: Connection) -> None:
    """Create the indexes of ``ADDED_INDEXES`` a file written before them lacks (portable
    ``CREATE INDEX``, checked first: additive, so the schema version stays)."""
    for table, name in ADDED_INDEXES:
        index = next(i for i in Base.metadata.tables[table].indexes if i.name == name)
        if name not in {i["name"] for i in inspect(conn).get_indexes(table)}:
            index.create(conn)
            log.info("state.index_added", table=table, index=name)


_ITEMS = ItemState.__table__
_RECORD_COLUMNS = tuple(
    # the journal as stored (JSON text): nearly every row holds "{}", decoded only otherwise
    type_coerce(_ITEMS.c.journal, Text).label("journal") if f.name == "journal"
    else _ITEMS.c[f.name] for f in fields(ItemRecord) if f.name != "route")
"""The ``items`` columns in `ItemRecord`'s field order (``route`` aside: the caller's)."""
_JOURNAL_AT = [c.name for c in _RECORD_COLUMNS].index("journal")
_SOURCE_ID_AT = [c.name for c in _RECORD_COLUMNS].index("source_id")
_SAME_AS_SOURCE_ID = tuple([c.name for c in _RECORD_COLUMNS].index(name)
                           for name in ("path", "target_id", "target_path"))
"""Columns that often hold the source id's text (a local folder's ids are its paths)."""
_TARGET_PATH_AT = [c.name for c in _RECORD_COLUMNS].index("target_path")
_TARGET_ID_AT = [c.name for c in _RECORD_COLUMNS].index("target_id")


def _held_back() -> Any:
    """The ledger rows of assets not migrated: SKIPPED with a reason (unsupported, or a
    conflict the plan held back), neither pruned (:data:`PRUNED_NOTE`) nor retired on purpose
    (:data:`RETIRED_NOTE_END`). ``status`` counts them as "not migrated", as the run
    summary does, never as "skipped" (left alone on purpose)."""
    return ((ItemState.status == ItemStatus.SKIPPED) & ItemState.last_error.is_not(None)
            & (ItemState.last_error != PRUNED_NOTE)
            & ItemState.last_error.not_like(f"%{RETIRED_NOTE_END}"))


def _journal(raw: Any) -> Mapping[str, str]:
    """A journal column's value as read raw: JSON text (SQLite), or already decoded by the
    driver (psycopg decodes ``json`` columns itself); NULL, ``null`` and ``{}`` are empty
    (the shared `NO_JOURNAL`)."""
    if isinstance(raw, str):
        return NO_JOURNAL if raw == "{}" else json.loads(raw) or NO_JOURNAL
    return dict(raw) if raw else NO_JOURNAL


class StateStore:
    """The checkpoint of every route kept in one database.

    ``read_only``: for commands that only read (``status`` on a server database,
    ``export-map``, ``verify``, ``plan``): the store creates and upgrades nothing and never
    begins a write transaction, so it never waits for a run that is writing (SQLite in WAL
    mode and PostgreSQL let readers read beside the writer); on SQLite it does not switch
    the journal mode either, and ``PRAGMA query_only`` refuses any write; on PostgreSQL its
    transactions are ``READ ONLY``. A file written before a table or column existed is read
    as it is (a missing table as empty, a missing ``ADDED_COLUMNS`` column as NULL); the
    next writing store adds them. The writing methods must not be called on it.

    Raises `StateSchemaError` when the database was written by a newer (or unknown) schema.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        parsed = _to_url(url)
        self._secret = parsed.password if isinstance(parsed.password, str) else None
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._file: Path | None = (
            Path(parsed.database) if self._sqlite and parsed.database
            and parsed.database != ":memory:" and not parsed.database.startswith("file:")
            and not parsed.query else None)
        """The SQLite file (not in memory, no URL options), which `items` may read with
        ``sqlite3``."""
        self._where = (str(self._file.resolve()) if self._file is not None
                       else parsed.render_as_string(hide_password=True))
        """How messages name the database: a SQLite file by its plain path, as ``plan`` and
        ``status`` do (`state.reader.SqliteLedger`), any other by its URL, password hidden."""
        self._read_only = read_only
        self._absent: set[str] = set()  # tables the database lacks (read-only: not created)
        self._record_columns: tuple[Any, ...] = _RECORD_COLUMNS
        try:
            self._engine = self._create_engine(
                parsed, read_only=read_only,
                read_uri=sqlite_read_uri(self._file.resolve())
                if read_only and self._file is not None and self._file.exists() else None)
        except (NoSuchModuleError, ImportError) as exc:
            raise _engine_error(self._where, exc) from None
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        try:
            if read_only:
                self._check_schema()
            else:
                self._init_schema()
        except BaseException:
            self._engine.dispose()
            raise

    @staticmethod
    def _create_engine(parsed: URL, *, read_only: bool = False,
                       read_uri: str | None = None) -> Engine:
        """``read_uri``: a read-only store's SQLite file as `state.paths.sqlite_read_uri`
        gives it (``mode=ro``, and ``immutable=1`` on a read-only folder, which a plain open
        cannot read: it must create the ``-shm`` file)."""
        engine: Engine
        if parsed.get_backend_name() == "sqlite":
            memory = parsed.database in (None, "", ":memory:")
            extra: dict[str, Any] = {}
            if read_uri is not None:
                uri = read_uri
                extra["creator"] = lambda: sqlite3.connect(uri, uri=True,
                                                           check_same_thread=False)
            engine = create_engine(
                parsed,
                # one shared connection, so every thread sees the same in-memory database
                poolclass=StaticPool if memory else None,
                connect_args={"check_same_thread": False} if memory else {},
                **extra,
            )
            event.listen(engine, "connect",
                         _sqlite_connect_read_only if read_only else _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            # short connect timeout: an unreachable server is an error in seconds, not minutes
            postgres = parsed.get_backend_name() == "postgresql"
            args = {"connect_timeout": 10} if postgres else {}
            engine = create_engine(parsed, pool_pre_ping=True, connect_args=args)
            if read_only and postgres:  # SET TRANSACTION READ ONLY, by the dialect
                engine = engine.execution_options(postgresql_readonly=True)
        return engine

    def _check_schema(self) -> None:
        """A read-only store's look at the schema: the version (StateSchemaError for another
        one), the tables and ``ADDED_COLUMNS`` the database lacks (read as empty and NULL);
        nothing is created or added."""
        with self._transaction() as s:
            conn = s.connection()
            inspector = inspect(conn)
            tables = set(inspector.get_table_names())
            self._absent = {t for t in Base.metadata.tables if t not in tables}
            if "schema_version" in tables:
                self._check_version(s.scalar(
                    select(SchemaVersion.version).where(SchemaVersion.id == 1)))
            if "items" in tables:
                have = {c["name"] for c in inspector.get_columns("items")}
                self._record_columns = tuple(
                    c if c.name in have or c.name not in {n for t, n in ADDED_COLUMNS
                                                          if t == "items"}
                    else null().label(c.name) for c in _RECORD_COLUMNS)

    def _check_version(self, found: int | None) -> None:
        """StateSchemaError when the database's schema version is not this one's."""
        if found is not None and found != SCHEMA_VERSION:
            newer = "a newer" if found > SCHEMA_VERSION else "an older, unsupported"
            raise StateSchemaError(
                f"state database {self._where} has schema version {found}, written by "
                f"{newer} assetferry; this one reads version {SCHEMA_VERSION}. Upgrade "
                "assetferry or point [run] state at another file."
            )

    def _lacks(self, *tables: str) -> bool:
        """Whether a read-only store's database lacks one of ``tables`` (it reads as empty)."""
        return any(t in self._absent for t in tables)

    def _init_schema(self) -> None:
        with self._transaction(write=True) as s:
            conn = s.connection()
            if conn.dialect.name == "postgresql":
                # processes opening a fresh database at once would race to CREATE TABLE (one
                # fails on the duplicate); SQLite's BEGIN IMMEDIATE already serialises them
                s.execute(select(func.pg_advisory_xact_lock(_lock_key("schema"))))
            Base.metadata.create_all(conn, tables=[Base.metadata.tables["schema_version"]])
            found = s.scalar(select(SchemaVersion.version).where(SchemaVersion.id == 1))
            self._check_version(found)
            Base.metadata.create_all(conn)
            _add_columns(conn)
            _add_indexes(conn)
            if found is None:
                s.add(SchemaVersion(id=1, version=SCHEMA_VERSION))

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on exit (rolled back on error).

        A driver error (damaged file, lock held too long, server gone) becomes StateError.
        """
        try:
            with self._sessions() as s, s.begin():
                if write:
                    s.connection(execution_options={_WRITE: True})
                yield s
        except DBAPIError as exc:
            if self._sqlite:
                raise _damaged(self._where, exc, self._file) from None
            raise _server_error(self._where, exc, self._secret) from None

    # runs

    def start_run(self, route: str, mode: str, *, planned: int | None = None,
                  owner: str | None = None) -> int:
        """Open a RUNNING run for `route` and return its id.

        ``planned``: how many asset actions the run's plan will carry out, kept in the run's
        summary so `status` can say how many are still pending after a kill. ``owner``: who
        runs it (default ``host:pid`` of this process, whose death ends the run at once); a
        run carried out by many processes (a Temporal workflow) names itself with a host
        part that is no machine's (``temporal:<workflow id>``), so only its heartbeat tells.

        Earlier RUNNING runs of the route with a heartbeat older than `STALE_AFTER` are marked
        INTERRUPTED (their `finished_at` is when they were last seen alive). Raises
        `RunLockedError` if one is still fresh: another process is running this route.
        """
        now = _utcnow()
        with self._transaction(write=True) as s:
            if s.get_bind().dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE did it
                s.execute(select(func.pg_advisory_xact_lock(_lock_key(f"run lock {route}"))))
            running = s.scalars(
                select(Run)
                .where(Run.route == route, Run.status == RunStatus.RUNNING)
                .with_for_update(key_share=True)
            ).all()
            for run in running:
                seen = run.heartbeat_at or run.started_at
                if run_is_live(run.owner, seen, now):
                    age = max(0, int((now - seen).total_seconds()))
                    raise RunLockedError(
                        f"route {route!r} is being run by another process (run {run.id}, "
                        f"heartbeat {age} s ago); wait for it to finish, or retry after "
                        f"{int(STALE_AFTER.total_seconds())} s if that process is gone",
                        owner=run.owner)
            for run in running:
                run.status = RunStatus.INTERRUPTED
                run.finished_at = run.heartbeat_at or run.started_at
                log.info("state.run_interrupted", run_id=run.id, route=route)
            new = Run(
                route=route,
                mode=mode,
                status=RunStatus.RUNNING,
                started_at=now,
                heartbeat_at=now,
                owner=owner or _this_owner(),
                summary={} if planned is None else {"planned": planned},
            )
            s.add(new)
            s.flush()
            return new.id

    def set_planned(self, run_id: int, planned: int) -> None:
        """Record how many asset actions run ``run_id``'s plan carries out (``planned`` of
        `start_run`), for a run that took the run lock before it listed and planned."""
        with self._transaction(write=True) as s:
            run = s.get(Run, run_id, with_for_update={"key_share": True})
            if run is None:
                raise LookupError(f"no run {run_id} in the state database")
            run.summary = {**(run.summary or {}), "planned": planned}

    def abandon_run(self, run_id: int) -> None:
        """Remove run ``run_id`` while it is still RUNNING, releasing the run lock: for a run
        stopped before it carried anything out (its listing or plan failed, or was
        interrupted), which wrote no ledger row and so leaves no run behind."""
        with self._transaction(write=True) as s:
            run = s.get(Run, run_id, with_for_update={"key_share": True})
            if run is not None and run.status is RunStatus.RUNNING:
                s.delete(run)

    def heartbeat(self, run_id: int) -> None:
        """Mark the run alive. Raises `RunLockedError` if another process took it over."""
        with self._transaction(write=True) as s:
            self._beat(s, run_id, _utcnow())

    @staticmethod
    def _beat(s: Session, run_id: int, now: datetime) -> None:
        """Beat the heartbeat of run ``run_id`` if it is RUNNING. Raises RunLockedError when
        another process marked it INTERRUPTED, LookupError when there is no such run.

        One ``UPDATE .. WHERE status = 'running'`` (Core: every ledger write makes it, and the
        ORM's load-then-flush of the run row was 40% of a group commit's CPU; issue 12). On a
        server the UPDATE locks the row FOR NO KEY UPDATE, as the ``SELECT .. FOR NO KEY
        UPDATE`` before it did: a take-over in start_run waits for this write (and sees its
        fresh heartbeat), or this waits for the take-over and then matches no row (and sees
        INTERRUPTED); NO KEY, so ledger rows pointing at the run (a key-share lock) never
        wait on it."""
        conn = s.connection()  # a Connection runs it as a Core statement (no ORM state)
        if conn.execute(_beat_statement(), {"run_id": run_id, "now": now}).rowcount:
            return
        found = conn.execute(select(Run.status, Run.route).where(Run.id == run_id)).first()
        _beat_missed(run_id, None if found is None else (found.status, found.route))

    def finish_run(self, run_id: int, status: RunStatus, summary: Mapping[str, Any]) -> None:
        """Close the run with a final status and a JSON-serialisable summary."""
        if status is RunStatus.RUNNING:
            raise ValueError("finish_run needs a final status, not RUNNING")
        now = _utcnow()
        with self._transaction(write=True) as s:
            run = s.get(Run, run_id, with_for_update={"key_share": True})
            if run is None:
                raise LookupError(f"no run {run_id} in the state database")
            run.status = status
            run.finished_at = now
            run.heartbeat_at = now
            run.summary = {**(run.summary or {}), **summary}

    def runs(self, route: str, limit: int = 10) -> list[RunRecord]:
        """The route's runs, newest first."""
        if self._lacks("runs"):
            return []
        with self._transaction() as s:
            rows = s.scalars(
                select(Run)
                .where(Run.route == route)
                .order_by(Run.started_at.desc(), Run.id.desc())
                .limit(limit)
            )
            return [run.record() for run in rows]

    def routes(self) -> list[str]:
        """Every route with a run or an item, sorted."""
        if self._lacks("runs", "items"):
            return []
        with self._transaction() as s:
            found = set(s.scalars(select(Run.route).distinct()))
            found.update(s.scalars(select(ItemState.route).distinct()))
        return sorted(found)

    # items

    def items(self, route: str, kind: str | None = None, *,
              times: bool = True) -> dict[tuple[str, str], ItemRecord]:
        """The route's items (of one kind, if given), keyed by `(kind, source_id)`.

        ``times=False``: each record's ``updated_at`` is left ``None`` (not read: a plan has
        no use for it, and turning 100,000 stored times into datetimes is a tenth of the read).
        On a SQLite file that read goes through the standard library's ``sqlite3``, read-only
        (`state.reader.SqliteLedger.plan_records`: the same records, at about half the CPU of
        SQLAlchemy's row handling and fewer strings held); a server database is read here.

        One Core select whose rows become `ItemRecord` directly (no ORM object, identity map
        or change tracking per row: ``plan`` reads 100,000 of them), sharing one ``route``
        string, one string per kind, and the source id's string with a path or target id that
        holds the same text (a local folder's ids are its paths).
        """
        if not times and self._file is not None:
            from state.reader import SqliteLedger  # the standard library's sqlite3

            with SqliteLedger(self._file) as ledger:
                return {(rec.kind, rec.source_id): rec
                        for rec in ledger.plan_records(route, kind)}
        columns = self._record_columns
        if not times:
            columns = tuple(null().label(c.name) if c.name == "updated_at" else c
                            for c in columns)
        query = select(*columns).where(_ITEMS.c.route == route)
        if kind is not None:
            query = query.where(_ITEMS.c.kind == kind)
        return {(rec.kind, rec.source_id): rec for rec in self._records(route, query)}

    def _records(self, route: str, query: Executable) -> Iterator[ItemRecord]:
        """The `ItemRecord` of each row of ``query`` (a select of ``self._record_columns``),
        as they are read (none is held here: ``plan`` reads 100,000)."""
        if self._lacks("items"):
            return
        kinds: dict[str, str] = {}
        journal, sid_at, same = _JOURNAL_AT, _SOURCE_ID_AT, _SAME_AS_SOURCE_ID
        target_path, target_id = _TARGET_PATH_AT, _TARGET_ID_AT
        with self._transaction() as s:
            for row in s.connection().execute(query):
                values = list(row)
                values[0] = kinds.setdefault(values[0], values[0])
                values[journal] = _journal(values[journal])
                sid = values[sid_at]
                for at in same:
                    if values[at] == sid:
                        values[at] = sid
                if values[target_path] == values[target_id]:
                    values[target_path] = values[target_id]
                yield ItemRecord(route, *values)

    def item(self, route: str, kind: str, source_id: str) -> ItemRecord | None:
        """One item's ledger row as it is now (``None``: it has none yet): what a worker that
        just claimed the item starts from."""
        if self._read_only:
            found = list(self._records(route, select(*self._record_columns).where(
                _ITEMS.c.route == route, _ITEMS.c.kind == kind,
                _ITEMS.c.source_id == source_id)))
            return found[0] if found else None
        with self._transaction() as s:
            row = s.get(ItemState, (route, kind, source_id))
            return row.record() if row is not None else None

    def write(self, records: Sequence[ItemRecord], *, run_id: int | None = None) -> None:
        """Upsert whole rows in one transaction, committed and durable when this returns.

        Sets `updated_at` on every row; with `run_id`, also beats the run's heartbeat and
        fills `last_run_id` where the record leaves it None. Later records win over earlier
        ones with the same key. On any error nothing is written. Raises `RunLockedError`
        if another process took the run over.
        """
        now = _utcnow()
        if self._sqlite and not self._read_only:
            self._write_sqlite(records, run_id, now)
            return
        with self._transaction(write=True) as s:
            if run_id is not None:
                self._beat(s, run_id, now)
            rows: dict[tuple[str, str, str], dict[str, Any]] = {}
            for rec in records:  # the last record of a key wins
                row = ItemState.values(rec, updated_at=now)
                if run_id is not None and rec.last_run_id is None:
                    row["last_run_id"] = run_id
                rows[rec.route, rec.kind, rec.source_id] = row
            if not rows:
                return
            upsert = _upsert_statement(self._engine.dialect.name)
            if upsert is not None:
                values = list(rows.values())
                if self._engine.dialect.name == "postgresql":
                    # in key order: concurrent writers of overlapping rows take their row
                    # locks in one order, so they queue instead of deadlocking (SQLite has
                    # one writer at a time: the batch goes as given)
                    values = [rows[key] for key in sorted(rows)]
                s.connection().execute(upsert, values)
            else:
                for row in rows.values():
                    s.merge(ItemState(**row))

    def _write_sqlite(self, records: Sequence[ItemRecord], run_id: int | None,
                      now: datetime) -> None:
        """:meth:`write` on SQLite through the ``sqlite3`` connection itself: the beat and
        the rows in one ``BEGIN IMMEDIATE`` transaction, the rows as multi-row
        ``INSERT .. ON CONFLICT DO UPDATE`` statements of up to :data:`_SQLITE_ROWS` rows.

        Issue 12: the writer's thread held the GIL for SQLAlchemy's per-row work (a dict, a
        bind processor per column, about 40 us a row) while the event loop waited for it on
        every socket call, and ``executemany`` hands the GIL back and forth once per row
        (each row is a ``sqlite3_step`` without the GIL). Here the values are plain strings
        and numbers, laid out as SQLAlchemy stores them (enum values, naive UTC
        ``YYYY-MM-DD HH:MM:SS.ffffff``, JSON text: what :mod:`state.reader` and the ORM
        read back), and one statement steps once for its rows."""
        stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        rows: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        for rec in records:  # the last record of a key wins
            rows[rec.route, rec.kind, rec.source_id] = (
                rec.route, rec.kind, rec.source_id, ItemStatus(rec.status).value, rec.path,
                rec.source_url, rec.source_hash, rec.target_id, rec.target_url,
                rec.target_path, rec.attempts, rec.last_error, json.dumps(dict(rec.journal)),
                rec.intent, run_id if run_id is not None and rec.last_run_id is None
                else rec.last_run_id, stamp, rec.target_marker)
        try:
            raw = self._engine.raw_connection()
        except DBAPIError as exc:
            raise _damaged(self._where, exc, self._file) from None
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                if run_id is not None and not cursor.execute(
                        "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = ?",
                        (stamp, run_id, RunStatus.RUNNING.value)).rowcount:
                    found = cursor.execute("SELECT status, route FROM runs WHERE id = ?",
                                           (run_id,)).fetchone()
                    _beat_missed(run_id, None if found is None
                                 else (RunStatus(found[0]), found[1]))
                values = list(rows.values())
                for at in range(0, len(values), _SQLITE_ROWS):
                    chunk = values[at:at + _SQLITE_ROWS]
                    cursor.execute(_sqlite_upsert(len(chunk)),
                                   [v for row in chunk for v in row])
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _damaged(self._where, DBAPIError.instance(
                None, None, exc, sqlite3.Error), self._file) from None  # type: ignore[arg-type]
        finally:
            raw.close()  # back to the pool

    def counts(self, route: str) -> dict[str, int]:
        """Assets by status (every status, zeros included) plus "folders": the folder count."""
        result = {status.value: 0 for status in ItemStatus}
        if self._lacks("items"):
            return result | {"folders": 0}
        with self._transaction() as s:
            rows = s.execute(
                select(ItemState.status, func.count())
                .where(ItemState.route == route, ItemState.kind == "asset")
                .group_by(ItemState.status)
            )
            for status, n in rows:
                result[status.value] = n
            folders = s.scalar(
                select(func.count())
                .select_from(ItemState)
                .where(ItemState.route == route, ItemState.kind == "folder")
            )
        result["folders"] = folders or 0
        return result

    def ledger_counts(self, route: str) -> dict[str, int]:
        """The route's assets by status; pruned ones as "deleted".

        Keys: every `ItemStatus` value plus "deleted" and "not_migrated" ("skipped" then
        excludes both: the pruned, and the assets held back with a reason, unsupported or a
        conflict, see :func:`_held_back`) and "folders". Loads only the folders' rows into
        Python, so it stays cheap at 100,000 rows.
        """
        result = {status.value: 0 for status in ItemStatus} | {"deleted": 0, "not_migrated": 0,
                                                               "folders": 0}
        if self._lacks("items"):
            return result
        with self._transaction() as s:
            # three index-only or near index-only reads instead of one pass over every row
            # (EXPLAIN on SQLite, 100,000 rows: 22 ms instead of 100 ms of CPU): statuses from
            # the (route, status) index alone, minus the folders' (their rows by primary
            # key), and the pruned among the skipped ones
            for name, n in s.execute(select(ItemState.status, func.count())
                                     .where(ItemState.route == route)
                                     .group_by(ItemState.status)):
                result[str(getattr(name, "value", name))] += n
            for name in s.scalars(select(ItemState.status).where(
                    ItemState.route == route, ItemState.kind == "folder")):
                result[str(getattr(name, "value", name))] -= 1
                result["folders"] += 1
            pruned = s.scalar(select(func.count()).select_from(ItemState).where(
                ItemState.route == route, ItemState.status == ItemStatus.SKIPPED,
                ItemState.kind != "folder", ItemState.last_error == PRUNED_NOTE)) or 0
            held = s.scalar(select(func.count()).select_from(ItemState).where(
                ItemState.route == route, ItemState.kind != "folder", _held_back())) or 0
        result[ItemStatus.SKIPPED.value] -= pruned + held
        result["deleted"] = pruned
        result["not_migrated"] = held
        return result

    def run_counts(self, route: str, run_id: int) -> dict[str, int]:
        """Like `ledger_counts`, for the assets whose last change was made by ``run_id``."""
        return self._status_counts(ItemState.route == route, ItemState.last_run_id == run_id)

    def _status_counts(self, *where: Any) -> dict[str, int]:
        pruned = (ItemState.status == ItemStatus.SKIPPED) & (ItemState.last_error == PRUNED_NOTE)
        key = case((ItemState.kind == "folder", "folders"), (pruned, "deleted"),
                   (_held_back(), "not_migrated"), else_=ItemState.status)
        result = {status.value: 0 for status in ItemStatus} | {"deleted": 0, "not_migrated": 0,
                                                               "folders": 0}
        if self._lacks("items"):
            return result
        with self._transaction() as s:
            for name, n in s.execute(select(key, func.count()).where(*where).group_by(key)):
                result[str(getattr(name, "value", name))] = n
        return result

    def failed_items(self, route: str, limit: int = 50) -> list[ItemRecord]:
        """Up to ``limit`` failed assets of the route, by path (the rest are counted)."""
        return list(self._records(route, select(*self._record_columns).where(
            _ITEMS.c.route == route, _ITEMS.c.kind == "asset",
            _ITEMS.c.status == ItemStatus.FAILED).order_by(_ITEMS.c.path).limit(limit)))

    # claims

    def claim(self, route: str, keys: Sequence[tuple[str, str]], owner: str, *,
              lease: timedelta) -> list[tuple[str, str]]:
        """Claim the ``(kind, source_id)`` items of `route` for `owner` until now + `lease`.

        Returns the keys `owner` now holds, in the order given (duplicates once): those no
        one held, those whose lease had expired (taken over), and those `owner` already held
        (lease renewed). An item held by another owner whose lease has not expired is left
        out. Never two owners on one item: each batch of up to `CLAIM_BATCH` keys is one
        ``INSERT INTO claims .. ON CONFLICT (route, kind, source_id) DO UPDATE SET owner,
        expires_at WHERE claims.owner = :owner OR claims.expires_at <= :now RETURNING
        kind, source_id``, all batches in one transaction.

        This is the "equivalent" of ``SELECT .. FOR UPDATE SKIP LOCKED``: an item may have
        no row yet (a new asset gets its ledger row only with its intent), and SKIP LOCKED
        can only skip rows that exist. On PostgreSQL ON CONFLICT takes the conflicting row's
        lock, waits for a concurrent claim of it to commit (milliseconds: a claim does
        nothing else), and evaluates the WHERE on the committed row (PostgreSQL docs, INSERT:
        "ON CONFLICT DO UPDATE guarantees an atomic INSERT or UPDATE outcome"); keys go in
        sorted order so overlapping claims lock in one order and never deadlock. On SQLite
        the transaction begins IMMEDIATE: one writer at a time.

        Leases use the callers' clocks (UTC), like the run lock: keep them in sync (NTP).
        Raises ValueError for an empty owner or a lease that is not positive, StateError on
        a backend other than SQLite or PostgreSQL, or when the database fails.
        """
        if not owner:
            raise ValueError("claim needs an owner name")
        if lease <= timedelta(0):
            raise ValueError(f"claim needs a positive lease, not {lease}")
        wanted = list(dict.fromkeys((kind, source_id) for kind, source_id in keys))
        if not wanted:
            return []
        insert = self._claims_insert()
        now = _utcnow()
        until = now + lease
        held: set[tuple[str, str]] = set()
        ordered = sorted(wanted)
        with self._transaction(write=True) as s:
            for start in range(0, len(ordered), CLAIM_BATCH):
                stmt = insert(ItemClaim).values([
                    {"route": route, "kind": kind, "source_id": source_id, "owner": owner,
                     "expires_at": until}
                    for kind, source_id in ordered[start:start + CLAIM_BATCH]
                ])
                stmt = stmt.on_conflict_do_update(
                    index_elements=[c.name for c in ItemClaim.__table__.primary_key],
                    set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
                    where=(ItemClaim.owner == owner) | (ItemClaim.expires_at <= now),
                ).returning(ItemClaim.kind, ItemClaim.source_id)
                held.update((kind, source_id) for kind, source_id in s.execute(stmt))
        return [key for key in wanted if key in held]

    def release(self, route: str, keys: Sequence[tuple[str, str]], owner: str) -> None:
        """Give up `owner`'s claims on these ``(kind, source_id)`` items of `route` at once
        (no need to wait for the lease); keys held by another owner, or by no one, are left
        as they are. Raises StateError when the database fails."""
        wanted = sorted(set(keys))
        with self._transaction(write=True) as s:
            for start in range(0, len(wanted), CLAIM_BATCH):
                chunk = wanted[start:start + CLAIM_BATCH]
                s.execute(
                    delete(ItemClaim).where(
                        ItemClaim.route == route,
                        ItemClaim.owner == owner,
                        tuple_(ItemClaim.kind, ItemClaim.source_id).in_(chunk),
                    )
                )

    def claims(self, route: str) -> dict[tuple[str, str], tuple[str, datetime]]:
        """The route's claims, expired ones included: ``(kind, source_id)`` to
        ``(owner, expires_at)`` (UTC). For status and tests."""
        if self._lacks("claims"):
            return {}
        with self._transaction() as s:
            rows = s.execute(
                select(ItemClaim.kind, ItemClaim.source_id, ItemClaim.owner,
                       ItemClaim.expires_at).where(ItemClaim.route == route)
            )
            return {(kind, sid): (who, until) for kind, sid, who, until in rows}

    def _claims_insert(self) -> Callable[[type[Base]], Any]:
        insert = _dialect_insert(self._engine.dialect.name)
        if insert is None:
            raise StateError(
                f"state database {self._where}: item claims need SQLite or PostgreSQL "
                f"(this is {self._engine.dialect.name})"
            )
        return insert

    def holds_nothing(self) -> bool:
        """No run and no ledger row of any route: a state DB that a run created and left
        before it had a plan (:func:`discard_fresh`)."""
        if self._lacks("items", "runs"):
            return True
        with self._transaction() as s:
            return not (s.execute(select(Run.id).limit(1)).first()
                        or s.execute(select(ItemState.route).limit(1)).first())

    # lifetime

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self._where!r})"
