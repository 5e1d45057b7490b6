"""Shared set-up for end-to-end tests: sample libraries, job files, emulator inspection."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from connectors.contentstack.emulator import ContentstackEmulator
from pipeline.config import JobConfig, load_job
from pipeline.samples import SampleFile, sample_library, write_local_library

CS_KEY = "blt0123456789abcdef"
EMU_TOKEN = "cs-emulator-token"  # what `assetferry emulate contentstack` accepts
CS_TOKEN = "cs-e2e-token-7f3a9c"  # distinctive, so the secrets test can grep for it


CS_SECTION = (f'connector = "contentstack"\napi_key = "{CS_KEY}"\n'
              f'management_token = "{CS_TOKEN}"\nbase_url = "http://cs.emulator"\n'
              'requests_per_second = 1000\n')
"""A ``[target]``/``[source]`` section for the Contentstack emulator routed in-process at
``http://cs.emulator`` (see `route_in_process`), unpaced."""


def sb_section(space_id: int, token: str) -> str:
    """A section for the Storyblok emulator routed in-process at ``http://sb.emulator``,
    unpaced."""
    return (f'connector = "storyblok"\nspace_id = {space_id}\ntoken = "{token}"\n'
            'base_url = "http://sb.emulator"\nrequests_per_second = 1000\n')


def wf_section(site_id: str, token: str, locales: str = "") -> str:
    """A section for the Webflow emulator routed in-process at ``http://wf.emulator``,
    unpaced; ``locales``: the ``locales`` value as TOML (``'"site"'``, an inline table), or
    none."""
    return (f'connector = "webflow"\nsite_id = "{site_id}"\ntoken = "{token}"\n'
            'base_url = "http://wf.emulator"\nrate_limit_per_minute = 600000\n'
            + (f"locales = {locales}\n" if locales else ""))


class Recorder(httpx.AsyncBaseTransport):
    """An httpx transport: pass requests on to ``inner`` and note each one (method, path, query)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def ct_section(site_id: str, token: str, folders: Mapping[str, str] | None = None) -> str:
    """A section for the Contento emulator routed in-process at
    ``http://contento.emulator/api``, unpaced, with ``[source.folders]`` (folder id -> path)
    when given (it must then end the source section)."""
    table = "".join(f'"{fid}" = "{path}"\n' for fid, path in (folders or {}).items())
    return (f'connector = "contento"\nsite_id = "{site_id}"\ntoken = "{token}"\n'
            'base_url = "http://contento.emulator/api"\nrequests_per_second = 1000\n'
            + (f"\n[source.folders]\n{table}" if table else ""))


def delivery_section(token: str) -> str:
    """A section for the Contentstack Delivery API emulator routed in-process at
    ``http://cdn.emulator`` (environment ``production``), unpaced."""
    return (f'connector = "contentstack-delivery"\napi_key = "{CS_KEY}"\n'
            f'delivery_token = "{token}"\nenvironment = "production"\n'
            'base_url = "http://cdn.emulator"\nrequests_per_second = 1000\n')


def local_job(tmp_path: Path, run: str = "") -> Path:
    """``tmp_path/job.toml``: local ``lib`` (``A/x.bin``, ``y.bin``) -> local ``out``, the
    state in ``s.db``, plus the ``run`` lines of ``[run]``."""
    (tmp_path / "lib" / "A").mkdir(parents=True)
    (tmp_path / "lib" / "A" / "x.bin").write_text("one\n")
    (tmp_path / "lib" / "y.bin").write_text("two\n")
    path = tmp_path / "job.toml"
    path.write_text('[source]\nconnector = "local"\npath = "./lib"\n'
                    '[target]\nconnector = "local"\npath = "./out"\n'
                    f'[run]\nstate = "s.db"\n{run}')
    return path


def local_to_local(path: Path, source: Path, target: Path, state: Path) -> Path:
    """Write the job file ``path``: local folder ``source`` -> local folder ``target``, the
    state DB at ``state``; returns ``path``."""
    path.write_text(f'[source]\nconnector = "local"\npath = "{source}"\n\n'
                    f'[target]\nconnector = "local"\npath = "{target}"\n\n'
                    f'[run]\nstate = "{state}"\n', encoding="utf-8")
    return path

def job_toml(tmp_path: Path, source: str, target: str, *, mapping: str = "", run: str = "",
             name: str = "job", state: str = "state.db") -> Path:
    """Write ``tmp_path/<name>.toml``: the ``[source]`` and ``[target]`` sections (TOML
    lines), ``mapping`` tables, and ``[run]`` with the state DB ``tmp_path/<state>`` and
    the ``run`` lines."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f"[source]\n{source}\n[target]\n{target}\n{mapping}\n"
                    f'[run]\nstate = "{tmp_path / state}"\n{run}', encoding="utf-8")
    return path


def library(tmp_path: Path, files: list[SampleFile] | None = None) -> tuple[Path, list[SampleFile]]:
    files = files if files is not None else list(sample_library())
    root = tmp_path / "library"
    write_local_library(root, files)
    return root, files


def local_to_cs_job(tmp_path: Path, base_url: str, *, source: Path, token_var: str = "E2E_CS",  # noqa: S107 - a variable name
                    policy: str = "collapse", concurrency: int = 4,
                    extra_target: str = "requests_per_second = 1000\n",
                    env: Mapping[str, str] | None = None) -> JobConfig:
    text = (
        f'[source]\nconnector = "local"\npath = "{source}"\n\n'
        f'[target]\nconnector = "contentstack"\napi_key = "{CS_KEY}"\n'
        f'management_token = "${{{token_var}}}"\nbase_url = "{base_url}"\n{extra_target}\n'
        f'[mapping]\nfolder_overflow = "{policy}"\n\n'
        f'[run]\nstate = "{tmp_path / "state.db"}"\nconcurrency = {concurrency}\n'
    )
    path = tmp_path / "job.toml"
    path.write_text(text, encoding="utf-8")
    return load_job(path, env=env if env is not None else {token_var: CS_TOKEN})


def cs_to_local_job(tmp_path: Path, base_url: str, *, dest: Path,
                    requests_per_second: float = 1000) -> JobConfig:
    text = (
        f'[source]\nconnector = "contentstack"\napi_key = "{CS_KEY}"\n'
        f'management_token = "{CS_TOKEN}"\nbase_url = "{base_url}"\n'
        f'requests_per_second = {requests_per_second}\n\n'
        f'[target]\nconnector = "local"\npath = "{dest}"\n\n'
        f'[run]\nstate = "{tmp_path / "back.db"}"\n'
    )
    path = tmp_path / "back.toml"
    path.write_text(text, encoding="utf-8")
    return load_job(path, env={})


def cs_paths(emu: ContentstackEmulator) -> dict[str, tuple[str, ...]]:
    """Folder uid -> path of names, from the emulator's own records."""
    out: dict[str, tuple[str, ...]] = {}

    def path(uid: str) -> tuple[str, ...]:
        if uid not in out:
            rec = emu.folders[uid]
            parent = rec.get("parent_uid")
            out[uid] = (*(path(parent) if parent else ()), rec["name"])
        return out[uid]

    for uid in emu.folders:
        path(uid)
    return out


def cs_inventory(emu: ContentstackEmulator) -> list[tuple[tuple[str, ...], str, str]]:
    """(folder path, filename, sha256) of every asset the emulator holds."""
    paths = cs_paths(emu)
    inv = []
    for uid, rec in emu.assets.items():
        parent = rec.get("parent_uid")
        inv.append((paths[parent] if parent else (), rec["filename"],
                    hashlib.sha256(emu.blob(uid)).hexdigest()))
    return sorted(inv)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_inventory(root: Path) -> list[tuple[tuple[str, ...], str, str]]:
    inv = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.startswith(".assetferry"):
                continue
            rel = Path(dirpath).relative_to(root)
            inv.append((rel.parts, name, sha((Path(dirpath) / name).read_bytes())))
    return sorted(inv)



def run_migrate(job: Path, env_vars: Mapping[str, str],
                crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """``assetferry migrate`` in a subprocess; ``crash_at`` names a crash point to die at."""
    env = {k: v for k, v in os.environ.items() if k != "ASSETFERRY_CRASH_AT"}
    env.update(env_vars)
    if crash_at:
        env["ASSETFERRY_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--log-format", "json", "migrate", "-c", str(job)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )


def cs_job_file(tmp_path: Path, source: Path, base_url: str, *, rate: float = 500,
                concurrency: int = 4) -> Path:
    """A job file local -> Contentstack whose token comes from ``$CS_TOKEN``."""
    job = tmp_path / "job.toml"
    job.write_text(
        f'[source]\nconnector = "local"\npath = "{source}"\n\n'
        f'[target]\nconnector = "contentstack"\napi_key = "{CS_KEY}"\n'
        f'management_token = "${{CS_TOKEN}}"\nbase_url = "{base_url}"\n'
        f"requests_per_second = {rate}\n\n"
        f'[run]\nstate = "{tmp_path / "state.db"}"\nconcurrency = {concurrency}\n',
        encoding="utf-8",
    )
    return job


def route_in_process(monkeypatch: Any, sides: Mapping[str, Any]) -> None:
    """Make every run in this test (``cli.main`` included) reach the given ASGI apps by side
    (``"source"`` / ``"target"``) in-process, whatever host the job file names."""
    import pipeline.run as run_module
    import pipeline.verify as verify_module
    from connectors.emulation import in_process_transport

    transports = {side: in_process_transport(app) for side, app in sides.items()}
    real_open_pair = run_module.open_pair

    async def open_pair(job: Any, stack: Any, given: Any) -> Any:
        return await real_open_pair(job, stack, {**(given or {}), **transports})

    monkeypatch.setattr(run_module, "open_pair", open_pair)
    monkeypatch.setattr(verify_module, "open_pair", open_pair)  # imported by name there
