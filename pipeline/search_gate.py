"""`SearchGate`: a search of the target is not raced by the run's own writes.

A resumed upload whose outcome is unknown (its process was killed, or its request ended
ambiguously) is looked for on the target before it is sent again (``find_asset``). Where the
API cannot filter by name (Webflow's ``GET /v2/sites/{site_id}/assets`` lists every asset,
paged by offset with a ``total``), that search pages the whole asset list and refuses a pass
whose total changed on the way (someone edited the library: the pass may have skipped an
asset, and a missed asset is uploaded twice). The run's own concurrent uploads change that
total too: a resumed run uploading beside its searches failed them ("the Webflow asset list
changed while being listed, 3 times in a row") though nobody else touched the library.

So the loaders share one gate: a write that changes what a search lists (an upload, a
replace, a delete, a move) holds it in shared mode; a search waits until the writes in
flight have ended and holds new ones back until it is done. Searches may run together.
With no search under way a write costs two counter updates (no lock, no task switch).
Within one process only: the workers of a Temporal run are separate processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class SearchGate:
    """Writes share the gate; a search has it alone (see the module docstring)."""

    __slots__ = ("_searches", "_searches_ended", "_writes", "_writes_ended")

    def __init__(self) -> None:
        self._writes = 0
        self._searches = 0
        self._writes_ended: anyio.Event | None = None
        self._searches_ended: anyio.Event | None = None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold the gate for one write; waits while a search is under way."""
        while self._searches:
            if self._searches_ended is None:
                self._searches_ended = anyio.Event()
            await self._searches_ended.wait()
        self._writes += 1
        try:
            yield
        finally:
            self._writes -= 1
            if not self._writes and self._writes_ended is not None:
                self._writes_ended.set()
                self._writes_ended = None

    @asynccontextmanager
    async def searching(self) -> AsyncIterator[None]:
        """Hold the gate for one search: new writes wait, and the search starts once the
        writes in flight have ended."""
        self._searches += 1
        try:
            while self._writes:
                if self._writes_ended is None:
                    self._writes_ended = anyio.Event()
                await self._writes_ended.wait()
            yield
        finally:
            self._searches -= 1
            if not self._searches and self._searches_ended is not None:
                self._searches_ended.set()
                self._searches_ended = None

    @property
    def writes(self) -> int:
        """Writes holding the gate now."""
        return self._writes
