"""The HTML plan and run report in a real headless browser: Debian's Chromium driven by
Playwright for Python (never a browser Playwright downloads: ``make test`` installs the
``chromium`` package when it can; without it these tests skip, saying so)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.html_report import plan_html, run_html
from pipeline.report import plan_items, plan_summary
from pipeline.text import one_line
from pipeline.thumbnails import thumbnail_uri
from tests.pipeline.html_pages import (
    HOSTILE,
    LONG_NAME,
    SCRIPT_NAME,
    figure_value,
    hostile_plan,
    hostile_run,
    png,
)

CHROMIUM = os.environ.get("ASSETFERRY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Debian's Chromium on a machine without network: nothing may try to phone home."""

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package "
                "when run as root or with sudo (or set ASSETFERRY_CHROMIUM)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield context
        finally:
            context.close()


class Opened:
    """A page loaded from a file, with every console error, page error and dialog seen."""

    def __init__(self, context: Any, path: Path) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.as_uri(), wait_until="load")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def matching(self) -> int:
        return int(self.page.get_attribute("#shown", "data-matching"))

    def groups_of_rows(self) -> set[str]:
        return set(self.page.eval_on_selector_all(
            "#list tbody tr", "rows => rows.map(r => r.dataset.group)"))


@pytest.fixture
def plan_page(browser: Any, tmp_path: Path) -> Iterator[Opened]:
    path = tmp_path / "plan.html"
    path.write_text(plan_html(hostile_plan(), thumbnails={"s0": thumbnail_uri(png()) or ""}),
                    encoding="utf-8")
    opened = Opened(browser, path)
    yield opened
    opened.page.close()


def test_plan_page_loads_clean_and_shows_the_json_counts(plan_page: Opened,
                                                        tmp_path: Path) -> None:
    page, plan = plan_page.page, hostile_plan()
    summary = plan_summary(plan)
    shown = page.eval_on_selector_all(  # what a reader sees, not only the attributes
        "[data-key]", "cells => cells.map(c => [c.dataset.key, c.textContent])")
    assert {k: figure_value(v.replace(",", "")) for k, v in shown} == {
        k: summary[k] for k, _ in shown}
    assert {"create", "conflict", "bytes", "estimated_seconds"} <= {k for k, _ in shown}
    items = plan_items(plan)
    for button in page.query_selector_all("#groups button"):
        op = button.get_attribute("data-group")
        assert int(button.get_attribute("data-count")) == sum(1 for i in items if i["op"] == op)
    assert plan_page.matching() == len(items)
    assert page.locator("#list tbody img").count() == 1  # the one thumbnail, from a data: URI
    assert page.eval_on_selector("#list tbody img", "i => i.naturalWidth") > 0
    shot = tmp_path / "plan.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5_000
    if os.environ.get("ASSETFERRY_KEEP_SCREENSHOT"):  # to look at it: a path to copy it to
        shutil.copy(shot, os.environ["ASSETFERRY_KEEP_SCREENSHOT"])
    assert plan_page.errors == []
    assert plan_page.dialogs == []


def test_filter_by_op_and_kind(plan_page: Opened) -> None:
    page, summary = plan_page.page, plan_summary(hostile_plan())
    page.click("#groups button[data-group=create]")
    page.select_option("#kind", "asset")
    assert plan_page.matching() == summary["create"]
    assert plan_page.groups_of_rows() == {"create"}
    page.select_option("#kind", "folder")
    assert plan_page.matching() == summary["folders_create"]
    page.select_option("#kind", "")
    page.click("#groups button[data-group=conflict]")  # two ops at once
    assert plan_page.matching() == (summary["create"] + summary["folders_create"]
                                    + summary["conflict"])
    assert plan_page.groups_of_rows() == {"create", "conflict"}
    page.click("#groups button[data-group=create]")
    page.click("#groups button[data-group=conflict]")  # none pressed: everything
    assert plan_page.matching() == len(plan_items(hostile_plan()))
    assert plan_page.errors == []


def test_search_finds_hostile_names_as_text(plan_page: Opened) -> None:
    page = plan_page.page
    page.fill("#search", "<script>")
    assert plan_page.matching() == 1
    cell = page.locator("#list tbody tr bdi.path").first
    assert cell.text_content() == f"Photos/{SCRIPT_NAME}"
    page.fill("#search", "warning about")  # warnings are searched too
    assert plan_page.matching() == sum(1 for i in plan_items(hostile_plan())
                                       if any("warning about" in w for w in i["warnings"])
                                       and i["op"] != "skip")
    page.fill("#search", "")
    texts = page.eval_on_selector_all("#list tbody bdi.path", "c => c.map(e => e.textContent)")
    for name in HOSTILE:
        assert any(t.endswith(one_line(name)) for t in texts), name[:40]
    long_cell = page.locator("#list tbody bdi.path", has_text="L" * 100)
    width = long_cell.evaluate("e => e.closest('table').getBoundingClientRect().width")
    assert width <= page.viewport_size["width"], "a 5000-character name wraps in its cell"
    assert page.evaluate("window.__pwned") is None, "no name ran as script"
    assert page.locator("img[src=x]").count() == 0
    assert len(LONG_NAME) == 5004
    assert plan_page.errors == []
    assert plan_page.dialogs == []


def test_run_page_shows_failures_first(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "run.html"
    summary = hostile_run()
    path.write_text(run_html(summary), encoding="utf-8")
    opened = Opened(browser, path)
    page = opened.page
    first = page.locator("#list tbody tr").first
    assert first.get_attribute("data-group") == "failed"
    assert "upload failed: 500 <html>oops</html>" in (first.text_content() or "")
    counts = summary.to_dict()["counts"]
    assert int(page.text_content("[data-key=failed]")) == counts["failed"]
    page.click("#groups button[data-group=done]")
    assert opened.matching() == len(summary.to_dict()["map"])
    assert opened.errors == []
    assert opened.dialogs == []
    assert page.evaluate("window.__pwned") is None
    page.close()
