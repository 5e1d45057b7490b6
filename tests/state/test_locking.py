"""The run lock under concurrency, on SQLite and PostgreSQL: of several processes starting the
same route at once exactly one runs; a write for a run that was taken over writes nothing."""

from __future__ import annotations

import threading

from state.store import RunLockedError, RunStatus, StateStore

ROUTE = "local:/lib->contentstack:blt1"


def test_stores_starting_one_route_at_once_get_one_run(db: str) -> None:
    """Six stores (six connections) call start_run for the same route at the same moment:
    one gets the run, the others RunLockedError (the check-then-insert is serialised)."""
    StateStore(db).close()
    stores = [StateStore(db) for _ in range(6)]
    start = threading.Barrier(len(stores))
    won: list[int] = []
    locked: list[str] = []
    errors: list[BaseException] = []

    def starter(s: StateStore) -> None:
        try:
            start.wait(timeout=30)
            won.append(s.start_run(ROUTE, "migrate"))
        except RunLockedError as exc:
            locked.append(str(exc))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=starter, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(won) == 1
        assert len(locked) == len(stores) - 1
        assert [r.status for r in stores[0].runs(ROUTE)] == [RunStatus.RUNNING]
    finally:
        for s in stores:
            s.close()


def test_stores_opening_a_fresh_database_at_once_all_open_it(db: str) -> None:
    """Workers started together on an empty database each create the tables if missing: one
    does, none fails on the other's CREATE TABLE."""
    start = threading.Barrier(5)
    opened: list[StateStore] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            start.wait(timeout=30)
            opened.append(StateStore(db))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(opened) == 5
        assert opened[0].start_run(ROUTE, "migrate") > 0
    finally:
        for s in opened:
            s.close()
