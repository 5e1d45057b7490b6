"""One unreadable entry of a local source's metadata manifest (a lone UTF-16 surrogate, bytes
that are not UTF-8) is that asset's problem, not the run's (the last testers' finding: it
stopped the whole run): the asset is not migrated, with the reason naming the entry, and the
other assets go on with their metadata. A fault outside the entries still stops the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.pipeline.helpers import local_job

GOOD = b'"A/x.bin": {"title": "Sea"}'


@pytest.mark.parametrize("bad", [b'{"title": "\\ud800"}', b'{"title": "caf\xe9"}'],
                         ids=["lone surrogate", "not UTF-8"])
def test_an_unreadable_manifest_entry_fails_its_asset_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: bytes) -> None:
    job = local_job(tmp_path)
    (tmp_path / "lib" / ".assetferry.json").write_bytes(
        b'{"version": 1, "assets": {' + GOOD + b', "y.bin": ' + bad + b"}}")
    capsys.readouterr()
    assert main(["migrate", "-c", str(job)]) == 1
    out = capsys.readouterr().out
    assert "NOT MIGRATED y.bin: its entry in the metadata manifest" in out, out
    assert "at .assets['y.bin'].title" in out, out
    assert (tmp_path / "out" / "A" / "x.bin").read_text() == "one\n"
    assert not (tmp_path / "out" / "y.bin").exists()
    written = json.loads((tmp_path / "out" / ".assetferry.json").read_text())
    assert written["assets"]["A/x.bin"]["title"] == "Sea"


def test_unreadable_text_outside_the_entries_still_stops_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path)
    (tmp_path / "lib" / ".assetferry.json").write_bytes(
        b'{"version": 1, "assets": {' + GOOD + b'}, "note\\udc00": 1}')
    capsys.readouterr()
    assert main(["migrate", "-c", str(job)]) == 2
    assert "cannot be read" in capsys.readouterr().out
