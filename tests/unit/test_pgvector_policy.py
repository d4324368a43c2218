"""migrations/pgvector.py against real servers: the system PostgreSQL 15 here has no pgvector, so a migration that
needs it stops with a message naming the fix and changes nothing; the embedded PostgreSQL has it, so the extension
is created once and its version meets the minimum."""
from __future__ import annotations

import os
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from psycopg import sql

from migrations.pgvector import MINIMUM_VERSION, PgvectorUnavailable, require_pgvector, version_tuple

SYSTEM_POSTGRES = os.environ.get("SYSTEM_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def operations(connection) -> Operations:
    return Operations(MigrationContext.configure(connection))


@pytest.fixture
def fresh_embedded_database(server_url):
    """A new, empty database on the embedded PostgreSQL (without the extension yet)."""
    name = f"jan_pgvector_{uuid.uuid4().hex[:8]}"
    maintenance = sa.make_url(server_url)
    with psycopg.connect(maintenance.render_as_string(hide_password=False).replace("+psycopg", ""),
                         autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = sa.create_engine(maintenance.set(database=name))
    yield engine
    engine.dispose()
    with psycopg.connect(maintenance.render_as_string(hide_password=False).replace("+psycopg", ""),
                         autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_without_pgvector_the_migration_stops_naming_the_fix():
    engine = sa.create_engine(SYSTEM_POSTGRES)
    try:
        with engine.connect() as connection:
            with pytest.raises(PgvectorUnavailable) as failure:
                require_pgvector(operations(connection))
            installed = connection.execute(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"))
            assert installed.scalar() == 0
    except sa.exc.OperationalError as error:
        pytest.fail(f"the system PostgreSQL at {SYSTEM_POSTGRES} is not reachable: {error}")
    finally:
        engine.dispose()
    message = str(failure.value)
    assert f"pgvector >= {MINIMUM_VERSION}" in message and "does not have it" in message
    assert "postgresql-<major>-pgvector" in message and "docs/deploy.md" in message


def test_with_pgvector_the_extension_is_created_once_at_the_minimum_version(fresh_embedded_database):
    with fresh_embedded_database.begin() as connection:
        version = require_pgvector(operations(connection))
        assert require_pgvector(operations(connection)) == version
    assert version_tuple(version) >= version_tuple(MINIMUM_VERSION)
    with fresh_embedded_database.connect() as connection:
        nearest = connection.execute(sa.text(
            "SELECT v FROM (VALUES ('[1,0]'::vector), ('[0,1]'::vector)) AS t(v) ORDER BY v <-> '[0.9,0.1]' LIMIT 1"))
        assert str(nearest.scalar()) == "[1,0]"


def test_a_server_offering_only_an_older_pgvector_is_refused(fresh_embedded_database):
    with fresh_embedded_database.connect() as connection:
        with pytest.raises(PgvectorUnavailable, match="offers only"):
            require_pgvector(operations(connection), minimum="99.0")
