"""file search: per-user documents and embedded chunks on pgvector (HNSW, cosine)

The vector size comes from EMBEDDING_DIMENSION (default 384, all-MiniLM-L6-v2; BGE-M3 behind TEI is 1024) and is
fixed in the column type: switching models means re-embedding (docs/deploy.md, "Switching the embedding model").

Revision ID: 0005_file_search
Revises: 0004_mcp_tools
"""
import os

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0005_file_search"
down_revision = "0004_mcp_tools"
branch_labels = None
depends_on = None

# Iterative index scans (`hnsw.iterative_scan`), which let a user with few rows among many users' rows still get
# top_k results from the HNSW index, arrived in pgvector 0.8.0.
MINIMUM_PGVECTOR = (0, 8, 0)


def _dimension() -> int:
    raw = os.environ.get("EMBEDDING_DIMENSION", "384")
    try:
        dimension = int(raw)
    except ValueError:
        raise RuntimeError(f"EMBEDDING_DIMENSION must be an integer, got {raw!r}") from None
    # pgvector's HNSW index holds vectors of at most 2000 dimensions.
    if not 1 <= dimension <= 2000:
        raise RuntimeError(f"EMBEDDING_DIMENSION must be between 1 and 2000, got {dimension}")
    return dimension


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def _require_pgvector(connection) -> None:
    row = connection.execute(sa.text(
        "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'")).first()
    if row is None:
        raise RuntimeError(
            "file search needs the pgvector extension, and this PostgreSQL server does not have it "
            "(pg_available_extensions has no 'vector'): install pgvector >= 0.8 on the server "
            "(e.g. the postgresql-<major>-pgvector package) and run the migration again")
    available = row.installed_version or row.default_version
    if _version(available) < MINIMUM_PGVECTOR:
        raise RuntimeError(f"file search needs pgvector >= 0.8.0 (iterative HNSW scans); the server has {available}")


def upgrade() -> None:
    connection = op.get_bind()
    _require_pgvector(connection)
    dimension = _dimension()
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "file_search_documents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.String(length=256), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("text_bytes", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_file_search_documents_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_search_documents")),
        sa.UniqueConstraint("user_id", "document_id", name=op.f("uq_file_search_documents_user_id_document_id")),
    )
    op.create_table(
        "file_search_chunks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("document_pk", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["document_pk"], ["file_search_documents.id"],
                                name=op.f("fk_file_search_chunks_document_pk_file_search_documents"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_search_chunks")),
    )
    op.execute(f"ALTER TABLE file_search_chunks ADD COLUMN embedding vector({dimension}) NOT NULL")
    op.create_index("ix_file_search_chunks_document_pk", "file_search_chunks", ["document_pk"])
    # Vectors are unit length, so cosine distance ranks like inner product; cosine keeps scores meaningful for a
    # provider that does not normalise.
    op.execute("CREATE INDEX ix_file_search_chunks_embedding ON file_search_chunks "
               "USING hnsw (embedding vector_cosine_ops)")


def downgrade() -> None:
    op.drop_table("file_search_chunks")
    op.drop_table("file_search_documents")
