"""Workflow histories recorded by an earlier version of the workflows replay on this one
without a nondeterminism error, so a run in flight when its workers are upgraded goes on on
the new code (Temporal versioning: ``workflow.patched``; README "Upgrading workers").

``histories/*-ea233fe.json.gz``: a run cancelled mid-run under the workflows of main at
ea233fe (12 assets, 4 uploads held in flight across the cancel by
test_temporal_cancel.py's ``HoldUploads``; 6 queued activities ended by the cancel at once),
its partition's history and the run's, as ``temporal workflow show --output json`` gives
them. No server is needed: the replayer runs the workflow code against the history.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from pipeline.temporal.worker import SANDBOX
from pipeline.temporal.workflows import PartitionWorkflow, RunWorkflow

HISTORIES = Path(__file__).parent / "histories"
RUN_ID = "assetferry-2f233ccf67c61c91"
RECORDED = {  # history file: its workflow id (the run's names its partitions by it)
    "cancelled-partition-ea233fe.json.gz":
        f"{RUN_ID}/01a22d47-94d5-7ea9-b6d5-5da2044a6523/part-0",
    "cancelled-run-ea233fe.json.gz": RUN_ID,
}


def history(name: str) -> WorkflowHistory:
    text = gzip.decompress((HISTORIES / name).read_bytes()).decode("utf-8")
    return WorkflowHistory.from_json(RECORDED[name], text)


def replayer() -> Replayer:
    return Replayer(workflows=[RunWorkflow, PartitionWorkflow], workflow_runner=SANDBOX)


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_a_history_recorded_before_the_step_groups_waited_replays(name: str) -> None:
    result = await replayer().replay_workflow(history(name))
    assert result.replay_failure is None


async def test_the_recorded_partition_takes_the_path_the_patch_guards(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the patch (the new path taken in replay too), the partition's history recorded
    before no longer replays: the patch is what keeps such a run in flight going."""
    monkeypatch.setattr(workflow, "patched", lambda _id: True)
    with pytest.raises(workflow.NondeterminismError):
        await replayer().replay_workflow(history("cancelled-partition-ea233fe.json.gz"))
