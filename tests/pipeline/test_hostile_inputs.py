"""Every input a user can type gets a message and an exit code, never a traceback.

One table: each row builds a folder (job file, state, library), runs one command line, and
names the exit code and the words the message must contain. Exit 2 means a bad input; the
message names it and says what to do.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.samples import sample_library
from tests.pipeline.helpers import library


def job_text(tmp: Path, *, state: str | None = None, extra: str = "",
             target: str | None = None) -> str:
    root, _ = library(tmp, list(sample_library())[:3])
    target = target or f'[target]\nconnector = "local"\npath = "{tmp / "out"}"\n'
    run = f'[run]\nstate = "{state}"\n' if state is not None else ""
    return (f'{extra}[source]\nconnector = "local"\npath = "{root}"\n\n{target}\n{run}')


def write_job(tmp: Path, **kw: str) -> str:
    (tmp / "job.toml").write_text(job_text(tmp, **kw), encoding="utf-8")
    return str(tmp / "job.toml")


def state_under_a_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("not a folder")
    return ["plan", "-c", write_job(tmp, state="afile/x.db")]


def truncated_state(tmp: Path) -> list[str]:
    job = write_job(tmp, state="state.db")
    assert main(["migrate", "-c", job]) == 0
    db = tmp / "state.db"
    with sqlite3.connect(db) as conn:  # grow it past 8 KiB, like a real ledger
        conn.execute("CREATE TABLE padding (x BLOB)")
        conn.execute("INSERT INTO padding VALUES (zeroblob(65536))")
    conn.close()
    assert db.stat().st_size > 8192
    with db.open("r+b") as f:
        f.truncate(8192)
    return ["status", "-c", job]


def report_under_a_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("not a folder")
    return ["migrate", "-c", write_job(tmp, state="state.db"), "--report",
            str(tmp / "afile" / "report.json")]


def out_under_a_file(command: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / "afile").write_text("not a folder")
        return [command, "-c", write_job(tmp, state="state.db"), "--out",
                str(tmp / "afile" / "x.txt")]
    return setup


def busy_port(tmp: Path) -> list[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    BUSY.append(sock)
    return ["emulate", "contentstack", "--port", str(sock.getsockname()[1])]


BUSY: list[socket.socket] = []


def demo_into_a_users_folder(tmp: Path) -> list[str]:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "job.toml").write_text("# my own job file\n")
    return ["demo", "--dir", str(tmp / "mine")]


def users_file_kept(tmp: Path) -> None:
    assert (tmp / "mine" / "job.toml").read_text() == "# my own job file\n"
    assert sorted(p.name for p in (tmp / "mine").iterdir()) == ["job.toml"]


def bad_manifest(tmp: Path) -> list[str]:
    job = write_job(tmp, state="state.db")
    manifest = tmp / "library" / ".assetferry.json"
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    first, second = sorted(doc["assets"])[:2]
    doc["assets"][first]["tags"] = "notalist"
    doc["assets"][second]["focus"] = "7,9"
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    return ["migrate", "-c", job]


def missing_state(command: str) -> Callable[[Path], list[str]]:
    return lambda t: [command, "-c", write_job(t, state="typo/state.db")]


NO_RESUME = ("run the same command again to resume", "state:  ")
PROC = "/proc/assetferry-nope/x.db"


def manifest_with(title_json: str, key: str = "title") -> Callable[[Path], list[str]]:
    """A source manifest whose first asset's ``key`` is the raw JSON ``title_json``."""
    def setup(tmp: Path) -> list[str]:
        job = write_job(tmp)
        manifest = tmp / "library" / ".assetferry.json"
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        name = sorted(doc["assets"])[0]
        doc["assets"][name][key] = "@@TITLE@@"
        manifest.write_text(json.dumps(doc).replace('"@@TITLE@@"', title_json),
                            encoding="utf-8")
        return ["plan", "-c", job]
    return setup


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], list[str]]
    code: int
    message: str  # a regex the output must match
    after: Callable[[Path], None] | None = None
    absent: tuple[str, ...] = ()  # words the output must not have (a hint that is not true)


def _no_file(path: Path) -> None:
    assert not path.exists(), f"{path} made from a path that names a folder"


def _folder_named_as_a_file(command: str, option: str) -> Case:
    """``command OPTION DIR/``: an output path ending in ``/`` names a folder, not the file
    the option writes: refused (exit 2) saying so, and nothing made at that path."""
    return Case(f"{command} {option} ending in /",
                lambda t: [command, "-c", write_job(t, state="s.db"), option,
                           str(t / "newdir") + "/"],
                2, rf"{option}.*newdir/' ends in '/', so it names a folder, not a file; "
                   r"name a file in it \(a path such as folder/name\.ext\)",
                after=lambda t: _no_file(t / "newdir"))


def nothing_written(tmp: Path) -> None:
    assert not (tmp / "out").exists(), "nothing may be migrated when the input is refused"


def run_work_kept(tmp: Path) -> None:
    assert len(list((tmp / "out").rglob("*.png"))) + len(list((tmp / "out").rglob("*.jpg"))) \
        == 3, "the run's work is kept"
    assert main(["status", "-c", str(tmp / "job.toml")]) == 0


CASES = [
    Case("state path under a file", state_under_a_file, 2, r"afile is a file, not a folder"),
    Case("unknown state URL scheme", lambda t: ["plan", "-c", write_job(t, state="bogus://x")],
         2, r"no database called 'bogus'"),
    Case("postgresql URL without its driver",  # psycopg (3) is a dev dependency: ask for 2
         lambda t: ["plan", "-c", write_job(
             t, state="postgresql+psycopg2://me:pw-9q@127.0.0.1/db")],
         2, r"driver 'psycopg2'.*pip install psycopg2-binary", absent=("pw-9q",)),
    Case("postgresql URL where no server listens",
         lambda t: ["plan", "-c", write_job(t, state="postgresql://me:pw-9q@127.0.0.1:9/db")],
         2, r"me:\*\*\*@127\.0\.0\.1:9/db: the server cannot be reached", absent=("pw-9q",)),
    Case("state path is a directory", lambda t: ["migrate", "-c", write_job(t, state="/tmp")],
         2, r"state database /tmp is a directory, not a state file: name a file",
         after=nothing_written),
    Case("state path is a directory (plan)", lambda t: ["plan", "-c", write_job(t, state="/tmp")],
         2, r"state database /tmp is a directory"),
    Case("state path is empty", lambda t: ["migrate", "-c", write_job(t, state="")],
         2, r"state database path is empty \(\[run\] state = ''\)", after=nothing_written),
    Case("mysql URL without its driver",
         lambda t: ["plan", "-c", write_job(t, state="mysql://me:pw-9q@127.0.0.1/db")],
         2, r"driver 'MySQLdb'.*pip install mysqlclient\)"),
    Case("plan: a state folder that cannot be made", lambda t: ["plan", "-c", write_job(
        t, state=PROC)], 2, r"state database /proc/assetferry-nope/x\.db: its folder "
         r"/proc/assetferry-nope cannot be created or written \(.+\), so migrate would fail"),
    Case("migrate: a state folder that cannot be made", lambda t: ["migrate", "-c", write_job(
        t, state=PROC)], 2, r"/proc/assetferry-nope cannot be created.*fix what the error above "
         r"names, then run the same command again", absent=NO_RESUME),
    Case("manifest: every error, in the manifest's words", bad_manifest, 2,
         r"(?=.*\n  asset '[^']+', key 'tags': should be a list of strings)"
         r"(?=.*\n  asset '[^']+', key 'focus': should be \"x,y\" with x and y between 0 and 1)"
         r"metadata manifest .*\.assetferry\.json has 2 problems:\n.*"
         r"fix what the error above names, then run the same command again",
         absent=(*NO_RESUME, "valid tuple", "Input should")),
    Case("status with a mistyped state path", missing_state("status"), 2,
         r"no state database at .*typo/state\.db \(has this job run yet\? check \[run\] state",
         absent=("no run recorded yet",)),
    Case("export-map with a mistyped state path", missing_state("export-map"), 2,
         r"no state database at .*typo/state\.db \(has this job run yet\?",
         absent=("kind,source_id",)),
    Case("-c a folder", lambda t: ["plan", "-c", "."], 2, r"'\.' is a directory"),
    Case("-c a missing file", lambda t: ["plan", "-c", str(t / "nope.toml")], 2,
         r"nope\.toml' does not exist"),
    Case("top-level run = \"x\"", lambda t: ["plan", "-c", write_job(t, extra='run = "x"\n')],
         2, r"run: must be a table, got"),
    Case("job file not UTF-8", lambda t: (t.joinpath("j.toml").write_bytes(b"\xff\xfe["),
                                          ["plan", "-c", str(t / "j.toml")])[1],
         2, r"j\.toml is UTF-16 text; TOML must be UTF-8: save it as UTF-8"),
    Case("job file with a stray NUL byte",
         lambda t: (t.joinpath("j.toml").write_bytes(b'[source]\npath = "./li\x00b"\n'),
                    ["plan", "-c", str(t / "j.toml")])[1],
         2, r"j\.toml contains a NUL byte at line 2, column 13; .*remove it",
         absent=("UTF-16",)),
    Case("-c /dev/zero", lambda t: ["plan", "-c", "/dev/zero"], 2,
         r"job file /dev/zero is a device file, not a regular file"),
    Case("state path ending in /", lambda t: ["migrate", "-c", write_job(t, state="nodir/")],
         2, r"run\.state: 'nodir/' ends in '/', so it names a folder.*"
            r'state = "nodir/assetferry\.db"',
         after=lambda t: _no_file(t / "nodir")),
    Case("state URL ending in /",
         lambda t: ["migrate", "-c", write_job(t, state=f"sqlite:///{t}/nodir/")], 2,
         r"run\.state: 'sqlite:///.*/nodir/' ends in '/', so it names a folder.*"
         r'state = "sqlite:///.*/nodir/assetferry\.db"',
         after=lambda t: _no_file(t / "nodir")),
    _folder_named_as_a_file("export-map", "--out"),
    _folder_named_as_a_file("migrate", "--report"),
    Case("map_file ending in /",
         lambda t: ["plan", "-c", str(t / "job.toml")] if (t / "job.toml").write_text(
             job_text(t, state="s.db") + 'map_file = "maps/"\n') else [],
         2, r'run\.map_file: \'maps/\' ends in \'/\'.*map_file = "maps/ids\.jsonl"'),
    _folder_named_as_a_file("plan", "--out"),
    Case("job file not TOML", lambda t: (t.joinpath("j.toml").write_text("[source\n"),
                                         ["plan", "-c", str(t / "j.toml")])[1],
         2, r"j\.toml is not valid TOML"),
    Case("plan --out a folder", lambda t: ["plan", "-c", write_job(t), "--out", str(t)], 2,
         r"--out.*is a directory"),
    Case("migrate --report a folder",
         lambda t: ["migrate", "-c", write_job(t), "--report", "/tmp"], 2,
         r"--report.*'/tmp' is a directory", after=nothing_written),
    Case("migrate --report under a file", report_under_a_file, 2,
         r"--report.*afile/report\.json' cannot be written: .*afile is a file, not a folder",
         after=nothing_written),
    Case("plan --out under a file", out_under_a_file("plan"), 2,
         r"--out.*afile/x\.txt' cannot be written: .*afile is a file, not a folder"),
    Case("export-map --out under a file", out_under_a_file("export-map"), 2,
         r"--out.*afile/x\.txt' cannot be written: .*afile is a file, not a folder"),
    Case("export-map --out a folder",
         lambda t: ["export-map", "-c", write_job(t), "--out", str(t)], 2,
         r"--out.*is a directory"),
    Case("state DB truncated to 8 KiB", truncated_state, 2,
         r"state database .*state\.db cannot be used .*Restore it from a backup"),
    Case("emulate --port 99999", lambda t: ["emulate", "contentstack", "--port", "99999"], 2,
         r"99999 is not in the range 1<=x<=65535"),
    Case("emulate on a port in use", busy_port, 2, r"port \d+ on 127\.0\.0\.1 is in use"),
    Case("emulate an unknown CMS", lambda t: ["emulate", "wordpress"], 2,
         r"'wordpress' is not one of"),
    Case("unknown option", lambda t: ["plan", "-c", write_job(t), "--bogus"], 2,
         r"No such option '--bogus'"),
    Case("bad --format", lambda t: ["status", "-c", write_job(t), "--format", "xml"], 2,
         r"'xml' is not one of 'text', 'json'"),
    Case("demo --dir a file", lambda t: (t.joinpath("f").write_text(""),
                                         ["demo", "--dir", str(t / "f")])[1],
         2, r"is a file"),
    Case("missing environment variable",
         lambda t: ["plan", "-c", write_job(t, target=(
             '[target]\nconnector = "contentstack"\napi_key = "blt1"\n'
             'management_token = "${HOSTILE_UNSET_VAR}"\nbase_url = "http://127.0.0.1:9"\n'))],
         2, r"HOSTILE_UNSET_VAR is not set\. Export it"),
    Case("demo --dir a folder with a user's files", demo_into_a_users_folder, 2,
         r"already holds files the demo did not make \(job\.toml\).*never overwrites",
         after=users_file_kept),
    Case("metadata manifest with an unknown key", manifest_with('"typo"', key="titel"), 2,
         r"metadata manifest .*\.assetferry\.json .*asset 'bild-03-größe\.png', key 'titel': "
         r"unknown key \(allowed: title, description"),
    Case("metadata manifest title a lone surrogate", manifest_with('"\\ud800"'), 1,
         r"its entry in the metadata manifest .*\.assetferry\.json holds text that cannot be "
         r"read .* at \.assets\['bild-.*'\]\.title; fix that entry by hand",
         absent=("unexpected error", "UnicodeEncodeError")),
    Case("metadata manifest title nested 100,000 deep", manifest_with("[" * 100_000), 2,
         r"metadata manifest .*\.assetferry\.json is damaged or too deeply nested JSON",
         absent=("unexpected error", "RecursionError")),
    Case("local target path is a file",
         lambda t: (t.joinpath("outfile").write_text(""),
                    ["migrate", "-c", write_job(t, target=(
                        f'[target]\nconnector = "local"\npath = "{t / "outfile"}"\n'))])[1],
         2, r"outfile.*(is a file|not a folder)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOSTILE_UNSET_VAR", raising=False)
    args = case.setup(tmp_path)
    capsys.readouterr()
    try:
        code = main(args)
    finally:
        while BUSY:
            BUSY.pop().close()
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == case.code, text
    assert re.search(case.message, text, re.S), text
    assert "Traceback" not in text
    assert "pw-9q" not in text, "a password in a state URL is never shown"
    assert "put the value in the job file" not in text
    for words in case.absent:
        assert words not in text, text
    if case.after is not None:
        case.after(tmp_path)


WRITE_FAILS = [  # an output path that passes the early check but fails when written
    (["plan"], "--out", r"error: --out .*plan\.txt: the plan could not be written \(.+\); "
     r"the plan is printed on stdout instead", "create"),
    (["export-map"], "--out", r"error: --out .*plan\.txt: the map could not be written",
     "source_id"),
    (["migrate"], "--report", r"run finished \(state saved\) but its report could not be "
     r"written to .*plan\.txt", None),
]


@pytest.mark.parametrize(("command", "option", "message", "printed"), WRITE_FAILS,
                         ids=[c[0][0] for c in WRITE_FAILS])
def test_output_that_cannot_be_written(command: list[str], option: str, message: str,
                                       printed: str | None, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A folder that vanishes or a path like /proc/x/plan.txt (not caught early when run as
    root): a clean exit 2 naming the option, the path and the reason; the work is kept."""
    monkeypatch.chdir(tmp_path)
    job = write_job(tmp_path, state="state.db")
    if command[0] == "export-map":
        assert main(["migrate", "-c", job]) == 0
    monkeypatch.setattr("pipeline.cli._unwritable", lambda _: None)
    out = tmp_path / "gone" / "plan.txt"
    (tmp_path / "gone").write_text("in the way")  # mkdir of the folder fails
    capsys.readouterr()
    code = main([*command, "-c", job, option, str(out)])
    text = capsys.readouterr()
    assert code == 2, text
    assert re.search(message, text.err, re.S), text.err
    assert "Traceback" not in text.out + text.err
    assert "unexpected error" not in text.err
    if printed is not None:
        assert printed in text.out, "the output goes to stdout instead of being lost"
    else:
        run_work_kept(tmp_path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_plan_out_under_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The tester's own line: ``plan --out /proc/x/plan.txt`` (the folder cannot be made)."""
    monkeypatch.chdir(tmp_path)
    job = write_job(tmp_path)
    capsys.readouterr()
    code = main(["plan", "-c", job, "--out", "/proc/assetferry-nope/plan.txt"])
    text = capsys.readouterr()
    assert code == 2, text
    assert "/proc/assetferry-nope/plan.txt" in text.err
    assert "unexpected error" not in text.err
    assert "Traceback" not in text.err


def test_status_of_a_killed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """After kill -9 the run stays RUNNING in the DB: status says its process is gone (the
    run lock's own liveness test), not 'running'."""
    import subprocess
    import sys

    from state.store import StateStore

    monkeypatch.chdir(tmp_path)
    job = write_job(tmp_path, state="state.db")
    assert main(["migrate", "-c", job]) == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    store = StateStore(str(tmp_path / "state.db"))
    route = store.routes()[0]
    run_id = store.start_run(route, "migrate", planned=3)
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("UPDATE runs SET owner = ? WHERE id = ?",
                     (f"{socket.gethostname()}:{dead}", run_id))
    conn.close()
    capsys.readouterr()
    assert main(["status", "-c", job]) == 0
    text = capsys.readouterr().out
    assert f"last run {run_id} (migrate, interrupted (its process is gone))" in text, text
    assert "running" not in text, text
    assert f"run `assetferry migrate -c {job}` again (with the same options) to resume" in text
    assert main(["status", "-c", job, "--format", "json"]) == 0
    last = json.loads(capsys.readouterr().out)["last_run"]
    assert (last["status"], last["process_gone"]) == ("interrupted", True)


def test_status_and_map_of_an_empty_state_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A real state DB with no run yet is not an error: status and export-map stay exit 0."""
    from state.store import StateStore

    monkeypatch.chdir(tmp_path)
    job = write_job(tmp_path, state="state.db")
    StateStore(str(tmp_path / "state.db")).close()
    capsys.readouterr()
    assert main(["status", "-c", job]) == 0
    assert "no run recorded yet" in capsys.readouterr().out
    assert main(["export-map", "-c", job]) == 0
    assert capsys.readouterr().out.startswith("kind,source_id")


@pytest.mark.parametrize("command", ["migrate", "plan", "status"])
@pytest.mark.parametrize("spelled", ["path", "url"])
def test_a_damaged_state_db_is_named_by_its_plain_path_everywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: str, spelled: str) -> None:
    """The README tester's finding: ``migrate`` named a damaged SQLite state file as the URL
    ``sqlite:////tmp/.../state.db`` where ``plan`` and ``status`` showed its plain path."""
    monkeypatch.chdir(tmp_path)
    job = truncated_state(tmp_path)[2]
    if spelled == "url":
        write_job(tmp_path, state=f"sqlite:///{tmp_path / 'state.db'}")
    capsys.readouterr()
    assert main([command, "-c", job]) == 2
    out = "".join(capsys.readouterr())
    db = (tmp_path / "state.db").resolve()
    assert f"state database {db} cannot be used" in out, out
    assert "sqlite:" not in out, out
