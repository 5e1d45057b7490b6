"""Every ``assetferry ...`` command line in README.md works, so the README cannot drift.

Two kinds of line are extracted from the README's code spans and code blocks:

- a synopsis (``plan -c job.toml [--format table|json|markdown] [--out FILE]``) is expanded into
  one invocation per optional part and per alternative, and each is parsed by the real command
  line (no run): every option and value the README names is one the CLI accepts;
- a concrete line (``sync -c job.toml --log-format json``) is run, in README order, in a folder
  with a ``job.toml`` that moves a local library into a Contentstack emulator on loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import LoopbackServer, free_port
from pipeline.cli import cli, main
from tests.pipeline.helpers import CS_KEY, CS_TOKEN, library

README = Path(__file__).resolve().parents[1] / "README.md"
PLACEHOLDERS = {"FILE": "out.txt", "N": "8123", "R": "5", "DIR": "some-dir", "CMS": "storyblok",
                "ID": "321388", "SECONDS": "30"}


def readme_command_lines() -> list[str]:
    """``assetferry ...`` from inline code spans and code blocks, in README order."""
    text = README.read_text(encoding="utf-8")
    found: list[tuple[int, str]] = []
    blocks = list(re.finditer(r"```[a-z]*\n(.*?)```", text, re.S))
    for block in blocks:
        for line in block.group(1).splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("assetferry "):
                found.append((block.start(), line))
    inside = [(b.start(), b.end()) for b in blocks]
    found.extend((span.start(), " ".join(span.group(1).split()))
                 for span in re.finditer(r"`(assetferry [^`]+)`", text)
                 if not any(a <= span.start() < b for a, b in inside))
    return [line for _, line in sorted(found)]


def is_synopsis(line: str) -> bool:
    return "[" in line or "|" in line


def expand_synopsis(line: str) -> list[list[str]]:
    """One argument list per optional part and per alternative (subcommand first)."""
    line = line.replace("\\|", "|").removeprefix("assetferry ")
    base: list[str] = []
    extras: list[list[str]] = []  # an optional part, appended to the base
    swaps: list[tuple[int, str]] = []  # another alternative of a positional
    for part in re.findall(r"\[[^\]]+\]|\S+", line):
        if part.startswith("["):
            option, *value = part[1:-1].split()
            extras.extend([option, alt] if alt else [option]
                          for alt in (value[0].split("|") if value else [""]))
        else:
            first, *others = part.split("|")
            swaps.extend((len(base), alt) for alt in others)
            base.append(first)
    out = [base, *([*base, *e] for e in extras),
           *([*base[:i], alt, *base[i + 1:]] for i, alt in swaps)]
    return [[PLACEHOLDERS.get(a, a) for a in args] for args in out]


def parse_only(args: list[str]) -> None:
    """Parse with the real CLI, invoking nothing: a usage error raises click's exception."""
    name, *rest = args
    command = cli.commands[name]
    while isinstance(command, click.Group):  # `mappings show ...`: parse the subcommand's
        name, *rest = rest
        command = command.commands[name]
    with command.make_context(name, rest):
        pass


def test_the_readme_has_both_kinds_of_command_line() -> None:
    lines = readme_command_lines()
    assert sum(map(is_synopsis, lines)) >= 7, lines
    assert sum(not is_synopsis(x) for x in lines) >= 5, lines


@pytest.mark.parametrize("line", [x for x in readme_command_lines() if is_synopsis(x)])
def test_readme_synopsis_parses(line: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.toml").write_text("", encoding="utf-8")
    for args in expand_synopsis(line):
        parse_only(args)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd with ``job.toml``: the sample library -> a Contentstack emulator on loopback."""
    root, _ = library(tmp_path)
    emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTENTSTACK_MANAGEMENT_TOKEN", CS_TOKEN)
    monkeypatch.delenv("STORYBLOK_TOKEN", raising=False)
    try:
        with LoopbackServer(emu.app) as server:
            (tmp_path / "job.toml").write_text(
                f'[source]\nconnector = "local"\npath = "{root.name}"\n\n'
                f'[target]\nconnector = "contentstack"\napi_key = "{CS_KEY}"\n'
                'management_token = "${CONTENTSTACK_MANAGEMENT_TOKEN}"\n'
                f'region = "eu"\nbase_url = "{server.url}"\nrequests_per_second = 1000\n',
                encoding="utf-8")
            yield tmp_path
    finally:
        emu.close()


def run_emulate(args: list[str]) -> None:
    """``emulate`` serves until stopped: start it on a free port, see it answer, stop it."""
    port = str(free_port())
    args = [port if a == "8123" else a for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "127.0.0.1" in out


@pytest.mark.slow
def test_readme_command_lines_run(workspace: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [x for x in readme_command_lines() if not is_synopsis(x)]
    ran = []
    for line in lines:
        args = line.split()[1:]
        if args[0] == "emulate":
            run_emulate(args)
            ran.append(line)
            continue
        if args[0] in ("status", "export-map"):  # reading the state needs no secrets
            monkeypatch.delenv("CONTENTSTACK_MANAGEMENT_TOKEN", raising=False)
            monkeypatch.delenv("STORYBLOK_TOKEN", raising=False)
        elif args[0] != "demo":
            monkeypatch.setenv("CONTENTSTACK_MANAGEMENT_TOKEN", CS_TOKEN)
        code = main(args)
        captured = capsys.readouterr()
        assert code == 0, f"{line!r} exited {code}: {captured.err[-2000:]}"
        if "--log-format" in args and "json" in args:
            log_lines = [x for x in captured.err.splitlines() if x.strip()]
            assert log_lines, line
            for x in log_lines:
                json.loads(x)
        ran.append(line)
    assert ran == lines
    assert (workspace / "plan.md").read_text(encoding="utf-8").startswith("# assetferry plan")


def test_expand_synopsis_covers_each_alternative() -> None:
    runs = expand_synopsis("assetferry emulate contentstack\\|storyblok [--port N] [--seed a\\|b]")
    assert ["emulate", "storyblok"] in runs
    assert ["emulate", "contentstack", "--seed", "b"] in runs
    assert ["emulate", "contentstack", "--port", "8123"] in runs
    assert len(runs) == 5
