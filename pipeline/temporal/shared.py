"""What travels between the client, the workflows and the activities (through Temporal's
history, so: never a resolved secret). The job travels as the path of its file, whose
``${ENV}`` references each worker resolves from its own environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.plan import AssetAction, FolderAction
from pipeline.stages import Outcome

WORKFLOW_NAME = "AssetferryRun"
PARTITION_WORKFLOW_NAME = "AssetferryPartition"
DEFAULT_TASK_QUEUE = "assetferry"
CONTROL_ATTEMPTS = 3
"""Tries of the plan, folders and finish activities (``CONTROL_RETRY``): the plan activity's
last one turns an unexpected error into the run's error (as in process) instead of failing
the workflow with the run left open."""
PARTITION_SIZE = 1000
"""Most asset actions in one partition (one child workflow, its history bounded)."""
MEMO_DOMAIN = "assetferry_domain"
"""Memo key of a run's rate-limit domain (:class:`Domain`), read by every worker."""


@dataclass(frozen=True, slots=True)
class Domain:
    """One target API key's rate-limit domain: its task queue and the activity rate the
    server holds every worker on it to together (activities per second), and how many asset
    activities one worker runs at once (the job's ``[run] concurrency``: byte-heavy work)."""

    task_queue: str
    activities_per_second: float | None
    concurrency: int


@dataclass(frozen=True, slots=True)
class RunInput:
    """A run as the client starts it. ``job_path``: the job file (absolute), read by each
    worker from its own disk; no credential ever travels."""

    job_path: str
    mode: str
    domain: Domain
    retry_failed: bool = False
    prune: bool | None = None
    heartbeat_seconds: float = 10.0
    """Heartbeat timeout of an asset activity, in seconds: a worker that stops heartbeating
    this long (killed, cut off) has its asset retried on another worker."""


@dataclass(frozen=True, slots=True)
class RunRef:
    """The ledger's run every asset activity writes for."""

    job_path: str
    route: str
    run_id: int
    owner: str
    """The run's owner in the ledger (``temporal:<workflow id>``)."""


@dataclass(frozen=True, slots=True)
class Planned:
    """The plan activity's result: the run opened in the ledger and its work, in
    partitions (folder subtrees, at most :data:`PARTITION_SIZE` actions each)."""

    route: str
    run_id: int | None = None
    folders: list[FolderAction] = field(default_factory=list)
    partitions: list[list[AssetAction]] = field(default_factory=list)
    deletes: list[AssetAction] = field(default_factory=list)
    listing: dict[str, str] | None = None
    held_deletes: int = 0
    prune_note: str | None = None
    fatal: str | None = None
    input_error: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    """Of the actions that call no target (skips, conflicts), carried out at once."""
    listed: list[int] | None = None
    """``[entries, excluded]`` of the source listing (:attr:`RunSummary.listed`), also when
    the run stopped right after the plan (``on_conflict = "fail"``)."""
    locked: bool = False
    """The run lock refused the run (another run of the job holds it): nothing ran."""


@dataclass(frozen=True, slots=True)
class FoldersDone:
    folder_ids: list[tuple[list[str], str]]
    outcomes: list[Outcome]


@dataclass(frozen=True, slots=True)
class ItemInput:
    run: RunRef
    action: AssetAction
    folder_ids: list[tuple[list[str], str]]
    """The target folder ids this action needs (its folder), by target path."""


@dataclass(frozen=True, slots=True)
class PartitionInput:
    run: RunRef
    domain: Domain
    actions: list[AssetAction]
    folder_ids: list[tuple[list[str], str]]
    heartbeat_seconds: float
    index: int = 0
    """The partition's number in its run (its progress signals name it)."""


@dataclass(frozen=True, slots=True)
class FinishInput:
    run: RunRef
    mode: str
    outcomes: list[Outcome]
    listing: dict[str, str] | None
    held_deletes: int
    prune_note: str | None
    seconds: float
    fatal: str | None = None
    interrupted: bool = False
    """The workflow was cancelled: the run is closed as interrupted."""
    pending: list[AssetAction] = field(default_factory=list)
    """Of a cancelled run, the actions it did not hear back about: their outcomes are read
    from the ledger (what this run wrote there)."""
    listed: list[int] | None = None
    locked: bool = False


@dataclass(slots=True)
class Progress:
    """What the workflow answers to the ``progress`` query (the client's display)."""

    phase: str = "planning"
    route: str = ""
    run_id: int | None = None
    planned: int = 0
    done: int = 0
    failed: int = 0
    partitions: int = 0
    partitions_done: int = 0
