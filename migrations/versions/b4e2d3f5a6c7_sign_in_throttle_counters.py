"""sign-in throttle counters: per account, per trusted source, per client address

Revision ID: b4e2d3f5a6c7
Revises: a3f1c2d4e5b6
Create Date: 2026-12-07 19:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import telemed.db


# revision identifiers, used by Alembic.
revision = 'b4e2d3f5a6c7'
down_revision = 'a3f1c2d4e5b6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('window_started_at', telemed.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )


def downgrade():
    op.drop_table('login_throttle')
