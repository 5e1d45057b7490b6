from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from connectors.contentstack import ContentstackConfig
from connectors.errors import ConfigError
from connectors.localfs import LocalConfig
from pipeline.config import job_model, load_job
from pipeline.registry import plugins

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


@pytest.mark.parametrize(("line", "says"), [
    ("concurrency = 0", "run.concurrency: must be greater than or equal to 1, got 0"),
    ("concurrency = -3", "run.concurrency: must be greater than or equal to 1, got -3"),
])
def test_a_value_out_of_range_says_so_in_words(tmp_path: Path, line: str, says: str) -> None:
    """Found by a tester: pydantic's own "Input should be greater than or equal to 1", with no
    value, where every other message says "must be ..., got ..."."""
    text = GOOD.replace("concurrency = 4", line)
    with pytest.raises(ConfigError) as err:
        load_job(write(tmp_path, text), env={"CS_TOKEN": "x"})
    assert says in str(err.value)
    assert "Input should" not in str(err.value)


# --- strict values: a job file's value is taken as written or refused, never coerced --------


def _job_models() -> list[type[BaseModel]]:
    """Every pydantic model a job file is validated with (pipeline, mappings, connectors)."""
    seen: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for info in model.model_fields.values():
            for arg in _leaves(info.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg)

    walk(job_model())
    for plugin in plugins().values():
        walk(plugin.config)
    return seen


def _leaves(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    return [annotation] if not args else [x for a in args for x in _leaves(a)]


_COERCIBLE: dict[type, object] = {bool: "yes", int: True, float: True}
"""A value pydantic's lax mode would turn into each type (``"yes"`` -> True, True -> 1)."""


_NO_SCALARS = {"JobConfig", "MappingConfig", "LocaleRules", "ContentoConfig"}
"""Models with no bool, int or float key of their own."""


@pytest.mark.parametrize("model", _job_models(), ids=lambda m: m.__name__)
def test_no_job_file_key_coerces_a_value_of_another_type(model: type[BaseModel]) -> None:
    """Every bool, int and float key of every job-file model refuses a value of another
    TOML type (``prune = "yes"``, ``concurrency = true``) instead of coercing it."""
    checked = 0
    for info in model.model_fields.values():
        leaves = _leaves(info.annotation)
        for kind in [t for t in leaves if t in _COERCIBLE]:
            value = _COERCIBLE[kind]
            if type(value) in leaves:  # the union takes that type as it is (str | bool)
                continue
            annotation: Any = (typing.Annotated[info.annotation, *info.metadata]
                               if info.metadata else info.annotation)
            with pytest.raises(ValidationError):
                TypeAdapter(annotation).validate_python(value)
            checked += 1
    assert checked or model.__name__ in _NO_SCALARS, model.__name__


@pytest.mark.parametrize(("section", "line", "message"), [
    ("run", 'prune = "yes"', 'run.prune: must be true or false (without quotes), got "yes"'),
    ("run", "concurrency = true",
     "run.concurrency: must be a whole number (without quotes), got true"),
    ("run", "max_deletes = 2.5", "run.max_deletes: must be a whole number"),
    ("mapping.tags", 'keep = "yes"', 'mapping.tags.keep: must be true or false'),
    ("mapping.filters", "only_referenced = 1", "mapping.filters.only_referenced: must be true"),
    ("mapping.fields", "title = 5", "mapping.fields.title: got 5; give a template in quotes"),
    ("mapping.fields", "title = true", "mapping.fields.title: got true; give a template"),
    ("target", "publish = true", "target.publish: got true; give a table"),
    ("target", 'publish = "yes"', 'target.publish: got "yes"; give a table'),
    ("target", "requests_per_second = true", "target.requests_per_second: must be a number"),
    ("mapping", 'folder_overflow = "nah"',
     "mapping.folder_overflow: must be 'collapse', 'truncate' or 'fail', got \"nah\""),
])
def test_a_value_of_the_wrong_type_is_one_line_naming_key_value_and_what_is_allowed(
    tmp_path: Path, section: str, line: str, message: str
) -> None:
    key = line.split(" =")[0]
    good = "\n".join(x for x in GOOD.splitlines() if not x.startswith(f"{key} ="))
    text = good.replace(f"[{section}]\n", f"[{section}]\n{line}\n") \
        if f"[{section}]\n" in good else good + f"\n[{section}]\n{line}\n"
    with pytest.raises(ConfigError) as err:
        load_job(write(tmp_path, text), env={"CS_TOKEN": "s3cret"})
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid job file:"
    assert len(lines) == 2, lines  # one line for the key, not one per member of a union
    assert message in lines[1]


def test_a_secret_of_the_wrong_type_is_named_by_its_type_not_its_value(tmp_path: Path) -> None:
    text = GOOD.replace('management_token = "${CS_TOKEN}"', "management_token = 987654321")
    with pytest.raises(ConfigError) as err:
        load_job(write(tmp_path, text), env={})
    assert "target.management_token: must be text in quotes, got a number" in str(err.value)
    assert "987654321" not in str(err.value)


# --- the job file's encoding ------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_job(path, env={"CS_TOKEN": "s3cret"}).run.concurrency == 4


@pytest.mark.parametrize(("data", "says"), [
    (GOOD.encode("utf-16"), "is UTF-16 text; TOML must be UTF-8: save it as UTF-8"),
    (GOOD.encode("utf-16-le"), "is UTF-16 text; TOML must be UTF-8"),
    (GOOD.replace('branch = "main"', 'branch = "h\u00e9"').encode("latin-1"),
     "is not UTF-8 text: byte 0xe9 on line 11 (Latin-1 or Windows-1252?)"),
], ids=["utf-16 with BOM", "utf-16 without BOM", "latin-1"])
def test_a_job_file_not_in_utf8_is_one_line_saying_how_to_save_it(
    tmp_path: Path, data: bytes, says: str
) -> None:
    path = tmp_path / "job.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        load_job(path, env={"CS_TOKEN": "s3cret"})
    assert says in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_a_stray_nul_byte_in_a_utf8_job_file_is_named_by_line_and_column(
    tmp_path: Path
) -> None:
    """A raw NUL in UTF-8 text is not UTF-16 (that is a BOM or a NUL every other byte): the
    message names the NUL's line and column and says to remove it."""
    path = tmp_path / "j.toml"
    path.write_bytes(b'[source]\npath = "./li\x00b"\n')
    with pytest.raises(ConfigError) as err:
        load_job(path, env={})
    assert "UTF-16" not in str(err.value)
    assert f"job file {path} contains a NUL byte at line 2, column 13; " in str(err.value)
    assert "remove it" in str(err.value)


def test_a_job_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "j.toml"
    path.write_bytes(GOOD.encode() + b"#" * (1024 * 1024))
    with pytest.raises(ConfigError, match=r"job file .*j\.toml is too large \(over 1 MiB\); "
                                          r"a job file is a small TOML file"):
        load_job(path, env={"CS_TOKEN": "s3cret"})


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this platform")
def test_a_device_file_as_job_file_is_refused_unread() -> None:
    """``-c /dev/zero`` read to the end would never end (and grow without bound)."""
    with pytest.raises(ConfigError, match=r"job file /dev/zero is a device file, not a "
                                          r"regular file; give the path of a \.toml file"):
        load_job(Path("/dev/zero"), env={})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_fifo_as_job_file_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "j.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"is a FIFO \(named pipe\), not a regular file"):
        load_job(fifo, env={})


@pytest.mark.parametrize(("run", "says"), [
    ('map_file = ""', "run.map_file: empty; leave the key out for the default"),
    ('map_file = "state/x.db"', "is the state database (run.state)"),
    ('map_file = "state/x.db-wal"', "is the state database (run.state) or one of its own"),
    ('map_file = "job.toml"', "is the job file; writing the map there would destroy it"),
    ('map_file = "maps"', "is a folder; give a file path in it"),
    ('state = "job.toml"\nmap_file = "m.jsonl"', "run.state: "),
])
def test_run_paths_that_would_destroy_each_other_are_refused(tmp_path: Path, run: str,
                                                             says: str) -> None:
    """[run] map_file on the state database, the job file or a folder, an empty one, a
    state database on the job file or a folder: exit 2 before anything is written, saying
    what to give instead."""
    (tmp_path / "maps").mkdir()
    text = GOOD.replace('state = "state/x.db"', run if run.startswith("state") else
                        f'state = "state/x.db"\n{run}')
    with pytest.raises(ConfigError) as err:
        load_job(write(tmp_path, text), env={"CS_TOKEN": "t"})
    assert says in str(err.value)
    assert "Give another file path" in str(err.value) or "give" in str(err.value)


def test_a_map_file_of_its_own_is_accepted(tmp_path: Path) -> None:
    text = GOOD.replace('state = "state/x.db"', 'state = "state/x.db"\nmap_file = "maps/a.jsonl"')
    job = load_job(write(tmp_path, text), env={"CS_TOKEN": "t"})
    assert job.run.map_file == str(tmp_path / "maps" / "a.jsonl")
