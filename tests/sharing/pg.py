"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, listening on 127.0.0.1 on a free port.

PostgreSQL refuses to run as root, and CI machines run tests as root: then the server
runs as an unprivileged system user (``postgres`` if it exists, else ``lawlake_pg``,
created on first use) through ``runuser``, with its data and socket in a temporary
folder that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..servers import free_port

__all__ = ["PostgresServer", "find_binaries", "PostgresUnavailable"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    candidates = [os.environ.get("PG_BIN", ""), "/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    which = shutil.which("initdb")
    if which:
        candidates.insert(1, str(Path(which).parent))
    for folder in filter(None, candidates):
        if all((Path(folder) / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; set PG_BIN to their folder")


def _service_user() -> str | None:
    """The user to run PostgreSQL as: None when we are not root, else an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "lawlake_pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "lawlake_pg"], check=True, capture_output=True)
    return "lawlake_pg"


class PostgresServer:
    """``start()`` a fresh cluster, ``url`` to connect (SQLAlchemy, psycopg 3), ``stop()`` removes it all."""

    def __init__(self) -> None:
        self.bin = find_binaries()
        self.user = _service_user()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lawlake-pg-"))  # under /tmp, not pytest's root-only tmp folders
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> PostgresServer:
        if self.user:
            shutil.chown(self.dir, user=self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        self._run("pg_ctl", "-D", str(self.data), "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir}", "-l", str(self.dir / "server.log"), "-w", "-t", "30", "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
