"""The embedded PostgreSQL: pgvector works, data survives a restart, stale lock files from a crash are cleared."""
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from dev import embedded_pg


@pytest.fixture(scope="module")
def data_dir():
    # Not under pytest's tmp_path: as root, postgres runs as the `pgserver` user, which must traverse every parent
    # folder, and each new pytest session (another one may start meanwhile) resets pytest-of-root to mode 0700.
    parent = Path(tempfile.mkdtemp(prefix="embedded-pg-test-"))
    yield parent / "pg"
    shutil.rmtree(parent)


def test_vector_search_works_and_data_survives_restart(data_dir):
    database = embedded_pg.start(data_dir)
    try:
        assert database.url.startswith("postgresql+psycopg://") and f"host={data_dir.resolve()}" in database.url
        with psycopg.connect(database.libpq_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("CREATE TABLE items (name text, embedding vector(3))")
            conn.execute("INSERT INTO items VALUES ('near', '[1,0,0]'), ('far', '[0,1,0]')")
            nearest = conn.execute("SELECT name FROM items ORDER BY embedding <=> '[0.9,0.1,0]' LIMIT 1").fetchone()
        assert nearest == ("near",)
    finally:
        database.stop()

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database.libpq_url, connect_timeout=2)

    restarted = embedded_pg.start(data_dir)
    try:
        engine = sqlalchemy.create_engine(restarted.url)
        with engine.connect() as conn:
            names = conn.execute(sqlalchemy.text("SELECT name FROM items ORDER BY name")).scalars().all()
        engine.dispose()
        assert names == ["far", "near"]
    finally:
        restarted.stop()


def test_start_after_a_crash_ignores_a_stale_pid_file(data_dir):
    """A crashed server leaves postmaster.pid behind; here its pid now belongs to an unrelated live process."""
    embedded_pg.start(data_dir).stop()
    (data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{data_dir}\n0\n5432\n{data_dir}\n\n  0 0\nready   \n")

    database = embedded_pg.start(data_dir)
    try:
        with psycopg.connect(database.libpq_url) as conn:
            assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
    finally:
        database.stop()
