"""Test helpers shared by connector tests: staged files and an in-memory upload journal."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from pathlib import Path

from connectors.base import StagedFile


def stage_bytes(tmp_path: Path, data: bytes, content_type: str) -> StagedFile:
    """``data`` as a StagedFile under ``tmp_path/staging`` with its md5 and sha256."""
    folder = tmp_path / "staging"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"staged-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return StagedFile(
        path=path,
        size=len(data),
        md5=hashlib.md5(data).hexdigest(),  # noqa: S324 - a content checksum, not security
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
    )


class MemoryJournal:
    """An UploadJournal that keeps its notes in a dict (what the state DB does for real)."""

    def __init__(self, previous: Mapping[str, str] | None = None) -> None:
        self._previous = dict(previous or {})
        self.records: list[tuple[str, dict[str, str]]] = []

    @property
    def previous(self) -> Mapping[str, str]:
        return self._previous

    async def record(self, step: str, data: Mapping[str, str]) -> None:
        self.records.append((step, dict(data)))
