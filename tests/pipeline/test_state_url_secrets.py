"""A PostgreSQL password in ``[run] state``: whatever characters it holds, it never moves the
URL's host (its tail sent to DNS as a host name, shown as one) and no part of it is shown.
Found by the README-only tester: ``${PGPW}`` = ``secretA@secretB`` printed ``af:***@secretB@``
and looked up the host ``secretB@127.0.0.1``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pipeline.config import load_job, url_part
from state.store import StateError, StateStore, display_url

PASSWORDS = ["secretA@secretB", "p@ss:w/rd%x", "a b?c#d", "plain", "pre%40encoded"]


def job(tmp_path: Path, state: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(
        f'[source]\nconnector = "local"\npath = "src"\n\n[target]\nconnector = "local"\n'
        f'path = "dst"\n\n[run]\nstate = "{state}"\n', encoding="utf-8")
    (tmp_path / "src").mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_from_a_variable_keeps_the_host_where_it_is(
        tmp_path: Path, password: str) -> None:
    path = job(tmp_path, "postgresql+psycopg://af:${PGPW}@127.0.0.1:15432/af")
    state = load_job(path, env={"PGPW": password}).run.state
    url = make_url(state)
    assert url.host == "127.0.0.1"
    assert url.port == 15432
    assert url.database == "af"
    # already percent-encoded stays as written (the README's advice still holds)
    expected = "pre@encoded" if password == "pre%40encoded" else password
    assert url.password == expected
    assert expected not in display_url(state)
    assert "***" in display_url(state)


@pytest.mark.parametrize("password", ["secretA@secretB", "p@ss:w/rd%x"])
def test_an_unencoded_password_is_never_shown_in_part(password: str) -> None:
    raw = f"postgresql+psycopg://af:{password}@127.0.0.1:15432/af"
    shown = display_url(raw)
    assert shown == "postgresql+psycopg://af:***@127.0.0.1:15432/af"
    for piece in password.replace(":", "@").replace("/", "@").split("@"):
        assert piece not in shown.replace("postgresql+psycopg://af", "")


def test_an_unparsable_literal_url_says_to_percent_encode_without_echoing_it() -> None:
    with pytest.raises(StateError) as err:
        StateStore("postgresql+psycopg://af:p@ss:w/rd%x@127.0.0.1:15432/af")
    text = str(err.value)
    assert "percent-encode" in text
    assert "p@ss" not in text
    assert "w/rd" not in text


def test_url_part_leaves_allowed_characters_and_encodes_the_rest() -> None:
    assert url_part("Abc-1.2_~") == "Abc-1.2_~"
    assert url_part("a%41") == "a%41"
    assert url_part("a@b") == "a%40b"
    assert url_part("100%") == "100%25"
