"""Platform tables that are no function's own data: the durable job queue and the audit log.

They share `shared.schema.metadata` (one Alembic history) but live apart from the domain tables, so a function
that uses neither never defines them.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Identity, Index, Integer, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

from shared.schema import metadata

# One row per unit of background work; status is queued | running | succeeded | dead. A claim sets a lease
# (lease_until, worker_id) and a fresh lease_token; only the holder of the current token can finish the job, so a
# worker that lost its lease cannot overwrite the outcome of the one that took over.
jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("function", String(64), nullable=False),  # the function whose handler runs it
    Column("kind", String(128), nullable=False),  # the handler's registered name
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Work done for a user (delegation tokens are minted for them when it runs); gone with their account.
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE")),
    Column("idempotency_key", String(255)),
    Column("status", String(16), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("run_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_until", DateTime(timezone=True)),
    Column("worker_id", String(128)),
    Column("lease_token", String(36)),
    Column("last_error", Text),
    Column("result", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Index("uq_jobs_function_idempotency_key", "function", "idempotency_key", unique=True,
          postgresql_where=text("idempotency_key IS NOT NULL")),
    # What a claim and the sweep look for: due queued jobs, and running jobs whose lease ran out.
    Index("ix_jobs_due", "function", "run_at", postgresql_where=text("status = 'queued'")),
    Index("ix_jobs_leased", "lease_until", postgresql_where=text("status = 'running'")),
)

# Every admin write: who (a user's public id and how they authenticated, or the service acting for them), what
# (action and target), when, and the target's state before and after with secrets redacted. Actor ids are
# copied, not foreign keys: the trail outlives the accounts it names.
audit_logs = Table(
    "audit_logs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("actor_user_id", String(64)),
    Column("actor_auth_method", String(16), nullable=False),
    Column("actor_service", String(64)),
    Column("action", String(64), nullable=False),
    Column("target_type", String(64), nullable=False),
    Column("target_id", String(255)),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("request_id", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_audit_logs_actor", "actor_user_id", "id"),
    Index("ix_audit_logs_action", "action", "id"),
    Index("ix_audit_logs_target", "target_type", "target_id", "id"),
    Index("ix_audit_logs_created", "created_at"),
)
