"""A PostgreSQL cluster of a test's own, which it may stop and start again (database outages).

The shared server (deploy/local/postgres.sh, port 5432) serves every test run on the machine, so it is
never stopped; this one lives in a temporary directory, on a port free when it started, with trust
authentication on the loopback address only. PostgreSQL refuses to run as root: as root, its commands
run as the `postgres` user, which then owns the directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from common.testing.live import free_port

StopMode = Literal["smart", "fast", "immediate"]


def postgres_bin() -> Path:
    """The directory of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/<version>/bin."""
    if found := shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
    return versions[-1].parent


class RestartablePostgres:
    """`start()` (initialises the cluster the first time), `stop()`, `start()`, …, `remove()`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="restartable-pg-"))
        self.data = self.directory / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.directory, user="postgres", group="postgres")
        self._initialised = False

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        """Creates `name` (as the superuser) and returns its URL."""
        admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
        return self.url(name)

    def _run(self, *command: str) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed: {result.stdout}{result.stderr}")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Starts the cluster unless it runs (a test that failed while it was stopped leaves it so)."""
        if self.running:
            return
        if not self._initialised:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
            self._initialised = True
        # No fsync: an `immediate` stop is a crash of the server, not of the machine, so what was
        # committed is still in the kernel's cache and survives it (synchronous_commit stays on for that).
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "log"), "-o", options, "-w", "start")

    def stop(self, mode: StopMode = "fast") -> None:
        """`fast` ends the sessions and shuts down cleanly; `immediate` is a crash (recovery at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if self.running:
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
