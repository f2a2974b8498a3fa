"""A real PostgreSQL server for tests: a throw-away cluster made with initdb in a temp folder.

Debian's ``postgresql`` package provides /usr/lib/postgresql/<version>/bin (``.ci/run``
installs it). PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` user (made by the package) and its programs run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_fixtures import free_port

_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
PG_BIN = Path(_BINS[-1]) if _BINS else None


class Postgres:
    """``durable=False`` (tests) trades crash safety for speed; benchmarks use ``durable=True``:
    fsync and synchronous commits as a production server has them."""

    def __init__(self, *, durable: bool = False) -> None:
        assert PG_BIN is not None
        self.port = free_port()
        self.user = None if os.geteuid() != 0 else "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.data = self.dir / "data"
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "edge",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=100"
        )
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        self._run_sql("CREATE DATABASE dispatch")
        self.url = f"postgresql://edge@127.0.0.1:{self.port}/dispatch"

    def _run(self, program: str, *args: str) -> None:
        assert PG_BIN is not None
        command = [str(PG_BIN / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.dir)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout}")

    def _run_sql(self, sql: str) -> None:
        import psycopg

        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="edge",
                    dbname="postgres",
                    autocommit=True,
                ) as conn:
                    conn.execute(sql)  # type: ignore[arg-type]
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def new_database(self, name: str) -> str:
        self._run_sql(f"CREATE DATABASE {name}")
        return f"postgresql://edge@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    if PG_BIN is None:
        pytest.skip(
            "PostgreSQL is not installed (Debian package 'postgresql'; .ci/run installs it)"
        )
    server = Postgres()
    try:
        yield server
    finally:
        server.stop()


_counter = [0]


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """A fresh, empty database on the session's server."""
    _counter[0] += 1
    return postgres_server.new_database(f"test_{os.getpid()}_{_counter[0]}")
