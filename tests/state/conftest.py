"""The state-store suite runs on SQLite and on a throw-away PostgreSQL server alike."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.pgserver import PgServer


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state database of one test: a SQLite file path (not created yet) or the URL of a
    fresh, empty PostgreSQL schema in the module's database (the test skips, saying why,
    where there is no server)."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "ckpt.db")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_schema(request.getfixturevalue("pg_url"))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """A SQLite state file path (not created yet), for what only SQLite has (files, WAL)."""
    return tmp_path / "state" / "ckpt.db"


def engine_url(db: str | Path) -> str:
    """A SQLAlchemy URL for `db` (a SQLite path or already a URL), to look behind the store."""
    return str(db) if "://" in str(db) else f"sqlite:///{db}"


def at_once(work: Callable[[int, threading.Barrier], None], n: int, *,
            timeout: float = 60) -> list[BaseException]:
    """Run ``work(i, barrier)`` for i in 0..n-1 in n threads that share one barrier (each
    calls ``barrier.wait()`` where the n must meet); the exceptions they raised (an empty list
    when none did). A failing thread aborts the barrier so the others do not hang."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            work(i, barrier)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return errors
