"""One list of connectors: built-ins plus third-party ones found through entry points.

The third-party connector here is a tiny read-only one, installed as a fake distribution (a
``.dist-info`` folder with an ``entry_points.txt`` on ``sys.path``), which is exactly what
``pip install`` leaves behind for a real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import click
import pytest
from structlog.testing import capture_logs

from connectors.errors import ConfigError
from pipeline import config as config_module
from pipeline import registry
from pipeline.cli import cli
from pipeline.config import load_job
from pipeline.run import plan_job

FAKE_MODULE = '''
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from pydantic import BaseModel, ConfigDict

from connectors.base import Asset, Folder
from connectors.plugin import ConnectorPlugin


class FakeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    connector: Literal["fakecms"]
    shelf: str


class FakeConnector:
    name = "fakecms"

    def __init__(self, config):
        self.config = config

    @property
    def scope(self):
        return self.config.shelf

    async def iter_folders(self) -> AsyncIterator[Folder]:
        yield Folder("f1", "Shelf", None, ("Shelf",))

    async def iter_assets(self) -> AsyncIterator[Asset]:
        yield Asset("a1", "book.txt", ("Shelf",), "f1", "text/plain", 4)

    @asynccontextmanager
    async def open_asset(self, asset):
        async def body():
            yield b"book"
        yield body()

    async def aclose(self):
        return None


PLUGIN = ConnectorPlugin(name="fakecms", config=FakeConfig, writable=False,
                         open=lambda config, *, role, transport: FakeConnector(config))
'''


def install(site: Path, module: str, entry: str, name: str = "fakecms") -> None:
    (site / f"{module}.py").write_text(FAKE_MODULE)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[assetferry.connectors]\n{entry}\n")


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.plugins.cache_clear()
    config_module.job_model.cache_clear()
    yield
    registry.plugins.cache_clear()
    config_module.job_model.cache_clear()


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      fresh_registry: None) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install(site, "assetferry_fakecms", "fakecms = assetferry_fakecms:PLUGIN")
    monkeypatch.syspath_prepend(str(site))
    return site


def job_file(tmp_path: Path, source: str, target: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n")
    return path


def test_every_builtin_describes_itself_under_its_own_name() -> None:
    found = registry.plugins()
    assert set(found) >= {"local", "contentstack", "storyblok"}
    for name, plugin in found.items():
        # the config model's connector literal is the plugin's name: the union tells them apart
        assert get_args(plugin.config.model_fields["connector"].annotation) == (name,)
        assert plugin.name == name


async def test_an_installed_distribution_adds_a_source(tmp_path: Path,
                                                        fake_distribution: Path) -> None:
    assert "fakecms" in registry.plugins()
    out = tmp_path / "out"
    job = load_job(job_file(tmp_path, 'connector = "fakecms"\nshelf = "s1"\n',
                            f'connector = "local"\npath = "{out}"\n'), env={})
    assert job.source.connector == "fakecms"
    plan = await plan_job(job)
    assert [a.path for a in plan.assets] == ["Shelf/book.txt"]
    assert plan.route.startswith("fakecms:s1->local:")


def test_a_read_only_plugin_cannot_be_a_target(tmp_path: Path, fake_distribution: Path) -> None:
    with pytest.raises(ConfigError, match="fakecms cannot be written to"):
        load_job(job_file(tmp_path, f'connector = "local"\npath = "{tmp_path}"\n',
                          'connector = "fakecms"\nshelf = "s1"\n'), env={})


def test_a_plugins_config_errors_name_the_key(tmp_path: Path, fake_distribution: Path) -> None:
    with pytest.raises(ConfigError, match=r"source\.shelf: Field required"):
        load_job(job_file(tmp_path, 'connector = "fakecms"\n',
                          f'connector = "local"\npath = "{tmp_path}"\n'), env={})


def test_unknown_connector_lists_the_plugins_too(tmp_path: Path,
                                                 fake_distribution: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown connector; use one of: .*fakecms"):
        load_job(job_file(tmp_path, 'connector = "dropbox"\n',
                          f'connector = "local"\npath = "{tmp_path}"\n'), env={})


def test_cli_choices_come_from_the_registry(fake_distribution: Path) -> None:
    def parse(*args: str) -> dict[str, object]:
        with cli.commands[args[0]].make_context(args[0], list(args[1:])) as ctx:
            return ctx.params

    assert parse("emulate", "storyblok")["cms"] == "storyblok"
    with pytest.raises(click.BadParameter):
        parse("emulate", "fakecms")  # no emulator: not a choice
    assert parse("demo", "--to", "storyblok")["destination"] == "storyblok"
    assert parse("demo")["destination"] == "contentstack"


def test_a_broken_or_duplicate_plugin_is_skipped_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install(site, "assetferry_broken", "broken = assetferry_missing_module:PLUGIN",
            name="broken")
    install(site, "assetferry_dupe", "local = connectors.storyblok:PLUGIN", name="dupe")
    monkeypatch.syspath_prepend(str(site))
    with capture_logs() as logs:
        found = registry.plugins()
    assert found["local"].name == "local", "a built-in keeps its name"
    assert "broken" not in found
    events = {e["event"] for e in logs}
    assert {"registry.plugin_failed", "registry.plugin_duplicate"} <= events
