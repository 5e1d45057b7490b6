"""Facts about a file's bytes that several connectors and emulators need."""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import anyio.to_thread
from PIL import Image

from connectors.errors import ItemError

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


def special_kind(mode: int) -> str:
    """What a file-system entry of ``mode`` (``st_mode``) that is neither a regular file nor
    a folder is: ``named pipe (FIFO)``, ``socket``, ``device file`` or ``special file``."""
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"


def not_a_file(name: str, mode: int) -> ItemError | None:
    """``None`` when ``mode`` (``st_mode``) is a regular file's, else the error of a source
    file ``name`` that was listed as a file and is now something else: ``is now a folder``,
    or ``is no longer a regular file (a named pipe (FIFO))`` (socket, device file). Its size
    (a folder's 4096, a FIFO's 0) is no file size: never compared with the listed one."""
    if stat.S_ISREG(mode):
        return None
    what = ("is now a folder, not a file" if stat.S_ISDIR(mode)
            else f"is no longer a regular file (a {special_kind(mode)})")
    return ItemError(f"{name} {what}; re-run to pick up the change")


def open_regular(path: Path, name: str) -> tuple[BinaryIO, int]:
    """Blocking: the regular file at ``path`` opened for reading, and its size in bytes.

    Raises :class:`ItemError` (:func:`not_a_file`) when it is no regular file — a folder,
    FIFO, socket or device put in its place since the listing — and ``OSError`` as
    ``os.open`` does. The entry is stat'ed first (a device or FIFO is never opened), and
    opened with ``O_NONBLOCK`` so that one swapped in between is not waited on (opening a
    FIFO for reading blocks until a writer comes); the opened descriptor is checked again
    (``fstat``: what is read is what was checked)."""
    if (error := not_a_file(name, path.stat().st_mode)) is not None:
        raise error
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if (error := not_a_file(name, st.st_mode)) is not None:
            raise error
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


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
