"""Item claims (`StateStore.claim` / `release`): never two owners on one item, on SQLite and on
PostgreSQL, across threads and OS processes; expired leases taken over; release frees."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from state.models import ItemClaim
from state.store import ItemStatus, StateStore
from tests.state.conftest import at_once, engine_url

ROUTE = "contentstack:blt1->storyblok:42"
REPO = Path(__file__).resolve().parents[2]
LEASE = timedelta(minutes=5)


@pytest.fixture
def store(db: str) -> Iterator[StateStore]:
    with StateStore(db) as s:
        yield s


def keys(*ids: str) -> list[tuple[str, str]]:
    return [("asset", i) for i in ids]


def test_claim_holds_renews_and_leaves_out_what_another_owner_holds(store: StateStore) -> None:
    assert store.claim(ROUTE, keys("1", "2", "1"), "worker-a", lease=LEASE) == keys("1", "2")
    assert store.claim(ROUTE, keys("2", "3"), "worker-b", lease=LEASE) == keys("3")
    before = store.claims(ROUTE)[("asset", "1")][1]
    # already held by this owner: renewed (kept, lease moved on)
    assert store.claim(ROUTE, keys("3", "1"), "worker-a", lease=LEASE * 2) == keys("1")
    owner, until = store.claims(ROUTE)[("asset", "1")]
    assert owner == "worker-a"
    assert until > before
    assert {k: v[0] for k, v in store.claims(ROUTE).items()} == {
        ("asset", "1"): "worker-a", ("asset", "2"): "worker-a", ("asset", "3"): "worker-b"}
    # another route's items are other items
    assert store.claim("other->route", keys("1"), "worker-b", lease=LEASE) == keys("1")
    # folders and assets with the same id are different items
    assert store.claim(ROUTE, [("folder", "1")], "worker-b", lease=LEASE) == [("folder", "1")]


def test_release_frees_only_the_owners_claims(store: StateStore) -> None:
    store.claim(ROUTE, keys("1", "2"), "worker-a", lease=LEASE)
    store.claim(ROUTE, keys("3"), "worker-b", lease=LEASE)
    store.release(ROUTE, keys("1", "3", "9"), "worker-a")  # 3 is b's, 9 no one's: untouched
    assert set(store.claims(ROUTE)) == {("asset", "2"), ("asset", "3")}
    assert store.claim(ROUTE, keys("1", "2", "3"), "worker-b", lease=LEASE) == keys("1", "3")
    store.release(ROUTE, [], "worker-b")  # nothing to do


def test_an_expired_lease_is_taken_over(store: StateStore, db: str) -> None:
    store.claim(ROUTE, keys("1", "2"), "dead-worker", lease=LEASE)
    engine = create_engine(engine_url(db))
    try:  # the dead worker's lease on item 1 ran out a second ago
        with engine.begin() as conn:
            conn.execute(update(ItemClaim).where(ItemClaim.source_id == "1")
                         .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        engine.dispose()
    assert store.claim(ROUTE, keys("1", "2"), "new-worker", lease=LEASE) == keys("1")
    assert store.claims(ROUTE)[("asset", "1")][0] == "new-worker"
    # and the dead worker, back, no longer holds it
    assert store.claim(ROUTE, keys("1"), "dead-worker", lease=LEASE) == []


def test_claim_refuses_an_empty_owner_or_a_lease_that_is_not_positive(
        store: StateStore) -> None:
    with pytest.raises(ValueError, match="owner"):
        store.claim(ROUTE, keys("1"), "", lease=LEASE)
    with pytest.raises(ValueError, match="lease"):
        store.claim(ROUTE, keys("1"), "w", lease=timedelta(0))
    assert store.claim(ROUTE, [], "w", lease=LEASE) == []
    assert store.claims(ROUTE) == {}


def test_more_keys_than_one_statement_takes(store: StateStore) -> None:
    many = keys(*(str(i) for i in range(1200)))
    assert store.claim(ROUTE, many, "a", lease=LEASE) == many
    assert store.claim(ROUTE, many[900:], "b", lease=LEASE) == []
    store.release(ROUTE, many, "a")
    assert store.claims(ROUTE) == {}


def test_threads_claiming_overlapping_keys_never_both_get_one(db: str) -> None:
    """Each round, two stores (two connections) claim the same ten items at the same moment:
    every item goes to exactly one of them."""
    stores = [StateStore(db), StateStore(db)]
    wanted = keys(*(str(i) for i in range(10)))
    results: dict[tuple[int, int], list[tuple[str, str]]] = {}

    def claimer(n: int, start: threading.Barrier) -> None:
        for round_ in range(15):
            start.wait(timeout=30)
            order = wanted if n == 0 else wanted[::-1]  # opposite orders: no deadlock
            results[n, round_] = stores[n].claim(ROUTE, order, f"w{n}", lease=LEASE)
            start.wait(timeout=30)
            stores[n].release(ROUTE, wanted, f"w{n}")

    try:
        assert at_once(claimer, 2, timeout=120) == []
        for round_ in range(15):
            a, b = set(results[0, round_]), set(results[1, round_])
            assert not a & b, f"round {round_}: both hold {sorted(a & b)}"
            assert a | b == set(wanted)
    finally:
        for s in stores:
            s.close()


HAMMER = """
import json, random, sys
from datetime import UTC, datetime, timedelta
from state.store import ItemRecord, ItemStatus, StateStore
url, route, me = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(me)
shared = [("asset", f"s{i}") for i in range(12)]
got = {}
with StateStore(url) as store:
    for n in range(6):
        mine = store.claim(route, rng.sample(shared, 4), me, lease=timedelta(minutes=5))
        rows = store.items(route, kind="asset")
        # read-modify-write under the claim: a second holder would lose an update
        store.write([ItemRecord(route, "asset", sid, ItemStatus.DONE,
                                attempts=(rows[("asset", sid)].attempts + 1
                                          if ("asset", sid) in rows else 1),
                                journal={"by": me}) for _, sid in mine]
                    + [ItemRecord(route, "asset", f"{me}-{n}", ItemStatus.DONE)])
        store.release(route, mine, me)
        for _, sid in mine:
            got[sid] = got.get(sid, 0) + 1
print(json.dumps(got))
"""


@pytest.mark.slow
def test_processes_hammering_claim_and_write_on_one_route_lose_nothing(db: str) -> None:
    """Three OS processes claim overlapping items, read-modify-write each claimed row's
    ``attempts`` and write rows of their own, at once: every row is there, and each shared
    row's attempts equals the number of times any process held it (a second holder at
    the same time would have lost an update)."""
    StateStore(db).close()  # the schema exists before they race
    workers = [f"w{n}" for n in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, db, ROUTE, w], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in workers]
    held: Counter[str] = Counter()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        held.update(json.loads(out))
    with StateStore(db) as store:
        rows = store.items(ROUTE, kind="asset")
        assert {sid for _, sid in rows} == {f"{w}-{n}" for w in workers for n in range(6)} \
            | set(held)
        assert sum(held.values()) > 0
        for sid, times in held.items():
            assert rows[("asset", sid)].attempts == times, sid
        assert store.ledger_counts(ROUTE)[ItemStatus.DONE.value] == len(rows)
        assert store.claims(ROUTE) == {}  # every claim was released


def test_a_state_file_from_before_claims_gets_the_table_in_place(db: str) -> None:
    with StateStore(db) as store:
        store.write([])
    engine = create_engine(engine_url(db))
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE claims"))
    finally:
        engine.dispose()
    with StateStore(db) as store:
        assert store.claim(ROUTE, keys("1"), "w", lease=LEASE) == keys("1")
