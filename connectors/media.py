"""Facts about a file's bytes that several connectors and emulators need."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
from PIL import Image

T = TypeVar("T")

INLINE_FILE_BYTES = 64 * 1024
"""Blocking work on a file of at most this many bytes (a stat, a read, a header, a write of
a temp copy) runs on the event loop, not in a worker thread (:func:`file_work`)."""


async def file_work(size: int | None, func: Callable[..., T], *args: object) -> T:
    """``func(*args)``, blocking work on a file of ``size`` bytes: called on the event loop
    when ``size`` is known and at most :data:`INLINE_FILE_BYTES`, else in a worker thread.

    Issue 12: a hop to a worker thread costs two wake-ups of the event loop and a hand-over
    of the GIL, and the thread's GIL contention slowed every socket send of the loop (0.46 ->
    0.22 ms a call once small local files were staged without one); for a small file in the
    page cache the work itself costs less than the hop. A large (or unknown) one may take
    long enough to stall every transfer: that goes to a thread."""
    if size is not None and size <= INLINE_FILE_BYTES:
        return func(*args)
    return await anyio.to_thread.run_sync(func, *args)


def image_size(source: Path | bytes) -> tuple[int, int] | None:
    """Width and height from an image's header; ``None`` for anything that isn't one.

    Reads the header only (Pillow opens lazily), so it is cheap for large files; an unreadable
    or hostile header (decompression bomb) means "size unknown", never an error.
    """
    target = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(target) as image:
                width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (int(width), int(height)) if width > 0 and height > 0 else None
