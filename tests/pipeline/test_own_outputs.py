"""An output option (--out, --report) never overwrites the job's own files nor writes into a
local source or target (found by a tester: `--report state/s.db` replaced the ledger with a
report, `--out job.toml` the job file, `--report out/a.txt` a migrated asset; all exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main


def job(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.txt").write_text("a")
    path = tmp_path / "job.toml"
    path.write_text(f'[source]\nconnector = "local"\npath = "{lib}"\n\n'
                    f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n\n'
                    f'[run]\nstate = "{tmp_path / "state" / "s.db"}"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["plan", "--out"], ["migrate", "--report"],
                                     ["export-map", "--out"], ["verify", "--out"]])
@pytest.mark.parametrize(("where", "words"), [
    ("state/s.db", "state database"), ("job.toml", "is the job file"),
    ("state/s.map.jsonl", "live id map"), ("out/a.txt", "is inside target.path"),
    ("lib/report.json", "is inside source.path")])
def test_an_output_onto_the_jobs_own_files_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], where: str,
        words: str) -> None:
    path = job(tmp_path)
    assert main(["migrate", "-c", str(path)]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    verb, option = command
    code = main([verb, "-c", str(path), option, str(tmp_path / where)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
