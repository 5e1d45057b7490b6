"""Reading the ledger without writing it (``status``, ``export-map``, ``verify``, ``plan``):
the read-only store on SQLite and PostgreSQL, and the standard-library reader ``status`` uses
for a SQLite file. None of them waits for a run that is writing, and none changes the file."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from state import reader
from state.models import SCHEMA_VERSION, ItemState
from state.reader import SqliteLedger, open_ledger
from state.store import (
    PRUNED_NOTE,
    ItemRecord,
    ItemStatus,
    RunStatus,
    StateError,
    StateSchemaError,
    StateStore,
    _lock_key,
)

ROUTE = "local:/a->contentstack:blt1"


def asset(i: int, status: ItemStatus, **kw: object) -> ItemRecord:
    return ItemRecord(route=ROUTE, kind="asset", source_id=str(i), status=status,
                      path=f"d/{i}.png", **kw)  # type: ignore[arg-type]


def ledger(db: str) -> tuple[int, int]:
    """A ledger with a finished run and a killed one: every status, a pruned asset, folders,
    failures with reasons, another route. The two run ids."""
    with StateStore(db) as store:
        first = store.start_run(ROUTE, "sync", planned=3)
        store.write([asset(1, ItemStatus.DONE, target_id="t1", journal={"upload": "u1"}),
                     asset(2, ItemStatus.SKIPPED, last_error=PRUNED_NOTE),
                     asset(3, ItemStatus.SKIPPED, last_error="conflict"),
                     ItemRecord(route=ROUTE, kind="folder", source_id="f", path="d",
                                status=ItemStatus.DONE)], run_id=first)
        store.finish_run(first, RunStatus.DONE, {"counts": {"created": 1}})
        killed = store.start_run(ROUTE, "migrate", planned=9)
        store.write([asset(i, ItemStatus.DONE, target_id=f"t{i}") for i in range(10, 13)]
                    + [asset(20, ItemStatus.FAILED, last_error="500\nlater", attempts=3),
                       asset(21, ItemStatus.FAILED, last_error="timeout"),
                       asset(22, ItemStatus.IN_FLIGHT, intent="create"),
                       ItemRecord(route="other", kind="asset", source_id="9",
                                  status=ItemStatus.FAILED)], run_id=killed)
    return first, killed


def test_a_read_only_store_reads_while_a_run_holds_a_write_transaction(db: str) -> None:
    """A run is writing (its transaction open, its change not committed yet; on PostgreSQL
    also holding the lock a writing store's open waits for): a read-only store opens at once
    and reads the last committed ledger (on the code before, ``status`` opened the store
    through a write transaction and waited up to the 15 s busy timeout, then failed)."""
    first, killed = ledger(db)
    # a run's open write transaction
    with StateStore(db) as run, run._transaction(write=True) as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(select(func.pg_advisory_xact_lock(_lock_key("schema"))))
        s.execute(update(ItemState).values(status=ItemStatus.FAILED))
        with StateStore(db, read_only=True) as store:
            assert store.ledger_counts(ROUTE)["done"] == 4
            assert [r.id for r in store.runs(ROUTE)] == [killed, first]
            assert store.items(ROUTE)[("asset", "1")].journal == {"upload": "u1"}
        if "://" not in db:
            view = open_ledger(db)
            try:
                assert view.ledger_counts(ROUTE)["done"] == 4
            finally:
                view.close()


def test_a_read_only_store_writes_nothing(db: str) -> None:
    """No table is created in an empty database, and a write is refused (SQLite:
    ``query_only``; PostgreSQL: a READ ONLY transaction), never carried out."""
    if "://" not in db:
        Path(db).parent.mkdir(parents=True)
        Path(db).touch()
    with StateStore(db, read_only=True) as store:
        assert store.ledger_counts(ROUTE)["done"] == 0
        assert store.runs(ROUTE) == []
        assert store.items(ROUTE) == {}
        assert store.failed_items(ROUTE) == []
        assert store.routes() == []
    with StateStore(db) as store:
        store.write([asset(1, ItemStatus.DONE)])
    with StateStore(db, read_only=True) as store, pytest.raises(StateError):
        store.write([asset(2, ItemStatus.DONE)])
    with StateStore(db) as store:
        assert set(store.items(ROUTE)) == {("asset", "1")}


def test_the_stdlib_reader_reads_what_the_store_reads(sqlite_db: Path) -> None:
    """``status``'s reader (``sqlite3``, no SQLAlchemy) gives the store's answers, record for
    record: counts, runs (summaries, times, owners), a run's counts, the failures."""
    first, killed = ledger(str(sqlite_db))
    with StateStore(str(sqlite_db), read_only=True) as store, \
            SqliteLedger(sqlite_db) as view:
        for route in (ROUTE, "other", "none"):
            assert view.ledger_counts(route) == store.ledger_counts(route)
            assert view.runs(route) == store.runs(route)
            assert view.runs(route, limit=1) == store.runs(route, limit=1)
            assert view.failed_items(route) == store.failed_items(route)
            assert view.failed_items(route, 1) == store.failed_items(route, 1)
            for run in (first, killed, 99):
                assert view.run_counts(route, run) == store.run_counts(route, run)
        assert view.ledger_counts(ROUTE)["deleted"] == 1
        assert [r.last_error for r in view.failed_items(ROUTE)] == ["500\nlater", "timeout"]
        assert view.runs(ROUTE)[1].summary == {"planned": 3, "counts": {"created": 1}}


def _untimed(records: dict[tuple[str, str], ItemRecord]) -> dict[tuple[str, str], ItemRecord]:
    return {key: replace(rec, updated_at=None) for key, rec in records.items()}


def test_plans_ledger_read_is_the_stores_record_for_record(sqlite_db: Path) -> None:
    """``plan``'s read (``items(route, times=False)``) of a SQLite file goes through the
    stdlib reader: every field of every kind of row (statuses, a journal, ``null`` and ``{}``
    journals, a pruned note, an intent, urls, a drift marker, attempts, run ids, folders,
    another route, ids equal to paths or not) is what SQLAlchemy reads, ``updated_at`` aside
    (None); of one kind alike; and the strings plan holds 100,000 of are shared."""
    first, _ = ledger(str(sqlite_db))
    full = ItemRecord(route=ROUTE, kind="asset", source_id="d/x.txt", status=ItemStatus.DONE,
                      path="d/x.txt", source_url="file:///in/d/x.txt", source_hash="h:m",
                      target_id="d/x.txt", target_url="file:///out/d/x.txt",
                      target_path="d/x.txt", attempts=2, last_error=PRUNED_NOTE,
                      journal={"step": "uploaded", "url": "u"}, intent="replace",
                      target_marker='{"size": 1, "version": "v"}')
    moved = replace(full, source_id="7", target_id="blt9", target_path="blt9",
                    last_error=PRUNED_NOTE, journal={}, intent="replace", last_run_id=first)
    with StateStore(str(sqlite_db)) as store:
        store.write([full, moved])
    with sqlite3.connect(sqlite_db) as conn:  # journals as older versions left them
        conn.execute("UPDATE items SET journal = 'null' WHERE source_id = '11'")
    conn.close()
    with StateStore(str(sqlite_db), read_only=True) as store:
        for route in (ROUTE, "other", "none"):
            for kind in (None, "asset", "folder"):
                timed = store.items(route, kind)  # SQLAlchemy's read
                plan = store.items(route, kind, times=False)  # sqlite3's
                assert list(plan) == list(timed)
                assert plan == _untimed(timed), (route, kind)
                for key, rec in plan.items():
                    assert [getattr(rec, f) for f in ItemRecord.__slots__] == [
                        getattr(_untimed(timed)[key], f) for f in ItemRecord.__slots__]
                    assert type(rec.status) is ItemStatus
        plan = store.items(ROUTE, times=False)
    assert len(plan) == 12
    x, seven = plan[("asset", "d/x.txt")], plan[("asset", "7")]
    assert x.path is x.source_id
    assert x.target_id is x.source_id
    assert x.target_path is x.source_id
    assert x.source_id is sys.intern("d/x.txt")
    assert seven.target_path is seven.target_id
    assert seven.last_error is plan[("asset", "2")].last_error
    assert seven.journal is plan[("asset", "10")].journal
    assert seven.journal is plan[("asset", "11")].journal
    assert plan[("asset", "1")].journal == {"upload": "u1"}
    assert seven.intent is x.intent


def test_a_file_from_before_a_column_table_or_index_is_read_as_it_is(
        sqlite_db: Path) -> None:
    """A file written before ``items.target_marker``, the ``claims`` table and the last-run
    index: the readers read it (the column as NULL, no claims) and leave it unchanged; the
    next writing store adds them."""
    ledger(str(sqlite_db))
    with sqlite3.connect(sqlite_db) as conn:
        conn.execute("ALTER TABLE items DROP COLUMN target_marker")
        conn.execute("DROP TABLE claims")
        conn.execute("DROP INDEX ix_items_route_last_run")
    conn.close()

    def schema() -> list[tuple[str, str]]:
        with sqlite3.connect(sqlite_db) as conn:
            rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        conn.close()
        return rows

    before = schema()
    with StateStore(str(sqlite_db), read_only=True) as store:
        records = store.items(ROUTE)
        assert records[("asset", "1")].target_marker is None
        assert records[("asset", "1")].target_id == "t1"
        assert store.claims(ROUTE) == {}
        assert len(store.failed_items(ROUTE)) == 2
        assert store.item(ROUTE, "asset", "20") == records[("asset", "20")]
        assert store.items(ROUTE, times=False) == _untimed(records)
    with SqliteLedger(sqlite_db) as view:
        assert [r.source_id for r in view.failed_items(ROUTE)] == ["20", "21"]
    assert schema() == before
    with StateStore(str(sqlite_db)) as store:
        assert store.claims(ROUTE) == {}
    assert schema() != before


def test_the_readers_refuse_a_newer_schema_and_read_this_one(sqlite_db: Path) -> None:
    assert reader.SCHEMA_VERSION == SCHEMA_VERSION
    ledger(str(sqlite_db))
    with sqlite3.connect(sqlite_db) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StateSchemaError, match="newer assetferry"):
        SqliteLedger(sqlite_db)
    with pytest.raises(StateSchemaError, match="newer assetferry"):
        StateStore(str(sqlite_db), read_only=True)


def test_the_stdlib_reader_names_a_file_that_is_no_database(sqlite_db: Path) -> None:
    sqlite_db.parent.mkdir(parents=True)
    sqlite_db.write_bytes(b"not a database, just text" * 100)
    with pytest.raises(StateError, match=r"cannot be used .*not an assetferry state file"):
        open_ledger(str(sqlite_db))
    with pytest.raises(StateError, match="is a directory"):
        open_ledger(str(sqlite_db.parent))


def test_the_stdlib_reader_imports_no_sqlalchemy() -> None:
    """What keeps ``status`` on a SQLite file free of SQLAlchemy's import (issue 12)."""
    import subprocess

    probe = ("import sys, state.reader; "
             "print([m for m in sys.modules if m.startswith('sqlalchemy')])")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"

