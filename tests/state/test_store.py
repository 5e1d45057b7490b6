"""The checkpoint store, on tmp_path SQLite files and on a throw-away PostgreSQL server
(the `db` fixture of conftest.py runs each test on both)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import create_engine, inspect, text, update
from sqlalchemy.orm import Session

from state.models import SCHEMA_VERSION, Base, ItemState, Run
from state.store import (
    STALE_AFTER,
    ItemRecord,
    ItemStatus,
    RunLockedError,
    RunStatus,
    StateSchemaError,
    StateStore,
)
from tests.state.conftest import engine_url

ROUTE = "storyblok:1->webflow:abc"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(db: str) -> Iterator[StateStore]:
    with StateStore(str(db)) as s:
        yield s


def asset(source_id: str, status: ItemStatus = ItemStatus.DONE, **kw: Any) -> ItemRecord:
    return ItemRecord(route=ROUTE, kind="asset", source_id=source_id, status=status, **kw)


def age_heartbeat(db: str, run_id: int, by: timedelta) -> datetime:
    """Make a run look as if its process, on another host, stopped beating `by` ago.

    (On this host the store asks the OS whether the owner lives, whatever the heartbeat.)
    """
    old = datetime.now(UTC) - by
    engine = create_engine(engine_url(db))
    try:
        with Session(engine) as s, s.begin():
            s.execute(update(Run).where(Run.id == run_id)
                      .values(heartbeat_at=old, owner="another-host:4242"))
    finally:
        engine.dispose()
    return old


# opening


def test_plain_path_creates_parent_dirs_and_wal(sqlite_db: Path) -> None:
    db = sqlite_db
    assert not db.parent.exists()
    with StateStore(str(db)):
        pass
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlalchemy_url_works_too(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.db"
    with StateStore(f"sqlite:///{path}") as s:
        s.write([asset("1")])
    with StateStore(str(path)) as s:
        assert set(s.items(ROUTE)) == {("asset", "1")}


def test_newer_schema_is_refused_with_a_clear_error(db: str) -> None:
    StateStore(str(db)).close()
    engine = create_engine(engine_url(db))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE schema_version SET version = :v"),
                         {"v": SCHEMA_VERSION + 1})
    finally:
        engine.dispose()
    with pytest.raises(StateSchemaError, match=r"newer assetferry") as info:
        StateStore(str(db))
    assert str(SCHEMA_VERSION + 1) in str(info.value)


def test_no_column_could_hold_a_credential() -> None:
    names = [c.name for t in Base.metadata.tables.values() for c in t.columns]
    assert names  # the check below must look at something
    for name in names:
        for word in ("token", "secret", "password", "credential", "auth", "api_key"):
            assert word not in name.lower()


def test_tables_and_indexes_exist(store: StateStore, db: str) -> None:
    engine = create_engine(engine_url(db))
    try:
        insp = inspect(engine)
        assert {"runs", "items", "schema_version", "claims"} <= set(insp.get_table_names())
        assert insp.get_pk_constraint("items")["constrained_columns"] == [
            "route",
            "kind",
            "source_id",
        ]
        indexed = [ix["column_names"] for ix in insp.get_indexes("items")]
        assert ["route", "status"] in indexed
        assert ["route", "last_run_id"] in indexed
    finally:
        engine.dispose()


# items


def test_items_round_trip_every_field(store: StateStore) -> None:
    rid = store.start_run(ROUTE, "migrate")
    rec = asset(
        "a1",
        ItemStatus.IN_FLIGHT,
        path="a/b/photo.jpg",
        source_url="https://cdn.example/photo.jpg",
        source_hash="sha256:abc",
        target_id="t1",
        target_url="https://target.example/t1.jpg",
        target_path="a/b",
        attempts=2,
        last_error="HTTP 503 from target",
        journal={"upload_url": "https://s3.example/put", "step": "uploaded"},
        intent="create",
        last_run_id=rid,
    )
    before = datetime.now(UTC)
    store.write([rec])
    after = datetime.now(UTC)

    got = store.items(ROUTE)[("asset", "a1")]
    assert got.updated_at is not None
    assert got.updated_at.tzinfo is not None
    assert got.updated_at.utcoffset() == timedelta(0)
    assert before - timedelta(milliseconds=1) <= got.updated_at <= after
    assert got == ItemRecord(**{**_fields(rec), "updated_at": got.updated_at})
    assert dict(got.journal) == {"upload_url": "https://s3.example/put", "step": "uploaded"}


def test_items_share_the_source_ids_string_with_equal_paths_and_ids(store: StateStore) -> None:
    """A local folder's ids are its paths: ``plan`` reads 100,000 rows, and a path, target id
    or target path with the source id's text is that one string, not three copies; a
    different value stays itself."""
    same = asset("d/a.txt", path="d/a.txt", target_id="d/a.txt", target_path="d/a.txt",
                 target_url="file:///out/d/a.txt")
    other = asset("7", path="d/b.txt", target_id="blt9", target_path="x/b.txt")
    store.write([same, other])
    rows = store.items(ROUTE)
    got = rows[("asset", "d/a.txt")]
    assert got.path is got.source_id
    assert got.target_id is got.source_id
    assert got.target_path is got.source_id
    assert got == ItemRecord(**{**_fields(same), "updated_at": got.updated_at})
    kept = rows[("asset", "7")]
    assert (kept.path, kept.target_id, kept.target_path) == ("d/b.txt", "blt9", "x/b.txt")


def test_items_without_times_are_the_same_rows_but_updated_at(store: StateStore) -> None:
    """What ``plan`` reads (``times=False``): every field as :meth:`StateStore.items` gives
    it but ``updated_at`` (None); a row without a journal shares one empty journal, still
    equal to a new one and written back as one."""
    full = asset("a1", ItemStatus.DONE, path="d/a.txt", source_hash="h:m", target_id="t1",
                 journal={"step": "uploaded"}, intent="create", last_error="e",
                 target_marker='{"size": 1}')
    bare = asset("a2", path="d/b.txt")
    store.write([full, bare, ItemRecord(route=ROUTE, kind="folder", source_id="f1",
                                        status=ItemStatus.DONE, path="d")])
    timed, untimed = store.items(ROUTE), store.items(ROUTE, times=False)
    assert timed.keys() == untimed.keys()
    for key, rec in timed.items():
        assert rec.updated_at is not None
        assert untimed[key] == ItemRecord(**{**_fields(rec), "updated_at": None})
    assert untimed[("asset", "a2")].journal == {}
    store.write([untimed[("asset", "a2")]])  # a shared empty journal is written as {}
    assert store.items(ROUTE)[("asset", "a2")].journal == {}


def _fields(rec: ItemRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in ItemRecord.__slots__}


def test_items_filters_by_route_and_kind(store: StateStore) -> None:
    folder = ItemRecord(ROUTE, "folder", "f1", ItemStatus.DONE, path="a", target_id="tf1")
    other = ItemRecord("contento:x->webflow:y", "asset", "1", ItemStatus.DONE)
    store.write([asset("1"), folder, other])

    assert set(store.items(ROUTE)) == {("asset", "1"), ("folder", "f1")}
    assert set(store.items(ROUTE, kind="folder")) == {("folder", "f1")}
    assert store.items(ROUTE, kind="folder")[("folder", "f1")].target_id == "tf1"
    assert set(store.items("contento:x->webflow:y")) == {("asset", "1")}
    assert store.routes() == sorted([ROUTE, "contento:x->webflow:y"])


def test_write_upserts_whole_rows(store: StateStore) -> None:
    store.write(
        [
            asset("1", ItemStatus.FAILED, attempts=1, last_error="boom", journal={"k": "v"}),
            asset("2", ItemStatus.PENDING),
        ]
    )
    first = store.items(ROUTE)[("asset", "1")]
    store.write([asset("1", ItemStatus.DONE, attempts=2, target_id="t1")])

    items = store.items(ROUTE)
    assert len(items) == 2
    got = items[("asset", "1")]
    assert got.status is ItemStatus.DONE
    assert got.target_id == "t1"
    assert got.attempts == 2
    assert got.last_error is None  # the whole row is replaced, not merged
    assert dict(got.journal) == {}
    assert got.updated_at is not None
    assert first.updated_at is not None
    assert got.updated_at >= first.updated_at
    assert items[("asset", "2")].status is ItemStatus.PENDING  # untouched


def test_last_record_of_a_key_wins_within_one_write(store: StateStore) -> None:
    store.write([asset("1", ItemStatus.IN_FLIGHT, intent="create"), asset("1", target_id="t9")])
    got = store.items(ROUTE)[("asset", "1")]
    assert (got.status, got.target_id, got.intent) == (ItemStatus.DONE, "t9", None)


def test_write_with_run_id_fills_last_run_id_and_beats(store: StateStore) -> None:
    rid = store.start_run(ROUTE, "sync")
    beat0 = store.runs(ROUTE)[0].heartbeat_at
    store.write([asset("1"), asset("2", last_run_id=None)], run_id=rid)
    items = store.items(ROUTE)
    assert {r.last_run_id for r in items.values()} == {rid}
    beat1 = store.runs(ROUTE)[0].heartbeat_at
    assert beat0 is not None
    assert beat1 is not None
    assert beat1 >= beat0


def test_counts_assets_by_status_plus_folders(store: StateStore) -> None:
    store.write(
        [
            asset("1"),
            asset("2"),
            asset("3", ItemStatus.FAILED),
            asset("4", ItemStatus.IN_FLIGHT),
            ItemRecord(ROUTE, "folder", "f1", ItemStatus.DONE),
            ItemRecord(ROUTE, "folder", "f2", ItemStatus.FAILED),
            ItemRecord("other", "asset", "9", ItemStatus.DONE),
        ]
    )
    assert store.counts(ROUTE) == {
        "pending": 0,
        "in_flight": 1,
        "done": 2,
        "failed": 1,
        "skipped": 0,
        "folders": 2,
    }
    assert store.counts("nothing-here")["folders"] == 0


# runs


def test_run_lifecycle(store: StateStore) -> None:
    first = store.start_run(ROUTE, "migrate")
    store.finish_run(first, RunStatus.PARTIAL, {"done": 3, "failed": [{"id": "x"}]})
    second = store.start_run(ROUTE, "sync")
    store.heartbeat(second)

    runs = store.runs(ROUTE)
    assert [r.id for r in runs] == [second, first]  # newest first
    new, old = runs
    assert (new.status, new.mode, new.finished_at) == (RunStatus.RUNNING, "sync", None)
    assert new.heartbeat_at is not None
    assert new.heartbeat_at >= new.started_at
    assert old.status is RunStatus.PARTIAL
    assert dict(old.summary) == {"done": 3, "failed": [{"id": "x"}]}
    assert old.finished_at is not None
    assert old.finished_at.tzinfo is not None
    assert old.finished_at >= old.started_at

    store.finish_run(second, RunStatus.DONE, {})
    assert store.runs(ROUTE, limit=1)[0].status is RunStatus.DONE
    assert store.routes() == [ROUTE]


def test_unknown_run_is_a_lookup_error(store: StateStore) -> None:
    with pytest.raises(LookupError):
        store.heartbeat(999)
    with pytest.raises(LookupError):
        store.finish_run(999, RunStatus.DONE, {})


def test_fresh_running_run_locks_the_route(store: StateStore, db: str) -> None:
    rid = store.start_run(ROUTE, "migrate")
    with StateStore(str(db)) as other:
        with pytest.raises(RunLockedError, match="another process") as info:
            other.start_run(ROUTE, "migrate")
        assert f"run {rid}" in str(info.value)
        assert ROUTE in str(info.value)
        other_route = other.start_run("contento:1->storyblok:2", "migrate")  # not locked
    assert [r.status for r in store.runs(ROUTE)] == [RunStatus.RUNNING]
    assert other_route != rid


def test_stale_running_run_is_marked_interrupted(store: StateStore, db: str) -> None:
    dead = store.start_run(ROUTE, "migrate")
    last_seen = age_heartbeat(db, dead, STALE_AFTER + timedelta(seconds=5))

    with StateStore(str(db)) as other:
        new = other.start_run(ROUTE, "migrate")

    runs = {r.id: r for r in store.runs(ROUTE)}
    assert runs[new].status is RunStatus.RUNNING
    assert runs[dead].status is RunStatus.INTERRUPTED
    finished = runs[dead].finished_at
    assert finished is not None
    assert abs(finished - last_seen) < timedelta(milliseconds=1)


def test_writing_for_a_run_that_was_taken_over_fails_and_writes_nothing(
    store: StateStore, db: str
) -> None:
    dead = store.start_run(ROUTE, "migrate")
    age_heartbeat(db, dead, STALE_AFTER * 2)
    with StateStore(str(db)) as other:
        other.start_run(ROUTE, "migrate")
    with pytest.raises(RunLockedError, match="interrupted"):
        store.write([asset("1")], run_id=dead)
    with pytest.raises(RunLockedError):
        store.heartbeat(dead)
    assert store.items(ROUTE) == {}



@contextmanager
def statements_sent(store: StateStore) -> Iterator[list[str]]:
    """The first word of each SQL statement ``store`` sends meanwhile: on SQLite as the
    driver runs them (an ``executemany`` once per row: SQLite steps each on its own), on a
    server as SQLAlchemy hands them to the driver."""
    from sqlalchemy import event

    sent: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(statement.split()[0].upper())

    def traced(statement: str) -> None:
        sent.append(statement.split()[0].upper())

    def tracing(dbapi_conn: Any, _record: object) -> None:
        dbapi_conn.set_trace_callback(traced)

    sqlite = store._engine.dialect.name == "sqlite"
    if sqlite:  # statements sent through the driver itself, too
        store._engine.dispose()
        event.listen(store._engine, "connect", tracing)
    else:
        event.listen(store._engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        if sqlite:
            event.remove(store._engine, "connect", tracing)
            store._engine.dispose()
        else:
            event.remove(store._engine, "before_cursor_execute", seen)


def test_a_ledger_write_beats_the_heartbeat_in_one_statement(store: StateStore) -> None:
    """A group commit of a running run is two statements: the heartbeat's conditional UPDATE
    and one upsert of every row (issue 12: the run row was loaded FOR UPDATE and flushed by
    the ORM, 40% of a group commit's CPU; on SQLite, one multi-row INSERT, not one
    ``executemany`` step per row); the heartbeat moves, the rows are written, and a run that
    is gone is still named."""
    run_id = store.start_run(ROUTE, "migrate")
    before = store.runs(ROUTE)[0].heartbeat_at
    with statements_sent(store) as sent:
        store.write([asset("1"), asset("2")], run_id=run_id)
    assert [s for s in sent if s in ("SELECT", "UPDATE", "INSERT")] == ["UPDATE", "INSERT"]
    after = store.runs(ROUTE)[0].heartbeat_at
    assert before is not None
    assert after is not None
    assert after >= before
    assert set(store.items(ROUTE)) == {("asset", "1"), ("asset", "2")}
    with pytest.raises(LookupError, match="no run 999"):
        store.write([asset("3")], run_id=999)
    assert ("asset", "3") not in store.items(ROUTE)


def test_a_ledger_write_reads_back_whole_through_the_orm_and_the_reader(
        store: StateStore, db: str) -> None:
    """Every column of a written row as it went in (SQLite's rows go in through ``sqlite3``
    itself, laid out as SQLAlchemy lays them out: what the ORM and ``state.reader`` read)."""
    from state.reader import SqliteLedger
    from state.store import _ITEM_COLUMNS

    assert tuple(c.name for c in ItemState.__table__.columns) == _ITEM_COLUMNS
    run_id = store.start_run(ROUTE, "migrate")
    rec = asset("d/é 1.png", ItemStatus.IN_FLIGHT, path="d/é 1.png", source_url="file:x",
                source_hash="h", target_id="t", target_url="u", target_path="d/é 1.png",
                attempts=2, last_error="boom", journal={"step": "sent", "id": "7"},
                intent="create", target_marker='{"size": 3}')
    store.write([asset("gone"), rec, replace(rec, attempts=3)], run_id=run_id)
    got = store.items(ROUTE)[("asset", "d/é 1.png")]
    assert got.updated_at is not None
    assert got.updated_at.tzinfo is not None
    assert replace(got, updated_at=None) == replace(rec, attempts=3, last_run_id=run_id)
    if "://" not in db:  # a SQLite file: plan's and status's reader
        with SqliteLedger(Path(db)) as ledger:
            [read] = [r for r in ledger.plan_records(ROUTE) if r.source_id == "d/é 1.png"]
        assert replace(read, updated_at=None) == replace(got, updated_at=None)


# durability, atomicity, concurrency


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_written_rows_are_readable_from_another_process(store: StateStore, db: str) -> None:
    store.write([asset("1", journal={"step": "staged"}), asset("2", ItemStatus.FAILED)])
    # the store stays open: committed means visible, not "flushed on close"
    out = _python(
        "import json\n"
        "from state.store import StateStore\n"
        f"s = StateStore({str(db)!r})\n"
        f"items = s.items({ROUTE!r})\n"
        "print(json.dumps({k[1]: [r.status, dict(r.journal)] for k, r in items.items()}))\n"
        "s.close()\n"
    )
    assert json.loads(out) == {"1": ["done", {"step": "staged"}], "2": ["failed", {}]}


def test_write_is_durable_when_it_returns_even_if_the_process_dies(
    store: StateStore, db: str
) -> None:
    _python(
        "import os\n"
        "from state.store import ItemRecord, ItemStatus, StateStore\n"
        f"s = StateStore({str(db)!r})\n"
        f"s.write([ItemRecord({ROUTE!r}, 'asset', 'x', ItemStatus.IN_FLIGHT, intent='create')])\n"
        "os._exit(0)  # no close, no clean-up\n"
    )
    got = store.items(ROUTE)[("asset", "x")]
    assert (got.status, got.intent) == (ItemStatus.IN_FLIGHT, "create")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"status": None}, id="null-status"),
        pytest.param({"status": "bogus"}, id="unknown-status"),
        pytest.param({"journal": {"k": object()}}, id="journal-not-json"),
    ],
)
def test_a_failing_write_leaves_the_db_unchanged(store: StateStore, bad: dict[str, Any]) -> None:
    rid = store.start_run(ROUTE, "migrate")
    store.write([asset("1", ItemStatus.PENDING)], run_id=rid)
    before_items = store.items(ROUTE)
    before_run = store.runs(ROUTE)[0]

    broken = ItemRecord(**{**_fields(asset("3")), **bad})
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
        store.write([asset("1", ItemStatus.DONE), asset("2"), broken, asset("4")], run_id=rid)

    assert store.items(ROUTE) == before_items
    assert store.runs(ROUTE)[0] == before_run  # the heartbeat rolled back too


def test_two_stores_writing_at_once_wait_for_each_other(db: str) -> None:
    stores = [StateStore(str(db)), StateStore(str(db))]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def writer(n: int, s: StateStore) -> None:
        try:
            rid = s.start_run(f"route-{n}", "migrate")
            start.wait(timeout=30)
            for batch in range(20):
                s.write(
                    [
                        ItemRecord(f"route-{n}", "asset", f"{batch}-{i}", ItemStatus.DONE)
                        for i in range(25)
                    ],
                    run_id=rid,
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            start.abort()  # don't leave the other writer waiting at the barrier

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert stores[0].counts("route-0")["done"] == 500
        assert stores[0].counts("route-1")["done"] == 500
    finally:
        for s in stores:
            s.close()


async def test_store_works_from_a_worker_thread(store: StateStore) -> None:
    rid = await anyio.to_thread.run_sync(store.start_run, ROUTE, "migrate")
    await anyio.to_thread.run_sync(lambda: store.write([asset("1")], run_id=rid))
    items = await anyio.to_thread.run_sync(store.items, ROUTE)
    assert items[("asset", "1")].last_run_id == rid


def test_five_thousand_records_in_batches(store: StateStore) -> None:
    rid = store.start_run(ROUTE, "migrate")
    for start in range(0, 5000, 200):
        batch = [asset(str(i), source_hash=f"h{i}") for i in range(start, start + 200)]
        store.write(batch, run_id=rid)
    assert store.counts(ROUTE)["done"] == 5000
    assert store.items(ROUTE)[("asset", "4999")].source_hash == "h4999"


def test_a_run_whose_process_is_gone_does_not_lock_the_route(db: str) -> None:
    code = (
        "import os; from state.store import StateStore; "
        f"s = StateStore({str(db)!r}); s.start_run('r', 'migrate'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    store = StateStore(str(db))
    try:
        run_id = store.start_run("r", "migrate")  # the first process is dead: no lock
        runs = store.runs("r")
        assert runs[0].id == run_id
        assert runs[1].status is RunStatus.INTERRUPTED
    finally:
        store.close()


def test_a_live_run_on_this_host_is_never_taken_over_even_with_an_old_heartbeat(
    store: StateStore, db: str
) -> None:
    run = store.start_run(ROUTE, "migrate")
    engine = create_engine(engine_url(db))
    try:
        with Session(engine) as s, s.begin():  # a long upload: no heartbeat for 10 minutes
            s.execute(update(Run).where(Run.id == run)
                      .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=10)))
    finally:
        engine.dispose()
    with StateStore(str(db)) as other, pytest.raises(RunLockedError):
        other.start_run(ROUTE, "migrate")


def test_a_file_from_before_the_drift_marker_gets_the_column_in_place(db: str) -> None:
    """A state file written before ``items.target_marker`` existed opens, keeps its rows and
    gains the column (additive: the schema version stays)."""
    with StateStore(str(db)) as store:
        store.write([ItemRecord(route=ROUTE, kind="asset", source_id="a1",
                                status=ItemStatus.DONE, target_id="t1")])
    _sql(db, "ALTER TABLE items DROP COLUMN target_marker")
    with StateStore(str(db)) as store:
        assert store.items(ROUTE)[("asset", "a1")].target_id == "t1"
        store.write([ItemRecord(route=ROUTE, kind="asset", source_id="a1",
                                status=ItemStatus.DONE, target_id="t1", target_marker="{}")])
        assert store.items(ROUTE)[("asset", "a1")].target_marker == "{}"
    assert _sql(db, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_a_file_from_before_the_last_run_index_gets_it_in_place(sqlite_db: Path) -> None:
    """A state file written before ``ix_items_route_last_run`` existed opens, keeps its rows
    and gains the index (``status`` counts a run's rows by it); the schema version stays."""
    db = sqlite_db
    with StateStore(str(db)) as store:
        rid = store.start_run(ROUTE, "migrate")
        store.write([asset("a1")], run_id=rid)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_items_route_last_run")
    with StateStore(str(db)) as store:
        assert store.run_counts(ROUTE, rid)["done"] == 1
    with sqlite3.connect(db) as conn:
        names = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'")}
        assert "ix_items_route_last_run" in names
        plan = " ".join(str(row) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM items WHERE route = ? AND last_run_id = ?",
            (ROUTE, rid)))
        assert "ix_items_route_last_run" in plan
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)


def test_items_read_by_core_equal_the_orm_rows(store: StateStore, db: str) -> None:
    """``items`` builds records from plain rows, not ORM objects: every field of every kind
    of row (statuses, nulls, journals, folders, other routes) equals what the ORM reads."""
    rid = store.start_run(ROUTE, "migrate")
    records = [
        asset(f"a{i}", status, path=f"d/{i}.jpg", source_hash=f"h{i}" if i % 2 else None,
              target_id=f"t{i}" if i % 3 else None, attempts=i % 4,
              last_error="boom" if status is ItemStatus.FAILED else None,
              journal={"step": str(i)} if i % 5 == 0 else {},
              intent="create" if status is ItemStatus.IN_FLIGHT else None,
              last_run_id=rid if i % 2 else None, target_marker='{"size": 1}' if i % 7 else None)
        for i, status in enumerate(list(ItemStatus) * 4)
    ]
    records.append(ItemRecord(ROUTE, "folder", "d", ItemStatus.DONE, path="d", target_id="td",
                              target_path="d"))
    records.append(ItemRecord("contento:x->webflow:y", "asset", "a1", ItemStatus.DONE))
    store.write(records, run_id=rid)
    engine = create_engine(engine_url(db))
    try:
        with Session(engine) as s:
            orm = {(row.kind, row.source_id): row.record()
                   for row in s.query(ItemState).filter(ItemState.route == ROUTE)}
    finally:
        engine.dispose()
    got = store.items(ROUTE)
    assert len(got) == len(records) - 1
    assert got == orm
    assert store.items(ROUTE, kind="folder") == {k: v for k, v in orm.items() if k[0] == "folder"}
    assert all(type(r.status) is ItemStatus for r in got.values())


def _sql(db: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one SQL statement behind the store's back; the rows it returns, if any."""
    engine = create_engine(engine_url(db))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
