"""The database schema as SQLAlchemy Core tables: one definition shared by every function and by Alembic.

Internal integer ids never leave the database; APIs use each table's `public_id`.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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
from sqlalchemy.dialects.postgresql import JSONB

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

providers = Table(
    "providers",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("vendor", String(64), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("encrypted_api_key", Text),
    Column("api_key_hint", String(16)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("category", String(16), nullable=False, server_default="llm"),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("last_synced_at", DateTime(timezone=True)),
    Column("last_sync_error", Text),
    _created(),
    _updated(),
    Column("deleted_at", DateTime(timezone=True)),
    Index("uq_providers_name_live", "name", unique=True, postgresql_where=text("deleted_at IS NULL")),
)

_capabilities = ("images", "embeddings", "reasoning", "instruct", "audio", "video", "tools", "browser")

model_catalogs = Table(
    "model_catalogs",
    metadata,
    _id(),
    Column("public_id", String(255), nullable=False, unique=True),
    Column("model_display_name", String(255)),
    Column("description", Text),
    Column("supported_parameters", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("architecture", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("tags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("notes", Text),
    Column("context_length", Integer),
    Column("is_moderated", Boolean),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("extras", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # init: created by a sync; filled: sync added details; updated: an admin edited it (sync never overwrites).
    Column("status", String(16), nullable=False, server_default="init"),
    Column("family", String(128)),
    Column("experimental", Boolean, nullable=False, server_default=text("false")),
    Column("requires_feature_flag", String(128)),
    *(Column(f"supports_{name}", Boolean, nullable=False, server_default=text("false")) for name in _capabilities),
    Column("last_synced_at", DateTime(timezone=True)),
    _created(),
    _updated(),
)

provider_models = Table(
    "provider_models",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("provider_id", BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), nullable=False),
    Column("model_catalog_id", BigInteger, ForeignKey("model_catalogs.id", ondelete="SET NULL")),
    Column("model_public_id", String(255), nullable=False, index=True),
    Column("provider_original_model_id", String(255), nullable=False),
    Column("model_display_name", String(255), nullable=False),
    Column("category", String(64), nullable=False, server_default="chat"),
    Column("category_order_number", Integer, nullable=False, server_default="0"),
    Column("model_order_number", Integer, nullable=False, server_default="0"),
    Column("pricing", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("token_limits", JSONB),
    Column("family", String(128)),
    *(Column(f"supports_{name}", Boolean, nullable=False, server_default=text("false")) for name in _capabilities),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("instruct_model_public_id", String(255)),
    _created(),
    _updated(),
    UniqueConstraint("provider_id", "model_public_id"),
)

conversations = Table(
    "conversations",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(256)),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("active_branch", String(64), nullable=False, server_default="MAIN"),
    Column("referrer", String(64)),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="SET NULL"), index=True),
    # The project instruction in force for this conversation (Jan's effective_instruction_snapshot).
    Column("instruction_snapshot", Text),
    _created(),
    _updated(),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_conversations_user_live", "user_id", "id", postgresql_where=text("deleted_at IS NULL")),
)

projects = Table(
    "projects",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(120), nullable=False),
    Column("instruction", Text),
    Column("is_favorite", Boolean, nullable=False, server_default=text("false")),
    Column("archived_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    _created(),
    _updated(),
    Column("deleted_at", DateTime(timezone=True)),
    Index("uq_projects_user_name_live", "user_id", "name", unique=True, postgresql_where=text("deleted_at IS NULL")),
    Index("ix_projects_user_live", "user_id", "id", postgresql_where=text("deleted_at IS NULL")),
)

# Named branches of a conversation. MAIN exists implicitly; a row is created for it when a swap needs one.
conversation_branches = Table(
    "conversation_branches",
    metadata,
    _id(),
    Column("conversation_id", BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text),
    Column("parent_branch", String(64)),
    Column("forked_at", DateTime(timezone=True)),
    Column("forked_from_item_id", String(32)),
    _created(),
    _updated(),
    UniqueConstraint("conversation_id", "name"),
)

conversation_shares = Table(
    "conversation_shares",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("slug", String(32), nullable=False, unique=True),
    Column("conversation_id", BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("owner_user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("scope", String(16), nullable=False, server_default="conversation"),
    Column("item_public_id", String(32)),
    Column("title", String(256)),
    Column("visibility", String(16), nullable=False, server_default="unlisted"),
    Column("revoked_at", DateTime(timezone=True)),
    Column("view_count", BigInteger, nullable=False, server_default="0"),
    Column("last_viewed_at", DateTime(timezone=True)),
    Column("snapshot_version", Integer, nullable=False, server_default="1"),
    # A frozen, sanitised copy of what was shared: no user ids, emails, tokens or tool secrets.
    Column("snapshot", JSONB, nullable=False),
    Column("share_options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _created(),
    _updated(),
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

conversation_items = Table(
    "conversation_items",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("conversation_id", BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("branch", String(64), nullable=False, server_default="MAIN"),
    Column("sequence_number", Integer, nullable=False),
    Column("type", String(48), nullable=False, server_default="message"),
    Column("role", String(16)),
    Column("content", JSONB),
    Column("status", String(16)),
    Column("incomplete_details", JSONB),
    Column("completed_at", DateTime(timezone=True)),
    Column("call_id", String(128)),
    Column("name", String(255)),
    Column("server_label", String(255)),
    Column("arguments", Text),
    Column("output", Text),
    Column("error", Text),
    Column("model", String(255)),
    Column("usage", JSONB),
    Column("finish_reason", String(32)),
    Column("rating", String(16)),
    _created(),
    UniqueConstraint("conversation_id", "branch", "sequence_number"),
    Index("ix_conversation_items_call", "conversation_id", "call_id"),
)

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
