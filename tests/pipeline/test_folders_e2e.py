"""End to end, issue 10's named case as a new user met it: a 40-level local tree with one
file at the bottom, migrated into (the emulator of) Contentstack, depth 5 and 300 folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from pipeline.config import load_job
from pipeline.plan import Op
from pipeline.run import execute_job, plan_job
from tests.pipeline.helpers import CS_KEY, CS_TOKEN, cs_inventory, sha

BASE = "http://cs.emulator"
LEVELS = tuple(f"level {i:02d}" for i in range(1, 41))


@pytest.fixture
def emu() -> Iterator[ContentstackEmulator]:
    e = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    yield e
    e.close()


@pytest.mark.parametrize("collapsed_path", ["name", "tag"])
async def test_forty_levels_with_one_file_become_one_contentstack_folder(
        tmp_path: Path, emu: ContentstackEmulator, collapsed_path: str) -> None:
    source = tmp_path / "library"
    bottom = source.joinpath(*LEVELS)
    bottom.mkdir(parents=True)
    (bottom / "deep.txt").write_bytes(b"at the bottom")
    job_file = tmp_path / "job.toml"
    job_file.write_text(
        f'[source]\nconnector = "local"\npath = "{source}"\n\n'
        f'[target]\nconnector = "contentstack"\napi_key = "{CS_KEY}"\n'
        f'management_token = "${{E2E_CS}}"\nbase_url = "{BASE}"\n'
        "requests_per_second = 1000\n\n"
        f'[mapping]\ncollapsed_path = "{collapsed_path}"\n\n'
        f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
    job = load_job(job_file, env={"E2E_CS": CS_TOKEN})
    transports = {"target": in_process_transport(emu.app)}

    plan = await plan_job(job, transports=transports)
    created = [f for f in plan.folders if f.op is Op.CREATE]
    folder = (" - ".join(LEVELS),) if collapsed_path == "name" else ("level 40",)
    assert [f.target_path for f in created] == [folder]
    assert any("40 levels" in w for w in created[0].warnings)

    summary = await execute_job(job, "migrate", transports=transports)
    assert summary.exit_code() == 0, summary.text()
    assert len(emu.folders) == 1
    assert cs_inventory(emu) == [(folder, "deep.txt", sha(b"at the bottom"))]
    (record,) = emu.assets.values()
    assert ("/".join(LEVELS) in record["tags"]) == (collapsed_path == "tag")

    again = await plan_job(job, transports=transports)
    assert {f.op for f in again.folders} == {Op.SKIP}
    assert {a.op for a in again.assets} == {Op.SKIP}
