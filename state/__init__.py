"""The checkpoint: runs and the per-item ledger of a route, in SQLite (or any SQLAlchemy URL).

`state.models` holds the enums, the records (never changed) the pipeline reads and writes, the ORM
tables behind them; `state.store.StateStore` is the only way in. The pipeline calls the store
from one writer task through `anyio.to_thread`, so the store is synchronous.

An item's intent (`IN_FLIGHT` + `intent`) is durable before its side effect starts, and its
result (`DONE` + `target_id`) right after: each `write()` is one transaction, fsynced when it
returns. On resume, the pipeline reconciles `IN_FLIGHT` items against the target.

The store never holds secrets: no table has a column for tokens or credentials, and the
configuration (which does hold them) is never written here. Keep it that way.

This package imports nothing else of ours.
"""
