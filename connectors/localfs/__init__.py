"""A folder on the local disk as a source and as a target.

Directories are folders and files are assets. Ids are POSIX paths relative to the root
(``"a/b"`` for a folder, ``"a/b/photo.jpg"`` for an asset). Metadata that a file system cannot
hold (title, alt text, tags, locales...) lives in a JSON manifest at the root::

    {"version": 1,
     "assets": {"a/b/photo.jpg": {"title": "...", "description": "...", "alt_text": "...",
                                  "tags": ["..."], "copyright": "...", "focus": "0.5,0.5",
                                  "locales": {"de": {"title": "...", "alt_text": "..."}},
                                  "source_id": "<id in the source we copied it from>",
                                  "extra": {"any": "string"}}}}

A target appends each metadata change to a journal beside the manifest (its name +
``.journal``, one JSON change a line, fsynced) and rewrites the manifest whole only now and
then and when the run ends; readers replay the journal, so a killed run loses nothing.
Several runs writing one folder at once hold an advisory lock (``flock`` on the manifest's
name + ``.lock``) around each append and rewrite, and a rewrite merges what is on disk, so
none loses another's entries.

Every write is atomic: bytes go to a hidden temp file (``.assetferry-tmp-<random>``) in the
destination folder, are fsynced, then renamed into place; a crash leaves at most a temp file,
which listings skip. Listing never follows a symlink out of the root.

Layout: ``connector`` (``LocalConfig``, ``LocalFolderConnector``), ``manifest`` (the metadata
manifest file), ``files`` (atomic writes, hashing, content type and other file helpers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.localfs.config import LocalConfig
from connectors.plugin import ConnectorPlugin, Role, lazy_exports

if TYPE_CHECKING:
    import httpx

    from connectors.base import Source
    from connectors.localfs.connector import LocalFolderConnector
    from connectors.localfs.files import CHUNK_SIZE, TMP_PREFIX


def _open(config: Any, *, role: Role,
          transport: httpx.AsyncBaseTransport | None) -> Source:
    from connectors.localfs.connector import LocalFolderConnector  # imported when opened

    return LocalFolderConnector(config, role=role)


PLUGIN = ConnectorPlugin(name="local", title="local folder", config=LocalConfig, open=_open,
                         writable=True, path_keys=("path",))

# the connector class on first use: a job file's config model loads no connector code
__getattr__ = lazy_exports(__name__, {
    "LocalFolderConnector": "connectors.localfs.connector",
    "CHUNK_SIZE": "connectors.localfs.files",
    "TMP_PREFIX": "connectors.localfs.files",
})

__all__ = ["CHUNK_SIZE", "PLUGIN", "TMP_PREFIX", "LocalConfig", "LocalFolderConnector"]
