"""Vendor reference material that only CI has: ``../shared`` beside the repository.

A user's clone has no ``../shared``; tests that compare against it skip, saying so, and
everything else needs nothing outside the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(relative: str) -> Path:
    """``../shared/<relative>``; skips the calling test (or fixture's test) when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs the vendor reference material ../shared/{relative}, which is not "
                    "beside this checkout (only CI has ../shared)")
    return path
