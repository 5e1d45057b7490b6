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


def test_an_unreadable_change_in_a_sources_journal_fails_its_asset_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The manifest's change journal is read like the manifest: a line whose entry holds a
    lone surrogate sets that entry aside (its asset not migrated, naming the line), the
    lines after it still apply."""
    job = local_job(tmp_path)
    lib = tmp_path / "lib"
    (lib / ".assetferry.json").write_bytes(b'{"version": 1, "assets": {' + GOOD + b"}}")
    (lib / ".assetferry.json.journal").write_bytes(
        b'{"put": "y.bin", "entry": {"title": "\\ud800"}}\n'
        b'{"put": "A/x.bin", "entry": {"title": "Sky"}}\n')
    capsys.readouterr()
    assert main(["migrate", "-c", str(job)]) == 1
    out = capsys.readouterr().out
    assert "NOT MIGRATED y.bin: its change in the metadata manifest journal" in out, out
    assert "at line 1.entry.title" in out, out
    written = json.loads((tmp_path / "out" / ".assetferry.json").read_text())
    assert written["assets"]["A/x.bin"]["title"] == "Sky"


def test_unreadable_entries_of_a_targets_manifest_and_journal_are_kept_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A target's manifest written by another tool with a file name's undecodable byte
    (``\\udcff``, as ``json.dumps`` escapes ``os.fsdecode``'s surrogate) or a lone surrogate
    in a title, in the manifest or its journal, no longer stops the run: the entries are
    set aside, the run goes on, and the rewritten manifest holds them as they were (the
    surrogates as escapes: they read back as the same strings)."""
    job = local_job(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".assetferry.json").write_bytes(
        b'{"version": 1, "assets": {"caf\\udcff.bin": {"title": "x"}}}\n')
    (out / ".assetferry.json.journal").write_bytes(
        b'{"put": "old.bin", "entry": {"title": "\\ud800"}}\n'
        b'{"put": "kept.bin", "entry": {"title": "fine"}}\n')
    capsys.readouterr()
    assert main(["migrate", "-c", str(job)]) == 0, capsys.readouterr().out
    assert (out / "A" / "x.bin").read_text() == "one\n"
    raw = (out / ".assetferry.json").read_bytes()
    raw.decode("utf-8")  # valid UTF-8: the surrogates are written as escapes
    assets = json.loads(raw)["assets"]
    assert assets["caf\udcff.bin"] == {"title": "x"}
    assert assets["old.bin"] == {"title": "\ud800"}
    assert assets["kept.bin"]["title"] == "fine"
    assert set(assets) >= {"A/x.bin", "y.bin"}
