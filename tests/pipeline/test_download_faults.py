"""One item's failure never crashes the run (issue 6, section 2), end to end on the emulators.

File hosts that gzip on the fly or redirect, a source that raises something unexpected for
one asset, a bug in the planner or the run itself: each ends with a summary, an exit code and
the run closed in the state DB, never a traceback or a run left "running".
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncBaseTransport

import pipeline.run as run_module
from connectors.base import Asset
from connectors.contento.demo import ContentoDemo
from connectors.contentstack.emulator import ContentstackEmulator
from connectors.contentstack_delivery.demo import ContentstackDeliveryDemo
from connectors.emulation import Faults, in_process_transport
from connectors.http import MAX_REDIRECTS
from connectors.plugin import EmulatorSettings
from connectors.storyblok.demo import seed as seed_storyblok
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline import cli, registry
from pipeline.config import JobConfig, load_job
from pipeline.run import execute_job
from pipeline.samples import SampleFile, sample_library
from state.store import ItemStatus, RunStatus, StateStore
from tests.pipeline.helpers import (
    cs_inventory,
    cs_to_local_job,
    ct_section,
    delivery_section,
    library,
    local_inventory,
    local_to_cs_job,
    local_to_local,
    sb_section,
    sha,
)

CS = "http://cs.emulator"
SB = "http://sb.emulator"
SB_SPACE = 288868932106293
SB_TOKEN = "sb-dl-token-5e1d"
CT_SITE = "s_01jDSh2WkN8Kp6SvRA8Ne5CJ69"
CT_TOKEN = "contento-emulator-token"  # the demo seeding's (connectors/contento/demo.py)
CS_DELIVERY = "cs-delivery-token"  # likewise (connectors/contentstack_delivery/demo.py)
Inventory = list[tuple[tuple[str, ...], str, str]]


def on(emu: ContentstackEmulator | StoryblokEmulator, side: str) -> dict[str, AsyncBaseTransport]:
    return {side: in_process_transport(emu.app)}


def runs(job: JobConfig, route: str) -> list[RunStatus]:
    store = StateStore(job.run.state)
    try:
        return [r.status for r in store.runs(route)]
    finally:
        store.close()


async def cs_source(tmp_path: Path, cs: ContentstackEmulator) -> tuple[JobConfig, Path]:
    """Part of the sample library uploaded to the Contentstack emulator; a job bringing it back."""
    root, _ = library(tmp_path, some_files())
    up = local_to_cs_job(tmp_path, CS, source=root)
    assert (await execute_job(up, "migrate", transports=on(cs, "target"))).exit_code() == 0
    dest = tmp_path / "back"
    return cs_to_local_job(tmp_path, CS, dest=dest), dest


def some_files() -> list[SampleFile]:
    """A dozen sample files, a few in folders (enough to show the others go on)."""
    return list(sample_library())[:12]


def sb_to_local(tmp_path: Path, sb: StoryblokEmulator) -> tuple[JobConfig, Path, Inventory]:
    """A Storyblok -> local job over the seeded sample library, and what must arrive.

    (The sample PDF carries its creation time: the expected bytes are the seeded ones.)
    """
    files = some_files()
    seed_storyblok(sb, files)
    dest = tmp_path / "out"
    path = tmp_path / "sb.toml"
    path.write_text(
        f'[source]\n{sb_section(SB_SPACE, SB_TOKEN)}\n'
        f'[target]\nconnector = "local"\npath = "{dest}"\n\n'
        f'[run]\nstate = "{tmp_path / "sb.db"}"\n', encoding="utf-8")
    return load_job(path, env={}), dest, sorted((f.folder, f.name, sha(f.data)) for f in files)


# -- a file host that gzips on the fly ------------------------------------------------------


async def test_a_file_host_that_gzips_with_the_compressed_length_gives_the_files_whole(
    tmp_path: Path, cs: ContentstackEmulator
) -> None:
    """Old code: the decoded length against the compressed Content-Length, then
    ``RuntimeError: generator didn't stop after athrow()`` and a run left "running"."""
    job, dest = await cs_source(tmp_path, cs)
    cs.faults = Faults(gzip_rate=1.0)
    summary = await execute_job(job, "migrate", transports=on(cs, "source"))
    assert cs.fault_middleware.injected["gzip"] > 0
    assert summary.exit_code() == 0, summary.text()
    cs.faults = Faults()
    assert local_inventory(dest) == cs_inventory(cs), "bytes as stored, not the gzip stream"
    assert runs(job, summary.route) == [RunStatus.DONE]


async def test_storyblok_file_host_gzipping_is_handled_the_same(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    job, dest, expected = sb_to_local(tmp_path, sb)
    sb.faults = Faults(gzip_rate=1.0)
    summary = await execute_job(job, "migrate", transports=on(sb, "source"))
    assert sb.fault_middleware.injected["gzip"] > 0
    assert summary.exit_code() == 0, summary.text()
    assert local_inventory(dest) == expected


# -- a file host that redirects -------------------------------------------------------------


async def test_a_file_host_answering_301_is_followed_without_credentials(
    tmp_path: Path, cs: ContentstackEmulator
) -> None:
    """Old code: every item failed "rejected the request (301)"."""
    job, dest = await cs_source(tmp_path, cs)
    cs.faults = Faults(redirect_rate=1.0, redirect_hops=2)
    summary = await execute_job(job, "migrate", transports=on(cs, "source"))
    assert cs.fault_middleware.injected["redirect"] > 0
    assert summary.exit_code() == 0, summary.text()
    cs.faults = Faults()
    assert local_inventory(dest) == cs_inventory(cs)
    assert cs.credential_leaks == [], "no credential to the file host, before or after"


async def test_storyblok_file_host_redirects_are_followed_without_credentials(
    tmp_path: Path, sb: StoryblokEmulator
) -> None:
    job, dest, expected = sb_to_local(tmp_path, sb)
    sb.faults = Faults(redirect_rate=1.0, redirect_status=307)
    summary = await execute_job(job, "migrate", transports=on(sb, "source"))
    assert sb.fault_middleware.injected["redirect"] > 0
    assert summary.exit_code() == 0, summary.text()
    assert local_inventory(dest) == expected
    assert sb.credential_leaks == []


async def test_a_redirect_loop_fails_each_item_with_the_reason_and_closes_the_run(
    tmp_path: Path, cs: ContentstackEmulator
) -> None:
    job, _ = await cs_source(tmp_path, cs)
    cs.faults = Faults(redirect_rate=1.0, redirect_hops=MAX_REDIRECTS + 3)
    summary = await execute_job(job, "migrate", transports=on(cs, "source"))
    assert summary.exit_code() == 1, summary.text()
    failed = [o for o in summary.assets() if o.status is ItemStatus.FAILED]
    assert failed
    assert len(failed) == len(summary.assets()), "every download was redirected too often"
    assert all(f"redirected more than {MAX_REDIRECTS} times" in o.reason for o in failed)
    assert runs(job, summary.route) == [RunStatus.PARTIAL]


# -- an unexpected exception in one item ----------------------------------------------------


class OneBadAsset:
    """A source whose ``open_asset`` (and ``local_path``, a local file read in place) raises
    ValueError for one asset (a connector bug)."""

    def __init__(self, inner: Any, bad: str) -> None:
        self._inner = inner
        self.bad = bad

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def open_asset(self, asset: Asset) -> AbstractAsyncContextManager[Any]:
        if asset.filename == self.bad:
            raise ValueError("invalid literal for int() with base 10: 'x'")
        result: AbstractAsyncContextManager[Any] = self._inner.open_asset(asset)
        return result

    def local_path(self, asset: Asset) -> Any:
        if asset.filename == self.bad:
            raise ValueError("invalid literal for int() with base 10: 'x'")
        return self._inner.local_path(asset)


async def test_an_unexpected_exception_fails_only_its_item_and_the_run_closes(
    tmp_path: Path, cs: ContentstackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, files = library(tmp_path, some_files())
    bad = files[3].name
    real = registry.open_connector

    def wrapped(config: Any, **kw: Any) -> Any:
        conn = real(config, **kw)
        return OneBadAsset(conn, bad) if kw.get("role", "source") == "source" else conn

    monkeypatch.setattr("pipeline.run.open_connector", wrapped)
    job = local_to_cs_job(tmp_path, CS, source=root)
    summary = await execute_job(job, "migrate", transports=on(cs, "target"))

    assert summary.exit_code() == 1, summary.text()
    failed = summary.failed()
    assert [o.path.rsplit("/", 1)[-1] for o in failed] == [bad]
    assert failed[0].reason == ("unexpected error ValueError: invalid literal for int() "
                                "with base 10: 'x'")
    assert summary.counts()["created"] == len(files) - 1, "the others went on"
    assert "Traceback" not in summary.text()
    assert runs(job, summary.route) == [RunStatus.PARTIAL]


# -- a crash of the run itself --------------------------------------------------------------


def _planner_bug(*args: Any, **kwargs: Any) -> Any:
    raise ZeroDivisionError("division by zero")


async def _crashed(tmp_path: Path, cs: ContentstackEmulator) -> tuple[JobConfig, str, str]:
    """A migrate into Contentstack with a step the caller broke: exit 2; its job, route and
    the fatal error it stopped with."""
    root, _ = library(tmp_path)
    job = local_to_cs_job(tmp_path, CS, source=root)
    summary = await execute_job(job, "migrate", transports=on(cs, "target"))
    assert summary.exit_code() == 2
    assert summary.fatal is not None
    return job, summary.route, summary.fatal


async def test_a_planner_bug_ends_with_a_clear_message_and_exit_2(
    tmp_path: Path, cs: ContentstackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "make_plan", _planner_bug)
    _, _, fatal = await _crashed(tmp_path, cs)
    assert fatal.startswith("unexpected error ZeroDivisionError: division by zero")
    assert "-v" in fatal


async def test_a_crash_after_the_run_started_closes_it_as_failed(
    tmp_path: Path, cs: ContentstackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("parent")

    monkeypatch.setattr(run_module, "create_folders", broken)
    job, route, fatal = await _crashed(tmp_path, cs)
    assert fatal.startswith("unexpected error KeyError: 'parent'; the run was closed")
    assert runs(job, route) == [RunStatus.FAILED], "never left running"


def test_the_cli_prints_the_summary_and_exits_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run_module, "make_plan", _planner_bug)
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.txt").write_bytes(b"a")
    job = local_to_local(tmp_path / "job.toml", root, tmp_path / "out", tmp_path / "state.db")
    assert cli.main(["migrate", "-c", str(job)]) == 2
    out = capsys.readouterr()
    # stopped before it had a plan: the error alone, no zero figures
    assert ": not started: unexpected error ZeroDivisionError: division by zero" in out.out
    assert "0 created" not in out.out
    assert cli.main(["plan", "-c", str(job)]) == 2
    out = capsys.readouterr()
    assert "error: unexpected error ZeroDivisionError: division by zero" in out.err
    assert "Traceback" not in out.out + out.err


async def test_a_failed_heartbeat_does_not_end_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy state DB at one heartbeat (sqlite 'database is locked') used to kill the run."""
    beats: list[int] = []

    def busy(self: StateStore, run_id: int) -> None:
        beats.append(run_id)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(StateStore, "heartbeat", busy)
    monkeypatch.setattr(run_module, "HEARTBEAT_SECONDS", 0.02)
    root, files = library(tmp_path, some_files())
    job = load_job(local_to_local(tmp_path / "local.toml", root, tmp_path / "out",
                                  tmp_path / "local.db"), env={})
    summary = await execute_job(job, "migrate")
    assert beats, "the heartbeat ran (and failed)"
    assert summary.exit_code() == 0, summary.text()
    assert summary.counts()["created"] == len(files)
    assert runs(job, summary.route) == [RunStatus.DONE]


# -- every emulator's file host: the read-only sources --------------------------------------


@pytest.mark.parametrize("kind", ["contento", "contentstack-delivery"])
async def test_read_only_sources_take_gzip_and_redirects_from_their_file_hosts(
    tmp_path: Path, kind: str
) -> None:
    """The faults are the shared layer's: every emulator's file host gzips and redirects."""
    settings = EmulatorSettings(unlimited=True)
    demo: ContentoDemo | ContentstackDeliveryDemo
    files = [f for f in some_files() if not f.folder]
    dest = tmp_path / "out"
    if kind == "contento":
        demo = ContentoDemo(settings)
        section = ct_section(CT_SITE, CT_TOKEN)
    else:
        demo = ContentstackDeliveryDemo(settings)
        section = delivery_section(CS_DELIVERY)
    try:
        demo.seed(files)
        emu = demo.emulator
        app = emu.delivery_app if isinstance(emu, ContentstackEmulator) else emu.app
        emu.faults = Faults(gzip_rate=0.5, redirect_rate=0.5, seed=11)
        path = tmp_path / "job.toml"
        path.write_text(f"[source]\n{section}\n[target]\nconnector = \"local\"\n"
                        f'path = "{dest}"\n\n[run]\nstate = "{tmp_path / "s.db"}"\n',
                        encoding="utf-8")
        summary = await execute_job(load_job(path, env={}), "migrate",
                                    transports={"source": in_process_transport(app)})
        middleware = (emu.delivery_middleware if isinstance(emu, ContentstackEmulator)
                      else emu.fault_middleware)
        assert middleware.injected["gzip"] > 0, "the switch reached the app that served"
        assert middleware.injected["redirect"] > 0
        assert summary.exit_code() == 0, summary.text()
        got = {name: digest for _, name, digest in local_inventory(dest)}
        assert sorted(got.values()) == sorted(sha(f.data) for f in files)
        assert emu.credential_leaks == []
    finally:
        demo.close()


# -- the fault campaign's mix, in small ------------------------------------------------------


async def test_the_campaign_fault_mix_on_both_hosts_lands_every_file_once(
    tmp_path: Path, cs: ContentstackEmulator
) -> None:
    """5xx, 429 with Retry-After, resets and truncated bodies on the API and the file host
    (benchmarks/campaign.py at full size): re-runs until exit 0 leave each file exactly once
    with its bytes, and the 429s were waited out, not counted as failures."""
    job, dest = await cs_source(tmp_path, cs)
    want = sorted(sha(f.data) for f in some_files())
    cs.faults = Faults(error_rate=0.1, throttle_rate=0.15, throttle_retry_after=0,
                       reset_rate=0.02, truncate_rate=0.05, seed=11)
    before = cs.fault_middleware.requests
    codes = []
    for _ in range(6):
        codes.append((await execute_job(job, "migrate", transports=on(cs, "source"))).exit_code())
        if codes[-1] == 0:
            break
    assert codes[-1] == 0, codes
    assert cs.fault_middleware.injected["throttle"] > 0
    assert cs.fault_middleware.requests > before
    cs.faults = Faults()
    assert sorted(digest for *_, digest in local_inventory(dest)) == want
