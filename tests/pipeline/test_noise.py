"""Small lies and noise: each warning once, names on one line, an honest estimate."""

from __future__ import annotations

import os
from pathlib import Path

from structlog.testing import capture_logs

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.localfs import LocalConfig, LocalFolderConnector
from pipeline.plan import AssetAction, Op, Plan
from pipeline.report import plan_markdown, plan_summary, plan_table


def test_a_plan_where_everything_skips_repeats_no_warning() -> None:
    plan = Plan(route="r", folders=(), requests_per_second=10.0, assets=(
        AssetAction(Op.SKIP, "1", "a.png", "unchanged", warnings=("alt_text dropped",)),
        AssetAction(Op.CREATE, "2", "b.png", "new", warnings=("copyright dropped",))))
    table = plan_table(plan)
    assert "alt_text dropped" not in table
    assert "copyright dropped" in table
    assert "alt_text dropped" not in plan_markdown(plan)
    assert plan_summary(plan)["warnings"] == 1


def test_a_newline_in_a_name_keeps_one_row_per_item() -> None:
    plan = Plan(route="r", folders=(), requests_per_second=None, assets=(
        AssetAction(Op.CREATE, "1", "evil\nname.png", "new\nreason"),))
    rows = plan_table(plan).splitlines()
    assert any(r.endswith("evil\\nname.png") for r in rows)
    assert not any(r.strip() == "name.png" for r in rows)
    assert "| evil\\nname.png |" in plan_markdown(plan)


def test_the_estimate_does_not_claim_zero_seconds_without_a_rate_limit() -> None:
    plan = Plan(route="r", folders=(), requests_per_second=None,
                assets=(AssetAction(Op.CREATE, "1", "a.png", "new"),))
    line = plan_table(plan).splitlines()[-1]
    assert "0.0 s" not in line
    assert "the target has no rate limit" in line


async def test_a_skipped_local_file_is_warned_about_once(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "ok.txt").write_text("x")
    os.symlink(root / "missing", root / "dangling")
    conn = LocalFolderConnector(LocalConfig(connector="local", path=root))
    with capture_logs() as logs:
        folders = [f async for f in conn.iter_folders()]
        assets = [a async for a in conn.iter_assets()]
    assert folders == []
    assert "ok.txt" in [a.filename for a in assets]
    skipped = [e for e in logs if e["event"] == "local.skipped"]
    assert len(skipped) == 1, skipped


async def test_a_migrate_logs_one_info_line_per_uploaded_asset(tmp_path: Path,
                                                               cs: ContentstackEmulator) -> None:
    """The item's line is the pipeline's ``load.done``; the connector's own "uploaded" line
    is debug (README: one log line per item; issue 12: each line costs a write)."""
    from itertools import islice

    from connectors.emulation import in_process_transport
    from pipeline.run import execute_job
    from pipeline.samples import sample_library
    from tests.pipeline.helpers import library, local_to_cs_job

    root, files = library(tmp_path, list(islice(sample_library(), 6)))
    job = local_to_cs_job(tmp_path, "http://cs.emulator", source=root)
    with capture_logs() as logs:
        summary = await execute_job(job, "migrate",
                                    transports={"target": in_process_transport(cs.app)})
    assert summary.exit_code() == 0, summary.text()
    per_asset = [e["event"] for e in logs if e["log_level"] == "info" and "bytes" in e]
    assert sorted(per_asset) == ["load.done"] * len(files), per_asset
