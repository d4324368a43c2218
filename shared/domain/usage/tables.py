"""The usage table: one row per model request."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    text,
)

from shared.schema import _created, _id, metadata  # the one MetaData and its column helpers


# One row per model request, for accounting (tokens, latency) per user, key, model and project.
usage_records = Table(
    "usage_records",
    metadata,
    _id(),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("api_key_id", String(36)),
    Column("conversation_id", BigInteger),
    Column("project_id", BigInteger),
    Column("provider_id", BigInteger),
    Column("model", String(255), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("total_tokens", Integer, nullable=False, server_default="0"),
    # True when the provider reported no usage (e.g. llama.cpp streams) and tokens were estimated from text.
    Column("usage_estimated", Boolean, nullable=False, server_default=text("false")),
    Column("latency_ms", Float, nullable=False),
    Column("first_token_ms", Float),
    _created(),
    Index("ix_usage_records_user_time", "user_id", "created_at"),
    Index("ix_usage_records_project_time", "project_id", "created_at"),
)
