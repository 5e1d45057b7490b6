"""What the checkpoint stores: statuses, the records the pipeline sees, and the tables.

The pipeline only handles `ItemRecord` / `RunRecord` (never changed once made, detached
from any session; defined in `state.records`, without SQLAlchemy, and re-exported here); the
ORM classes `Run`, `ItemState` and `SchemaVersion` stay inside `state`.
There is deliberately no column for credentials: secrets live in the environment only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from state.records import ItemRecord, ItemStatus, RunRecord, RunStatus

__all__ = ["ADDED_COLUMNS", "ADDED_INDEXES", "SCHEMA_VERSION", "Base", "ItemClaim", "ItemRecord",
           "ItemState", "ItemStatus", "Run", "RunRecord", "RunStatus", "SchemaVersion"]

SCHEMA_VERSION = 1
"""Bump on every incompatible change to the tables below (and add a migration in `store`).

A new nullable column is not one: list it in ``ADDED_COLUMNS`` and the store adds it in place
to a file written before it existed; an older assetferry ignores it."""

ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("items", "target_marker"),)
"""Nullable columns added since their table first shipped: ``(table, column)``."""

ADDED_INDEXES: tuple[tuple[str, str], ...] = (("items", "ix_items_route_last_run"),)
"""Indexes added since their table first shipped: ``(table, index name)``. The store creates
each one missing from a file written before it (``CREATE INDEX``: the schema version stays;
an older assetferry ignores it)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones, so values are stored as naive UTC. A naive value is refused
    rather than guessed at.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use an aware UTC one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _str_enum(cls: type[StrEnum]) -> Enum:
    # Store the values ("in_flight"), not the member names; VARCHAR, not a native enum type.
    return Enum(
        cls,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        create_constraint=False,
        length=16,
        validate_strings=True,
    )


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    """One row: the schema the file was written with."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    version: Mapped[int]


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_route_status", "route", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route: Mapped[str] = mapped_column(String(512))  # "storyblok:123->webflow:abc"
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[RunStatus] = mapped_column(_str_enum(RunStatus))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(300), default=None)
    """``host:pid`` of the process running it, so a killed run is known dead at once."""
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def record(self) -> RunRecord:
        return RunRecord(
            id=self.id,
            route=self.route,
            mode=self.mode,
            status=self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            heartbeat_at=self.heartbeat_at,
            summary=dict(self.summary or {}),
            owner=self.owner,
        )


class ItemState(Base):
    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_route_status", "route", "status"),
        # `status` counts what the last run touched (StateStore.run_counts) by this index
        # instead of reading every row of the route
        Index("ix_items_route_last_run", "route", "last_run_id"),
    )

    route: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    status: Mapped[ItemStatus] = mapped_column(_str_enum(ItemStatus))
    path: Mapped[str] = mapped_column(Text, default="")
    source_url: Mapped[str | None] = mapped_column(Text)
    source_hash: Mapped[str | None] = mapped_column(String(256))
    target_id: Mapped[str | None] = mapped_column(String(512))
    target_url: Mapped[str | None] = mapped_column(Text)
    target_path: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    journal: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    intent: Mapped[str | None] = mapped_column(String(16))
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    target_marker: Mapped[str | None] = mapped_column(Text, default=None)
    """Added after schema 1 shipped: nullable, added in place to older files (see
    ``ADDED_COLUMNS``); an older assetferry reading the file ignores it."""

    @staticmethod
    def values(rec: ItemRecord, *, updated_at: datetime) -> dict[str, Any]:
        """The row for `rec`, keyed by column name."""
        return {
            "route": rec.route,
            "kind": rec.kind,
            "source_id": rec.source_id,
            "status": rec.status,
            "path": rec.path,
            "source_url": rec.source_url,
            "source_hash": rec.source_hash,
            "target_id": rec.target_id,
            "target_url": rec.target_url,
            "target_path": rec.target_path,
            "attempts": rec.attempts,
            "last_error": rec.last_error,
            "journal": dict(rec.journal),
            "intent": rec.intent,
            "last_run_id": rec.last_run_id,
            "updated_at": updated_at,
            "target_marker": rec.target_marker,
        }

    def record(self) -> ItemRecord:
        return ItemRecord(
            route=self.route,
            kind=self.kind,
            source_id=self.source_id,
            status=self.status,
            path=self.path,
            source_url=self.source_url,
            source_hash=self.source_hash,
            target_id=self.target_id,
            target_url=self.target_url,
            target_path=self.target_path,
            attempts=self.attempts,
            last_error=self.last_error,
            journal=dict(self.journal or {}),
            intent=self.intent,
            last_run_id=self.last_run_id,
            updated_at=self.updated_at,
            target_marker=self.target_marker,
        )


class ItemClaim(Base):
    """Which worker holds an item of a route, until when (``StateStore.claim``).

    Keyed like the ledger but without a foreign key to it: an asset that is new in the
    source has no ledger row until its intent is written, and it is claimed before that.
    Added after schema 1 shipped as a whole new table, which ``create_all`` adds in place to
    an older file (additive: the schema version stays; an older assetferry ignores it).
    """

    __tablename__ = "claims"
    __table_args__ = (Index("ix_claims_route_owner", "route", "owner"),)

    route: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    owner: Mapped[str] = mapped_column(String(300))
    """Whatever names the worker (``host:pid``, a Temporal activity id...)."""
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """End of the lease (UTC): after it, another owner may take the item over."""
