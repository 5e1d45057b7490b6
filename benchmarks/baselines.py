"""Baselines: what a user would write instead of assetferry, speaking to the same emulators.

``sequential``: a plain httpx script, one request at a time, sleeping on a 429 for its
Retry-After (1 s when none) and trying again. ``minimal_async``: the least an async copy
loop can do (N workers, one shared client, no state, no pacing). Both upload every file
of a local library to the root of the target; nothing else (no listing, no metadata).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import Emulator


def files(library: Path) -> Iterator[Path]:
    return iter(sorted(p for p in library.rglob("*") if p.is_file()))


def settings(emu: Emulator) -> dict[str, Any]:
    text = re.sub(r"\$\{(\w+)\}", lambda m: emu.env[m.group(1)], emu.job)
    return tomllib.loads(text)


def _send(client: httpx.Client, method: str, url: str, *,
          upload: tuple[str, str, Path] | None = None, **kw: Any) -> httpx.Response:
    """One request, repeated after each 429 (sleeping its Retry-After, 1 s without one);
    ``upload`` = (multipart field, file name, path), the file reopened for every try."""
    while True:
        if upload is None:
            r = client.request(method, url, **kw)
        else:
            field, name, path = upload
            with path.open("rb") as fh:
                r = client.request(method, url, files={field: (name, fh, "text/plain")}, **kw)
        if r.status_code != 429:
            r.raise_for_status()
            return r
        time.sleep(float(r.headers.get("retry-after", "1")))


def sequential(emu: Emulator, library: Path) -> int:
    """Upload every file one request at a time; returns how many were uploaded."""
    s = settings(emu)
    n = 0
    with httpx.Client(timeout=60) as c:
        for path in files(library):
            if emu.cms == "contentstack":
                _send(c, "POST", f"{s['base_url']}/v3/assets",
                      headers={"api_key": s["api_key"], "authorization": s["management_token"]},
                      upload=("asset[upload]", path.name, path))
            elif emu.cms == "storyblok":
                mapi = f"{s['base_url']}/v1/spaces/{s['space_id']}/"
                auth = {"authorization": s["token"]}
                signed = _send(c, "POST", mapi + "assets/", headers=auth,
                               json={"filename": path.name, "validate_upload": 1}).json()
                _send(c, "POST", signed["post_url"], data=signed["fields"],
                      upload=("file", path.name, path))
                _send(c, "GET", f"{mapi}assets/{signed['id']}/finish_upload", headers=auth)
            else:  # webflow
                auth = {"authorization": f"Bearer {s['token']}"}
                md5 = hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324
                ticket = _send(c, "POST", f"{s['base_url']}/v2/sites/{s['site_id']}/assets",
                               headers=auth, json={"fileName": path.name,
                                                   "fileHash": md5}).json()
                _send(c, "POST", ticket["uploadUrl"], data=ticket["uploadDetails"],
                      upload=("file", path.name, path))
            n += 1
    return n


async def minimal_async(emu: Emulator, library: Path, workers: int = 4) -> int:
    """Contentstack only: ``workers`` tasks POSTing files through one AsyncClient."""
    s = settings(emu)
    todo = list(files(library))
    headers = {"api_key": s["api_key"], "authorization": s["management_token"]}
    async with httpx.AsyncClient(timeout=60, headers=headers) as c:
        async def worker() -> None:
            while todo:
                path = todo.pop()
                with path.open("rb") as fh:
                    r = await c.post(f"{s['base_url']}/v3/assets",
                                     files={"asset[upload]": (path.name, fh, "text/plain")})
                r.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(workers)))
    return len(list(files(library)))


