"""Job-file faults a README-only tester found (each once exit 2 with a traceback, a secret
echoed, or accepted): a NUL in a text value, user information in a base_url, a live id map
that cannot be written or lies in a local folder, an environment variable set but empty."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from connectors.errors import ConfigError
from pipeline.cli import main
from pipeline.config import load_job

_TARGETS = {
    "contentstack": 'api_key = "blt0123456789abcdef"\nmanagement_token = "${TOKEN}"',
    "storyblok": 'space_id = 1\ntoken = "${TOKEN}"',
    "webflow": 'site_id = "0123456789abcdef01234567"\ntoken = "${TOKEN}"',
}
_SOURCES = {
    "contentstack-delivery": 'api_key = "blt0123456789abcdef"\ndelivery_token = "${TOKEN}"\n'
                             'environment = "production"',
    "contento": 'site_id = "s_1"\ntoken = "${TOKEN}"',
}
_EVERY = [("target", c, b) for c, b in _TARGETS.items()] + [
    ("source", c, b) for c, b in _SOURCES.items()]


def _local_job(tmp_path: Path, *, source: str = "", target: str = "", mapping: str = "",
               run: str = "") -> Path:
    (tmp_path / "lib").mkdir(exist_ok=True)
    (tmp_path / "lib" / "a.txt").write_text("a")
    path = tmp_path / "job.toml"
    # a line given for a key the section has already replaces it (TOML forbids a repeat)
    source = source if source.startswith("path =") else f'path = "./lib"\n{source}'
    run = run if run.startswith("state =") else f'state = "state/s.db"\n{run}'
    path.write_text(f'[source]\nconnector = "local"\n{source}\n'
                    f'[target]\nconnector = "local"\npath = "./out"\n{target}\n'
                    f'[mapping]\n{mapping}\n[run]\n{run}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(("where", "line", "key"), [
    ("source", 'path = "./l\\u0000ib"', "source.path"),
    ("run", 'map_file = "a\\u0000b"', "run.map_file"),
    ("run", 'map_file = "~a\\u0000b"', "run.map_file"),
    ("run", 'state = "st\\u0000ate/s.db"', "run.state"),
    ("target", 'manifest = "m\\u0000.json"', "target.manifest"),
    ("mapping", 'folder_root = "a\\u0000"', "mapping.folder_root"),
    ("mapping", 'tags = { drop = ["x", "y\\u0000"] }', "mapping.tags.drop"),
    ("mapping", 'folder_rules = { "a\\u0000" = "b" }', "mapping.folder_rules"),
])
def test_a_nul_in_any_text_value_is_exit_2_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, line: str,
        key: str) -> None:
    path = _local_job(tmp_path, **{where: line})
    code = main(["plan", "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{key}: contains a NUL character" in err
    assert "unexpected error" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("where", "line", "key", "shown"), [
    ("mapping", 'tags = { "ke\\u0000ep" = true }', "mapping.tags", "'ke\\x00ep'"),
    ("mapping", 'tags = { rename = { "s\\u0000ea" = "ocean" } }', "mapping.tags.rename",
     "'s\\x00ea'"),
    ("run", '"concur\\u0000rency" = 3', "run", "'concur\\x00rency'"),
    ("target", '"mani\\u0000fest" = "m.json"', "target", "'mani\\x00fest'"),
])
def test_a_nul_in_a_key_is_refused_like_one_in_a_value_shown_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, line: str, key: str,
        shown: str) -> None:
    path = _local_job(tmp_path, **{where: line})
    code = main(["plan", "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{key}: contains a NUL character in the key {shown}" in err, err
    assert "\x00" not in err, "never the raw byte"
    assert "unknown key" not in err, err


def one_sided_job(tmp_path: Path, side: str, section: str) -> Path:
    """Write ``tmp_path/job.toml`` with ``section`` as ``[side]`` and a local folder on the
    other side."""
    other = "target" if side == "source" else "source"
    path = tmp_path / "job.toml"
    path.write_text(f'[{side}]\n{section}[{other}]\nconnector = "local"\npath = "./x"\n')
    return path


@pytest.mark.parametrize(("side", "connector", "body"), _EVERY)
def test_a_nul_in_a_secret_is_named_not_echoed(tmp_path: Path, side: str, connector: str,
                                               body: str) -> None:
    one_sided_job(tmp_path, side, f'connector = "{connector}"\n{body}\n')
    with pytest.raises(ConfigError) as err:
        load_job(tmp_path / "job.toml", env={"TOKEN": "SUPER\x00SECRET"})
    assert "contains a NUL character" in str(err.value)
    assert "SUPER" not in str(err.value)
    assert "SECRET" not in str(err.value)


@pytest.mark.parametrize(("side", "connector", "body"), _EVERY)
@pytest.mark.parametrize("url", ["ftp://SUPERSECRET@x", "http://user:SUPERSECRET@127.0.0.1:18201",
                                 "https://SUPERSECRET@api.example.com/v1"])
def test_a_base_url_with_user_information_is_refused_without_echoing_it(
        tmp_path: Path, side: str, connector: str, body: str, url: str) -> None:
    one_sided_job(tmp_path, side, f'connector = "{connector}"\n{body}\nbase_url = "{url}"\n')
    with pytest.raises(ConfigError) as err:
        load_job(tmp_path / "job.toml", env={"TOKEN": "t"})
    message = str(err.value)
    assert f"{side}.base_url: " in message
    assert "SUPERSECRET" not in message
    assert "user:" not in message
    assert "***@" in message
    if url.startswith("http"):
        assert "token keys" in message


def test_a_map_file_inside_the_local_target_is_refused_like_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _local_job(tmp_path, run='map_file = "out/map.jsonl"')
    for command in (["plan", "-c", str(path)], ["migrate", "-c", str(path)]):
        code = main(command)
        err = capsys.readouterr().err
        assert code == 2, err
        assert "run.map_file" in err
        assert "is inside target.path" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["plan", "migrate"])
def test_an_unwritable_map_file_is_exit_2_at_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    for place in ("/proc/nope/m.jsonl", f"{blocker}/m.jsonl"):
        path = _local_job(tmp_path, run=f'map_file = "{place}"')
        code = main([command, "-c", str(path)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "run.map_file" in err
        assert "cannot be written" in err
        assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("temporalio") is None,
                    reason="--temporal needs the Temporal SDK (the dev extra installs it)")
@pytest.mark.parametrize("place", ["/proc/nope/m.jsonl", "blocker/m.jsonl", "out/m.jsonl"])
def test_migrate_on_temporal_checks_the_map_file_before_it_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], place: str) -> None:
    """The client refuses what an in-process run refuses, before it contacts the server
    (none listens at port 9): an unwritable map file, or one inside a local folder."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    path = _local_job(tmp_path, run=f'map_file = "{place}"')
    code = main(["migrate", "-c", str(path), "--temporal", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "run.map_file" in err, err
    assert "Temporal server" not in err, "checked before the server is contacted"


def test_an_environment_variable_set_but_empty_says_so(tmp_path: Path) -> None:
    (tmp_path / "job.toml").write_text(
        '[source]\nconnector = "local"\npath = "./lib"\n'
        '[target]\nconnector = "contentstack"\napi_key = "blt0123456789abcdef"\n'
        'management_token = "${CS_TOKEN}"\n')
    with pytest.raises(ConfigError, match="CS_TOKEN is set but empty"):
        load_job(tmp_path / "job.toml", env={"CS_TOKEN": ""})
    with pytest.raises(ConfigError, match="CS_TOKEN is not set"):
        load_job(tmp_path / "job.toml", env={})
