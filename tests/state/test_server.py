"""A PostgreSQL state DB that can't be used says why and what to do, never with its password:
server unreachable, login refused, database missing, driver not installed."""

from __future__ import annotations

import socket
import sys

import pytest

from state.store import StateError, StateStore, display_url
from tests.pgserver import USER, PgServer

SECRET = "s3cr3t-Pa55word-never-shown"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql+psycopg://{USER}:{SECRET}@127.0.0.1:{_closed_port()}/ledger"
    with pytest.raises(StateError, match="cannot be reached") as info:
        StateStore(url)
    assert SECRET not in str(info.value)
    assert "***" in str(info.value)  # the URL is named, its password masked


def test_a_wrong_password_is_refused_and_never_echoed(pg_server: PgServer, pg_url: str) -> None:
    wrong = pg_server.url(pg_url.rsplit("/", 1)[1], password=SECRET)
    with pytest.raises(StateError, match="refused the login") as info:
        StateStore(wrong)
    assert SECRET not in str(info.value)
    assert pg_server.password not in str(info.value)
    assert "PGPASSWORD" in str(info.value)


def test_a_missing_database_says_to_create_it(pg_server: PgServer) -> None:
    with pytest.raises(StateError, match="does not exist") as info:
        StateStore(pg_server.url("no_such_ledger"))
    assert "createdb" in str(info.value)
    assert pg_server.password not in str(info.value)


def test_psycopg_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "psycopg" or m.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(StateError, match=r"pip install 'assetferry\[postgres\]'") as info:
        StateStore(f"postgresql+psycopg://{USER}:{SECRET}@127.0.0.1:5/ledger")
    assert SECRET not in str(info.value)


def test_display_url_masks_the_password_and_leaves_paths_alone() -> None:
    shown = display_url(f"postgresql+psycopg://{USER}:{SECRET}@db.example:5432/ledger")
    assert SECRET not in shown
    assert shown == f"postgresql+psycopg://{USER}:***@db.example:5432/ledger"
    assert display_url("/srv/state/assetferry.db") == "/srv/state/assetferry.db"
    assert SECRET not in display_url(f"postgresql://{USER}:{SECRET}@[bad")
