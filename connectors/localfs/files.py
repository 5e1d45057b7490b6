"""File-system helpers of the local folder connector, run in worker threads.

Atomic writes (temp file, fsync, rename), chunked reading and hashing, the identical-file check,
content type and image dimensions, and the mapping of an ``OSError`` to our error types.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mimetypes
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from connectors.base import StagedFile
from connectors.errors import FatalError, ItemError, SyncError
from connectors.media import image_size

CHUNK_SIZE = 64 * 1024
"""Bytes per chunk when streaming a file out."""
TMP_PREFIX = ".assetferry-tmp-"
"""Name prefix of our in-flight temp files; listings skip them, uploads may not use it."""
_IMAGE_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
_DISK_FATAL = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def os_error(exc: OSError, doing: str) -> SyncError:
    """A file-system error as our error type: a full or read-only disk stops the run."""
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_FATAL:
        return FatalError(f"{doing} failed: {reason}; free space or fix the target folder")
    return ItemError(f"{doing} failed: {reason}")


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every platform can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(
    final: Path, fill: Callable[[IO[bytes]], object], *, replace: bool = True,
    sync_dir: bool = True,
) -> Path:
    """Write a temp file next to ``final`` with ``fill(file)``, fsync it, move it into place.

    With ``replace=False`` the temp file is left in place and returned (the caller links or
    renames it); otherwise it replaces ``final`` and ``final`` is returned, and the rename is
    made durable (the folder fsynced) unless ``sync_dir=False``: then the caller must fsync
    ``final.parent`` before it reports the write done (a group of writes shares one folder
    fsync: :meth:`connectors.localfs.manifest.Manifest.put`'s ``durable_dirs``). On any error
    the temp file is removed.
    """
    tmp = final.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    try:
        with tmp.open("xb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        if not replace:
            return tmp
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(final.parent)
    return final


def _read_chunks(path: Path) -> Iterator[bytes]:
    """The bytes of ``path`` in chunks (a seam for tests that interrupt a copy)."""
    with path.open("rb") as src:
        while chunk := src.read(CHUNK_SIZE):
            yield chunk


def copy_staged(staged: StagedFile) -> Callable[[IO[bytes]], None]:
    def fill(out: IO[bytes]) -> None:
        written = 0
        for chunk in _read_chunks(staged.path):
            out.write(chunk)
            written += len(chunk)
        if written != staged.size:
            raise ItemError(
                f"staged file {staged.path.name} holds {written} bytes, expected {staged.size}"
            )

    return fill


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _read_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def same_file(path: Path, staged: StagedFile) -> bool:
    try:
        return (
            path.is_file()
            and path.stat().st_size == staged.size
            and _sha256_of(path) == (staged.sha256 or _sha256_of(staged.path))
        )
    except OSError:
        return False


def dimensions(path: Path | str, content_type: str) -> tuple[int | None, int | None]:
    size = image_size(Path(path)) if content_type in _IMAGE_FORMATS else None
    return size if size is not None else (None, None)


_TYPE_BY_SUFFIXES: dict[str, str] = {}
""":func:`guess_content_type` answers by a name's suffixes (see there), for a listing of
100,000 files that share a handful of them."""
_TYPES_KEPT = 1024


def guess_content_type(name: str) -> str:
    """The content type ``mimetypes`` guesses from a file name (``strict=False``), else
    ``application/octet-stream``.

    The guess reads only the name's suffixes: everything from its first dot that is not
    one of its leading dots (``photo.tar.gz`` -> ``.tar.gz``; ``.bashrc`` has none). So it
    is asked once per suffixes and remembered (at most :data:`_TYPES_KEPT`), except for a
    name with ``:`` or ``/``, which ``mimetypes`` may read as a URL.
    """
    if ":" in name or "/" in name:
        return _guess(name)
    core = name.lstrip(".")
    dot = core.find(".")
    suffixes = core[dot:] if dot > 0 else ""
    known = _TYPE_BY_SUFFIXES.get(suffixes)
    if known is None:
        if len(_TYPE_BY_SUFFIXES) >= _TYPES_KEPT:
            _TYPE_BY_SUFFIXES.clear()
        known = _TYPE_BY_SUFFIXES[suffixes] = _guess(name)
    return known


def _guess(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
