"""mcp tools: Jan's admin_mcp_tools table with Jan's seeded rows

Revision ID: 0004_mcp_tools
Revises: 0002_platform
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004_mcp_tools'
down_revision = '0002_platform'
branch_labels = None
depends_on = None

# Jan's seed (llm-api migrations 16 and the image-tool seeds): public ids, keys, descriptions, categories.
SEED = [
    ('mcp_google_search_001', 'google_search',
     'Perform web searches via the configured engines (Serper, SearXNG, or cached fallback) and fetch structured '
     'citations.', 'search', ['(?i)menlo']),
    ('mcp_scrape_001', 'scrape', 'Scrape a webpage and retrieve the text with optional markdown formatting.',
     'scrape', []),
    ('mcp_file_search_index_001', 'file_search_index',
     'Index arbitrary text into the lightweight vector store used for MCP automations.', 'file_search', []),
    ('mcp_file_search_query_001', 'file_search_query',
     'Run a semantic query against documents indexed via file_search_index.', 'file_search', []),
    ('mcp_generate_image_001', 'generate_image',
     'Generate images from text prompts via /v1/images/generations (params: prompt, size, n, num_inference_steps, '
     'cfg_scale).', 'image_generation', []),
    ('mcp_edit_image_001', 'edit_image',
     'Edit an image from a text prompt via /v1/images/edits (params: prompt, image, mask, size, strength, steps, '
     'seed, cfg_scale).', 'image_generation', []),
]


def upgrade() -> None:
    table = op.create_table('admin_mcp_tools',
    sa.Column('id', sa.String(length=36), server_default=sa.text('gen_random_uuid()::text'), nullable=False),
    sa.Column('public_id', sa.String(length=50), nullable=False),
    sa.Column('tool_key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=100), server_default='search', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('disallowed_keywords', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_mcp_tools')),
    sa.UniqueConstraint('public_id', name=op.f('uq_admin_mcp_tools_public_id')),
    sa.UniqueConstraint('tool_key', name=op.f('uq_admin_mcp_tools_tool_key'))
    )
    op.create_index('ix_admin_mcp_tools_category', 'admin_mcp_tools', ['category'], unique=False)
    op.bulk_insert(table, [
        {'public_id': public_id, 'tool_key': key, 'name': key, 'description': description, 'category': category,
         'disallowed_keywords': keywords}
        for public_id, key, description, category, keywords in SEED
    ])


def downgrade() -> None:
    op.drop_index('ix_admin_mcp_tools_category', table_name='admin_mcp_tools')
    op.drop_table('admin_mcp_tools')
