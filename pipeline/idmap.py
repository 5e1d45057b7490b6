"""The id and URL map: which source asset (and folder) became which target one.

Two ways to get it:

- **The live map** (:class:`MapWriter`), a JSON Lines file a run appends to as items
  complete: one line per folder or asset whose ledger row became ``done`` with a target (or
  changed target id / URL), written right after that row is committed to the state DB and
  flushed with one ``write`` to a file opened for appending, so the map of a killed run holds
  exactly the items its ledger holds as done. A kill between the commit and the append loses
  at most that batch's lines; the next run of the job appends them before it does anything
  else (:meth:`MapWriter.open` compares the map with the ledger). The last line of a
  ``(route, kind, source_id)`` wins; a line with ``"target_id": null`` and ``"gone"`` says
  the mapping ended (the target asset was pruned, or passed to a re-uploaded source asset).
  Where: ``[run] map_file``, else beside a SQLite state file (``state/assetferry.db`` ->
  ``state/assetferry.map.jsonl``); with a server state DB and no ``map_file`` there is no
  live map (``export-map`` still gives every format from the ledger).
- **export-map** (:func:`render_map`): the same from the ledger at any time, as ``jsonl``,
  ``csv``, ``json``, Storyblok's asset ``manifest.jsonl`` or Contentstack's import mapper.

URL variants (:func:`url_forms`): content holds an asset's URL in more than one spelling. Each
line gives the exact alternatives of the source URL (``source_url_variants``: the
protocol-relative ``//host/path`` form; for Storyblok also the S3 origin
``https://s3.amazonaws.com/a.storyblok.com/f/...`` that the Management API returns in place
of the CDN URL) and the prefixes an image-service URL with parameters starts with
(``source_url_prefixes``: Storyblok's image service appends ``/m/<size>/filters:...`` to the
asset URL, Contentstack's Image Delivery API adds a query string ``?width=200&...``), with
the same for the target URL. A rewriter replaces an exact variant with ``target_url`` and
keeps or translates what follows a prefix (the target's image service has its own syntax).
Sources: Storyblok Image Service docs (``/m/`` path operations), Contentstack Image Delivery
API docs (query parameters on ``images.contentstack.io/v3/assets/...``), and
/work/shared/reference/cms-api-facts.md sections 1.1 and 2.1 (URL shapes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from state.paths import sqlite_files
from state.records import ItemRecord, maps_target

log = structlog.get_logger(__name__)

MAP_SUFFIX = ".map.jsonl"

STORYBLOK_CONNECTORS = frozenset({"storyblok"})
CONTENTSTACK_CONNECTORS = frozenset({"contentstack", "contentstack_delivery",
                                     "contentstack-delivery"})
STORYBLOK_S3_ORIGIN = "https://s3.amazonaws.com/"
"""Storyblok's asset bucket is ``a.storyblok.com`` on S3: the Management API may give the
``https://s3.amazonaws.com/a.storyblok.com/f/...`` form of ``https://a.storyblok.com/f/...``
(storyblok/monoblok packages/cli/src/commands/stories/ref-mapper.ts normalises it)."""


def default_map_path(state: str, map_file: str = "") -> Path | None:
    """Where the live map goes: ``map_file`` if set, else beside a SQLite state file (its
    name with ``.map.jsonl`` for ``.db``); ``None`` for a server database without
    ``map_file``."""
    if map_file.strip():
        return Path(map_file).expanduser()
    files = sqlite_files(state)
    if not files:
        return None
    db = files[0]
    return db.with_name((db.stem if db.suffix else db.name) + MAP_SUFFIX)


def url_forms(url: str | None, connector: str) -> tuple[list[str], list[str]]:
    """``(variants, prefixes)`` of an asset URL as content may spell it (see the module
    docstring); both empty when there is no URL."""
    if not url:
        return [], []
    parts = urlsplit(url)
    exact: list[str] = []
    if parts.scheme in ("http", "https") and parts.netloc:
        exact.append(url[len(parts.scheme) + 1:])  # //host/path
    if connector in STORYBLOK_CONNECTORS and parts.netloc:
        if parts.netloc.startswith("s3.amazonaws.com") and parts.path.startswith("/a.storyblok"):
            cdn = "https://" + parts.path.lstrip("/")
            exact += [cdn, cdn[len("https:"):]]
        elif parts.netloc.endswith("a.storyblok.com"):
            exact.append(STORYBLOK_S3_ORIGIN + parts.netloc + parts.path)
    bases = [url, *(v for v in exact if not v.startswith(STORYBLOK_S3_ORIGIN))]
    prefixes: list[str] = []
    if connector in STORYBLOK_CONNECTORS:
        prefixes = [b.rstrip("/") + "/m/" for b in bases]
    elif connector in CONTENTSTACK_CONNECTORS and not parts.query:
        prefixes = [b + "?" for b in bases]
    return exact, prefixes


def map_line(rec: ItemRecord, source_connector: str, target_connector: str,
             at: datetime | None = None) -> dict[str, Any]:
    """One line of the JSON Lines map for a ledger row (done with a target, or ``gone``)."""
    when = (at or rec.updated_at or datetime.now(UTC)).astimezone(UTC)
    line: dict[str, Any] = {"route": rec.route, "kind": rec.kind, "source_id": rec.source_id,
                            "target_id": rec.target_id, "path": rec.path,
                            "target_path": rec.target_path}
    if rec.kind == "asset":
        src_exact, src_prefixes = url_forms(rec.source_url, source_connector)
        tgt_exact, tgt_prefixes = url_forms(rec.target_url, target_connector)
        line.update({"source_url": rec.source_url, "target_url": rec.target_url,
                     "source_url_variants": src_exact, "source_url_prefixes": src_prefixes,
                     "target_url_variants": tgt_exact, "target_url_prefixes": tgt_prefixes})
    if not _mapped(rec):
        line["target_id"] = None
        line["gone"] = rec.last_error or "no longer mapped"
    line["at"] = when.isoformat().replace("+00:00", "Z")
    return line


def _mapped(rec: ItemRecord) -> bool:
    return maps_target(rec)


def _key(kind: str, source_id: str) -> tuple[str, str]:
    return kind, source_id


class MapWriter:
    """Appends the live map's lines for one route (see the module docstring).

    Not thread-safe; the checkpoint writer calls :meth:`written` after each committed batch.
    Raises OSError from :meth:`open` when the file cannot be read or written (the run then
    goes on without a live map and says so).
    """

    def __init__(self, path: Path, route: str, source_connector: str,
                 target_connector: str) -> None:
        self.path = path
        self.route = route
        self._source = source_connector
        self._target = target_connector
        self._last: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._fd: int | None = None
        self.lines = 0

    def open(self, ledger: Iterable[ItemRecord]) -> None:
        """Read what the map says for this route, drop a torn last line (a kill mid-write),
        and append what the ledger holds that the map does not: the map then agrees with the
        ledger before the run writes anything."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read_existing()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        missing = [rec for rec in ledger if rec.route == self.route and self._changed(rec)]
        if missing:
            log.info("map.repaired", path=str(self.path), lines=len(missing))
            self.written(missing)

    def _read_existing(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        end = raw.rfind(b"\n") + 1
        if end < len(raw):  # a line cut short by a kill: it never counted
            with self.path.open("r+b") as f:
                f.truncate(end)
        for text in raw[:end].splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("route") == self.route:
                key = _key(str(line.get("kind")), str(line.get("source_id")))
                self._last[key] = (line.get("target_id"), line.get("target_url"))

    def _changed(self, rec: ItemRecord) -> bool:
        key = _key(rec.kind, rec.source_id)
        now = (rec.target_id, rec.target_url if rec.kind == "asset" else None)
        if _mapped(rec):
            return self._last.get(key) != now
        previous = self._last.get(key)
        return previous is not None and previous[0] is not None

    def written(self, records: Sequence[ItemRecord]) -> None:
        """Append one line for each record whose mapping changed (call after the records are
        committed); one ``write`` for the batch. A failing write is logged, never raised: the
        ledger is the truth and the next run repairs the map."""
        if self._fd is None:
            return
        latest: dict[tuple[str, str], ItemRecord] = {}
        for rec in records:
            latest[_key(rec.kind, rec.source_id)] = rec
        out = []
        for key, rec in latest.items():
            if rec.route != self.route or not self._changed(rec):
                continue
            out.append(json.dumps(map_line(rec, self._source, self._target),
                                  ensure_ascii=False) + "\n")
            self._last[key] = ((rec.target_id, rec.target_url if rec.kind == "asset" else None)
                               if _mapped(rec) else (None, None))
        if not out:
            return
        data = "".join(out).encode("utf-8")
        try:
            os.write(self._fd, data)
        except OSError as exc:
            log.warning("map.write_failed", path=str(self.path), error=str(exc))
            return
        self.lines += len(out)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# export-map formats

def mapped_records(records: Iterable[ItemRecord]) -> list[ItemRecord]:
    """Ledger rows that map to a target item, by kind and path."""
    return sorted((r for r in records if _mapped(r)), key=lambda r: (r.kind, r.path, r.source_id))


def map_jsonl(records: Iterable[ItemRecord], source_connector: str,
              target_connector: str) -> str:
    """The live map's line shape, one line per mapped item as the ledger holds it now."""
    return "".join(json.dumps(map_line(r, source_connector, target_connector),
                              ensure_ascii=False) + "\n" for r in mapped_records(records))


class MapFormatError(Exception):
    """A vendor format cannot be made for this job (the message says why and what to do)."""


def storyblok_manifest(records: Iterable[ItemRecord], target_connector: str) -> tuple[str, int]:
    """Storyblok CLI's asset ``manifest.jsonl`` and how many assets were left out.

    One line per asset: ``{"old_id", "new_id", "old_filename", "new_filename", "created_at"}``,
    the shape ``storyblok assets push`` appends and ``storyblok stories push`` reads from
    ``.storyblok/assets/<from space>/manifest.jsonl`` to rewrite asset fields in stories
    (storyblok/monoblok: packages/cli/src/utils/filesystem.ts ``ManifestEntry``,
    packages/cli/src/commands/assets/utils.ts ``loadAssetMap``, which keeps only entries whose
    ``old_id`` and ``new_id`` are JSON numbers and whose ``new_filename`` is set; the story
    field's ``filename`` becomes ``new_filename``, the asset's URL). Filenames are the assets'
    URLs, as Storyblok's ``filename`` field is. Source ids that are not integers (a
    non-Storyblok source) cannot be matched by the CLI and are left out (counted).
    Raises MapFormatError when the target is not Storyblok.
    """
    if target_connector not in STORYBLOK_CONNECTORS:
        raise MapFormatError(
            f"storyblok-manifest maps old Storyblok asset ids to new ones, but this job's "
            f"target is {target_connector}; use --format jsonl, csv or json")
    lines, left_out = [], 0
    for rec in mapped_records(records):
        if rec.kind != "asset":
            continue
        old, new = _integer(rec.source_id), _integer(rec.target_id)
        if old is None or new is None or not rec.target_url:
            left_out += 1
            continue
        when = (rec.updated_at or datetime.now(UTC)).astimezone(UTC)
        lines.append(json.dumps({"old_id": old, "new_id": new,
                                 "old_filename": rec.source_url or "",
                                 "new_filename": rec.target_url,
                                 "created_at": when.isoformat().replace("+00:00", "Z")},
                                ensure_ascii=False) + "\n")
    return "".join(lines), left_out


def _integer(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


CONTENTSTACK_MAPPER = ("uid-mapping.json", "url-mapping.json", "folder-mapping.json")
"""Files under ``<data dir>/mapper/assets/``."""


def contentstack_mapper(records: Iterable[ItemRecord],
                        target_connector: str) -> dict[str, dict[str, str]]:
    """Contentstack import's asset mapper files, by name (see :data:`CONTENTSTACK_MAPPER`).

    ``uid-mapping.json``: ``{old asset uid: new uid}``; ``url-mapping.json``: ``{old asset
    url: new url}``; ``folder-mapping.json``: ``{old folder uid: new uid}``; plain JSON
    objects of strings, as ``csdx cm:stacks:import`` writes and reads them in
    ``<data dir>/mapper/assets/`` (contentstack/cli-plugins:
    packages/contentstack-import/src/import/modules/assets.ts writes them;
    packages/contentstack-import/src/utils/asset-helper.ts ``lookupAssets`` replaces each
    mapped uid and each whole asset URL it finds in an entry, so a URL with image parameters
    appended is not matched: the JSONL map's prefixes cover those).
    Raises MapFormatError when the target is not Contentstack.
    """
    if target_connector not in CONTENTSTACK_CONNECTORS:
        raise MapFormatError(
            f"contentstack-mapper maps asset uids to new Contentstack uids, but this job's "
            f"target is {target_connector}; use --format jsonl, csv or json")
    uids: dict[str, str] = {}
    urls: dict[str, str] = {}
    folders: dict[str, str] = {}
    for rec in mapped_records(records):
        assert rec.target_id is not None  # noqa: S101 - mapped_records keeps mapped rows
        if rec.kind == "folder":
            folders[rec.source_id] = rec.target_id
            continue
        uids[rec.source_id] = rec.target_id
        if rec.source_url and rec.target_url:
            urls[rec.source_url] = rec.target_url
    return {"uid-mapping.json": uids, "url-mapping.json": urls,
            "folder-mapping.json": folders}


def write_contentstack_mapper(files: Mapping[str, Mapping[str, str]], data_dir: Path) -> Path:
    """Write the mapper files into ``data_dir/mapper/assets/``; returns that folder.
    Raises OSError."""
    folder = data_dir / "mapper" / "assets"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    return folder
