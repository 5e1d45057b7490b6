"""A run's CPU per asset (issue 12, the overhead rows of benchmarks/): what the pipeline does
for every upload besides the upload itself. Structural checks only (no timing here: the
figures are ``python benchmarks/run.py --only overhead``)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import in_process_transport
from pipeline.plan import AssetAction
from pipeline.run import execute_job
from pipeline.stages import AssetLoader, Outcome, Prepared, steady_heap
from tests.pipeline.helpers import cs_inventory, library, local_to_cs_job


async def test_the_transfer_leaves_the_objects_made_before_it_to_reference_counting(
        tmp_path: Path, emu: ContentstackEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every upload runs with the heap that existed when the transfer started frozen (the
    modules, listings, plan and ledger rows: a full collection walked them all, once about
    every 500 uploads, 0.14-0.33 s each), and the process's collector is as it was after
    the run (before: nothing frozen)."""
    frozen_during: list[int] = []
    run = AssetLoader.run

    async def watching(self: AssetLoader, action: AssetAction,
                       prepared: Prepared | None = None) -> Outcome:
        frozen_during.append(gc.get_freeze_count())
        return await run(self, action, prepared)

    monkeypatch.setattr(AssetLoader, "run", watching)
    root, files = library(tmp_path)
    job = local_to_cs_job(tmp_path, "http://cs.emulator", source=root)
    before = gc.get_freeze_count()
    summary = await execute_job(job, "migrate",
                                transports={"target": in_process_transport(emu.app)})
    assert summary.exit_code() == 0, summary.text()
    assert len(cs_inventory(emu)) == len(files)
    assert len(frozen_during) == len(files)
    assert min(frozen_during) > before
    assert gc.get_freeze_count() == before


def test_an_inner_steady_heap_freezes_nothing_more_and_the_outer_end_unfreezes() -> None:
    """Overlapping runs in one process (a Temporal worker's activities): the garbage made
    between them stays collectable, and the heap is unfrozen once the last one ends."""
    assert gc.get_freeze_count() == 0
    with steady_heap():
        outer = gc.get_freeze_count()
        assert outer > 0
        made_between: list[list[int]] = [[] for _ in range(1000)]  # made after the freeze
        with steady_heap():
            assert gc.get_freeze_count() == outer  # not frozen with the inner block
        assert gc.get_freeze_count() == outer
        del made_between
    assert gc.get_freeze_count() == 0
