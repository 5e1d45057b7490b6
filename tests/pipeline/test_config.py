from __future__ import annotations

from pathlib import Path

import pytest

from connectors.contentstack import ContentstackConfig
from connectors.errors import ConfigError
from connectors.localfs import LocalConfig
from pipeline.config import load_job

GOOD = """
[source]
connector = "local"
path = "./library"

[target]
connector = "contentstack"
api_key = "blt0123456789abcdef"
management_token = "${CS_TOKEN}"
region = "eu"
branch = "main"

[mapping]
folder_overflow = "truncate"

[run]
state = "state/x.db"
concurrency = 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def test_env_reference_is_expanded_and_paths_are_relative_to_the_job_file(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, GOOD), env={"CS_TOKEN": "s3cret"})
    assert isinstance(job.target, ContentstackConfig)
    assert isinstance(job.source, LocalConfig)
    assert job.target.management_token is not None
    assert job.target.management_token.get_secret_value() == "s3cret"
    assert job.source.connector == "local"
    assert Path(job.source.path) == tmp_path / "library"
    assert job.run.state == str(tmp_path / "state/x.db")
    assert job.mapping.folder_overflow == "truncate"
    assert job.run.concurrency == 4


def test_missing_env_var_names_the_key_and_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_job(write(tmp_path, GOOD), env={})
    assert "target.management_token" in str(err.value)
    assert "CS_TOKEN" in str(err.value)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"target\.api_kee: unknown key"):
        load_job(write(tmp_path, GOOD.replace("api_key =", "api_kee =")), env={"CS_TOKEN": "x"})


def test_bad_value_is_named_without_echoing_the_secret(tmp_path: Path) -> None:
    text = GOOD.replace('region = "eu"', 'region = "mars"')
    with pytest.raises(ConfigError) as err:
        load_job(write(tmp_path, text), env={"CS_TOKEN": "s3cret-value"})
    assert "target.region" in str(err.value)
    assert "s3cret-value" not in str(err.value)


def test_unknown_connector_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown connector"):
        load_job(write(tmp_path, GOOD.replace('connector = "local"', 'connector = "dropbox"')),
                 env={"CS_TOKEN": "x"})


def test_not_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_job(write(tmp_path, "[source\nconnector="), env={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_job(tmp_path / "nope.toml", env={})


_TARGETS = {
    "contentstack": 'api_key = "blt0123456789abcdef"\nmanagement_token = "${TOKEN}"',
    "storyblok": 'space_id = 12345\ntoken = "${TOKEN}"',
    "webflow": 'site_id = "0123456789abcdef01234567"\ntoken = "${TOKEN}"',
}
_SOURCES = {
    "contentstack-delivery": 'api_key = "blt0123456789abcdef"\ndelivery_token = "${TOKEN}"\n'
                             'environment = "production"',
    "contento": 'site_id = "s_1"\ntoken = "${TOKEN}"',
}


def _job_with(side: str, connector: str, body: str, extra: str = "") -> str:
    other = "target" if side == "source" else "source"
    other_body = ('connector = "local"\npath = "./out"' if other == "target"
                  else 'connector = "local"\npath = "./library"')
    return (f'[{side}]\nconnector = "{connector}"\n{body}\n{extra}\n'
            f'[{other}]\n{other_body}\n')


_EVERY = [("target", c, b) for c, b in _TARGETS.items()] + [
    ("source", c, b) for c, b in _SOURCES.items()]
_IDS = [f"{side}-{connector}" for side, connector, _ in _EVERY]


@pytest.mark.parametrize(("side", "connector", "body"), _EVERY, ids=_IDS)
def test_a_blank_token_is_refused_on_every_connector(tmp_path: Path, side: str, connector: str,
                                                     body: str) -> None:
    """One shared check (connectors.settings): a blank ${VAR} would be sent as a credential."""
    with pytest.raises(ConfigError, match=r"is empty; is the environment variable"):
        load_job(write(tmp_path, _job_with(side, connector, body)), env={"TOKEN": "  "})


@pytest.mark.parametrize(("side", "connector", "body"), _EVERY, ids=_IDS)
@pytest.mark.parametrize("url", ["ftp://host", "http://", "not a url"])
def test_a_bad_base_url_is_refused_on_every_connector(tmp_path: Path, side: str, connector: str,
                                                      body: str, url: str) -> None:
    text = _job_with(side, connector, body, f'base_url = "{url}"')
    with pytest.raises(ConfigError, match=rf"{side}\.base_url: .*http:// or https://|is not a URL"):
        load_job(write(tmp_path, text), env={"TOKEN": "t"})


@pytest.mark.parametrize("state", ["sqlite://", "sqlite:///:memory:",
                                   "sqlite+pysqlite://", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_state_database_is_refused(tmp_path: Path, state: str) -> None:
    """Found by a tester: migrate exited 0 with `state = "sqlite://"`, then status, resume
    and export-map had nothing."""
    text = GOOD.replace('state = "state/x.db"', f'state = "{state}"')
    with pytest.raises(ConfigError, match=r"run\.state: .*in-memory database keeps nothing"):
        load_job(write(tmp_path, text), env={"CS_TOKEN": "x"})


@pytest.mark.parametrize("value", ["99999999999999999999", "1e9", '"7"', "0"])
def test_full_listing_every_is_a_whole_number_in_range(tmp_path: Path, value: str) -> None:
    """Found by a tester: a huge value crashed sync (OverflowError in SQLite)."""
    text = GOOD.replace("concurrency = 4", f"concurrency = 4\nfull_listing_every = {value}")
    with pytest.raises(ConfigError, match=r"run\.full_listing_every"):
        load_job(write(tmp_path, text), env={"CS_TOKEN": "x"})
