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
import re
import secrets
import socket
import stat
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
_TEMP_NAME = re.compile(r"(?:[0-9a-f]{8}-[0-9]{1,10}-)?[0-9a-f]{16}")
"""What follows :data:`TMP_PREFIX` in a name we made: host tag, pid and 16 hex digits
(:func:`temp_name`), or the 16 hex digits alone (versions before names carried a pid)."""
_IMAGE_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
_DISK_FATAL = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}
_WHAT_TO_DO = {
    errno.ENOSPC: "free space on that disk and run again",
    errno.EDQUOT: "free space within your disk quota (or have it raised) and run again",
    errno.EROFS: "the folder is on a read-only file system: mount it writable or choose "
                 "another `path` in the job file",
    errno.EACCES: "fix the folder's permissions for the user running assetferry (or choose "
                  "another `path` in the job file)",
    errno.EPERM: "fix the folder's permissions for the user running assetferry (or choose "
                 "another `path` in the job file)",
}
_PATH_WHAT_TO_DO = {
    errno.ENAMETOOLONG: "its path is longer than the system allows (PATH_MAX, or a name "
                        "over NAME_MAX): shorten or flatten the folders",
    errno.ELOOP: "too many symbolic links in its path (a symlink loop): fix or remove the "
                 "symlinks",
    errno.ENOTDIR: "a folder in its path was replaced by a file while listing: run again",
    errno.EIO: "the disk or network share returned an input/output error: check it (its "
               "kernel log, its mount) and run again",
    errno.ENOMEM: "the system ran out of memory: free some and run again",
    errno.EMFILE: "too many open files: raise the open-file limit (ulimit -n) and run again",
    errno.ENFILE: "too many open files system-wide: close some and run again",
}
"""Advice for errnos that are no permission or disk-space problem (what the path or device
is), used by :func:`what_to_do`: a folder that cannot be listed, a file that cannot be
read."""
_WHAT_TO_DO.update(_PATH_WHAT_TO_DO)
STALE_TEMP_AFTER = 3600.0
"""Seconds since its last write after which a temp file no live writer of ours can own is
removed: one of a run on another host, or of a version whose names carry no pid (a live
upload writes its temp file continuously from a staged local copy, in seconds)."""
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
"""This host in temp-file names (8 hex digits of its name's SHA-256)."""
TEMP_NAME_MAX = len(TMP_PREFIX) + 8 + 1 + 10 + 1 + 16
"""The longest temp-file name: prefix, host tag, ``-``, pid (at most 10 digits), ``-``, 16 hex
digits."""


def what_to_do(exc: OSError) -> str:
    """The advice that matches ``exc.errno``: no space, read-only, permission denied, a path
    over PATH_MAX, a symlink loop, an I/O error... (``check the folder and run again`` for
    any other)."""
    return _WHAT_TO_DO.get(exc.errno or 0, "check the folder and run again")



def os_error(exc: OSError, doing: str) -> SyncError:
    """A file-system error as our error type, with the advice its errno calls for: a full
    disk (ENOSPC, EDQUOT) or a read-only file system (EROFS) stops the run; anything else
    (permission denied on one folder, a vanished file) fails the item."""
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_FATAL:
        return FatalError(f"{doing} failed: {reason}; {what_to_do(exc)}")
    if exc.errno in _WHAT_TO_DO:
        return ItemError(f"{doing} failed: {reason}; {what_to_do(exc)}")
    return ItemError(f"{doing} failed: {reason}")


def temp_name() -> str:
    """A fresh temp-file name: ``TMP_PREFIX`` + host tag + pid + 16 random hex digits, so a
    later run can tell whether its writer still lives (:func:`reclaimable`)."""
    return f"{TMP_PREFIX}{HOST_TAG}-{os.getpid()}-{secrets.token_hex(8)}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is exactly of our temp files' format (:func:`temp_name`, or the older
    one without host and pid): only such a file may be reclaimed or passed over silently. A
    file of a user's that merely starts with :data:`TMP_PREFIX` is not ours: never deleted."""
    return name.startswith(TMP_PREFIX) and _TEMP_NAME.fullmatch(name[len(TMP_PREFIX):]) is not None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's)
        return True
    return True


def reclaimable(path: Path, now: float) -> int | None:
    """The size in bytes of temp file ``path`` when no live writer can own it, else None.

    Ours (this host's tag) with a pid that no longer runs: reclaimable at once (a reused pid
    keeps it, safely). Another host's, or a name without a pid (an older version): only when
    not written for :data:`STALE_TEMP_AFTER` seconds. Never one of this process, never a
    name that is not of our format (:func:`is_temp_name`: a user's file)."""
    if not is_temp_name(path.name):
        return None
    rest = path.name[len(TMP_PREFIX):].split("-")
    try:
        info = path.stat(follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if len(rest) == 3 and rest[0] == HOST_TAG and rest[1].isdigit():
        pid = int(rest[1])
        if pid == os.getpid() or _pid_alive(pid):
            return None
        return info.st_size
    return info.st_size if now - info.st_mtime > STALE_TEMP_AFTER else None


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
    tmp = final.parent / temp_name()
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


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at ``path`` (hex), read in chunks. Raises OSError."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def same_file(path: Path, staged: StagedFile) -> bool:
    try:
        return (
            path.is_file()
            and path.stat().st_size == staged.size
            and sha256_of(path) == (staged.sha256 or sha256_of(staged.path))
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
