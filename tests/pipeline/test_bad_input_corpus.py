"""The bad-input corpus (issue 12): hostile or broken API answers from every source CMS.

Each case rewrites one kind of answer of a seeded source emulator (a listing page, one asset
record in it, a folder record) as a broken or hostile API might send it, runs
``assetferry migrate`` into a local folder through the real command line, and checks:

- the result is the one the table names: exit 0 (the input was made safe), 1 (the items it
  touched failed, the others went on) or 2 (the run stopped before writing, saying why), with
  the words the message must contain, and never a traceback;
- nothing was written outside the target folder (hostile names stay inside it);
- nothing lost, nothing doubled: once the source answers properly again, a second run exits 0
  and the target holds every source file exactly once, with its bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.emulation import ASGIApp
from connectors.plugin import DemoFile, EmulatedCMS, EmulatorSettings
from pipeline import cli
from pipeline.registry import plugin_for
from tests.pipeline.helpers import route_in_process

Page = Any
"""A decoded JSON answer."""
Rewrite = Callable[[Page, "Spec"], "Page | bytes"]


@dataclass(frozen=True)
class Spec:
    """Where one source CMS's listing keeps its asset records, and their field names."""

    listing: str
    """Regex on the path of the asset listing request."""
    records: str
    """Key of the list of records in a listing page."""
    id: str = "id"
    name: str = ""
    size: str = ""
    folders: str = ""
    """Regex on the path of the folder listing request ("" = folders come in the asset list)."""
    folder_records: str = ""
    parent: str = ""
    """Key of a folder record's parent id."""


SPECS: dict[str, Spec] = {
    "contentstack": Spec(r"^/v3/assets$", "assets", "uid", "filename", "file_size",
                         folders=r"^/v3/assets$", folder_records="assets", parent="parent_uid"),
    "contentstack-delivery": Spec(r"^/v3/assets$", "assets", "uid", "filename", "file_size"),
    "storyblok": Spec(r"/assets/$", "assets", "id", "short_filename", "content_length",
                      folders=r"/asset_folders/$", folder_records="asset_folders",
                      parent="parent_id"),
    "webflow": Spec(r"/assets$", "assets", "id", "originalFileName", "size",
                    folders=r"/asset_folders$", folder_records="assetFolders",
                    parent="parentFolder"),
    "contento": Spec(r"^/api/v1/assets$", "data"),
}


def _files() -> list[DemoFile]:
    def f(folder: tuple[str, ...], name: str, data: bytes) -> DemoFile:
        return DemoFile(folder=folder, name=name, data=data, content_type="text/plain",
                        title=name)
    return [f(("docs",), "one.txt", b"first file\n" * 30),
            f(("docs", "deep"), "two.txt", b"second file\n" * 40),
            f((), "three.txt", b"third file\n" * 50)]


def _files_of(records: list[Any]) -> list[dict[str, Any]]:
    return [r for r in records if isinstance(r, dict) and not r.get("is_dir")]


# -- the rewrites ---------------------------------------------------------------------------


def html(page: Page, spec: Spec) -> bytes:
    return b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


def cut_json(page: Page, spec: Spec) -> bytes:
    return json.dumps(page).encode()[:40]


def json_null(page: Page, spec: Spec) -> Page:
    return None


def records_not_a_list(page: Page, spec: Spec) -> Page:
    return {**page, spec.records: {"0": "not a list"}}


def first_record(change: Callable[[dict[str, Any], Spec], None]) -> Rewrite:
    def rewrite(page: Page, spec: Spec) -> Page:
        files = _files_of(page.get(spec.records) or [])
        if files:
            change(files[0], spec)
        return page
    rewrite.__name__ = change.__name__
    return rewrite


@first_record
def no_id(rec: dict[str, Any], spec: Spec) -> None:
    rec.pop(spec.id, None)


@first_record
def id_is_a_list(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.id] = [rec.get(spec.id)]


@first_record
def size_is_text(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.size] = "lots"


@first_record
def size_is_negative(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.size] = -5


@first_record
def size_is_minus_one(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.size] = -1  # some APIs' "unknown"; no file is -1 bytes


@first_record
def size_is_fractional(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.size] = 12.5


@first_record
def size_says_2gb(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.size] = 2 * 1024**3 + 1  # the download then stops far earlier than announced


@first_record
def size_says_less(rec: dict[str, Any], spec: Spec) -> None:
    rec[spec.size] = 7  # the download is longer than announced


def _rename(value: str) -> Callable[[dict[str, Any], Spec], None]:
    def change(rec: dict[str, Any], spec: Spec) -> None:
        rec[spec.name] = value
    return change


name_traversal = first_record(_rename("../../../../escaped.txt"))
name_traversal.__name__ = "name_traversal"
name_absolute = first_record(_rename("/etc/assetferry-escaped.txt"))
name_absolute.__name__ = "name_absolute"
name_nul = first_record(_rename("bad\x00name.txt"))
name_nul.__name__ = "name_nul"
name_5000 = first_record(_rename("n" * 5000 + ".txt"))
name_5000.__name__ = "name_5000"
name_empty = first_record(_rename(""))
name_empty.__name__ = "name_empty"
name_dots = first_record(_rename(".."))
name_dots.__name__ = "name_dots"
name_is_number = first_record(_rename(12345))  # type: ignore[arg-type]
name_is_number.__name__ = "name_is_number"


def duplicate_id(page: Page, spec: Spec) -> Page:
    files = _files_of(page.get(spec.records) or [])
    if len(files) >= 2:
        files[1][spec.id] = files[0][spec.id]
    return page


def own_parent(page: Page, spec: Spec) -> Page:
    for rec in page.get(spec.folder_records) or []:
        if isinstance(rec, dict) and rec.get("is_dir", True) and spec.parent in rec:
            rec[spec.parent] = rec[spec.id]
            break
    return page


PAGE_CASES: list[Rewrite] = [html, cut_json, json_null, records_not_a_list]
RECORD_CASES: list[Rewrite] = [
    no_id, id_is_a_list, size_is_text, size_is_negative, size_is_minus_one, size_is_fractional,
    size_says_2gb, size_says_less,
    name_traversal, name_absolute, name_nul, name_5000, name_empty, name_dots, name_is_number,
    duplicate_id,
]


def _cases() -> Iterator[Any]:
    for cms, spec in SPECS.items():
        for rewrite in PAGE_CASES:
            yield pytest.param(cms, rewrite, "listing", id=f"{cms}-{rewrite.__name__}")
        if spec.name:
            for rewrite in RECORD_CASES:
                yield pytest.param(cms, rewrite, "listing", id=f"{cms}-{rewrite.__name__}")
        if spec.parent:
            yield pytest.param(cms, own_parent, "folders", id=f"{cms}-own_parent")


CASES = list(_cases())

_CONTENTSTACK = ("contentstack", "contentstack-delivery")
_SAFE = (0, r"3 created")
"""The hostile value was made safe (a name cleaned and kept inside the target folder)."""
_STOPPED_SHAPE = (2, r"unexpected shape")


def expected(cms: str, rewrite: Rewrite) -> tuple[int, str]:
    """(exit code, regex the output must contain) for ``rewrite`` served by ``cms``.

    Exit 2: the listing can't be trusted, the run stops before writing anything. Exit 1: the
    item it touched failed (the download disagrees with the announced size), others landed.
    """
    table: dict[str, tuple[int, str]] = {
        "html": (2, r"body that is not JSON"),
        "cut_json": (2, r"body that is not JSON"),
        "json_null": _STOPPED_SHAPE,
        "records_not_a_list": _STOPPED_SHAPE,
        "no_id": _STOPPED_SHAPE,
        "id_is_a_list": _STOPPED_SHAPE,
        "name_is_number": _STOPPED_SHAPE,
        "size_is_text": (2, r"not a number of bytes|unexpected shape"),
        "size_is_negative": (1, r"NOT MIGRATED (docs/)?one\.txt: the source lists this file "
                                r"as -5 bytes, which no file can be \(a broken record"),
        "size_is_minus_one": (1, r"NOT MIGRATED (docs/)?one\.txt: the source lists this "
                                 r"file as -1 bytes"),
        "size_is_fractional": (2, r"not a number of bytes|unexpected shape"),
        "size_says_2gb": (1, r"2 created.* 1 failed"),
        "size_says_less": (1, r"2 created.* 1 failed"),
        "name_empty": (2, r"has no filename") if cms in _CONTENTSTACK else _SAFE,
        "duplicate_id": (2, r"listed twice while paging"),
        "own_parent": (2, r"its own ancestor|form a cycle"),
    }
    return table.get(rewrite.__name__, _SAFE)


# -- the harness ----------------------------------------------------------------------------


class Rewriting:
    """ASGI wrapper: answers of matching GETs pass through ``rewrite`` while ``on``."""

    def __init__(self, app: ASGIApp, path: str, rewrite: Rewrite, spec: Spec) -> None:
        self.app, self.path, self.rewrite, self.spec = app, re.compile(path), rewrite, spec
        self.on = True
        self.hits = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (self.on and scope["type"] == "http" and scope["method"] == "GET"
                and self.path.search(scope["path"])):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start.get("status") == 200:
            self.hits += 1
            new = self.rewrite(json.loads(body), self.spec)
            body[:] = new if isinstance(new, bytes) else json.dumps(new).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": bytes(body)})


@dataclass
class Outcome:
    code: int
    text: str


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _digests(root: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


@pytest.fixture
def source_cms() -> Iterator[Callable[[str], EmulatedCMS]]:
    made: list[EmulatedCMS] = []

    def make(name: str) -> EmulatedCMS:
        factory = plugin_for(name).emulator
        assert factory is not None
        cms = factory(EmulatorSettings(unlimited=True))
        cms.seed(_files())
        made.append(cms)
        return cms

    yield make
    for cms in made:
        cms.close()


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    code = cli.main(args)
    out = capsys.readouterr()
    return Outcome(code, out.out + out.err)


@pytest.mark.parametrize(("cms_name", "rewrite", "where"), CASES)
def test_bad_input(tmp_path: Path, cms_name: str, rewrite: Rewrite, where: str,
                   source_cms: Callable[[str], EmulatedCMS], monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = SPECS[cms_name]
    cms = source_cms(cms_name)
    wrapped = Rewriting(cms.app, spec.folders if where == "folders" else spec.listing,
                        rewrite, spec)
    route_in_process(monkeypatch, {"source": wrapped})
    for key, value in cms.env.items():
        monkeypatch.setenv(key, value)
    sandbox = tmp_path / "sandbox"
    out = sandbox / "out"
    sandbox.mkdir()
    job = sandbox / "job.toml"
    job.write_text(f"[source]\n{cms.job_section('http://source.emulator')}\n"
                   f'[target]\nconnector = "local"\npath = "{out}"\n\n'
                   f'[run]\nstate = "{sandbox / "state.db"}"\n', encoding="utf-8")
    before = _tree(tmp_path) - _tree(sandbox)

    first = run_cli(["migrate", "-c", str(job)], capsys)
    assert wrapped.hits > 0, "the hostile answer was served"
    assert "Traceback" not in first.text, first.text[-3000:]
    assert first.code in (0, 1, 2), first.text[-3000:]
    if first.code != 0:
        assert first.text.strip(), "a failure says why"
    outside = (_tree(tmp_path) - _tree(sandbox)) - before - {sandbox}
    assert not outside, f"written outside the target: {outside}"
    assert not (Path("/etc") / "assetferry-escaped.txt").exists()
    code, words = expected(cms_name, rewrite)
    assert (first.code, bool(re.search(words, first.text))) == (code, True), first.text[-3000:]

    wrapped.on = False
    second = run_cli(["migrate", "-c", str(job)], capsys)
    assert second.code == 0, second.text[-3000:]
    want = sorted(hashlib.sha256(f.data).hexdigest() for f in _files())
    assert _digests(out) == want, "every file exactly once, with its bytes"

