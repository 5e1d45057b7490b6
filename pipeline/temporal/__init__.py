"""assetferry on Temporal: one job's run as a workflow, its assets as activities on workers.

Layout (imports point down): :mod:`.shared` (the workflow's and activities' inputs and
outputs, plain dataclasses), :mod:`.activities` (list and plan, folders, one asset, finish:
the same code as the in-process run), :mod:`.workflows`, :mod:`.worker` (``assetferry
worker``), :mod:`.client` (``migrate|sync --temporal``), :mod:`.devserver` (``temporal server
start-dev`` for the demo, tests and benchmark).

Only :func:`require` is safe to import without the ``temporal`` extra installed.
"""

from __future__ import annotations

from connectors.errors import ConfigError

INSTALL_HINT = "pip install 'assetferry[temporal]'"


def require() -> None:
    """ConfigError (exit 2) saying what to install when the Temporal SDK is missing."""
    try:
        import temporalio  # noqa: F401
    except ImportError:
        raise ConfigError(f"--temporal needs the Temporal SDK, which is not installed: "
                          f"{INSTALL_HINT}") from None


OWNER_PREFIX = "temporal:"
"""The ledger's owner of a run a workflow carries out is ``temporal:<workflow id>``."""

SERVER = "HOST:PORT"
"""How a hint names the Temporal server's address when it is not known (``status`` reads
the ledger, which does not hold it)."""


def run_owner(workflow_id: str) -> str:
    """The ledger's owner of a run carried out by a workflow: a host part that is no
    machine's, so the run lock goes by its heartbeat (``state.store.run_is_live``)."""
    return f"{OWNER_PREFIX}{workflow_id}"


def workflow_of(owner: str | None) -> str | None:
    """The workflow id of a ledger run's ``owner`` when a Temporal workflow carries it out."""
    if owner and owner.startswith(OWNER_PREFIX) and len(owner) > len(OWNER_PREFIX):
        return owner[len(OWNER_PREFIX):]
    return None


def cancel_hint(workflow_id: str, address: str | None = None) -> str:
    """How to stop a run on Temporal, as commands that work whether or not a worker runs it:
    a cancel takes effect only when a worker runs the workflow's code; with no worker
    polling its task queue only a terminate ends it. Either way the ledger's run shows as
    interrupted once its heartbeat is stale, and the next run resumes it."""
    where = f"--workflow-id {workflow_id} --address {address or SERVER}"
    return (f"cancel it with `temporal workflow cancel {where}` (this takes effect only "
            "while a worker polls its task queue: without one, end it with `temporal workflow "
            f"terminate {where}`; the next run resumes what it left)")


def follow_hint(workflow_id: str, config: object, address: str | None = None) -> str:
    """What to tell a user about a job's run going on on Temporal: how to follow it (``status``
    and the Temporal CLI) and how to stop it (:func:`cancel_hint`). ``config``: the job file."""
    where = f"--workflow-id {workflow_id} --address {address or SERVER}"
    server = "" if address else f" ({SERVER}: the Temporal server's address)"
    return (f"it runs on Temporal as workflow {workflow_id}: follow it with `assetferry status "
            f"-c {config}` or `temporal workflow describe {where}`{server}; "
            f"{cancel_hint(workflow_id, address)}")
