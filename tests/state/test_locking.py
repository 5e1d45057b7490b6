"""The run lock under concurrency, on SQLite and PostgreSQL: of several processes starting the
same route at once exactly one runs; a write for a run that was taken over writes nothing."""

from __future__ import annotations

import threading

from state.store import RunLockedError, RunStatus, StateStore
from tests.state.conftest import at_once

ROUTE = "local:/lib->contentstack:blt1"


def test_stores_starting_one_route_at_once_get_one_run(db: str) -> None:
    """Six stores (six connections) call start_run for the same route at the same moment:
    one gets the run, the others RunLockedError (the check-then-insert is serialised)."""
    StateStore(db).close()
    stores = [StateStore(db) for _ in range(6)]
    won: list[int] = []
    locked: list[str] = []

    def starter(i: int, start: threading.Barrier) -> None:
        start.wait(timeout=30)
        try:
            won.append(stores[i].start_run(ROUTE, "migrate"))
        except RunLockedError as exc:
            locked.append(str(exc))

    try:
        assert at_once(starter, len(stores)) == []
        assert len(won) == 1
        assert len(locked) == len(stores) - 1
        assert [r.status for r in stores[0].runs(ROUTE)] == [RunStatus.RUNNING]
    finally:
        for s in stores:
            s.close()


def test_stores_opening_a_fresh_database_at_once_all_open_it(db: str) -> None:
    """Workers started together on an empty database each create the tables if missing: one
    does, none fails on the other's CREATE TABLE."""
    opened: list[StateStore] = []

    def opener(_: int, start: threading.Barrier) -> None:
        start.wait(timeout=30)
        opened.append(StateStore(db))

    try:
        assert at_once(opener, 5) == []
        assert len(opened) == 5
        assert opened[0].start_run(ROUTE, "migrate") > 0
    finally:
        for s in opened:
            s.close()
