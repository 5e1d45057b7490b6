"""Adoption needs equal bytes (issue 6 §1(a)): a target file with the same folder, name and
size as a source asset is taken for its copy only once the bytes compare equal, end to end."""

from __future__ import annotations

from pathlib import Path

from connectors.emulation import in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline.config import load_job
from pipeline.report import map_rows
from pipeline.run import execute_job
from state.store import StateStore
from tests.pipeline.helpers import sb_section

SB_SPACE = 288868932106294
SB_TOKEN = "sb-adopt-token-7c2a"
SB_SECTION = sb_section(SB_SPACE, SB_TOKEN)


def job_file(tmp_path: Path, source: str, dest: Path) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f'[source]\n{source}\n[target]\nconnector = "local"\npath = "{dest}"\n'
                    f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    return path


async def test_a_reupload_with_other_bytes_of_the_same_size_never_keeps_the_old_file(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    """Storyblok -> local: Docs/readme.txt deleted in the source and a different file of the
    same length uploaded under the same name. The old code adopted the target file by its
    size: exit 0, the old bytes kept for good, export-map naming the new id."""
    docs = sb.add_folder("Docs")
    old_id = sb.add_asset("readme.txt", b"old readme!", folder_id=docs)
    dest = tmp_path / "mirror"
    job = load_job(job_file(tmp_path, SB_SECTION, dest), env={})
    transports = {"source": in_process_transport(sb.app)}
    first = await execute_job(job, "sync", transports=transports)
    assert first.exit_code() == 0, first.text()
    assert (dest / "Docs" / "readme.txt").read_bytes() == b"old readme!"

    sb.assets[old_id]["deleted_at"] = "2026-11-29T10:00:00.000Z"
    new = b"NEW README?"
    assert len(new) == len(b"old readme!")
    new_id = sb.add_asset("readme.txt", new, folder_id=docs)

    summary = await execute_job(job, "sync", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert (dest / "Docs" / "readme.txt").read_bytes() == new, "the target has the new file"
    assert summary.counts()["replaced"] == 1
    store = StateStore(job.run.state)
    try:
        mapped = {r["source_id"]: r["path"]
                  for r in map_rows(store.items(summary.route).values())}
    finally:
        store.close()
    assert mapped.get(str(new_id)) == "Docs/readme.txt"
    assert str(old_id) not in mapped
    again = await execute_job(job, "sync", transports=transports)
    assert again.exit_code() == 0, again.text()
    assert again.counts()["bytes"] == 0, "the next run has nothing to send"


def _library(tmp_path: Path, body: bytes, existing: bytes) -> tuple[Path, Path]:
    source, dest = tmp_path / "library", tmp_path / "mirror"
    source.mkdir()
    dest.mkdir()
    (source / "x.txt").write_bytes(body)
    (dest / "x.txt").write_bytes(existing)
    return source, job_file(tmp_path, f'connector = "local"\npath = "{source}"\n', dest)


async def test_a_first_migrate_never_adopts_an_unrelated_file_of_the_same_size(
    tmp_path: Path
) -> None:
    """The target already holds a different x.txt of the same length: a conflict with its
    reason, exit 1, the target file untouched (the old code said "1 adopted", exit 0)."""
    _, path = _library(tmp_path, b"ours: 12345", b"THEIRS 6789")
    dest = tmp_path / "mirror"
    job = load_job(path, env={})
    for _ in range(2):  # and the next run says the same, never adopting it later
        summary = await execute_job(job, "migrate")
        assert summary.exit_code() == 1, summary.text()
        assert summary.counts()["adopted"] == 0
        [item] = [o for o in summary.outcomes if o.kind == "asset"]
        assert "a different file with the same name and size is in the target" in item.reason
        assert (dest / "x.txt").read_bytes() == b"THEIRS 6789"
    assert sorted(p.name for p in dest.iterdir()) == ["x.txt"]


async def test_a_target_file_with_the_same_bytes_is_adopted_with_nothing_sent(
    tmp_path: Path
) -> None:
    _, path = _library(tmp_path, b"same bytes", b"same bytes")
    job = load_job(path, env={})
    summary = await execute_job(job, "migrate")
    assert summary.exit_code() == 0, summary.text()
    assert (summary.counts()["adopted"], summary.counts()["created"]) == (1, 0)
    assert summary.counts()["bytes"] == 0
    again = await execute_job(job, "migrate")
    assert again.exit_code() == 0, again.text()
    assert (again.counts()["adopted"], again.counts()["bytes"]) == (0, 0)
