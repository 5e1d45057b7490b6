"""A file whose name holds ``#``, ``?``, ``%``, spaces, ``+``, ``^`` or non-ASCII is served at
the URL the API lists: by both emulators, and end to end through our connectors (the
``export-map`` URL of a migrated file answers 200 with its bytes).

The rule lives once in ``connectors/emulation.py`` (``url_path``/``request_path``): listed URLs
percent-encode every reserved byte, the file route decodes exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import LoopbackServer, in_process_transport
from connectors.storyblok.emulator import StoryblokEmulator
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.run import execute_job

NAMES = ("a#b%c^d+e.txt", "q?x=1&y.txt", "50%20off.txt", "ü 报告 +.txt", "100%.txt")
SB_TOKEN = "sb-url-token-3c1"
CS_KEY = "blt0123456789abcdef"
CS_TOKEN = "cs-url-token-8d2"


def content(name: str) -> bytes:
    return f"the bytes of {name}".encode()


async def test_storyblok_serves_every_listed_url() -> None:
    emu = StoryblokEmulator(token=SB_TOKEN, rate_limit=None)
    try:
        for name in NAMES:
            emu.add_asset(name, content(name))
        async with httpx.AsyncClient(transport=in_process_transport(emu.app),
                                     base_url="http://sb.emulator") as http:
            listed = (await http.get(f"/v1/spaces/{emu.space_id}/assets",
                                     headers={"authorization": SB_TOKEN})).json()["assets"]
            assert sorted(a["short_filename"] for a in listed) == sorted(NAMES)
            for asset in listed:
                answer = await http.get(asset["filename"])
                assert answer.status_code == 200, asset["filename"]
                assert answer.content == content(asset["short_filename"])
    finally:
        emu.close()


async def test_contentstack_serves_every_listed_url() -> None:
    emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    try:
        uids = {emu.add_asset(name, content(name)): name for name in NAMES}
        async with httpx.AsyncClient(transport=in_process_transport(emu.app),
                                     base_url="http://cs.emulator") as http:
            listed = (await http.get("/v3/assets", headers={
                "api_key": CS_KEY, "authorization": CS_TOKEN})).json()["assets"]
            assert len(listed) == len(NAMES)
            for asset in listed:
                answer = await http.get(asset["url"])
                assert answer.status_code == 200, asset["url"]
                assert answer.content == content(uids[asset["uid"]])
    finally:
        emu.close()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["storyblok", "contentstack"])
def test_a_migrated_files_export_map_url_answers_with_its_bytes(
    tmp_path: Path, target: str,
) -> None:
    import anyio

    library = tmp_path / "library"
    library.mkdir()
    for name in NAMES:
        (library / name).write_bytes(content(name))
    if target == "storyblok":
        emu: StoryblokEmulator | ContentstackEmulator = StoryblokEmulator(
            token=SB_TOKEN, rate_limit=None)
    else:
        emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    try:
        with LoopbackServer(emu.app) as server:
            if isinstance(emu, StoryblokEmulator):
                section = (f'connector = "storyblok"\nspace_id = {emu.space_id}\n'
                           f'token = "{SB_TOKEN}"\n')
            else:
                section = (f'connector = "contentstack"\napi_key = "{CS_KEY}"\n'
                           f'management_token = "{CS_TOKEN}"\n')
            job = tmp_path / "job.toml"
            job.write_text(
                f'[source]\nconnector = "local"\npath = "{library}"\n\n'
                f'[target]\n{section}base_url = "{server.url}"\nrequests_per_second = 1000\n\n'
                f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
            summary = anyio.run(lambda: execute_job(load_job(job, env={}), "migrate"))
            assert summary.exit_code() == 0, summary.text()
            out = tmp_path / "map.json"
            assert main(["export-map", "-c", str(job), "--format", "json",
                         "--out", str(out)]) == 0
            rows = [r for r in json.loads(out.read_text(encoding="utf-8"))
                    if r["kind"] == "asset"]
            assert sorted(r["path"] for r in rows) == sorted(NAMES)
            with httpx.Client() as http:
                for row in rows:
                    answer = http.get(row["target_url"])
                    assert answer.status_code == 200, (row["path"], row["target_url"])
                    assert answer.content == content(row["path"]), row["path"]
    finally:
        emu.close()


@pytest.mark.parametrize("origin", ["storyblok", "contentstack"])
async def test_files_with_awkward_names_download_from_their_listed_urls(
    tmp_path: Path, origin: str,
) -> None:
    """The source side: our connectors fetch each listed URL as given (no second encoding)."""
    emu: StoryblokEmulator | ContentstackEmulator
    if origin == "storyblok":
        emu = sb = StoryblokEmulator(token=SB_TOKEN, rate_limit=None)
        section = (f'connector = "storyblok"\nspace_id = {sb.space_id}\n'
                   f'token = "{SB_TOKEN}"\n')
    else:
        emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
        section = (f'connector = "contentstack"\napi_key = "{CS_KEY}"\n'
                   f'management_token = "{CS_TOKEN}"\n')
    try:
        for name in NAMES:
            emu.add_asset(name, content(name))
        dest = tmp_path / "out"
        job = tmp_path / "job.toml"
        job.write_text(
            f'[source]\n{section}base_url = "http://src.emulator"\n'
            f'requests_per_second = 1000\n\n[target]\nconnector = "local"\npath = "{dest}"\n\n'
            f'[run]\nstate = "{tmp_path / "state.db"}"\n', encoding="utf-8")
        summary = await execute_job(load_job(job, env={}), "migrate",
                                    transports={"source": in_process_transport(emu.app)})
        assert summary.exit_code() == 0, summary.text()
        got = sorted(p.read_bytes() for p in dest.iterdir() if not p.name.startswith("."))
        assert got == sorted(content(name) for name in NAMES)
        assert emu.credential_leaks == []
    finally:
        emu.close()
