"""assetferry's own files are never assets: a state database (and its SQLite sidecars) inside a
local source folder, and a metadata manifest a local target left in a subfolder of it, are
skipped with their reason, shown and counted as excluded, and never copied."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.localfs import LocalConfig, LocalFolderConnector
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.report import plan_summary, plan_table
from pipeline.run import execute_job, own_files, plan_job

STATE_REASON = "assetferry's state database"


def _job(tmp_path: Path, src: Path, dest: Path, state: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f'[source]\nconnector = "local"\npath = "{src}"\n\n'
                    f'[target]\nconnector = "local"\npath = "{dest}"\n\n'
                    f'[run]\nstate = "{state}"\n', encoding="utf-8")
    return path


def _copied(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                  if p.is_file() and not p.name.startswith(".assetferry.json"))


@pytest.mark.slow
async def test_a_state_database_inside_the_local_source_is_excluded_not_copied(
    tmp_path: Path,
) -> None:
    src, dest = tmp_path / "lib", tmp_path / "mirror"
    (src / "sub").mkdir(parents=True)
    (src / "photo.png").write_bytes(b"png")
    (src / "sub" / "doc.txt").write_bytes(b"doc")
    job = load_job(_job(tmp_path, src, dest, str(src / "state" / "af.db")), env={})

    # a first migrate creates the state DB inside the source; a stale journal lies beside it
    first = await execute_job(job, "migrate")
    assert first.exit_code() == 0, first.text()
    assert (src / "state" / "af.db").is_file()
    (src / "state" / "af.db-journal").write_bytes(b"")

    plan = await plan_job(job)
    by_path = {a.path: a for a in plan.assets}
    for own in ("state/af.db", "state/af.db-journal"):
        assert by_path[own].op is Op.SKIP, own
        assert STATE_REASON in by_path[own].reason
    # the live id map the run wrote beside the state DB is assetferry's too
    assert by_path["state/af.map.jsonl"].op is Op.SKIP
    assert "live id map" in by_path["state/af.map.jsonl"].reason
    excluded = {a.path for a in plan.assets if a.asset is not None and a.asset.skipped}
    assert {p for p in excluded if not p.startswith("state/af.")} == set()
    assert plan_summary(plan)["excluded"] == len(excluded)
    assert "state/af.db" in plan_table(plan)

    summary = await execute_job(job, "sync")
    assert summary.exit_code() == 0, summary.text()
    assert {o.path for o in summary.excluded()} >= {"state/af.db"}
    assert "EXCLUDED state/af.db" in summary.text()
    assert _copied(dest) == ["photo.png", "sub/doc.txt"]


@pytest.mark.slow
async def test_a_local_targets_manifest_in_a_source_subfolder_is_excluded(
    tmp_path: Path,
) -> None:
    src, dest = tmp_path / "lib", tmp_path / "mirror"
    (src / "old-export").mkdir(parents=True)
    (src / "old-export" / "a.png").write_bytes(b"a")
    (src / "old-export" / ".assetferry.json").write_text('{"version": 1, "assets": {}}')
    job = load_job(_job(tmp_path, src, dest, str(tmp_path / "af.db")), env={})

    plan = await plan_job(job)
    manifest = next(a for a in plan.assets if a.path == "old-export/.assetferry.json")
    assert manifest.op is Op.SKIP
    assert "metadata manifest" in manifest.reason
    summary = await execute_job(job, "migrate")
    assert summary.exit_code() == 0, summary.text()
    assert _copied(dest) == ["old-export/a.png"]


def test_own_files_are_the_sqlite_file_and_its_sidecars(tmp_path: Path) -> None:
    db = tmp_path / "s" / "af.db"
    job = load_job(_job(tmp_path, tmp_path / "lib", tmp_path / "out", str(db)), env={})
    assert set(own_files(job)) == {db, *(db.with_name(f"af.db{s}")
                                         for s in ("-wal", "-shm", "-journal")),
                                   db.with_name("af.map.jsonl")}  # the live id map
    url_job = load_job(_job(tmp_path, tmp_path / "lib", tmp_path / "out",
                            f"sqlite:///{db}"), env={})
    assert db in own_files(url_job)
    server = load_job(_job(tmp_path, tmp_path / "lib", tmp_path / "out",
                           "postgresql+psycopg://u@h/db"), env={})
    assert own_files(server) == {}


async def test_the_local_connector_skips_the_files_it_is_told_are_ours(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("k")
    (tmp_path / "mine.db").write_text("s")
    config = LocalConfig(connector="local", path=tmp_path).with_own_files(
        {tmp_path / "mine.db": STATE_REASON})
    async with LocalFolderConnector(config) as conn:
        listed = {a.source_id: a async for a in conn.iter_assets()}
    assert listed["keep.txt"].skipped is None
    assert listed["mine.db"].skipped is not None
    assert STATE_REASON in listed["mine.db"].skipped


@pytest.mark.slow
async def test_a_state_database_inside_the_local_target_is_never_adopted_or_overwritten(
    tmp_path: Path,
) -> None:
    src, dest = tmp_path / "lib", tmp_path / "mirror"
    src.mkdir()
    (src / "photo.png").write_bytes(b"png")
    state = dest / "state" / "af.db"
    job = load_job(_job(tmp_path, src, dest, str(state)), env={})
    first = await execute_job(job, "migrate")
    assert first.exit_code() == 0, first.text()

    # a source file with the state database's folder, name and size: once taken for its copy
    (src / "state").mkdir()
    (src / "state" / "af.db").write_bytes(b"x" * state.stat().st_size)
    plan = await plan_job(job)
    action = {a.path: a for a in plan.assets}["state/af.db"]
    assert action.op is Op.CONFLICT, action
    assert STATE_REASON in action.reason
    assert action.target_id is None

    before = state.read_bytes()[:16]
    summary = await execute_job(job, "sync")
    assert summary.exit_code() == 1, summary.text()
    assert state.read_bytes()[:16] == before == b"SQLite format 3\x00"
