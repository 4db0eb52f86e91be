"""ECG: the cart's own report and acquisition beside a recording; the report's ECG values

Revision ID: 5e1c0a9d2b47
Revises: c5f3e4a6b7d8
Create Date: 2026-12-07 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1c0a9d2b47'
down_revision = 'c5f3e4a6b7d8'
branch_labels = None
depends_on = None


def upgrade():
    # plain ADD COLUMN on both databases: no table copy, so case_report keeps its triggers
    op.add_column('ecg_recording', sa.Column('device_report', sa.JSON(), nullable=True))
    op.add_column('ecg_recording', sa.Column('acquisition', sa.JSON(), nullable=True))
    op.add_column('case_report', sa.Column('ecg_values', sa.JSON(), nullable=True))


def downgrade():
    # DROP COLUMN (SQLite 3.35+, PostgreSQL) also keeps the tables and their triggers
    op.drop_column('case_report', 'ecg_values')
    op.drop_column('ecg_recording', 'acquisition')
    op.drop_column('ecg_recording', 'device_report')
