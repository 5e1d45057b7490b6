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
