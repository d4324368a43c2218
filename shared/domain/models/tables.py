"""Tables of the model registry: providers, the model catalog and provider-models."""
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
