"""A server asking to wait for hours stops the run at once, names the wait, keeps the state."""

from __future__ import annotations

from pathlib import Path

import httpx

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from pipeline.run import execute_job
from state.store import RunStatus, StateStore
from tests.pipeline.helpers import CS_KEY, CS_TOKEN, library, local_to_cs_job


class QuotaAfter(httpx.AsyncBaseTransport):
    """The emulator, until ``uploads`` assets are in: then every upload answers a daily quota."""

    def __init__(self, inner: httpx.AsyncBaseTransport, uploads: int) -> None:
        self.inner = inner
        self.left = uploads
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v3/assets":
            if self.left <= 0:
                self.refused += 1
                return httpx.Response(429, headers={"Retry-After": "86400"},
                                      json={"error_message": "Daily quota exceeded"})
            self.left -= 1
        return await self.inner.handle_async_request(request)


async def test_a_24_hour_retry_after_stops_the_run_with_its_state_saved(tmp_path: Path) -> None:
    root, files = library(tmp_path)
    emu = ContentstackEmulator(api_key=CS_KEY, management_token=CS_TOKEN, rate_limit=None)
    job = local_to_cs_job(tmp_path, "http://cs.emulator", source=root, concurrency=1)
    quota = QuotaAfter(in_process_transport(emu.app), uploads=5)
    try:
        summary = await execute_job(job, "migrate", transports={"target": quota})
    finally:
        emu.close()
    assert summary.exit_code() == 2
    assert summary.fatal is not None
    assert "asks to wait 24 h before the next request" in summary.fatal
    assert "quota exhausted?" in summary.fatal
    assert quota.refused == 1, "no retry through a 24-hour wait"
    with StateStore(job.run.state) as store:
        runs = store.runs(summary.route)
        done = store.ledger_counts(summary.route)["done"]
    assert runs[0].status is RunStatus.FAILED, "the run is closed, not left running"
    assert done == 5, "the five uploads before the quota are in the ledger"
    assert len(emu.assets) == 5
    assert len(files) > 5
