"""A throwaway PostgreSQL server for the test session.

Finds the server binaries (``initdb``, ``pg_ctl``) on PATH or under
``/usr/lib/postgresql/*/bin`` (newest version first), initialises a cluster in a
temporary folder, starts it on a free loopback port with durability switched off
(fsync, synchronous_commit, full_page_writes), and stops and deletes it at the end.

PostgreSQL refuses to run as root. When the tests run as root, the cluster is
owned and run by a dedicated system user (``sijilpg``, created if missing) through
``runuser``.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

PG_SYSTEM_USER = "sijilpg"
PG_SUPERUSER = "postgres"
MAIN_DATABASE = "sijil"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


class PostgresStartError(RuntimeError):
    """The binaries were found, but the server could not be set up or started."""


@dataclass(frozen=True)
class PgBinaries:
    initdb: Path
    pg_ctl: Path


def _version_key(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)


def find_binaries() -> PgBinaries:
    """``initdb`` and ``pg_ctl`` from PATH, else the newest /usr/lib/postgresql/*/bin."""
    initdb = shutil.which("initdb")
    if initdb:
        # Prefer the pg_ctl beside the initdb we found (symlinks resolved), so both
        # come from the same major version.
        beside = Path(os.path.realpath(initdb)).parent / "pg_ctl"
        pg_ctl = str(beside) if beside.exists() else shutil.which("pg_ctl")
        if pg_ctl:
            return PgBinaries(Path(initdb), Path(pg_ctl))
    candidates = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (p.parent / "pg_ctl").exists()
    ]
    if candidates:
        bindir = max(candidates, key=_version_key)
        return PgBinaries(bindir / "initdb", bindir / "pg_ctl")
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
        "/usr/lib/postgresql/*/bin; install Debian's 'postgresql' package "
        "(`apt-get install -y postgresql`, which .ci/run does)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # another process may have created it meanwhile; trust the database
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresStartError(
            f"running as root, and could not create system user {name!r} for "
            f"PostgreSQL: {result.stderr.strip() or result.returncode}"
        ) from None


def _world_traversable(path: Path) -> bool:
    """Every folder from / to path can be entered by other users."""
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents])


@dataclass
class PgServer:
    """One throwaway cluster. ``start()``, then ``url()``, ``create_database()``, ``stop()``."""

    binaries: PgBinaries = field(default_factory=find_binaries)
    host: str = "127.0.0.1"
    port: int = 0
    base: Path | None = None
    _run_as: str | None = None
    _running: bool = False

    # paths ---------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        assert self.base is not None
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        assert self.base is not None
        return self.base / "postgres.log"

    # running commands ----------------------------------------------------
    def _cmd(self, *args: str | Path) -> list[str]:
        argv = [str(a) for a in args]
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *argv]
        return argv

    def _run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        return subprocess.run(
            self._cmd(*args),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
            cwd=self.base,  # a folder the postgres user can enter
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # lifecycle -----------------------------------------------------------
    def start(self) -> PgServer:
        if os.geteuid() == 0:
            user = _ensure_system_user(PG_SYSTEM_USER)
            self._run_as = user.pw_name
            tmp_root = Path(tempfile.gettempdir())
            if not _world_traversable(tmp_root):
                tmp_root = Path("/tmp")
            self.base = Path(tempfile.mkdtemp(prefix="sijil-pg-", dir=tmp_root))
            os.chown(self.base, user.pw_uid, user.pw_gid)
        else:
            self.base = Path(tempfile.mkdtemp(prefix="sijil-pg-"))
        atexit.register(self.stop)
        try:
            self.sockdir.mkdir()
            if self._run_as:
                user = pwd.getpwnam(self._run_as)
                os.chown(self.sockdir, user.pw_uid, user.pw_gid)
            self._initdb()
            self._start_server()
            self.create_database(MAIN_DATABASE)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        result = self._run(
            self.binaries.initdb,
            "-D", self.datadir,
            "-A", "trust",
            "-U", PG_SUPERUSER,
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresStartError(
                f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    def _start_server(self, attempts: int = 3) -> None:
        last = ""
        for _ in range(attempts):  # a free port can be taken between picking and binding
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.sockdir} -c listen_addresses={self.host} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            result = self._run(
                self.binaries.pg_ctl,
                "-D", self.datadir,
                "-l", self.logfile,
                "-w", "-t", "60",
                "-o", options,
                "start",
            )  # fmt: skip
            if result.returncode == 0:
                self._running = True
                return
            last = f"{result.stdout}\n{result.stderr}\n--- server log ---\n{self._log_tail()}"
        raise PostgresStartError(f"pg_ctl start failed {attempts} times:\n{last}")

    def stop(self) -> None:
        if self._running:
            self._run(self.binaries.pg_ctl, "-D", self.datadir, "-m", "fast", "-w", "stop")
            self._running = False
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    # databases -----------------------------------------------------------
    def url(self, database: str = MAIN_DATABASE) -> str:
        """A SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://{PG_SUPERUSER}@{self.host}:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=PG_SUPERUSER,
            dbname="postgres",
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
