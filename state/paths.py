"""Whether a file assetferry will write can be written there: one check, shared by the state
database (``[run] state``), the live id map (``[run] map_file``) and the output options
(``--out``, ``--report``); the files of a SQLite state database (`sqlite_files`) and the
check that one could be made (`check_location`). Standard library only (SQLAlchemy's URL
parser only for a state given as a URL), so a command's option check, and ``plan`` reading a
SQLite ledger, import no database machinery."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def names_a_folder(text: str) -> str | None:
    """Why the path as written (``"nodir/"``, ``"out/."``) names a folder where a file goes, or
    None: it ends in a path separator (``/``, and ``\\`` on Windows) or its last part is ``.``
    or ``..``. Checked on the text, before `pathlib.Path` drops a trailing ``/`` (``Path("nodir/")``
    is ``nodir``: the file ``nodir`` would be created). The reason reads after the path."""
    seps = "/" + os.sep + (os.altsep or "")
    if text and text[-1] in seps:
        return f"ends in {text[-1]!r}, so it names a folder, not a file"
    last = text
    for sep in seps:
        last = last.rsplit(sep, 1)[-1]
    if last in (".", ".."):
        return f"ends in {last!r}, so it names a folder, not a file"
    return None


def unwritable(path: Path) -> str | None:
    """Why the file ``path`` (it need not exist yet, nor its folders) could not be written, or
    None.

    Its nearest existing folder must be a folder (not a file) and let us make a folder in it:
    a probe folder (``.assetferry-probe-*``) is made and removed at once, so nothing is left
    behind, and ``/proc/nope/x`` or a read-only mount fails here even as root (whom every
    permission-bit test lets through). The reason reads after the path: ``"its folder /a/b
    cannot be created or written (Permission denied)"``, ``"/a is a file, not a folder"``.
    """
    folder = path.absolute().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:  # pragma: no cover - the root always exists
        return f"no folder of {folder} exists"
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        Path(tempfile.mkdtemp(prefix=".assetferry-probe-", dir=existing)).rmdir()
    except OSError as exc:
        return f"its folder {folder} cannot be created or written ({exc.strerror or exc})"
    return None


def not_a_folder(path: Path) -> None:
    """Raise `state.records.StateError` when the SQLite state file ``path`` is a directory."""
    from state.records import StateError

    if path.is_dir():
        raise StateError(
            f"state database {path} is a directory, not a state file: name a file, e.g. "
            f"[run] state = \"{path / 'assetferry.db'}\"."
        )


STATE_FIX = "Set [run] state in the job file to a file path or a SQLAlchemy URL."
"""What every error about ``[run] state`` ends with."""


SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database file (write-ahead log, shared memory, rollback
journal); they belong to the database."""


def sqlite_files(url: str) -> list[Path]:
    """The files on disk of the state database ``url``: the SQLite file (resolved) and its
    sidecars (:data:`SQLITE_SIDECARS`), whether they exist yet or not; empty for a server
    database, ``:memory:`` or a URL that does not parse. Creates nothing."""
    if "://" in url:  # a URL: SQLAlchemy's parser (the URL's store imports it anyway)
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError:
            return []
        db = parsed.database
        if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" \
                or db.startswith("file:"):
            return []
        path = Path(db).expanduser().resolve()
    else:
        path = Path(url).expanduser().resolve()
    return [path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDECARS)]


def fresh_sqlite_files(url: str) -> list[Path]:
    """The files of the SQLite state database ``url`` (:func:`sqlite_files`) when it does not
    exist yet, then the folders above it that do not exist yet either (deepest first), else
    none: what a run about to create them may remove again if it stops before it has a plan
    (a refused token, a failed listing must leave no empty state DB, nor the empty ``state/``
    folder made for it). Call it before the store is opened: a folder that exists then is
    never in the list."""
    files = sqlite_files(url)
    if not files or files[0].exists():
        return []
    missing = [folder for folder in files[0].parents if not folder.exists()]
    return [*files, *missing]


def discard_fresh(files: list[Path]) -> None:
    """Remove the files of a state database made by :func:`fresh_sqlite_files`'s run and
    left holding nothing (``StateStore.holds_nothing``; the store closed first), then the
    folders that run made for it, deepest first, each only while it is empty (something
    else put there meanwhile stays, and so does its folder)."""
    for path in files:
        if path.is_dir():
            try:
                path.rmdir()
            except OSError:  # not empty (or not ours to remove): leave it and those above
                return
        else:
            path.unlink(missing_ok=True)


def check_location(url: str) -> None:
    """For a SQLite path that does not exist yet: raise StateError if it never could.

    What ``plan`` calls, so a bad ``[run] state`` shows before a run (exit 2, as migrate
    would): the path must not be a directory or under a file, and its nearest existing
    folder must let us make a folder in it (a probe folder is made and removed at once, so
    nothing is left: ``/proc/nope/x.db`` fails here even as root).
    """
    from state.records import StateError

    if not url.strip():
        raise StateError(f"state database path is empty ([run] state = {url!r}). {STATE_FIX}")
    if "://" in url:
        return
    path = Path(url).expanduser().resolve()
    not_a_folder(path)
    problem = unwritable(path)
    if problem is not None:
        fails = "" if problem.endswith("not a folder") else ", so migrate would fail there"
        raise StateError(f"state database {path}: {problem}{fails}. {STATE_FIX}")


def folder_read_only(path: Path) -> bool:
    """Whether the folder of the SQLite file ``path`` cannot be written: a read-only mount
    (``access(2)`` answers EROFS even to root) or no write permission. Writes nothing."""
    return not os.access(path.parent, os.W_OK | os.X_OK)


def sqlite_read_uri(path: Path) -> str:
    """The SQLite URI that reads the existing state file ``path`` without writing anything
    (``file:...?mode=ro``), also where its folder is read-only.

    A WAL database (the store sets WAL) needs its ``-shm`` file; SQLite creates it beside
    the database, so on a read-only folder with no ``-shm`` a ``mode=ro`` open fails with
    "unable to open database file". There ``immutable=1`` is added: SQLite then needs no
    ``-shm`` and takes no lock (nothing can write a read-only folder). SQLite docs, "Write-
    Ahead Logging", "Read-Only Databases" (the three conditions), and "URI filenames",
    ``immutable``. An immutable open does not read the ``-wal`` file, so when one holding
    writes is there (a run was stopped and the folder made read-only before SQLite merged
    it) this raises `state.records.StateError` saying to make the folder writable once,
    rather than read an older ledger.
    """
    from urllib.parse import quote

    from state.records import StateError

    uri = f"file:{quote(str(path))}?mode=ro"
    if not folder_read_only(path) or path.with_name(path.name + "-shm").exists():
        return uri
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StateError(
            f"state database {path}: its folder {path.parent} is read-only and {wal.name} "
            "holds ledger writes SQLite has not merged into the file yet (a run stopped "
            "there), which cannot be read without the folder being writable. Make the folder "
            "writable once (remount it read-write or fix its permissions) and run the same "
            "command again; the ledger itself is intact: keep it.")
    return uri + "&immutable=1"


def read_only_state(path: Path, reason: str) -> str | None:
    """Why the existing SQLite state file ``path`` cannot be written, for a command that
    writes the ledger (``migrate``, ``sync``), or None when the file or its folder is
    writable (another fault, e.g. a damaged file). ``reason``: SQLite's words, shown."""
    if not path.exists():
        return None
    folder = path.parent
    if folder_read_only(path):
        what = f"its folder {folder} is read-only"
    elif not os.access(path, os.W_OK):
        what = "the file is read-only"
    else:
        return None
    return (f"state database {path} cannot be written ({reason}): {what}. The ledger is "
            "intact (status, plan and export-map read it as it is), but migrate and sync "
            "record every asset in it as they go: make the folder writable (remount it "
            "read-write, or fix its permissions), or copy the state file to a writable "
            "place and point [run] state at it.")
