"""One CMS emulator in its own process for the benchmarks, with latency and a request log.

    python benchmarks/serve.py CMS PORT [--latency S] [--unlimited] [--seed N]

Prints one JSON line once serving: ``{"url", "env", "job"}`` (the job file table for this
emulator, rate keys left to the connector's documented default). ``GET /__bench__/stats``
answers the requests served so far (each ``[seconds since start, method, path, status,
seconds since start when the response ended]``),
``POST /__bench__/reset`` forgets them. Nothing here is part of assetferry.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.emulation import Faults  # noqa: E402
from connectors.plugin import DemoFile, EmulatorSettings  # noqa: E402
from pipeline import logs  # noqa: E402
from pipeline.registry import plugin_for  # noqa: E402

RATE_KEYS = re.compile(r"^(requests_per_second|rate_limit_per_minute) = .*\n", re.M)


class Recorder:
    """ASGI middleware: logs every request's start, method, path, status and end (its
    response's last byte handed to the server)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log: list[tuple[float, str, str, int, float]] = []
        self.t0 = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path.startswith("/__bench__/"):
            if path.endswith("reset"):
                self.log.clear()
            body = json.dumps({"requests": self.log}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        started = time.monotonic() - self.t0
        status = [0]

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.log.append((started, scope.get("method", ""), path, status[0],
                             time.monotonic() - self.t0))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("cms")
    parser.add_argument("port", type=int)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--unlimited", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="seed N small assets (a source)")
    args = parser.parse_args()
    factory = plugin_for(args.cms).emulator
    assert factory is not None  # noqa: S101
    emu = factory(EmulatorSettings(unlimited=args.unlimited))
    if args.seed:
        emu.seed(DemoFile(folder=(f"d{i // 500}",), name=f"file-{i}.txt", data=b"x" * 100,
                          content_type="text/plain", title="") for i in range(args.seed))
    inner = getattr(emu, "emulator", emu)
    if args.latency and hasattr(inner, "faults"):
        inner.faults = Faults(latency=args.latency)
    url = f"http://127.0.0.1:{args.port}"
    job = RATE_KEYS.sub("", emu.job_section(url))
    print(json.dumps({"url": url, "env": dict(emu.env), "job": job}), flush=True)
    logs.quiet()  # nobody reads this process's output after the first line
    sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - for the life of the process
    try:
        uvicorn.run(Recorder(emu.app), host="127.0.0.1", port=args.port, log_level="warning",
                    lifespan="off", access_log=False)
    finally:
        emu.close()


if __name__ == "__main__":
    main()
