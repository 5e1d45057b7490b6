"""A replace (update, delete) of a target asset we already mapped keeps that mapping while its
intent is open: a run killed or stopped mid-replace, or a replace that failed, leaves the row
``in_flight`` / ``failed`` with its target id, and every reader of the mapping (the live map,
``export-map``, ``verify``) still names it (:func:`state.records.maps_target`).

The tester's case: a local -> local job migrated, every file appended to, the next ``migrate``
SIGKILLed part way: ``export-map`` listed only the rows done, and ``verify`` called the others
"MISSING: its upload was interrupted" though their target files were there."""

from __future__ import annotations

import csv
import io
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import FatalError
from connectors.localfs.connector import LocalFolderConnector
from pipeline import cli
from state.records import ItemRecord, ItemStatus, maps_target
from state.store import StateStore
from tests.pipeline.helpers import run_migrate

NAMES = [f"d{i % 2}/f{i}.bin" for i in range(6)]


def job(tmp_path: Path) -> Path:
    for name in NAMES:
        path = tmp_path / "lib" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 50)
    path = tmp_path / "job.toml"
    path.write_text('[source]\nconnector = "local"\npath = "./lib"\n'
                    '[target]\nconnector = "local"\npath = "./out"\n'
                    '[run]\nstate = "state/a.db"\nconcurrency = 2\n', encoding="utf-8")
    return path


def change_every_file(tmp_path: Path) -> None:
    for name in NAMES:
        with (tmp_path / "lib" / name).open("ab") as f:
            f.write(b"z\n")


def rows(tmp_path: Path) -> dict[str, ItemRecord]:
    with StateStore(str(tmp_path / "state" / "a.db")) as store:
        (route,) = store.routes()
        return {sid: r for (kind, sid), r in store.items(route).items() if kind == "asset"}


def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert cli.main(["export-map", "-c", str(tmp_path / "job.toml"), "--format", "csv"]) == 0
    return {r["source_id"]: r["target_id"]
            for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["kind"] == "asset"}


def verified(tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "verify.json"
    cli.main(["verify", "-c", str(tmp_path / "job.toml"), "--format", "json", "--out", str(out)])
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def test_maps_target_keeps_an_open_or_failed_write_to_a_mapped_asset() -> None:
    done = ItemRecord("r", "asset", "a", ItemStatus.DONE, "a", target_id="T", target_url="u")
    assert maps_target(done)
    for status in (ItemStatus.IN_FLIGHT, ItemStatus.FAILED):
        for intent in ("replace", "update", "delete", None):
            rec = ItemRecord("r", "asset", "a", status, "a", target_id="T", intent=intent)
            assert maps_target(rec), (status, intent)
        # a create has no target asset yet (a target id here is a copy already missing)
        assert not maps_target(ItemRecord("r", "asset", "a", status, "a", target_id="T",
                                          intent="create"))
    assert not maps_target(ItemRecord("r", "asset", "a", ItemStatus.IN_FLIGHT, "a",
                                      intent="replace"))
    assert not maps_target(ItemRecord("r", "asset", "a", ItemStatus.PENDING, "a",
                                      target_id="T"))


@pytest.mark.slow
def test_a_replace_run_killed_part_way_keeps_every_mapping(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = job(tmp_path)
    assert cli.main(["migrate", "-c", str(path)]) == 0
    before = exported(tmp_path, capsys)
    assert sorted(before) == sorted(NAMES)
    change_every_file(tmp_path)
    killed = run_migrate(path, {}, "upload.before:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    open_rows = [r for r in rows(tmp_path).values() if r.status is ItemStatus.IN_FLIGHT]
    assert open_rows, "the kill was meant to leave replace intents open"
    assert all(r.intent == "replace" and r.target_id for r in open_rows)

    assert exported(tmp_path, capsys) == before, "a replace keeps the target id"
    live: dict[str, str | None] = {}
    for text in (tmp_path / "state" / "a.map.jsonl").read_text(encoding="utf-8").splitlines():
        line = json.loads(text)
        if line["kind"] == "asset":
            live[line["source_id"]] = line["target_id"]
    assert live == before, "the live map ended no mapping for an open replace"
    report = verified(tmp_path)
    assert [i for i in report["items"] if i["status"] == "missing"] == []
    assert report["summary"]["ok"] + report["summary"]["different"] == len(NAMES)

    assert cli.main(["migrate", "-c", str(path)]) == 0
    assert exported(tmp_path, capsys) == before
    assert verified(tmp_path)["summary"]["ok"] == len(NAMES)


@pytest.mark.parametrize("error", [FatalError("the target folder is on a read-only file "
                                              "system: mount it writable"),
                                   OSError("write failed")], ids=["stopped", "failed"])
def test_a_stopped_or_failed_replace_keeps_its_mapping(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        error: Exception) -> None:
    path = job(tmp_path)
    assert cli.main(["migrate", "-c", str(path)]) == 0
    before = exported(tmp_path, capsys)
    assert sorted(before) == sorted(NAMES)
    change_every_file(tmp_path)

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(LocalFolderConnector, "replace", refuse)
    assert cli.main(["migrate", "-c", str(path)]) in (1, 2)
    monkeypatch.undo()
    written = [r for r in rows(tmp_path).values()
               if r.status in (ItemStatus.IN_FLIGHT, ItemStatus.FAILED)]
    assert written
    assert all(r.intent == "replace" for r in written)

    assert exported(tmp_path, capsys) == before
    report = verified(tmp_path)
    assert {i["status"] for i in report["items"]} == {"different"}, report["items"]
    assert report["summary"]["different"] == len(NAMES), "every source file changed"

    # the next run replaces them (a failed replace's target asset is ours: never a conflict)
    capsys.readouterr()
    assert cli.main(["migrate", "-c", str(path)]) == 0, capsys.readouterr()
    assert exported(tmp_path, capsys) == before
    assert verified(tmp_path)["summary"]["ok"] == len(NAMES)
