"""Database access: one small SQLAlchemy engine per process (Core, not ORM: the hot path stays cheap).

Many small pods share one PostgreSQL, so pools are small and configurable, connections idle for a while are
pinged before use, and every statement has a timeout. Round trips are the hot path's main cost, so reads run in
autocommit (no BEGIN/ROLLBACK) and accounting writes skip the wait for a durable commit.
"""
from __future__ import annotations

import contextlib
import time
import typing

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine

from shared.settings import PlatformSettings


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` / `postgres://` URLs and use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(settings: PlatformSettings, *, relaxed_commits: bool = False, pool_size: int | None = None,
                max_overflow: int | None = None) -> Engine:
    """`relaxed_commits`: every commit on this engine returns without waiting for the WAL flush
    (`synchronous_commit = off`), for accounting rows only (see Database.relaxed_write)."""
    connect_args = {"application_name": settings.service_name, "connect_timeout": 5}
    options = []
    if settings.db_behind_pgbouncer:
        connect_args["prepare_threshold"] = None
    else:
        options.append(f"-c statement_timeout={settings.db_statement_timeout_ms}")
        if relaxed_commits:
            options.append("-c synchronous_commit=off")
    if options:
        connect_args["options"] = " ".join(options)
    engine = create_engine(
        normalise_url(settings.database_url),
        pool_size=settings.db_pool_size if pool_size is None else pool_size,
        max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args=connect_args,
        # Bound parameters hold message text, password hashes, PKCE verifiers, encrypted provider keys: an
        # error's text names the statement, never its values.
        hide_parameters=True,
    )
    _ping_idle_connections(engine)
    event.listen(engine, "handle_error", redact_database_error)
    return engine


# SQLSTATE classes whose primary message names only schema objects or the server's state (connection, syntax
# and access rules, resources, timeouts). Others (data exceptions, integrity violations, PL/pgSQL raises) may
# quote a value, as every DETAIL ("Failing row contains (…)", "Key (email)=(…)") and CONTEXT may.
_SCHEMA_ONLY_CLASSES = {"08", "25", "40", "42", "53", "54", "55", "57", "58"}


def redacted_message(error: BaseException) -> str:
    """What a DB-API error may say in logs: its SQLSTATE, the names of the schema objects involved and, for
    the classes above, the server's primary message."""
    diag = getattr(error, "diag", None)
    sqlstate = getattr(error, "sqlstate", None) or getattr(diag, "sqlstate", None) or ""
    parts = [f"SQLSTATE {sqlstate or 'unknown'}"]
    for label in ("schema_name", "table_name", "column_name", "constraint_name"):
        value = getattr(diag, label, None)
        if value:
            parts.append(f"{label.split('_')[0]} {value}")
    primary = getattr(diag, "message_primary", None)
    if primary and sqlstate[:2] in _SCHEMA_ONLY_CLASSES:
        parts.append(primary)
    return "; ".join(parts)


def redact_database_error(context) -> None:
    """Engine `handle_error` hook: the driver's exception text is replaced (its type, SQLSTATE and `diag` stay),
    so neither SQLAlchemy's message, nor a traceback, nor anyone's `str(exc)` carries a value."""
    error = context.original_exception
    if error is None or not isinstance(error, Exception):
        return
    error.args = (redacted_message(error),)
    wrapped = context.sqlalchemy_exception
    if isinstance(wrapped, exc.DBAPIError):  # its message was made from the driver's text before this hook
        wrapped.args = (f"({type(error).__module__}.{type(error).__name__}) {error.args[0]}",)


# A connection returned to the pool moments ago is alive; one idle longer may have been cut (database restart,
# PgBouncer or NAT timeouts), so it is pinged before use, and replaced if the ping fails.
IDLE_PING_SECONDS = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record):
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < IDLE_PING_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_connection.autocommit:
                dbapi_connection.rollback()
        except Exception as error:
            raise exc.DisconnectionError() from error


class Database:
    """The process's engines and the ways handlers use them: reads, transactions and relaxed accounting writes."""

    def __init__(self, engine: Engine, relaxed_engine: typing.Callable[[], Engine] | None = None):
        self.engine = engine
        self._relaxed_factory = relaxed_engine
        self._relaxed: Engine | None = None

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> "Database":
        # The relaxed pool is small and made on first use: only functions that account for requests need it.
        return cls(make_engine(settings),
                   lambda: make_engine(settings, relaxed_commits=True, pool_size=1, max_overflow=2))

    @contextlib.contextmanager
    def read(self) -> typing.Iterator[Connection]:
        """Autocommit: each statement is its own transaction (no BEGIN/ROLLBACK round trips); a write made here
        commits at once."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> typing.Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def relaxed_write(self) -> typing.Iterator[Connection]:
        """Autocommit statements whose commit does not wait for the WAL flush: for accounting rows (usage records,
        rate-limit counters), where a database crash may lose the last fraction of a second — never user data.
        Behind PgBouncer the setting cannot be passed, and these commits are ordinary ones."""
        if self._relaxed is None:
            self._relaxed = self._relaxed_factory() if self._relaxed_factory else self.engine
        with self._relaxed.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
