"""The secrets scan (issue 12), over every connector: each CMS as the source and, where it can
be one, as the target, through the real command line with debug JSON logs and every output a
user can ask for. Its token appears in no output, report, map, state DB file or error text,
and no file host of any emulator saw a credential (each records credential headers it is
sent in ``credential_leaks``). A wrong token's value is not echoed by the error it causes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.plugin import DemoFile, EmulatedCMS, EmulatorSettings
from pipeline import cli
from pipeline.registry import plugin_for
from tests.pipeline.helpers import job_toml, route_in_process

CMS = ("contentstack", "storyblok", "webflow", "contento", "contentstack-delivery")
WRITABLE = tuple(name for name in CMS if plugin_for(name).writable)
FILES = [DemoFile(folder=("brand",), name="logo.txt", data=b"logo\n" * 40,
                  content_type="text/plain", title="Logo", alt="The logo"),
         DemoFile(folder=(), name="notes.txt", data=b"notes\n" * 30,
                  content_type="text/plain", title="Notes")]


def _cms(name: str) -> EmulatedCMS:
    factory = plugin_for(name).emulator
    assert factory is not None
    return factory(EmulatorSettings(unlimited=True))


def _leaks(cms: EmulatedCMS) -> list[Any]:
    return list(getattr(getattr(cms, "emulator", None), "credential_leaks", []))


@pytest.fixture
def emulator() -> Iterator[Callable[[str], EmulatedCMS]]:
    """Opens the named CMS's emulator (unlimited rate); closes each at the test's end."""
    made: list[EmulatedCMS] = []

    def make(name: str) -> EmulatedCMS:
        made.append(_cms(name))
        return made[-1]

    yield make
    for cms in made:
        cms.close()


def _job_with(tmp_path: Path, cms: EmulatedCMS, side: str, other: str,
              monkeypatch: pytest.MonkeyPatch, token: str | None = None) -> Path:
    """A job with ``cms`` on ``side`` (reached in-process) and ``other`` (a connector table)
    on the other side; the CMS's token variables set to theirs, or all to ``token``."""
    for key, value in cms.env.items():
        monkeypatch.setenv(key, token if token is not None else value)
    route_in_process(monkeypatch, {side: cms.app})
    tables = {side: cms.job_section(f"http://{side}.emulator"),
              "target" if side == "source" else "source": other}
    return job_toml(tmp_path, tables["source"], tables["target"])


def _local(path: Path) -> str:
    return f'connector = "local"\npath = "{path}"'


def _run_everything(tmp_path: Path, job: Path, capsys: pytest.CaptureFixture[str]) -> str:
    out: list[str] = []
    for args in (["plan", "-c", str(job), "--format", "json", "--out", str(tmp_path / "plan.json")],
                 ["-v", "--log-format", "json", "migrate", "-c", str(job),
                  "--report", str(tmp_path / "report.json")],
                 ["-v", "sync", "-c", str(job)],
                 ["status", "-c", str(job), "--format", "json"],
                 ["export-map", "-c", str(job), "--out", str(tmp_path / "map.csv")]):
        code = cli.main(args)
        captured = capsys.readouterr()
        out.append(captured.out + captured.err)
        assert code == 0, (args, out[-1][-3000:])
    return "\n".join(out)


def _assert_nowhere(secret: str, text: str, tmp_path: Path) -> None:
    assert secret not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def _assert_kept_secret(cms: EmulatedCMS, text: str, tmp_path: Path) -> None:
    """Every credential of ``cms`` absent from ``text`` and every file; none at a file host."""
    for secret in cms.env.values():
        _assert_nowhere(secret, text, tmp_path)
    assert _leaks(cms) == []


@pytest.mark.parametrize("name", CMS)
def test_a_source_token_reaches_no_output_and_no_file_host(
        tmp_path: Path, name: str, emulator: Callable[[str], EmulatedCMS],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cms = emulator(name)
    cms.seed(FILES)
    job = _job_with(tmp_path, cms, "source", _local(tmp_path / "out"), monkeypatch)
    text = _run_everything(tmp_path, job, capsys)
    assert "load.done" in text, "the debug JSON log was captured"
    assert len(list((tmp_path / "out").rglob("*.txt"))) == len(FILES)
    _assert_kept_secret(cms, text, tmp_path)


@pytest.mark.parametrize("name", WRITABLE)
def test_a_target_token_reaches_no_output_and_no_file_host(
        tmp_path: Path, name: str, emulator: Callable[[str], EmulatedCMS],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cms = emulator(name)
    library = tmp_path / "library"
    for f in FILES:
        (library.joinpath(*f.folder)).mkdir(parents=True, exist_ok=True)
        library.joinpath(*f.folder, f.name).write_bytes(f.data)
    job = _job_with(tmp_path, cms, "target", _local(library), monkeypatch)
    text = _run_everything(tmp_path, job, capsys)
    assert cms.holdings()[0] == len(FILES)
    _assert_kept_secret(cms, text, tmp_path)


@pytest.mark.parametrize("name", CMS)
def test_a_wrong_token_is_refused_without_echoing_it(
        tmp_path: Path, name: str, emulator: Callable[[str], EmulatedCMS],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cms = emulator(name)
    cms.seed(FILES)
    wrong = "wrong-token-4d9b1e77c2"
    job = _job_with(tmp_path, cms, "source", _local(tmp_path / "out"), monkeypatch, wrong)
    code = cli.main(["-v", "--log-format", "json", "migrate", "-c", str(job)])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text[-3000:]
    assert "Traceback" not in text
    assert "token" in text.lower() or "credential" in text.lower() or "auth" in text.lower()
    _assert_nowhere(wrong, text, tmp_path)
