"""report drafts keep their authors: a draft another reader takes over is superseded

Revision ID: c5f3e4a6b7d8
Revises: b4e2d3f5a6c7
Create Date: 2026-12-07 19:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

import telemed.db


# revision identifiers, used by Alembic.
revision = 'c5f3e4a6b7d8'
down_revision = 'b4e2d3f5a6c7'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('case_report', sa.Column('superseded_at', telemed.db.UTCDateTime(timezone=True), nullable=True))
    op.drop_index('uq_case_report_one_draft', table_name='case_report')
    op.create_index(
        'uq_case_report_one_draft', 'case_report', ['case_id'], unique=True,
        sqlite_where=sa.text('signed_at IS NULL AND superseded_at IS NULL'),
        postgresql_where=sa.text('signed_at IS NULL AND superseded_at IS NULL'),
    )


def downgrade():
    op.drop_index('uq_case_report_one_draft', table_name='case_report')
    op.create_index(
        'uq_case_report_one_draft', 'case_report', ['case_id'], unique=True,
        sqlite_where=sa.text('signed_at IS NULL'),
        postgresql_where=sa.text('signed_at IS NULL'),
    )
    op.drop_column('case_report', 'superseded_at')
