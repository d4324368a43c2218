"""Tables of the conversation store: conversations, their items and branches, projects, shares."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.schema import _created, _id, _updated, metadata  # the one MetaData and its column helpers


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
