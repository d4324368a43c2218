"""The database schema as SQLAlchemy Core tables: one MetaData shared by every function and by Alembic.

This module holds the platform's own tables (accounts, sessions, API keys, settings, rate limits); each domain of
shared.domain defines its tables next to its code, so a function loads only the tables of the domains it imports.
`full_metadata()` registers them all (Alembic, tests). Internal integer ids never leave the database; APIs use
each table's `public_id`.
"""
from __future__ import annotations

import importlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import UserDefinedType

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _id() -> Column:
    return Column("id", BigInteger, Identity(), primary_key=True)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated() -> Column:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())


users = Table(
    "users",
    metadata,
    _id(),
    Column("public_id", String(64), nullable=False, unique=True),
    # Who vouches for this identity: our own issuer, or an external OIDC issuer (Keycloak).
    Column("issuer", String(255), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("username", String(255)),
    Column("email", String(320)),
    Column("name", String(255)),
    Column("password_hash", Text),
    Column("role", String(16), nullable=False, server_default="guest"),
    _created(),
    _updated(),
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("issuer", "subject"),
    Index("uq_users_email_lower", func.lower(text("email")), unique=True,
          postgresql_where=text("email IS NOT NULL AND deleted_at IS NULL")),
)

# A login session: the family of refresh tokens rotated from one login. Revoking it ends the session,
# including its access tokens (they carry the session id as `sid`).
auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    _created(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", String(64)),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    _id(),
    Column("session_id", String(36), ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("suffix", String(8), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)

# PKCE state of the external-issuer login flow, in the database so any pod can finish a flow another began.
oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state", String(64), primary_key=True),
    Column("code_verifier", String(128), nullable=False),
    Column("redirect_url", Text),
    _created(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


# Fixed-window request counters shared by every pod (e.g. public share reads per client address).
rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("count", Integer, nullable=False, server_default="0"),
)

user_settings = Table(
    "user_settings",
    metadata,
    _id(),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("memory_config", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("profile_settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("advanced_settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("preferences", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("enable_trace", Boolean, nullable=False, server_default=text("false")),
    Column("enable_tools", Boolean, nullable=False, server_default=text("true")),
    _created(),
    _updated(),
)


# Tables kept out of this module so a function loads only what it uses; full_metadata() registers them all.
DOMAIN_TABLES = ("shared.domain.conversations.tables", "shared.domain.models.tables", "shared.domain.usage.tables",
                 "shared.platform_schema")


def full_metadata() -> MetaData:
    """The MetaData with every table of every domain registered."""
    for module in DOMAIN_TABLES:
        importlib.import_module(module)
    return metadata

# Jan's admin-managed MCP tools (llm_api.admin_mcp_tools): the mcp function lists, describes and filters its tools
# by these rows. `id` is a UUID as in Jan; tool_key is the MCP tool name.
mcp_tools = Table(
    "admin_mcp_tools",
    metadata,
    Column("id", String(36), primary_key=True, server_default=text("gen_random_uuid()::text")),
    Column("public_id", String(50), nullable=False, unique=True),
    Column("tool_key", String(100), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(100), nullable=False, server_default="search"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("metadata", JSONB),
    # Regexes: a search result whose title, snippet or URL matches one is dropped (with its citation).
    Column("disallowed_keywords", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    _created(),
    _updated(),
    Column("updated_by", String(64)),  # public id of the admin who last changed the row
    Index("ix_admin_mcp_tools_category", "category"),
)


class Vector(UserDefinedType):
    """pgvector's `vector`. Its dimension is a deployment setting (EMBEDDING_DIMENSION, applied by migration
    0005); queries pass vectors as text literals cast to `vector`, so no client-side type is needed."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "vector"


# Per-user file search (the mcp function's file_search_* tools): documents and their embedded chunks.
# Account deletion hard-deletes the users row, and the cascade removes both.
file_search_documents = Table(
    "file_search_documents",
    metadata,
    _id(),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("document_id", String(256), nullable=False),  # the caller's own id, unique per user
    Column("metadata", JSONB),
    Column("tags", ARRAY(Text)),
    Column("text_bytes", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("token_count", Integer, nullable=False),
    _created(),
    _updated(),
    UniqueConstraint("user_id", "document_id"),
)

file_search_chunks = Table(
    "file_search_chunks",
    metadata,
    _id(),
    Column("document_pk", BigInteger, ForeignKey("file_search_documents.id", ondelete="CASCADE"), nullable=False),
    # The owner again, so the HNSW scan filters without a join.
    Column("user_id", BigInteger, nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("embedding", Vector(), nullable=False),
    Index("ix_file_search_chunks_document_pk", "document_pk"),
)

# Realtime (LiveKit) sessions. A row is a live session (deleted_at NULL) or, once deleted, a tombstone kept only
# until its LiveKit room is confirmed gone (the room sync retries DeleteRoom, then removes the row).
realtime_sessions = Table(
    "realtime_sessions",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("room_id", String(32), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="created"),  # created | connected
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("connected_at", DateTime(timezone=True)),
    Column("token_expires_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("delete_reason", String(16)),  # deleted | stale | room_empty
    Index("ix_realtime_sessions_live_user", "user_id", "created_at", postgresql_where=text("deleted_at IS NULL")),
    Index("ix_realtime_sessions_tombstones", "deleted_at", postgresql_where=text("deleted_at IS NOT NULL")),
)
