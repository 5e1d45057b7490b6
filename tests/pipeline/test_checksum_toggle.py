"""Turning a local source's ``checksum = true`` on after a run: the ledger's file hash
changes kind, which alone must not send every file again. A file whose size and
modification time are as when it was sent is compared with the target's copy and adopted
when the bytes are equal (nothing sent); one changed under a kept mtime (what the checksum
is there to see) is still replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.plan import NEWLY_SUMMED
from tests.pipeline.helpers import local_job


def test_turning_checksums_on_adopts_the_unchanged_files_and_replaces_a_changed_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = local_job(tmp_path)
    assert main(["migrate", "-c", str(job)]) == 0
    # y.bin's bytes change, its size and modification time kept (cp -p over it)
    y = tmp_path / "lib" / "y.bin"
    st = y.stat()
    y.write_text("TWO\n")
    os.utime(y, ns=(st.st_atime_ns, st.st_mtime_ns))
    job.write_text(job.read_text().replace('path = "./lib"\n',
                                           'path = "./lib"\nchecksum = true\n', 1))
    capsys.readouterr()
    assert main(["plan", "-c", str(job)]) == 0
    planned = capsys.readouterr().out
    assert planned.count(NEWLY_SUMMED) == 2, planned
    assert main(["migrate", "-c", str(job)]) == 0
    ran = capsys.readouterr().out
    assert "0 created, 1 replaced, 0 updated, 1 adopted" in ran, ran
    assert "4 bytes sent" in ran, "only y.bin, whose bytes changed"
    assert (tmp_path / "out" / "y.bin").read_text() == "TWO\n"
    assert main(["plan", "-c", str(job)]) == 0
    again = capsys.readouterr().out
    assert "2 assets unchanged since the last run" in again, again
