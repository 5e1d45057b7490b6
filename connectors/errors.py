"""Error types every connector raises; nothing else crosses the connector boundary.

::

    SyncError
    ├── RetryableError      429, 5xx, timeouts, connection errors (carries retry_after)
    │   └── AmbiguousError  a non-idempotent request may or may not have taken effect
    ├── FatalError          stop the run: bad credentials, missing space, bad config
    │   ├── AuthError
    │   └── ConfigError
    └── ItemError           one item fails, the run goes on: 404, too large, bad response
        ├── NotFoundError
        └── MalformedResponseError

Messages are for people: they say what happened and what to do, and never carry a secret.
"""

from __future__ import annotations


class SyncError(Exception):
    """Root of every error assetferry raises on purpose."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


class RetryableError(SyncError):
    """Worth trying again after a pause (``retry_after`` seconds when the server said)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AmbiguousError(RetryableError):
    """A request that creates something failed after it was sent: it may have taken effect.

    Reconcile against the target before sending it again.
    """


class FatalError(SyncError):
    """The run cannot go on."""


class AuthError(FatalError):
    """Credentials missing, wrong, or without the needed permission."""


class ConfigError(FatalError):
    """The job file or a connector setting is wrong."""


class ItemError(SyncError):
    """One item cannot be done; the run goes on and reports it."""


class NotFoundError(ItemError):
    """The API says the record does not exist."""


class MalformedResponseError(ItemError):
    """The API answered with something that does not match its documented shape."""
