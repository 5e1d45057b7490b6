"""The HTML plan and run report, read as text (the browser tests are in test_html_browser)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from connectors.base import Asset, Source
from connectors.errors import SyncError
from pipeline.cli import main
from pipeline.html_report import plan_html, run_html
from pipeline.plan import Op
from pipeline.report import plan_items, plan_summary
from pipeline.samples import SampleFile
from pipeline.text import one_line
from pipeline.thumbnails import MAX_SOURCE_BYTES, candidates, fetch_thumbnails, thumbnail_uri
from tests.pipeline.helpers import library, sb_section
from tests.pipeline.html_pages import (
    HOSTILE,
    figure_value,
    hostile_plan,
    hostile_run,
    parse_page,
    png,
)


def test_plan_page_figures_equal_the_json_summary() -> None:
    plan = hostile_plan()
    figures, rows, _ = parse_page(plan_html(plan))
    summary = plan_summary(plan)
    shown = {k: figure_value(v) for k, v in figures.items()}
    assert shown == {k: summary[k] for k in shown}
    assert {"create", "delete", "conflict", "bytes", "estimated_seconds"} <= set(shown)
    assert len(rows) == len(plan_items(plan))
    assert [r["group"] for r in rows] == [i["op"] for i in plan_items(plan)]


def test_hostile_names_never_reach_the_markup_raw() -> None:
    page = plan_html(hostile_plan())
    _, rows, scripts = parse_page(page)
    assert scripts == 3, "the config, the rows and the page's own script; nothing injected"
    assert "<script>window" not in page
    assert "<img src=x" not in page
    assert "<b>bold</b>" not in page
    assert "<i>gone</i>" not in page
    assert "\u202e" not in page, "a bidi override is shown escaped, as in the text table"
    for name in HOSTILE:  # the data keeps the exact (one-line) text
        assert any(r["path"].endswith("/" + one_line(name)) for r in rows), name[:40]
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the folder tree, escaped on the server


def test_the_page_needs_no_network() -> None:
    page = plan_html(hostile_plan(), thumbnails={"s0": thumbnail_uri(png()) or ""})
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "default-src 'none'" in page
    assert "img-src data:" in page
    assert "@import" not in page
    assert "url(" not in page


def test_run_page_lists_failures_first_with_the_json_counts() -> None:
    summary = hostile_run()
    figures, rows, _ = parse_page(run_html(summary))
    counts = summary.to_dict()["counts"]
    assert {k: figure_value(v) for k, v in figures.items()} == {
        **{k: counts[k] for k in figures if k != "exit_code"}, "exit_code": 1}
    assert rows[0]["group"] == "failed"
    assert rows[0]["reason"].startswith("upload failed")
    assert [r["group"] for r in rows] == ["failed", "not migrated", "excluded", "done"]


def test_thumbnails_are_bounded_and_ordered_for_review() -> None:
    plan = hostile_plan()
    picked = candidates(plan, 3)
    assert [a.op for a in picked] == [Op.CONFLICT, Op.REPLACE, Op.CREATE]
    assert candidates(plan, 0) == []
    assert all(a.asset is not None and a.asset.content_type == "image/png"
               for a in candidates(plan, 100))


def test_thumbnail_is_small_and_rejects_what_is_not_an_image() -> None:
    uri = thumbnail_uri(png(size=(2000, 1000)))
    assert uri is not None
    assert uri.startswith("data:image/jpeg;base64,")
    assert len(uri) < 20_000
    assert thumbnail_uri(b"not an image") is None
    assert thumbnail_uri(b"\x89PNG\r\n\x1a\n" + b"\0" * 40) is None


async def test_fetch_thumbnails_skips_unreadable_and_oversized() -> None:
    plan = hostile_plan()
    wanted = candidates(plan, 100)
    sizes = {"s0": png(), "s1": b"broken", "s3": b"x" * (MAX_SOURCE_BYTES + 10)}

    class FakeSource:
        name = "fake"

        def __init__(self) -> None:
            self.calls: list[str] = []

        @asynccontextmanager
        async def open_asset(self, asset: Asset) -> AsyncIterator[AsyncIterator[bytes]]:
            self.calls.append(asset.source_id)
            data = sizes.get(asset.source_id)
            if data is None:
                raise SyncError("404 not found")

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(data), 1 << 20):
                    yield data[i:i + (1 << 20)]

            yield chunks()

    source = FakeSource()
    thumbs = await fetch_thumbnails(source, wanted)  # type: ignore[arg-type]
    assert set(thumbs) == {"s0"}
    assert sorted(source.calls) == sorted(a.source_id for a in wanted)


def test_cli_plan_html_with_thumbnails_agrees_with_plan_json(tmp_path: Path) -> None:
    files = [SampleFile(("Pics",), f"p{n}.png", png((n * 40, 90, 90)), "image/png", title=f"p{n}")
             for n in range(4)]
    files.append(SampleFile((), "notes.txt", b"hello", "text/plain", title="notes"))
    root, _ = library(tmp_path, files)
    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{root}"\n\n'
                   f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n')
    page, data = tmp_path / "plan.html", tmp_path / "plan.json"
    assert main(["plan", "-c", str(job), "--format", "html", "--out", str(page),
                 "--thumbnails", "3"]) == 0
    assert main(["plan", "-c", str(job), "--format", "json", "--out", str(data)]) == 0
    figures, rows, _ = parse_page(page.read_text(encoding="utf-8"))
    summary = json.loads(data.read_text())["summary"]
    assert {k: figure_value(v) for k, v in figures.items()} == {k: summary[k] for k in figures}
    assert sum(1 for r in rows if "thumb" in r) == 3, "--thumbnails bounds the downloads"
    assert not (tmp_path / "out").exists(), "plan touches nothing"


def test_cli_run_report_html_by_suffix_or_option(tmp_path: Path) -> None:
    root, _files = library(tmp_path, [SampleFile((), "a.txt", b"a", "text/plain", title="a")])
    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{root}"\n\n'
                   f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n\n'
                   f'[run]\nstate = "{tmp_path / "state.db"}"\n')
    html_report, forced = tmp_path / "run.html", tmp_path / "run.report"
    assert main(["migrate", "-c", str(job), "--report", str(html_report)]) == 0
    assert html_report.read_text().startswith("<!DOCTYPE html>")
    assert main(["sync", "-c", str(job), "--report", str(forced),
                 "--report-format", "html"]) == 0
    assert forced.read_text().startswith("<!DOCTYPE html>")
    as_json = tmp_path / "run.json"
    assert main(["sync", "-c", str(job), "--report", str(as_json)]) == 0
    assert json.loads(as_json.read_text())["exit_code"] == 0


def test_report_format_without_a_report_file_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'[source]\nconnector = "local"\npath = "{tmp_path}"\n\n'
                   f'[target]\nconnector = "local"\npath = "{tmp_path / "out"}"\n')
    assert main(["migrate", "-c", str(job), "--report-format", "html"]) == 2
    assert "--report FILE" in capsys.readouterr().err


def test_plan_page_renders_a_large_plan_quickly_enough_to_be_one_file() -> None:
    """Thumbnails aside, the page grows with the items' text only (no per-row markup)."""
    plan = hostile_plan()
    page = plan_html(plan)
    items = json.dumps(plan_items(plan), ensure_ascii=False)
    assert len(page) < len(items) + 20_000


async def test_thumbnails_through_a_cms_source_cost_n_downloads(tmp_path: Path) -> None:
    """Storyblok as the source: ``--thumbnails 3`` downloads 3 files from its asset host and
    makes no extra call to its rate-limited Management API."""
    import httpx

    from connectors.emulation import in_process_transport
    from connectors.storyblok.demo import seed
    from connectors.storyblok.emulator import StoryblokEmulator
    from pipeline.config import load_job
    from pipeline.plan import Plan
    from pipeline.run import plan_job
    from pipeline.samples import sample_library

    class Counting(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner
            self.paths: list[str] = []

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.paths.append(request.url.path)
            return await self.inner.handle_async_request(request)

    sb = StoryblokEmulator(space_id=288868932106293, token="sb-t", rate_limit=None)
    try:
        seed(sb, list(sample_library()))
        job = tmp_path / "job.toml"
        job.write_text(f'[source]\n{sb_section(288868932106293, "sb-t")}\n'
                       '[target]\nconnector = "local"\n'
                       f'path = "{tmp_path / "out"}"\n', encoding="utf-8")
        config = load_job(job, env={})
        plain = Counting(in_process_transport(sb.app))
        await plan_job(config, transports={"source": plain})
        mapi_plain = sb.requests
        counted = Counting(in_process_transport(sb.app))
        thumbs: dict[str, str] = {}

        async def read(source: Source, plan: Plan) -> None:
            thumbs.update(await fetch_thumbnails(source, candidates(plan, 3)))

        await plan_job(config, transports={"source": counted}, with_source=read)
    finally:
        sb.close()
    downloads = [p for p in counted.paths if p.startswith("/f/")]
    assert len(downloads) == 3
    assert len(thumbs) == 3
    assert all(uri.startswith("data:image/") for uri in thumbs.values())
    assert sb.requests - mapi_plain == mapi_plain, "the same listing calls, nothing more"
    assert not any(p.startswith("/f/") for p in plain.paths), "no thumbnails, no downloads"
