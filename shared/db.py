"""Database access: one small SQLAlchemy engine per process (Core, not ORM: the hot path stays cheap).

Many small pods share one PostgreSQL, so pools are small and configurable, connections are pre-pinged and
every statement has a timeout. Behind PgBouncer (transaction mode) the same settings apply.
"""
from __future__ import annotations

import contextlib
import typing

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

from shared.settings import PlatformSettings


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` / `postgres://` URLs and use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(settings: PlatformSettings) -> Engine:
    connect_args = {"application_name": settings.service_name, "connect_timeout": 5}
    if settings.db_behind_pgbouncer:
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return create_engine(
        normalise_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


class Database:
    """The process's engine plus the two ways handlers use it: a read connection and a write transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextlib.contextmanager
    def read(self) -> typing.Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> typing.Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
