"""A throw-away PostgreSQL server for the tests: Debian's ``initdb`` / ``pg_ctl`` in a temp dir.

`start()` finds the binaries (``/usr/lib/postgresql/<version>/bin``, newest first, then
``PATH``), makes a cluster in a fresh temp dir and starts it on a free loopback port
(``listen_addresses=127.0.0.1``, its unix socket inside the temp dir, ``fsync=off``: nothing
here must survive a power cut). ``initdb`` refuses to run as root, so as root both run as an
unprivileged user (``postgres`` when Debian's package made it, else ``nobody``) through
``setpriv`` (or ``runuser``), the temp dir handed to that user. TCP logins need a password
(SCRAM), so the wrong-password path is real. `PgServer.stop()` stops the server and deletes
the dir; it is also registered with ``atexit`` so an interrupted session (Ctrl-C, a failing
fixture) leaves nothing running.

`unavailable()` says why no server can be started (no ``initdb``: ``make postgres`` installs
Debian's ``postgresql`` package; no psycopg), or None.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

USER = "assetferry"
"""The cluster's superuser (the tests' login)."""


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return ("psycopg is not installed (pip install 'assetferry[postgres]'; make test "
                "installs it with the dev tools)")
    if _bin_dir() is None:
        return ("PostgreSQL's initdb is not installed (make postgres installs Debian's "
                "postgresql package, as root or with sudo)")
    if os.geteuid() == 0 and _runner() is None:
        return "running as root without setpriv or runuser to start PostgreSQL as another user"
    return None


def _runner() -> list[str] | None:
    """The command prefix that runs a program as the unprivileged user (root only)."""
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                "--clear-groups", "--"]
    if shutil.which("runuser"):
        return ["runuser", "-u", user.pw_name, "--"]
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A running throw-away server; `url(db)` gives a psycopg URL with the password."""

    root: Path
    port: int
    password: str
    prefix: list[str]
    bin_dir: Path
    _made: int = field(default=0)

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql+psycopg://{USER}:{pw}@127.0.0.1:{self.port}/{database}"

    def new_database(self, stem: str = "t") -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        self._made += 1
        name = f"{stem}_{self._made}_{secrets.token_hex(3)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER,
                             password=self.password, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name we made: no quoting issue
        return self.url(name)

    def new_schema(self, url: str) -> str:
        """Create an empty schema in the database of ``url`` (made by `new_database`); returns
        a URL whose connections use it (``search_path``): a fresh ledger for one test at a
        tenth of the cost of a new database."""
        import psycopg

        self._made += 1
        name = f"s_{self._made}_{secrets.token_hex(3)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER,
                             password=self.password, dbname=url.rsplit("/", 1)[1],
                             autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')  # a name we made: no quoting issue
        return f"{url}?options=-csearch_path%3D{name}"

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> None:
        """Stop the server (immediate: nothing to keep) and delete its dir; idempotent."""
        if self.root.exists():
            self._pg_ctl("-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
            shutil.rmtree(self.root, ignore_errors=True)


def start() -> PgServer:
    """Start a server; RuntimeError (with initdb's or the server's log) if it fails."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError(unavailable() or "no initdb")
    prefix = _runner() if os.geteuid() == 0 else []
    if prefix is None:
        raise RuntimeError(unavailable() or "no setpriv/runuser")
    root = Path(tempfile.mkdtemp(prefix="assetferry-pg-"))
    password = secrets.token_urlsafe(18)
    if prefix:
        uid, gid = (int(prefix[1].split("=")[1]), int(prefix[2].split("=")[1])) \
            if prefix[0] == "setpriv" else _ids(prefix[2])
        os.chown(root, uid, gid)
    run = [*prefix]
    done: subprocess.CompletedProcess[str] | None = None
    pwfile = root / "pw"
    try:
        pwfile.write_text(password + "\n", encoding="utf-8")
        if prefix:
            os.chown(pwfile, *_owner(root))
        init = subprocess.run(
            [*run, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", USER,
             "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, timeout=120, check=False)
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        for _attempt in range(3):
            server = PgServer(root, _free_port(), password, prefix, bin_dir)
            options = (f"-c listen_addresses=127.0.0.1 -p {server.port} "
                       f"-c unix_socket_directories={root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=200")
            done = server._pg_ctl("-D", str(root / "data"), "-l", str(root / "log"),
                                  "-o", options, "-w", "-t", "60", "start")
            if done.returncode == 0:
                atexit.register(server.stop)
                return server
        log = (root / "log").read_text(encoding="utf-8", errors="replace")[-2000:] \
            if (root / "log").exists() else (done.stderr if done else "")
        raise RuntimeError(f"PostgreSQL did not start: {log}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


def _ids(name: str) -> tuple[int, int]:
    user = pwd.getpwnam(name)
    return user.pw_uid, user.pw_gid


__all__ = ["USER", "PgServer", "start", "unavailable"]
