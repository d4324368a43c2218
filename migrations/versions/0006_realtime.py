"""realtime: LiveKit sessions (live rows and tombstones awaiting their room's removal)

Revision ID: 0006_realtime
Revises: 0005_file_search
"""
from alembic import op
import sqlalchemy as sa

revision = '0006_realtime'
down_revision = '0005_file_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('realtime_sessions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='created', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delete_reason', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_realtime_sessions_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_realtime_sessions')),
    sa.UniqueConstraint('public_id', name=op.f('uq_realtime_sessions_public_id')),
    sa.UniqueConstraint('room_id', name=op.f('uq_realtime_sessions_room_id')),
    )
    op.create_index('ix_realtime_sessions_live_user', 'realtime_sessions', ['user_id', 'created_at'], unique=False,
                    postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_realtime_sessions_tombstones', 'realtime_sessions', ['deleted_at'], unique=False,
                    postgresql_where=sa.text('deleted_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_realtime_sessions_tombstones', table_name='realtime_sessions')
    op.drop_index('ix_realtime_sessions_live_user', table_name='realtime_sessions')
    op.drop_table('realtime_sessions')
