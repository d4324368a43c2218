"""pgvector, for the migrations that need vector columns or indexes (memory, file search).

Policy (docs/deploy.md "PostgreSQL"): such a migration calls `require_pgvector(op)` first in its upgrade(). On a
server without pgvector, or with one older than 0.8 (iterative index scans), it stops with a message naming the
fix before it changes anything; otherwise it creates or updates the extension. Managed PostgreSQL services
offer pgvector; the embedded PostgreSQL of `make run` and the tests ships it.

    from migrations.pgvector import require_pgvector

    def upgrade():
        require_pgvector(op)
        op.create_table(...)
"""
from __future__ import annotations

import re

import sqlalchemy as sa

EXTENSION = "vector"
# 0.8: iterative index scans (hnsw.iterative_scan), so filtered nearest-neighbour queries return enough rows.
MINIMUM_VERSION = "0.8.0"


class PgvectorUnavailable(RuntimeError):
    pass


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def require_pgvector(op, minimum: str = MINIMUM_VERSION) -> str:
    """Make sure the `vector` extension of at least `minimum` is installed in this database; returns its version.
    Raises PgvectorUnavailable, naming the fix, when the server cannot provide it."""
    if op.get_context().as_sql:  # offline (`alembic upgrade --sql`): nothing to ask, emit the statement
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
        return minimum
    bind = op.get_bind()
    row = bind.execute(sa.text(
        "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = :name"
    ), {"name": EXTENSION}).first()
    server = bind.execute(sa.text("SHOW server_version")).scalar()
    if row is None:
        raise PgvectorUnavailable(
            f"this migration needs the PostgreSQL extension pgvector >= {minimum}, and the server "
            f"(PostgreSQL {server}) does not have it. Install it on the database server (Debian/Ubuntu: apt-get "
            f"install postgresql-<major>-pgvector; managed PostgreSQL: enable the `vector` extension), or use the "
            "embedded PostgreSQL of `make run`, which ships it. See docs/deploy.md (PostgreSQL).")
    if version_tuple(row.default_version) < version_tuple(minimum):
        raise PgvectorUnavailable(
            f"this migration needs pgvector >= {minimum}; the server (PostgreSQL {server}) offers only "
            f"{row.default_version}. Upgrade the pgvector package on the server. See docs/deploy.md (PostgreSQL).")
    if row.installed_version is None:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
    elif version_tuple(row.installed_version) < version_tuple(minimum):
        op.execute(f"ALTER EXTENSION {EXTENSION} UPDATE")
    return bind.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = :name"),
                        {"name": EXTENSION}).scalar()
